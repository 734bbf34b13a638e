"""Fixtures for the code-location tests: a real Dagster instance in a temp DAGSTER_HOME (with our
dagster.yaml) and tiny synthetic landing-zone titles written with PyAV."""

import json
import shutil
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
warnings.filterwarnings("ignore", message=".*is currently in beta.*")
warnings.filterwarnings("ignore", message=".*varying BackfillPolicies.*")


@pytest.fixture
def instance(tmp_path, monkeypatch):
    """A persistent (SQLite) DagsterInstance configured by the repo's dagster.yaml."""
    from dagster import DagsterInstance

    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with DagsterInstance.get() as inst:
        yield inst


def write_ready_marker(title_dir: Path, name: str = "A title") -> None:
    """metadata.json, the ready marker (written last by a real upload)."""
    (title_dir / "metadata.json").write_text(json.dumps({"name": name, "genres": ["Drama"]}))


def write_tiny_titles(landing: Path, n: int, seconds: float = 6.0, seed: int = 0) -> list[str]:
    """n synthetic titles (real MP4 + subtitles + metadata + clip labels); returns their ids."""
    from mediafm_core.synthetic.media import SynthMediaConfig, write_synthetic_titles

    cfg = SynthMediaConfig(n_titles=n, seconds=seconds, seed=seed, speech="bursts")
    return [p.name for p in write_synthetic_titles(landing, cfg)]


def write_corrupt_title(landing: Path, title_id: str) -> None:
    """A ready title whose video is not a media file at all."""
    d = landing / title_id
    d.mkdir(parents=True)
    (d / "video.mp4").write_bytes(b"\x00not an mp4 file" * 64)
    write_ready_marker(d, "Corrupt")
