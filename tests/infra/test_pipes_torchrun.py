"""GPU training out of process: `encoder_checkpoint` launches the trainer through Dagster Pipes.

- 2 CPU ranks on gloo: the real asset, a `PipesSubprocessClient` launch of
  `torchrun --nproc-per-node 2`; rank 0 alone reports through Pipes (loss curve, metrics, world
  size and every rank's weights_version, which DDP must keep identical).
- N = 1 is a plain process (no torchrun).
- Kubernetes: with `TrainerLauncherResource(mode="k8s")` the asset hands `PipesK8sClient.run` a
  GPU pod; the pod it would submit is built here with dagster-k8s's own `build_pod_body`, no
  cluster needed.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from dagster import Definitions, load_assets_from_modules

from tests.infra.conftest import ROOT

TITLES = [f"t{i}" for i in range(6)]
TRAIN = {
    "ops": {
        "encoder_checkpoint": {
            "config": {
                "size": "tiny",
                "steps": 4,
                "batch_size": 2,
                "window": 16,
                "eval_every": 2,
                "log_every": 2,
                "device": "cpu",
                "publish_below_baselines": True,
            }
        }
    }
}


def write_inputs(root: str) -> None:
    """fused_shots + title_metadata_embedding artefacts of TITLES, as the IO manager stores them."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from upath import UPath

    from mediafm_core.tables import vector_array

    rng = np.random.default_rng(0)
    for tid in TITLES:
        n = int(rng.integers(6, 14))
        fused = rng.normal(size=(n, 12)).astype(np.float32)
        fused /= np.linalg.norm(fused, axis=1, keepdims=True)
        tables = {
            "fused_shots": pa.table(
                {
                    "title_id": [tid] * n,
                    "shot_index": np.arange(n),
                    "fused": vector_array(fused),
                    "has_text": [True] * n,
                }
            ),
            "title_metadata_embedding": pa.table(
                {
                    "title_id": [tid],
                    "vector": vector_array(rng.normal(size=(1, 6)).astype(np.float32)),
                }
            ),
        }
        for asset, table in tables.items():
            path = UPath(root) / "artefacts" / asset / f"{tid}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("wb") as f:
                pq.write_table(table, f)


