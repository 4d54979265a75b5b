"""Thread oversubscription: torch processes sharing the cores, each with every core's worth of threads or its share.

Run: python bench/threads.py [--procs 2] [--tokens 24] [--batch 8]
Prints one JSON line. Each process loads SmolLM2-135M and decodes the same batch (greedy, fixed length); the script
times them alone, then ``--procs`` at once with torch's default thread count (one per core, in every process), then
at once with the cores split between them (what the training child now chooses from the free cores). The ratios are
against the lone run in the same script.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def decode(ns) -> None:
    """The child: decode once to warm up, then time one decode; print the seconds."""
    import torch

    if ns.threads:
        torch.set_num_threads(ns.threads)
    from transformers import AutoModelForCausalLM

    from genie_core.model import smollm2_dir

    model = AutoModelForCausalLM.from_pretrained(smollm2_dir()).eval()
    ids = torch.randint(100, 1000, (ns.batch, 32), generator=torch.Generator().manual_seed(0))
    kwargs = {"max_new_tokens": ns.tokens, "min_new_tokens": ns.tokens, "do_sample": False, "pad_token_id": 0}
    with torch.no_grad():
        model.generate(ids, **{**kwargs, "max_new_tokens": 2, "min_new_tokens": 2})
        print("ready", flush=True)
        sys.stdin.readline()  # start together
        start = time.perf_counter()
        model.generate(ids, **kwargs)
    print(json.dumps({"decode_s": time.perf_counter() - start}), flush=True)


def together(ns, count: int, threads: int) -> list[float]:
    """``count`` decoding processes started at the same moment; each one's seconds."""
    cmd = [sys.executable, __file__, "--child", "--threads", str(threads), "--tokens", str(ns.tokens)]
    cmd += ["--batch", str(ns.batch)]
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    procs = [
        subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env) for _ in range(count)
    ]
    for proc in procs:
        while proc.stdout.readline().strip() != "ready":
            pass
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    times = [json.loads(proc.stdout.readline())["decode_s"] for proc in procs]
    for proc in procs:
        proc.wait()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=24)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--child", action="store_true")
    ns = parser.parse_args()
    if ns.child:
        decode(ns)
        return
    cores = len(os.sched_getaffinity(0))
    alone = together(ns, 1, 0)[0]
    default = together(ns, ns.procs, 0)
    shared = together(ns, ns.procs, max(1, cores // ns.procs))
    print(
        json.dumps(
            {
                "bench": "threads",
                "cores": cores,
                "procs": ns.procs,
                "alone_s": round(alone, 2),
                "together_default_threads_s": [round(t, 2) for t in default],
                "together_split_threads_s": [round(t, 2) for t in shared],
                "slowdown_default": round(max(default) / alone, 2),
                "slowdown_split": round(max(shared) / alone, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
