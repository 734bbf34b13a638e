"""The code location loads, with the asset graph, partitions, checks, sensors and resources."""

import warnings

from dagster import (
    AssetKey,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    DynamicPartitionsDefinition,
)

warnings.filterwarnings("ignore")

ASSETS = {
    "titles",
    "shots",
    "video_embeddings",
    "audio_embeddings",
    "text_embeddings",
    "title_metadata_embedding",
    "fused_shots",
    "encoder_checkpoint",
    "contextual_embeddings",
    "title_embeddings",
    "linear_probes",
    "ann_index",
}
UNPARTITIONED = {"encoder_checkpoint", "linear_probes", "ann_index"}


def test_definitions_load_with_the_whole_lineage():
    from mediafm_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys == ASSETS
    for name in ASSETS - UNPARTITIONED:
        pd = graph.get(AssetKey(name)).partitions_def
        assert isinstance(pd, DynamicPartitionsDefinition) and pd.name == "titles", name
    for name in UNPARTITIONED:
        assert graph.get(AssetKey(name)).partitions_def is None
    parents = {k.to_user_string() for k in graph.get(AssetKey("contextual_embeddings")).parent_keys}
    assert parents == {
        "fused_shots",
        "title_metadata_embedding",
        "shots",
        "encoder_checkpoint",
        "video_embeddings",
    }  # video_embeddings: the shots' thumbnails (issue 13)


def test_every_asset_has_group_description_owner_and_kinds():
    from mediafm_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    groups = set()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.description, key
        assert node.owners == ["team:mediafm"], key
        assert any(t.startswith("dagster/kind/") for t in node.tags), key
        groups.add(node.group_name)
    assert groups == {"ingest", "embeddings", "pretraining", "serving", "evaluation"}


def test_blocking_checks_guard_vectors_before_lancedb():
    from mediafm_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    assert ("contextual_embeddings", "lancedb_rows_match") in checks
    assert ("fused_shots", "unit_norm") in checks
    assert ("video_embeddings", "rows_match_shots") in checks
    assert ("contextual_embeddings", "one_model_version") in checks
    for key in graph.asset_check_keys:
        assert graph.get_check_spec(key).blocking, key


def test_sensors_on_schedule_off_and_gpu_pool():
    from mediafm_assets.definitions import defs

    assert defs.get_sensor_def("title_arrival_sensor").default_status == DefaultSensorStatus.RUNNING
    assert defs.get_sensor_def("reembed_on_new_checkpoint").default_status == (
        DefaultSensorStatus.RUNNING
    )
    assert defs.get_sensor_def("ann_index_on_schedule").default_status == (
        DefaultSensorStatus.RUNNING
    )
    assert defs.get_schedule_def("weekly_retrain").default_status == DefaultScheduleStatus.STOPPED
    graph = defs.resolve_asset_graph()
    assert graph.get(AssetKey("encoder_checkpoint")).pools == {"gpu"}
    assert graph.get(AssetKey("contextual_embeddings")).automation_condition is not None


def test_resources_are_chosen_in_one_place(tmp_path, monkeypatch):
    from dagster import EnvVar

    from mediafm_assets.resources import build_resources

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    local = build_resources(root=str(tmp_path), deployment="local")
    assert local["storage"].root == str(tmp_path)
    assert local["lancedb"].uri == f"{tmp_path}/lancedb"
    assert local["text_encoder"].kind == "sentence-transformers"
    remote = build_resources(root="s3://bucket/prefix", deployment="openai")
    assert remote["lancedb"].uri == "s3://bucket/prefix/lancedb"
    assert remote["text_encoder"].kind == "openai"
    assert remote["text_encoder"].api_key == EnvVar("OPENAI_API_KEY")


def test_trainer_launch_command_uses_torchrun_for_several_processes():
    from mediafm_assets.pretraining.assets import trainer_command
    from mediafm_assets.resources import TrainerLauncherResource

    one = trainer_command(TrainerLauncherResource(nproc_per_node=1, python="py"))
    assert one == ["py", "-m", "mediafm_assets.pretraining.pipes_trainer"]
    two = trainer_command(TrainerLauncherResource(nproc_per_node=2, python="py"))
    assert two[:3] == ["py", "-m", "torch.distributed.run"]
    assert "--nproc-per-node=2" in two and two[-1] == "mediafm_assets.pretraining.pipes_trainer"


def test_loss_curve_renders_as_markdown():
    from mediafm_assets.pretraining.pipes_trainer import curve_markdown

    md = curve_markdown(
        [{"step": 10, "train_loss": 0.5}, {"step": 20, "train_loss": 0.25, "val_loss": 0.3}]
    )
    assert md.splitlines() == [
        "| step | train_loss | val_loss |",
        "|---:|---:|---:|",
        "| 10 | 0.5000 |  |",
        "| 20 | 0.2500 | 0.3000 |",
    ]


def test_steps_that_touch_storage_retry_with_backoff_and_retirement_is_a_job():
    """Issue 18: per-title assets, the index upkeep and the retirement op retry transient
    failures with exponential backoff; the retirement sensor targets the `retirement` job."""
    from dagster import Backoff

    from mediafm_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    for name in (ASSETS - UNPARTITIONED) | {"ann_index"}:
        policy = graph.get(AssetKey(name)).assets_def.op.retry_policy
        assert policy and policy.max_retries >= 2 and policy.backoff == Backoff.EXPONENTIAL, name
    job = defs.resolve_job_def("retirement")
    assert job.graph.node_named("retire_titles").definition.retry_policy.max_retries >= 2
    assert defs.get_sensor_def("title_retirement_sensor").job_name == "retirement"


def test_settings_are_read_when_a_run_starts_not_when_the_code_loads(tmp_path, monkeypatch):
    """Issue 18: a setting set in the environment is an EnvVar of its resource (its value is
    resolved at launch and the UI shows its name); an unset one takes the default."""
    from dagster import EnvVar

    from mediafm_assets.resources import build_resources

    monkeypatch.setenv("MEDIAFM_RETIRE_AFTER_S", "5")
    monkeypatch.setenv("MEDIAFM_TRAINER", "in_process")
    monkeypatch.delenv("MEDIAFM_LANDING_SETTLE_S", raising=False)
    res = build_resources(root=str(tmp_path))
    monkeypatch.setenv("MEDIAFM_RETIRE_AFTER_S", "9")  # changed after the code location loaded
    storage = res["storage"].process_config_and_initialize()
    assert storage.retire_after_s == 9 and storage.settle_s == 0
    assert res["trainer"].process_config_and_initialize().mode == "in_process"
    shown = res["storage"].get_resource_definition().config_schema.default_value  # UI config
    assert shown["retire_after_s"] == {"env": "MEDIAFM_RETIRE_AFTER_S"}
    assert EnvVar("MEDIAFM_TRAINER").get_value() == "in_process"
