"""What can be validated offline about infra/: the instance configs against Dagster's own config
schema (and each configured class's schema), the Helm values against the chart's key structure,
the container image's install step (a pip dry-run that must resolve offline to exactly the tested
environment) and imports, and .env.example against every setting the code and configs read."""

import re
import shutil
import subprocess
import sys

import pytest
import yaml

from tests.infra.conftest import ROOT

INFRA = ROOT / "infra"
INSTANCE_FILES = ["infra/dagster.yaml", "infra/ecs/dagster.yaml", "dagster.yaml"]
# Read by the code but set by launchers/test harnesses, not by a deployment.
INTERNAL_ENV = {
    "RANK",
    "WORLD_SIZE",
    "LOCAL_RANK",
    "OMP_NUM_THREADS",
    "MEDIAFM_DEMO_DIR",
    "MEDIAFM_TRAIN_SPEC",
}
# Listed in .env.example for libraries that read them themselves.
LIBRARY_ENV = {
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
    "HF_HUB_OFFLINE",
    "DAGSTER_HOME",
}


def env_example() -> dict[str, str]:
    out = {}
    for line in (INFRA / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def config_env_vars(path) -> set[str]:
    return set(re.findall(r"\{env:\s*([A-Z0-9_]+)\}", path.read_text()))


def code_env_vars() -> set[str]:
    # resources.setting("X", ...): an EnvVar when set (issue 18)
    pattern = re.compile(
        r"(?:environ(?:\.get)?[\[(]|getenv\(|EnvVar\(|setting\()\s*\"([A-Z0-9_]+)\""
    )
    names = set()
    for package in ("mediafm_core", "mediafm_assets"):
        for path in (ROOT / package).rglob("*.py"):
            names |= set(pattern.findall(path.read_text()))
    return names


@pytest.mark.parametrize("name", INSTANCE_FILES)
def test_instance_config_passes_dagsters_schema(name, tmp_path, monkeypatch):
    from dagster._config import validate_config
    from dagster._core.instance.config import dagster_instance_config
    from dagster._serdes.config_class import class_from_code_pointer

    for key, value in env_example().items():  # what a deployment sets
        monkeypatch.setenv(key, value or "x")
    shutil.copy(ROOT / name, tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))  # raises DagsterInvalidConfigError
    checked = []
    for section in ("compute_logs", "run_launcher", "run_coordinator"):
        if section in config:
            entry = config[section]
            cls = class_from_code_pointer(entry["module"], entry["class"])
            result = validate_config(cls.config_type(), entry.get("config") or {})
            assert result.success, (section, [e.message for e in result.errors])
            checked.append(cls.__name__)
    assert "QueuedRunCoordinator" in checked
    if name.startswith("infra/"):
        assert "postgres" in config["storage"]
        assert config["storage"]["postgres"]["postgres_db"]["scheme"] == "postgresql+psycopg2"
        assert "S3ComputeLogManager" in checked
        assert config["run_retries"]["enabled"]
    if name == "infra/ecs/dagster.yaml":
        assert "EcsRunLauncher" in checked


def test_env_example_lists_every_setting_and_nothing_stale():
    listed = set(env_example())
    read = code_env_vars() - INTERNAL_ENV
    for path in INFRA.rglob("*.yaml"):
        read |= config_env_vars(path)
    assert read - listed == set(), "read by code/config but missing from infra/.env.example"
    stale = listed - read - LIBRARY_ENV
    assert stale == set(), "listed in infra/.env.example but read by nothing"


