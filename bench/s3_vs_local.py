"""Overhead of the S3 storage path against the local one for one title's cold start.

The same title (a synthetic MP4 with subtitles) goes through the arrival sensor and its cold-start
run (titles -> shots -> unimodal embeddings -> fusion -> contextual + title embeddings in LanceDB)
twice per repeat: with the storage root and landing zone in a local folder, and on S3 —
moto's S3-compatible server on 127.0.0.1 (`ThreadedMotoServer`), i.e. real HTTP but no network
latency, so the S3 column shows the client-side cost (requests, (de)serialisation, the local copy
of the media) and is a lower bound for real S3 (add ~10-30 ms per request in-region).

Setup (not timed): per root, two short titles ingested and a small encoder trained, so a
checkpoint exists; encoders are loaded once in this process (warm worker); one more title per root
warms both paths up. Timed, local and S3 interleaved: the upload of the title to the landing zone,
the sensor tick that finds it, and each step of its run (Dagster's step stats). One thread for
torch/BLAS. Run it from the repo root (it imports this checkout).

    OMP_NUM_THREADS=1 .venv/bin/python bench/s3_vs_local.py                 # 1 x 60 s title
    OMP_NUM_THREADS=1 .venv/bin/python bench/s3_vs_local.py --seconds 120 --repeats 2
"""

import argparse
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout, not whatever is installed
TRAIN = {"ops": {"encoder_checkpoint": {"config": {"size": "small", "steps": 30, "device": "cpu"}}}}


class RequestCounter(logging.Handler):
    """Counts the S3 server's access-log lines: one per HTTP request it served."""

    count = 0

    def emit(self, record: logging.LogRecord) -> None:
        RequestCounter.count += 1


def start_s3() -> str:
    """moto's S3 server on loopback; the AWS_* environment points every client at it."""
    from moto.server import ThreadedMotoServer

    access_log = logging.getLogger("werkzeug")
    access_log.setLevel(logging.INFO)
    access_log.propagate = False  # counted, not printed
    access_log.addHandler(RequestCounter())
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench-secret",
        AWS_REGION="us-east-1",
    )
    return endpoint


def land(title_dir: Path, landing: str) -> None:
    """Copy a title folder into the landing zone, metadata.json last (as an upload would)."""
    from mediafm_core.storage.s3 import boto3_client, is_s3, split_uri

    files = sorted(p for p in title_dir.rglob("*") if p.is_file() and p.name != "metadata.json")
    files.append(title_dir / "metadata.json")
    if is_s3(landing):
        client = boto3_client()
        bucket, prefix = split_uri(landing)
        for p in files:
            key = f"{prefix}/{title_dir.name}/{p.relative_to(title_dir).as_posix()}"
            client.upload_file(str(p), bucket, key)
        return
    for p in files:
        dest = Path(landing) / title_dir.name / p.relative_to(title_dir)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(p, dest)


def prepare(root: str, work: Path, instance_home: Path):
    """Definitions + instance for a root, with two titles ingested and a checkpoint trained."""
    from dagster import DagsterInstance

    from mediafm_assets import local_runner as lr
    from mediafm_assets.definitions import build_definitions
    from mediafm_core.synthetic.media import SynthMediaConfig, write_synthetic_titles

    instance_home.mkdir(parents=True)
    shutil.copy(REPO / "dagster.yaml", instance_home)
    os.environ["DAGSTER_HOME"] = str(instance_home)
    os.environ["MEDIAFM_LANDING"] = f"{root}/landing"
    staging = work / f"setup-{instance_home.name}"
    for d in write_synthetic_titles(staging, SynthMediaConfig(n_titles=2, seconds=15, seed=1)):
        land(d, f"{root}/landing")
    defs = build_definitions(root=root)
    instance = DagsterInstance.get()
    for request in lr.tick_sensor(defs, instance).run_requests:
        assert lr.execute_request(defs, instance, request, quiet=True).success
    ckpt = lr.materialize_unpartitioned(defs, instance, "encoder_checkpoint", TRAIN, quiet=True)
    assert ckpt.success, ckpt.error
    return defs, instance


def measure(defs, instance, title_dir: Path, landing: str) -> dict[str, float]:
    """Seconds of: landing the title, the sensor tick, each step of its cold-start run."""
    from mediafm_assets import local_runner as lr

    t0 = time.perf_counter()
    land(title_dir, landing)
    t1 = time.perf_counter()
    tick = lr.tick_sensor(defs, instance)
    t2 = time.perf_counter()
    (request,) = tick.run_requests
    before = RequestCounter.count
    outcome = lr.execute_request(defs, instance, request, quiet=True)
    assert outcome.success, outcome.error
    return {
        "land (upload/copy)": t1 - t0,
        "sensor tick": t2 - t1,
        **outcome.step_seconds,
        "run total": outcome.seconds,
        "S3 requests in the run (count)": float(RequestCounter.count - before),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60.0, help="length of the measured title")
    ap.add_argument("--repeats", type=int, default=1, help="titles measured per root (median)")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("mediafm_core").setLevel(logging.ERROR)
    import torch

    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="mediafm-s3-bench-"))
    os.environ["MEDIAFM_CACHE"] = str(work / "cache")
    endpoint = start_s3()
    import boto3

    boto3.client("s3").create_bucket(Bucket="mediafm-bench")
    from mediafm_core.synthetic.media import SynthMediaConfig, write_synthetic_titles

    titles = write_synthetic_titles(
        work / "titles", SynthMediaConfig(n_titles=args.repeats + 1, seconds=args.seconds, seed=42)
    )
    roots = {"local": str(work / "storage"), "s3": "s3://mediafm-bench/storage"}
    setups = {name: prepare(root, work, work / f"home-{name}") for name, root in roots.items()}
    results: dict[str, list[dict]] = {name: [] for name in roots}
    for i, title in enumerate(titles):  # title 0 warms both paths up and is not counted
        for name, root in roots.items():  # interleaved: drift hits both columns alike
            defs, instance = setups[name]
            os.environ["DAGSTER_HOME"] = str(work / f"home-{name}")
            os.environ["MEDIAFM_LANDING"] = f"{root}/landing"
            timing = measure(defs, instance, title, f"{root}/landing")
            if i > 0:
                results[name].append(timing)
    rows = list(dict.fromkeys(k for r in results.values() for m in r for k in m))
    print(
        f"\nOne {args.seconds:.0f} s title, cold start (median of {args.repeats}); "
        f"S3 = moto server at {endpoint}; torch threads 1\n"
    )
    print("| stage | local s | S3 s | S3 - local s | S3 / local |")
    print("|---|---:|---:|---:|---:|")
    for key in rows:
        loc = statistics.median(m.get(key, 0.0) for m in results["local"])
        s3 = statistics.median(m.get(key, 0.0) for m in results["s3"])
        ratio = f"{s3 / loc:.2f}" if loc > 0 else "-"
        print(f"| {key} | {loc:.2f} | {s3:.2f} | {s3 - loc:+.2f} | {ratio} |")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
