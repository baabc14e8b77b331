"""What this machine offers a run: its cores (torch-free, so any verb's options can ask)."""

from __future__ import annotations

import os


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def default_workers() -> int:
    """Featurizing processes: none on one core (in-process is fastest there), else one per core up to 8."""
    cores = available_cores()
    return 0 if cores < 2 else min(cores, 8)
