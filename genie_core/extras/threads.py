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


def busy_cores(sample_s: float = 0.2, ours: tuple[int, ...] = ()) -> float:
    """How many of this process's cores other work keeps busy, sampled over ``sample_s``; 0 where unknown.

    ``ours``: processes whose CPU time is not other work (a pipeline's warm interpreter, importing while the first
    stage launches, is done by the time that stage computes).
    """
    allowed = _allowed()
    before, own_before = _cpu_times(allowed), _process_jiffies(ours)
    if before is None:
        return 0.0
    time.sleep(sample_s)
    after, own_after = _cpu_times(allowed), _process_jiffies(ours)
    if after is None:
        return 0.0
    busy, spans = 0.0, []
    for core, (busy_before, total_before) in before.items():
        busy_after, total_after = after.get(core, (busy_before, total_before))
        if total_after > total_before:
            busy += (busy_after - busy_before) / (total_after - total_before)
            spans.append(total_after - total_before)
    if spans and own_after > own_before:
        busy -= (own_after - own_before) / (sum(spans) / len(spans))
    return max(busy, 0.0)


def _process_jiffies(pids: tuple[int, ...]) -> float:
    """User + system CPU time of ``pids`` (all their threads) in jiffies; gone or unreadable ones count 0."""
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += float(fields[11]) + float(fields[12])
        except (OSError, ValueError, IndexError):
            continue
    return total


def threads_per_process(num_processes: int = 1) -> tuple[int, str]:
    """Threads for each of ``num_processes`` ranks, and why in words; an ``OMP_NUM_THREADS`` the user set wins."""
    given = os.environ.get("OMP_NUM_THREADS", "").strip()
    if given.isdigit() and int(given) > 0:
        return int(given), f"OMP_NUM_THREADS={given} from the environment"
    from genie_core.extras.warm import serving_pid

    cores = usable_cores()
    warm = serving_pid()
    busy = min(busy_cores(ours=(warm,) if warm else ()), cores - 1)
    free = max(1, round(cores - busy))
    threads = max(1, free // max(1, num_processes))
    ranks = f"{num_processes} process{'es' if num_processes > 1 else ''}"
    return threads, f"{cores} cores, {busy:.1f} busy with other work, {ranks}; set OMP_NUM_THREADS to choose"


class ThreadBudget:
    """Threads for a long-lived process (API server, chat, the board's chat), chosen again before each batch.

    Such a process outlives the training runs started beside it, and torch's default of one thread per core would
    fight them. A daemon thread measures every ``window_s`` how many cores other processes kept busy (this
    process's own CPU time is subtracted, so its own decoding does not make it shrink); ``apply`` sets torch's
    threads to the rest. It must run on the thread that then does the work: OpenMP keeps the count per thread.
    ``OMP_NUM_THREADS`` set by the user wins.
    """

    def __init__(self, name: str, window_s: float = 2.0):
        given = os.environ.get("OMP_NUM_THREADS", "").strip()
        self.name = name
        self.fixed = int(given) if given.isdigit() and int(given) > 0 else None
        self.cores = usable_cores()
        self.others = 0.0
        self.threads: int | None = None
        self._window_s = window_s
        self._stop = None
        if self.fixed is None and _cpu_times(_allowed()) is not None:
            import threading

            self._stop = threading.Event()
            threading.Thread(target=self._measure, name=f"{name}-cpu-sampler", daemon=True).start()

    def _measure(self) -> None:
        allowed = _allowed()
        before, own_before, wall_before = _cpu_times(allowed), time.process_time(), time.monotonic()
        while not self._stop.wait(self._window_s):
            after, own_after, wall_after = _cpu_times(allowed), time.process_time(), time.monotonic()
            if before and after:
                busy = sum(
                    (after[c][0] - b[0]) / (after[c][1] - b[1])
                    for c, b in before.items()
                    if c in after and after[c][1] > b[1]
                )
                own = (own_after - own_before) / max(wall_after - wall_before, 1e-6)
                self.others = min(max(busy - own, 0.0), self.cores - 1)
            before, own_before, wall_before = after, own_after, wall_after

    def choose(self) -> int:
        if self.fixed is not None:
            return self.fixed
        return max(1, min(self.cores, round(self.cores - self.others)))

    def apply(self) -> int:
        """Set this thread's torch threads to what is free now; logs when the number changes."""
        import torch

        threads = self.choose()
        if threads != self.threads:
            torch.set_num_threads(threads)
            why = (
                f"OMP_NUM_THREADS={self.fixed} from the environment"
                if self.fixed is not None
                else f"{self.cores} cores, {self.others:.1f} busy with other work; set OMP_NUM_THREADS to choose"
            )
            logger.info("CPU threads for %s: %d (%s)", self.name, threads, why)
            self.threads = threads
        return threads

    def close(self) -> None:
        if self._stop is not None:
            self._stop.set()
