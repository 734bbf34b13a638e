"""Helpers of the code-location tests: tiny synthetic landing-zone titles written with PyAV. The
`instance` fixture (a real Dagster instance in a temp DAGSTER_HOME) is in tests/conftest.py."""

import json
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", message=".*is currently in beta.*")


def write_ready_marker(title_dir: Path, name: str = "A title") -> None:
    """metadata.json, the ready marker (written last by a real upload)."""
    (title_dir / "metadata.json").write_text(json.dumps({"name": name, "genres": ["Drama"]}))


def write_tiny_titles(landing: Path, n: int, seconds: float = 6.0, seed: int = 0) -> list[str]:
    """n synthetic titles (real MP4 + subtitles + metadata + clip labels); returns their ids."""
    from mediafm_core.synthetic.media import SynthMediaConfig, write_synthetic_titles

    cfg = SynthMediaConfig(n_titles=n, seconds=seconds, seed=seed, speech="bursts")
    return [p.name for p in write_synthetic_titles(landing, cfg)]


def retirement_tick(defs, instance, cursor=None):
    """Tick `title_retirement_sensor` and execute the `retirement` run it requests, as the
    daemon would: (tick, [run outcomes])."""
    from mediafm_assets import local_runner as lr

    tick = lr.tick_sensor(defs, instance, cursor=cursor, name="title_retirement_sensor")
    runs = [
        lr.execute_request(defs, instance, r, job="retirement", run_config=r.run_config)
        for r in tick.run_requests
    ]
    return tick, runs


def write_corrupt_title(landing: Path, title_id: str) -> None:
    """A ready title whose video is not a media file at all."""
    d = landing / title_id
    d.mkdir(parents=True)
    (d / "video.mp4").write_bytes(b"\x00not an mp4 file" * 64)
    write_ready_marker(d, "Corrupt")
