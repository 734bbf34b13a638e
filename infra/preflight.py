"""Start-up check of a MediaFM deployment: one clear line per problem instead of a stack trace in
the middle of a run, and nothing written anywhere.

    python infra/preflight.py        # exit 0: all reachable; exit 2: what is wrong, one line each

Checks, with the settings the deployment will really use:
- the Dagster instance config ($DAGSTER_HOME/dagster.yaml) passes Dagster's schema, with every
  `{env: ...}` value set;
- its Postgres storage answers (5 s connect timeout, no retries);
- the S3 storage root ($MEDIAFM_ROOT), landing zone ($MEDIAFM_LANDING) and compute-log bucket are
  reachable with the credentials given (mediafm_core.storage.s3.check_storage_root).
The container image runs it before the code server (infra/Dockerfile).
"""

from __future__ import annotations

import os
import sys

CONNECT_TIMEOUT_S = 5


def instance_config(home: str) -> dict:
    """$DAGSTER_HOME/dagster.yaml validated by Dagster, `{env: NAME}` values filled in."""
    from dagster._core.instance.config import dagster_instance_config

    config, _ = dagster_instance_config(home)
    return resolve_env(config)


def resolve_env(value):
    """Replace every `{env: NAME}` with the variable's value (KeyError names a missing one)."""
    if isinstance(value, dict):
        if set(value) == {"env"}:
            name = value["env"]
            if name not in os.environ:
                raise KeyError(f"environment variable {name} is not set")
            return os.environ[name]
        return {k: resolve_env(v) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_env(v) for v in value]
    return value


def check_postgres(config: dict) -> str | None:
    """None when the instance's Postgres answers (or it uses none), else the problem."""
    storage = (config.get("storage") or {}).get("postgres")
    if storage is None:
        return None
    import psycopg2
    from dagster_postgres.utils import pg_url_from_config

    url = pg_url_from_config(storage)
    _, rest = url.split("://", 1)
    where = rest.rsplit("@", 1)[-1]  # host:port/db, no credentials
    try:
        psycopg2.connect(f"postgresql://{rest}", connect_timeout=CONNECT_TIMEOUT_S).close()
    except psycopg2.OperationalError as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        return f"PostgreSQL at {where} is unreachable or refused the login: {reason}"
    return None


def storage_uris(config: dict) -> list[str]:
    """The S3 locations this deployment uses: root, landing zone, compute-log bucket."""
    uris = [os.environ.get("MEDIAFM_ROOT", ""), os.environ.get("MEDIAFM_LANDING", "")]
    logs = config.get("compute_logs") or {}
    if logs.get("class") == "S3ComputeLogManager":
        bucket = logs["config"]["bucket"]
        uris.append(f"s3://{bucket}/{logs['config'].get('prefix', '')}".rstrip("/"))
    return [u for u in dict.fromkeys(uris) if u]


def run_checks() -> list[str]:
    """Every problem found, one line each (empty: all good)."""
    from mediafm_core.errors import MediaFMError
    from mediafm_core.storage.s3 import check_storage_root

    home = os.environ.get("DAGSTER_HOME")
    if not home or not os.path.isdir(home):
        return [f"DAGSTER_HOME={home!r} is not a folder holding dagster.yaml"]
    try:
        config = instance_config(home)
    except Exception as exc:  # DagsterInvalidConfigError, missing env vars: say which
        message = " ".join(str(exc).strip("'\"").split())
        return [f"{home}/dagster.yaml: {message[:400]}"]
    problems = [p for p in [check_postgres(config)] if p]
    for uri in storage_uris(config):
        try:
            check_storage_root(uri)
        except MediaFMError as exc:
            problems.append(str(exc))
    return problems


def main() -> int:
    problems = run_checks()
    for problem in problems:
        sys.stderr.write(f"preflight: {problem}\n")
    if problems:
        return 2
    sys.stdout.write("preflight: instance config, Postgres and storage reachable\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
