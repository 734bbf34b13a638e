"""Check, then serve, per title (issue 18) on a real (SQLite) Dagster instance: a poisoned title
among 8 is not written to LanceDB and fails alone, its failed check names it, the other titles'
rows are untouched, and automation holds back exactly that title downstream."""

import warnings

import numpy as np
import pytest
from dagster import AssetKey, DagsterEventType, evaluate_automation_conditions

from tests.assets.serving_world import fused_rows, titles, train_checkpoint, write_title

warnings.filterwarnings("ignore")
SHOTS = {f"t{i}": 6 + i for i in range(8)}
UPSTREAM = ("titles", "shots", "fused_shots", "title_metadata_embedding", "video_embeddings")


@pytest.fixture
def world(tmp_path, instance):
    from mediafm_assets.definitions import build_definitions

    root = tmp_path / "storage"
    ids = titles(8)
    for i, t in enumerate(ids):
        write_title(root, t, SHOTS[t], seed=i)
    instance.add_dynamic_partitions("titles", ids)
    version = train_checkpoint(root, ids)
    return dict(
        root=root,
        ids=ids,
        defs=build_definitions(root=str(root)),
        instance=instance,
        version=version,
    )


def store_of(root):
    from mediafm_core.storage.lance_store import LanceStore
    from mediafm_core.storage.layout import StorageLayout

    return LanceStore(StorageLayout(str(root)).lancedb)


def rows_of(root, ids) -> dict:
    store = store_of(root)
    return {
        t: store.read("shot_embeddings", t)
        .select(["shot_index", "vector", "model_version"])
        .to_pylist()
        for t in ids
    }


def check_results(instance, run_id) -> dict:
    """{(check name, title): passed} of a run's check evaluations."""
    out = {}
    for e in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
        data = e.dagster_event.event_specific_data
        out[data.asset_check_key.name, data.partition] = (data.passed, data.metadata)
    return out


def serve(world, ids):
    from mediafm_assets import local_runner as lr

    return lr.materialize_titles(world["defs"], world["instance"], ["contextual_embeddings"], ids)


@pytest.mark.parametrize("poison", ["nan_vectors", "rows_do_not_match_shots"])
def test_a_poisoned_title_among_8_is_not_served_and_fails_alone(world, poison):
    root, ids, instance = world["root"], world["ids"], world["instance"]
    good, bad = ids[:7], ids[7]
    assert serve(world, good).success
    before = rows_of(root, good)
    if poison == "nan_vectors":  # the title's fused vectors hold NaN (a broken encoder)
        fused = fused_rows(bad, SHOTS[bad], seed=7)
        fused[2] = np.nan
        write_title(root, bad, SHOTS[bad], seed=7, fused=fused)
    else:  # its shots were re-cut after fusion: one shot more than vectors
        write_title(root, bad, SHOTS[bad], seed=7, extra_shots=1)
    run = serve(world, ids)
    assert not run.success
    assert bad in run.error and "1 of 8 titles failed their checks" in run.error
    store = store_of(root)
    assert store.count_rows("shot_embeddings", [bad]) == 0  # never written
    assert {t: store.count_rows("shot_embeddings", [t]) for t in good} == {
        t: SHOTS[t] for t in good
    }
    after = rows_of(root, good)
    for t in good:  # the other titles' rows: same keys, same version, same vectors
        assert [r["shot_index"] for r in after[t]] == [r["shot_index"] for r in before[t]]
        assert {r["model_version"] for r in after[t]} == {world["version"]}
        np.testing.assert_allclose(
            [r["vector"] for r in after[t]], [r["vector"] for r in before[t]], atol=1e-5
        )
    results = check_results(instance, run.run_id)
    name = "finite_vectors" if poison == "nan_vectors" else "rows_match_shots"
    passed, meta = results[name, bad]
    assert not passed and meta["title_id"].value == bad
    assert all(results[name, t][0] for t in good)  # one result per title, the rest passed
    assert not (root / "artefacts" / "contextual_embeddings" / f"{bad}.parquet").exists()


def report_checkpoint(instance, model_version: str) -> None:
    """An `encoder_checkpoint` materialisation with its model_version as data version (what the
    asset publishes; the checkpoint itself was trained by `train_checkpoint`)."""
    from dagster import AssetMaterialization
    from dagster._core.definitions.data_version import DATA_VERSION_TAG

    instance.report_runless_asset_event(
        AssetMaterialization("encoder_checkpoint", tags={DATA_VERSION_TAG: model_version})
    )


def report_upstream(instance, ids) -> None:
    """Materialisations of the upstream per-title artefacts `write_title` wrote (as if ingested)."""
    from dagster import AssetMaterialization

    for asset in UPSTREAM:
        for t in ids:
            instance.report_runless_asset_event(AssetMaterialization(asset, partition=t))


def test_automation_holds_back_only_the_title_whose_checks_failed(world):
    """After a new checkpoint, title_embeddings' condition (eager after upstream blocking
    checks) requests the 7 titles whose contextual checks passed, not the poisoned one."""
    from mediafm_assets import local_runner as lr

    root, ids, instance, defs = world["root"], world["ids"], world["instance"], world["defs"]
    report_upstream(instance, ids)
    report_checkpoint(instance, world["version"])
    assert lr.materialize_titles(
        defs, instance, ["contextual_embeddings", "title_embeddings"], ids
    ).success
    target = defs.get_sensor_def("reembed_on_new_checkpoint").asset_selection
    quiet = evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=target)
    assert quiet.total_requested == 0
    report_checkpoint(instance, train_checkpoint(root, ids, name="ckpt-b", seed=1))
    fused = fused_rows(ids[7], SHOTS[ids[7]], seed=7)
    fused[:, 0] = np.inf
    write_title(root, ids[7], SHOTS[ids[7]], seed=7, fused=fused)
    assert not serve(world, ids).success
    tick = evaluate_automation_conditions(
        defs=defs, instance=instance, asset_selection=target, cursor=quiet.cursor
    )
    requested = {
        r.key: r.true_subset.expensively_compute_partition_keys()
        for r in tick.results
        if r.true_subset.size
    }
    assert requested == {AssetKey("title_embeddings"): set(ids[:7])}
