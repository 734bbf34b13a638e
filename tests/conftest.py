"""Shared test settings: one thread per process (tests run under xdist with 2 workers on 2 cores)
and no model hub access. Also the Dagster instance of the in-process graph tests: a real
(SQLite) instance in a temp DAGSTER_HOME holding the repo's dagster.yaml."""

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
# Graph, sensor and infra tests build their resources from the environment: keep them on the
# tiny random-init test profile (the pretrained default is tested in test_pretrained_encoders.py).
os.environ.setdefault("MEDIAFM_ENCODER_PROFILE", "test-tiny")

ROOT = Path(__file__).resolve().parents[1]


def make_dagster_home(base: Path, config: Path = ROOT / "dagster.yaml") -> Path:
    """`base`/dagster_home holding a copy of `config` (an instance file); returns the folder."""
    home = base / "dagster_home"
    home.mkdir()
    shutil.copy(config, home / "dagster.yaml")
    return home


@pytest.fixture
def instance(tmp_path, monkeypatch):
    """A persistent (SQLite) DagsterInstance configured by the repo's dagster.yaml."""
    from dagster import DagsterInstance

    monkeypatch.setenv("DAGSTER_HOME", str(make_dagster_home(tmp_path)))
    with DagsterInstance.get() as inst:
        yield inst