@pytest.fixture
def instance(instance, tmp_path, monkeypatch):
    """The SQLite instance of tests/conftest.py with the partitions of TITLES."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the trainer processes import this checkout
    monkeypatch.setenv("MEDIAFM_CACHE", str(tmp_path / "cache"))
    instance.add_dynamic_partitions("titles", TITLES)
    return instance


def definitions(root: str, **resources) -> Definitions:
    from mediafm_assets.definitions import DOMAINS
    from mediafm_assets.resources import build_resources

    return Definitions(
        assets=load_assets_from_modules(list(DOMAINS)),
        resources={**build_resources(root), **resources},
    )


def test_two_gloo_ranks_through_pipes_report_from_rank_0_with_identical_weights(instance, tmp_path):
    from mediafm_assets import local_runner as lr
    from mediafm_assets.resources import TrainerLauncherResource
    from mediafm_core.training import load_checkpoint
    from mediafm_core.training.checkpoint import weights_version

    root = str(tmp_path / "storage")
    write_inputs(root)
    defs = definitions(root, trainer=TrainerLauncherResource(mode="pipes", nproc_per_node=2))
    run = lr.materialize_unpartitioned(defs, instance, "encoder_checkpoint", TRAIN)
    assert run.success, run.error

    from dagster import AssetKey

    meta = instance.get_latest_materialization_event(AssetKey("encoder_checkpoint"))
    meta = meta.asset_materialization.metadata
    assert "torch.distributed.run" in meta["command"].value
    assert "--nproc-per-node=2" in meta["command"].value
    assert meta["world_size"].value == 2  # reported by rank 0 of 2
    ranks = meta["rank_weights"].value
    assert len(ranks) == 2 and ranks[0] == ranks[1] and meta["ranks_agree"].value is True
    curve = meta["loss_curve"].value
    assert "| 2 |" in curve and "| 4 |" in curve  # eval every 2 of 4 steps
    assert meta["steps"].value == 4
    # the picture is drawn by the orchestrator from metrics.json, not sent as one long Pipes line
    assert meta["loss_curve_plot"].value.startswith("![MSM loss curve](data:image/png;base64,")
    model, info = load_checkpoint(meta["checkpoint_dir"].value)
    assert weights_version(model.state_dict()) == ranks[0] == info["model_version"]
    logs = [e.user_message for e in instance.all_logs(run.run_id) if e.user_message]
    assert sum("step 4 train_loss" in m for m in logs) == 1  # one reporter: rank 0
    # issue 17: the ranks read disjoint title shards of the dataset folder, not all of it
    metrics = json.loads((Path(meta["checkpoint_dir"].value) / "metrics.json").read_text())
    assert meta["titles_read_by_several_ranks"].value == 0
    per_rank = metrics["titles_read_per_rank"]
    train = metrics["n_train_titles"]
    assert len(per_rank) == 2 and all(n > 0 for n in per_rank)
    assert all(n <= -(-train // 2) for n in per_rank)  # at most its shard: half the titles


def test_one_process_is_a_plain_launch_without_torchrun():
    from mediafm_assets.pretraining.assets import trainer_command
    from mediafm_assets.resources import TrainerLauncherResource

    one = trainer_command(TrainerLauncherResource(nproc_per_node=1, python="python"))
    assert one == ["python", "-m", "mediafm_assets.pretraining.pipes_trainer"]
    four = trainer_command(TrainerLauncherResource(nproc_per_node=4, python="python"))
    assert four[:3] == ["python", "-m", "torch.distributed.run"]
    assert "--nproc-per-node=4" in four


class CapturingK8sClient:
    """Stands in for `PipesK8sClient` (no cluster here): records what `run` was given, stops."""

    calls: list = []

    def run(self, *, context, **kwargs):
        CapturingK8sClient.calls.append(kwargs)
        raise RuntimeError("no cluster here: pod captured")


def test_k8s_launcher_builds_a_gpu_pod_for_the_trainer(instance, bucket, monkeypatch):
    from dagster_k8s.pipes import build_pod_body

    from mediafm_assets import local_runner as lr
    from mediafm_assets.pretraining import k8s
    from mediafm_assets.resources import TrainerLauncherResource

    monkeypatch.setattr(k8s, "PipesK8sClient", CapturingK8sClient)
    root = f"s3://{bucket}/root"
    write_inputs(root)
    trainer = TrainerLauncherResource(mode="k8s", nproc_per_node=4, image="registry/mediafm:cuda")
    defs = definitions(root, trainer=trainer)
    CapturingK8sClient.calls.clear()
    run = lr.materialize_unpartitioned(defs, instance, "encoder_checkpoint", TRAIN)
    assert not run.success and "no cluster here" in run.error
    (kwargs,) = CapturingK8sClient.calls

    pod = build_pod_body(
        pod_name="dagster-encoder-checkpoint",
        image=kwargs["image"],
        command=kwargs["command"],
        env_vars=kwargs["env"],
        base_pod_meta=kwargs["base_pod_meta"],
        base_pod_spec=kwargs["base_pod_spec"],
    )
    (container,) = pod.spec.containers
    assert container.image == "registry/mediafm:cuda"
    assert container.command[:3] == ["python", "-m", "torch.distributed.run"]
    assert "--nproc-per-node=4" in container.command
    assert container.resources.limits["nvidia.com/gpu"] == "4"
    assert pod.spec.node_selector == {"mediafm/pool": "gpu"}
    assert pod.spec.tolerations[0].key == "nvidia.com/gpu"
    assert pod.spec.restart_policy == "Never"
    assert container.env_from[0].secret_ref.name == "mediafm-env"  # settings, not inlined
    spec = json.loads({e.name: e.value for e in container.env}["MEDIAFM_TRAIN_SPEC"])
    assert spec["fused"] == f"s3://{bucket}/root/artefacts/fused_shots"  # a path, not a copy
    assert spec["out_dir"].startswith(f"s3://{bucket}/root/checkpoints/run-")
    assert spec["train"]["steps"] == 4
    assert not any(e.name.startswith("AWS_SECRET") for e in container.env)
    assert pod.metadata.labels["mediafm/job"] == "pretrain"


def test_k8s_launcher_refuses_a_local_storage_root():
    from mediafm_assets.pretraining.k8s import k8s_run_kwargs
    from mediafm_assets.resources import TrainerLauncherResource
    from mediafm_core.errors import InputError

    trainer = TrainerLauncherResource(mode="k8s", nproc_per_node=1, image="img")
    with pytest.raises(InputError, match="needs an s3:// storage root"):
        k8s_run_kwargs(trainer, {"out_dir": "/data/checkpoints/run-1", "fused": "/x"})
    ok = k8s_run_kwargs(trainer, {"out_dir": "s3://b/r/checkpoints/run-1", "fused": "s3://b/x"})
    assert ok["command"] == ["python", "-m", "mediafm_assets.pretraining.pipes_trainer"]
