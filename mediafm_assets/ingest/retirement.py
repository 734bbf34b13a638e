"""Retirement as a run (issue 18): `title_retirement_sensor` decides which titles to retire and
requests a `retirement` run (op `retire_titles`); the run does the storage work (LanceDB
deletes, artefact moves: `mediafm_core.storage.catalogue.retire_title`) and deletes the titles'
partitions. So the work has a run page, logs and retries, and evaluating the sensor (a UI
preview) changes nothing.
"""

from dagster import (
    Config,
    Failure,
    MetadataValue,
    Nothing,
    OpExecutionContext,
    Out,
    Output,
    job,
    op,
)
from pydantic import Field

from mediafm_assets.partitions import STORAGE_RETRY, titles_partitions
from mediafm_assets.resources import StorageResource

RETIRE_JOB = "retirement"


class RetireConfig(Config):
    """Which titles to retire, and why (recorded in their RETIRED.json)."""

    titles: dict[str, str] = Field(description="title id -> reason")


@op(retry_policy=STORAGE_RETRY, out=Out(Nothing), tags={"mediafm/kind": "retirement"})
def retire_titles(context: OpExecutionContext, config: RetireConfig, storage: StorageResource):
    """Retire each title (idempotent) and delete its `titles` partition. A title that fails is
    logged and the op fails after the others, naming it; the retry re-runs all (idempotent)."""
    from mediafm_core.storage.catalogue import retire_title

    done, failed = {}, {}
    known = set(context.instance.get_dynamic_partitions(titles_partitions.name))
    for tid, reason in sorted(config.titles.items()):
        try:
            done[tid] = retire_title(
                storage.root, tid, reason=reason, landing=storage.landing_root(), must_exist=False
            )
        except Exception as exc:  # one title's storage error does not block the others
            failed[tid] = str(exc)
            context.log.warning(f"retiring {tid} failed: {exc}")
            continue
        context.log.info(
            f"retired {tid} ({reason}): rows {done[tid]['rows']}, "
            f"artefacts {done[tid]['artefacts']}"
        )
        if tid in known:
            context.instance.delete_dynamic_partition(titles_partitions.name, tid)
    if failed:  # after the others were retired; STORAGE_RETRY runs the op again (idempotent)
        raise Failure(
            description=f"retiring {sorted(failed)} failed: {failed}",
            metadata={"retired": MetadataValue.json(sorted(done))},
        )
    yield Output(None, metadata={"retired": MetadataValue.json(done)})


@job(
    name=RETIRE_JOB,
    tags={"mediafm/kind": "retirement"},
    description="Retire titles: their rows leave LanceDB, their artefacts move to retired/, "
    "their partitions are deleted. Requested by title_retirement_sensor.",
)
def retire_titles_job():
    retire_titles()
