"""The automation condition of the serving assets (issue 18).

Dagster's `AutomationCondition.eager()` re-runs a partition whenever a dependency is newly
materialised, and does not wait for the dependency's blocking checks. Here:
1. a dependency counts as changed only when its DATA VERSION changed: `encoder_checkpoint`
   publishes its `model_version` (a hash of the weights) as its data version and every per-title
   asset has a code version, so a retrained but identical checkpoint, or a re-run that produced
   the same data, re-embeds nothing;
2. a partition waits until every upstream blocking check passed for it
   (`all_deps_blocking_checks_passed`; per-title checks, so one bad title holds back only itself).
"""

from dagster import AutomationCondition

AC = AutomationCondition


def any_deps_changed() -> AutomationCondition:
    """A dependency was newly materialised with another data version (outside a run that also
    targets this asset), or will be requested on this tick."""
    changed = AC.newly_updated() & AC.data_version_changed() & ~AC.executed_with_root_target()
    return AC.any_deps_match(
        changed.with_label("newly_changed_without_root") | AC.will_be_requested()
    ).with_label("any_deps_changed")


def eager_after_checks() -> AutomationCondition:
    """`eager()` with data-version changes instead of any update, after upstream checks pass."""
    return (
        AC.in_latest_time_window()
        & (AC.newly_missing() | any_deps_changed()).since_last_handled()
        & ~AC.any_deps_missing()
        & ~AC.any_deps_in_progress()
        & ~AC.in_progress()
        & AC.all_deps_blocking_checks_passed()
    ).with_label("eager_after_checks")


def on_code_change() -> AutomationCondition:
    """The asset's code version changed (detector rules, encoder profile or weights, fusion,
    representation: mediafm_core/versions.py): re-run the partitions made with the old one.
    `code_version_changed` is evaluated first, so its cursor (the last version seen) is kept."""
    return (
        AC.code_version_changed() & ~AC.missing() & ~AC.in_progress() & ~AC.any_deps_in_progress()
    ).with_label("code_version_changed")


def recompute() -> AutomationCondition:
    """Per-title assets below the encoders: after a changed input or code version."""
    return (eager_after_checks() | on_code_change()).with_label("recompute")
