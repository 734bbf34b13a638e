"""The per-title partitioning shared by every per-title asset, and how backfills batch titles.

The arrival sensor adds keys to `titles_partitions`. Model-heavy assets run up to
`TITLES_PER_RUN` titles per run (one model load for many titles); cheap validation steps
(`titles`, `shots`) run one title per run, so a corrupt title fails alone and early.
`per_title_asset` is `@asset` with these per-title settings filled in.
"""

import functools
import inspect

from dagster import (
    BackfillPolicy,
    Backoff,
    DynamicPartitionsDefinition,
    Failure,
    Jitter,
    RetryPolicy,
    asset,
)

titles_partitions = DynamicPartitionsDefinition(name="titles")

TITLES_PER_RUN = 8  # titles per backfill run for model-heavy assets
batched_backfill = BackfillPolicy.multi_run(max_partitions_per_run=TITLES_PER_RUN)
per_title_backfill = BackfillPolicy.multi_run(max_partitions_per_run=1)
GPU_POOL = "gpu"  # concurrency pool of GPU-bound steps (limit set in dagster.yaml)
OWNERS = ["team:mediafm"]
# Steps that touch S3, LanceDB or OpenAI: transient failures (a throttled bucket, a commit
# conflict, a 429) are retried 3 times after ~10, 20, 40 s. Bad data is not retried: those steps
# raise `Failure(allow_retries=False)` (vector_checks.fail_titles).
STORAGE_RETRY = RetryPolicy(
    max_retries=3, delay=10, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS
)
# Unpartitioned consumers of all titles (training, probes) skip titles whose steps failed.
ALLOW_MISSING = {"allow_missing_partitions": True}


def final_on_bad_input(fn):
    """`fn` (an asset or op body, plain or generator) with bad input made final: a
    `MediaFMError` (a corrupt title, a wrong width) fails the step at once with its one-line
    message, as `Failure(allow_retries=False)`, instead of being retried like a transient
    storage error."""
    from mediafm_core.errors import MediaFMError

    def final(exc):
        return Failure(description=str(exc), allow_retries=False)

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def steps(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except MediaFMError as exc:
                raise final(exc) from exc

        return steps

    @functools.wraps(fn)
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except MediaFMError as exc:
            raise final(exc) from exc

    return call


def per_title_asset(
    *,
    group_name: str,
    backfill_policy: BackfillPolicy = batched_backfill,
    retry_policy: RetryPolicy = STORAGE_RETRY,
    **kwargs,
):
    """`@asset` partitioned by title: `titles_partitions`, `backfill_policy` (batches of
    TITLES_PER_RUN unless given), `group_name`, `OWNERS` and `STORAGE_RETRY` (bad input is
    never retried: `final_on_bad_input`); other arguments go to `@asset`."""
    decorate = asset(
        partitions_def=titles_partitions,
        backfill_policy=backfill_policy,
        group_name=group_name,
        owners=OWNERS,
        retry_policy=retry_policy,
        **kwargs,
    )
    return lambda fn: decorate(final_on_bad_input(fn))
