"""Threads per training child come from the cores other work leaves free, and the user's OMP_NUM_THREADS wins."""

from __future__ import annotations

import subprocess
import sys

from genie_core.extras import threads


def test_threads_split_the_free_cores(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "usable_cores", lambda: 8)
    monkeypatch.setattr(threads, "busy_cores", lambda **kw: 0.2)
    assert threads.threads_per_process(1)[0] == 8
    assert threads.threads_per_process(2)[0] == 4
    monkeypatch.setattr(threads, "busy_cores", lambda **kw: 5.6)  # a board and an API server hold most cores
    count, reason = threads.threads_per_process(1)
    assert count == 2 and "5.6 busy" in reason
    monkeypatch.setattr(threads, "busy_cores", lambda **kw: 8.0)
    assert threads.threads_per_process(3)[0] == 1  # never zero
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads.threads_per_process(1) == (3, "OMP_NUM_THREADS=3 from the environment")


def test_busy_cores_sees_a_spinning_process():
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        assert threads.busy_cores(0.5) >= 0.7
        # a pipeline's own warm interpreter, importing while a stage launches, is not other work
        assert threads.busy_cores(0.5, ours=(spinner.pid,)) <= 0.3
    finally:
        spinner.kill()
        spinner.wait()


def test_a_server_takes_the_cores_others_leave_and_not_less_for_its_own_work(monkeypatch):
    import time

    import torch

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    budget = threads.ThreadBudget("test", window_s=0.25)
    try:
        end = time.monotonic() + 0.8
        while time.monotonic() < end:  # this process's own work is not "other work"
            pass
        assert budget.others < 0.5
        spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            time.sleep(0.9)
            assert budget.others >= 0.6
            chosen = budget.apply()
            assert chosen == torch.get_num_threads() and (chosen < budget.cores or budget.cores == 1)
        finally:
            spinner.kill()
            spinner.wait()
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert threads.ThreadBudget("fixed").choose() == 1
    finally:
        budget.close()
        torch.set_num_threads(before)