# Key paths of the dagster/dagster chart's values schema (helm/dagster/schema in dagster-io/
# dagster: subschema/{global_,postgresql,run_launcher,daemon,concurrency,compute_log_manager,
# webserver,telemetry}.py and dagster_user_deployments/subschema/user_deployments.py). A key
# mapped to None holds a free-form Kubernetes object or map.
K8S = None
CHART = {
    "global": {
        "serviceAccountName": K8S,
        "postgresqlSecretName": K8S,
        "dagsterHome": K8S,
        "celeryConfigSecretName": K8S,
    },
    "dagster-user-deployments": {
        "enabled": K8S,
        "enableSubchart": K8S,
        "imagePullSecrets": K8S,
        "deployments": [
            {
                "name": K8S,
                "image": {"repository": K8S, "tag": K8S, "pullPolicy": K8S},
                "dagsterApiGrpcArgs": K8S,
                "codeServerArgs": K8S,
                "includeConfigInLaunchedRuns": {"enabled": K8S},
                "port": K8S,
                "env": K8S,
                "envConfigMaps": K8S,
                "envSecrets": K8S,
                "annotations": K8S,
                "nodeSelector": K8S,
                "affinity": K8S,
                "tolerations": K8S,
                "podSecurityContext": K8S,
                "securityContext": K8S,
                "resources": K8S,
                "livenessProbe": K8S,
                "readinessProbe": K8S,
                "startupProbe": K8S,
                "labels": K8S,
                "volumeMounts": K8S,
                "volumes": K8S,
                "schedulerName": K8S,
            }
        ],
    },
    "postgresql": {
        "image": K8S,
        "enabled": K8S,
        "postgresqlHost": K8S,
        "postgresqlUsername": K8S,
        "postgresqlPassword": K8S,
        "postgresqlDatabase": K8S,
        "postgresqlParams": K8S,
        "postgresqlScheme": K8S,
        "service": {"port": K8S},
    },
    "generatePostgresqlPasswordSecret": K8S,
    "runLauncher": {
        "type": K8S,
        "config": {
            "k8sRunLauncher": {
                "image": K8S,
                "imagePullPolicy": K8S,
                "jobNamespace": K8S,
                "loadInclusterConfig": K8S,
                "kubeconfigFile": K8S,
                "envConfigMaps": K8S,
                "envSecrets": K8S,
                "envVars": K8S,
                "volumeMounts": K8S,
                "volumes": K8S,
                "labels": K8S,
                "failPodOnRunFailure": K8S,
                "resources": K8S,
                "schedulerName": K8S,
                "securityContext": K8S,
                "runK8sConfig": {
                    "containerConfig": K8S,
                    "podSpecConfig": K8S,
                    "podTemplateSpecMetadata": K8S,
                    "jobSpecConfig": K8S,
                    "jobMetadata": K8S,
                },
            }
        },
    },
    "concurrency": {
        "enabled": K8S,
        "pools": {"defaultLimit": K8S, "granularity": K8S, "opGranularityRunBuffer": K8S},
        "runs": {
            "maxConcurrentRuns": K8S,
            "tagConcurrencyLimits": [{"key": K8S, "value": K8S, "limit": K8S}],
        },
    },
    "dagsterDaemon": {
        "enabled": K8S,
        "image": K8S,
        "heartbeatTolerance": K8S,
        "env": K8S,
        "envConfigMaps": K8S,
        "envSecrets": K8S,
        "resources": K8S,
        "nodeSelector": K8S,
        "tolerations": K8S,
        "annotations": K8S,
        "runMonitoring": K8S,
        "runRetries": K8S,
        "sensors": {"useThreads": K8S, "numWorkers": K8S, "numSubmitWorkers": K8S},
        "schedules": {"useThreads": K8S, "numWorkers": K8S, "numSubmitWorkers": K8S},
        "runCoordinator": {
            "enabled": K8S,
            "type": K8S,
            "config": {
                "queuedRunCoordinator": {
                    "maxConcurrentRuns": K8S,
                    "tagConcurrencyLimits": K8S,
                    "dequeueIntervalSeconds": K8S,
                    "dequeueNumWorkers": K8S,
                    "dequeueUseThreads": K8S,
                }
            },
        },
    },
    "computeLogManager": {
        "type": K8S,
        "config": {
            "s3ComputeLogManager": {
                "bucket": K8S,
                "localDir": K8S,
                "prefix": K8S,
                "useSsl": K8S,
                "verify": K8S,
                "verifyCertPath": K8S,
                "endpointUrl": K8S,
                "skipEmptyFiles": K8S,
                "uploadInterval": K8S,
                "uploadExtraArgs": K8S,
                "showUrlOnly": K8S,
                "region": K8S,
            }
        },
    },
    "dagsterWebserver": {
        "replicaCount": K8S,
        "image": K8S,
        "service": K8S,
        "env": K8S,
        "envSecrets": K8S,
        "resources": K8S,
        "nodeSelector": K8S,
    },
    "telemetry": {"enabled": K8S},
}


def unknown_keys(values, schema, path="") -> list[str]:
    """Key paths of `values` the chart schema does not have."""
    if schema is K8S:
        return []
    if isinstance(schema, list):
        return [p for i, v in enumerate(values) for p in unknown_keys(v, schema[0], f"{path}[{i}]")]
    bad = []
    for key, value in values.items():
        if key not in schema:
            bad.append(f"{path}.{key}".lstrip("."))
        else:
            bad += unknown_keys(value, schema[key], f"{path}.{key}")
    return bad


