"""Linear probes on frozen clip features for the seed's five downstream tasks."""

from __future__ import annotations

from mediafm_core.probes.linear import ProbeResult, run_probe
from mediafm_core.probes.tasks import TASKS, Clips, clip_features, clips_from_columns, read_clips

__all__ = [
    "TASKS",
    "Clips",
    "ProbeResult",
    "clip_features",
    "clips_from_columns",
    "read_clips",
    "run_probe",
]
