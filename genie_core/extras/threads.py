"""How many CPU threads a torch process should use: the cores that are actually free, not every core.

torch starts one OpenMP thread per core in every process. When a board, an API server and a training child run at
once, each spins that many threads on the same cores and they spend their time waiting for each other (a 13x slower
evaluation was seen that way). A child therefore gets the cores left idle by other work, split over its ranks.
"""

from __future__ import annotations

import os
import time

from genie_core.extras.logging import get_logger

logger = get_logger(__name__)


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, which containers and taskset narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _allowed() -> set[int] | None:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def _cpu_times(allowed: set[int] | None) -> dict[int, tuple[float, float]] | None:
    """(busy, total) jiffies per core this process may use, from /proc/stat; None where there is no /proc."""
    times: dict[int, tuple[float, float]] = {}
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            for line in fh:
                name, *values = line.split()
                if not name.startswith("cpu") or name == "cpu":
                    continue
                core = int(name[3:])
                if allowed is not None and core not in allowed:
                    continue
                fields = [float(v) for v in values]
                idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
                times[core] = (sum(fields) - idle, sum(fields))
    except (OSError, ValueError):
        return None
    return times or None


def busy_cores(sample_s: float = 0.2) -> float:
    """How many of this process's cores other work keeps busy, sampled over ``sample_s``; 0 where unknown."""
    allowed = _allowed()
    before = _cpu_times(allowed)
    if before is None:
        return 0.0
    time.sleep(sample_s)
    after = _cpu_times(allowed)
    if after is None:
        return 0.0
    busy = 0.0
    for core, (busy_before, total_before) in before.items():
        busy_after, total_after = after.get(core, (busy_before, total_before))
        if total_after > total_before:
            busy += (busy_after - busy_before) / (total_after - total_before)
    return busy


def threads_per_process(num_processes: int = 1) -> tuple[int, str]:
    """Threads for each of ``num_processes`` ranks, and why in words; an ``OMP_NUM_THREADS`` the user set wins."""
    given = os.environ.get("OMP_NUM_THREADS", "").strip()
    if given.isdigit() and int(given) > 0:
        return int(given), f"OMP_NUM_THREADS={given} from the environment"
    cores = usable_cores()
    busy = min(busy_cores(), cores - 1)
    free = max(1, round(cores - busy))
    threads = max(1, free // max(1, num_processes))
    ranks = f"{num_processes} process{'es' if num_processes > 1 else ''}"
    return threads, f"{cores} cores, {busy:.1f} busy with other work, {ranks}; set OMP_NUM_THREADS to choose"