def test_helm_values_use_only_chart_keys_and_deploy_mediafm():
    values = yaml.safe_load((INFRA / "helm" / "values.yaml").read_text())
    assert unknown_keys(values, CHART) == []
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "mediafm_assets.definitions"]
    assert {"name": "mediafm-env"} in deployment["envSecrets"]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["postgresql"]["postgresqlScheme"] == "postgresql+psycopg2"
    assert "postgresqlPassword" not in values["postgresql"]  # from the secret only
    limits = values["concurrency"]["runs"]["tagConcurrencyLimits"]
    assert {"key": "mediafm/job", "value": "pretrain", "limit": 1} in limits
    assert values["dagsterDaemon"]["runRetries"]["enabled"] is True
    assert values["computeLogManager"]["type"] == "S3ComputeLogManager"


def test_every_yaml_in_infra_parses():
    files = sorted(INFRA.rglob("*.yaml"))
    assert len(files) >= 3
    for path in files:
        assert isinstance(yaml.safe_load(path.read_text()), dict), path


def test_dockerfile_builds_cpu_and_cuda_variants_of_the_code_location():
    text = (INFRA / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", text, flags=re.M)
    names = {alias for _, alias in stages if alias}
    assert {"base-cpu", "base-cuda"} <= names
    assert stages[-1][0] == "base-${VARIANT}"
    assert "pip install --no-cache-dir -c constraints.txt ." in text
    for src in re.findall(r"^COPY\s+(.+)\s+\S+$", text, flags=re.M):
        for part in src.split():
            assert (ROOT / part).exists(), f"COPY source {part} missing"
    assert "-m mediafm_assets.definitions" in text
    assert text.index("infra/preflight.py &&") < text.index("dagster code-server start")


def test_image_install_step_resolves_offline_to_the_tested_environment(tmp_path):
    """The Dockerfile's `pip install -c constraints.txt .` as a dry run with no index: it can
    only succeed if every pinned dependency is already installed at its pinned version here, so
    the image gets exactly the environment the tests ran in; only mediafm itself is new."""
    import json

    report = tmp_path / "report.json"
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--dry-run",
        "--no-index",
        "--no-build-isolation",
        "--quiet",
        "--report",
        str(report),
        "-c",
        "constraints.txt",
        ".",
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    installs = [i["metadata"]["name"] for i in json.loads(report.read_text())["install"]]
    assert installs == ["mediafm"]


def test_pyproject_pins_match_constraints():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if "==" in line:
            name, version = line.split("==")
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    deps = project["dependencies"] + project["optional-dependencies"]["dev"]
    for dep in deps:
        name, version = re.match(r"([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==(\S+)", dep).groups()
        assert pins.get(name.lower().replace("_", "-")) == version, dep
    for needed in ("dagster-postgres", "dagster-aws", "dagster-k8s", "psycopg2-binary", "moto"):
        assert needed in pins


def test_the_image_entry_module_imports_in_a_fresh_interpreter():
    """What the Dockerfile's last RUN does (`python -c "import mediafm_assets.definitions"`)."""
    code = "import mediafm_assets.definitions as d; print(len(d.defs.resolve_all_asset_keys()))"
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert int(proc.stdout.strip().splitlines()[-1]) >= 11


def test_gpu_runs_ask_the_launchers_for_a_gpu_and_training_is_one_at_a_time():
    """The run tags the K8s and ECS launchers read, parsed by dagster-k8s itself."""
    import json

    from dagster_k8s.job import get_user_defined_k8s_config

    from mediafm_assets.definitions import defs
    from mediafm_assets.jobs import COLD_START_TAGS

    for tags in (COLD_START_TAGS, defs.resolve_job_def("retrain_encoder").tags):
        k8s = get_user_defined_k8s_config(tags)
        assert k8s.container_config["resources"]["limits"]["nvidia.com/gpu"] == "1"
        assert k8s.pod_spec_config["node_selector"] == {"mediafm/pool": "gpu"}
        ecs = json.loads(tags["ecs/run_task_kwargs"])
        assert ecs["capacityProviderStrategy"][0]["capacityProvider"] == "mediafm-gpu"
    retrain = defs.resolve_job_def("retrain_encoder").tags
    limits = yaml.safe_load((INFRA / "dagster.yaml").read_text())["concurrency"]["runs"]
    assert {"key": "mediafm/job", "value": retrain["mediafm/job"], "limit": 1} in limits[
        "tag_concurrency_limits"
    ]
    reembed = defs.get_sensor_def("reembed_on_new_checkpoint")
    assert "dagster-k8s/config" in reembed.run_tags
