"""Chat-engine serving speed on SmolLM2-135M: one request, 8 one after another, 8 at once (batched).

Run: python bench/serve.py [--max_new_tokens 64] [--requests 8] [--threads N]
Prints one JSON line: tokens/s and time to first token (TTFT) for each case, and how much faster the 8 concurrent
requests finish in total than the same 8 run sequentially (the batcher's gain; target >= 3x). Greedy decoding and
prompts that ask for long answers keep the work equal between the cases.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import threading
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from genie_core.chat.batcher import BatcherConfig  # noqa: E402
from genie_core.chat.engine import ChatEngine  # noqa: E402
from genie_core.extras.env import apply_quiet_env  # noqa: E402
from genie_core.hparams import get_args  # noqa: E402

PROMPTS = [
    "Explain in detail how photosynthesis works.",
    "Write a long story about a dragon who learns to cook.",
    "Describe the history of the Roman Empire.",
    "List many tips for learning a new language and explain each.",
    "Explain how a car engine works, step by step.",
    "Describe the water cycle in depth.",
    "Write a detailed guide to growing tomatoes at home.",
    "Explain the rules of chess to a beginner.",
]


def _timed(engine: ChatEngine, prompt: str, max_new_tokens: int) -> dict:
    """Run one request to the end; returns its TTFT, wall time and generated tokens."""
    start = time.perf_counter()
    handle = engine.submit([{"role": "user", "content": prompt}], max_new_tokens=max_new_tokens)
    first = None
    tokens = 0
    for event in handle:
        if first is None:
            first = time.perf_counter() - start
        if event.finish_reason is not None:
            tokens = event.completion_tokens
    return {"ttft_s": first, "wall_s": time.perf_counter() - start, "tokens": tokens}


def _concurrent(engine: ChatEngine, prompts: list[str], max_new_tokens: int) -> list[dict]:
    results: list[dict] = [{} for _ in prompts]

    def run(i: int) -> None:
        results[i] = _timed(engine, prompts[i], max_new_tokens)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def _summary(runs: list[dict], wall: float) -> dict:
    tokens = sum(r["tokens"] for r in runs)
    return {
        "requests": len(runs),
        "wall_s": round(wall, 3),
        "tokens": tokens,
        "tokens_per_s": round(tokens / wall, 1),
        "ttft_mean_s": round(sum(r["ttft_s"] for r in runs) / len(runs), 3),
        "ttft_max_s": round(max(r["ttft_s"] for r in runs), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--max_new_tokens", type=int, default=64)
    parser.add_argument("--requests", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ns = parser.parse_args()
    apply_quiet_env()
    if ns.threads:
        torch.set_num_threads(ns.threads)
    overrides = {"model_name_or_path": ns.model, "template": "chatml", "output_dir": "unused", "do_sample": False}
    engine = ChatEngine.from_args(get_args(None, overrides), BatcherConfig(max_batch_size=ns.requests))
    prompts = (PROMPTS * (ns.requests // len(PROMPTS) + 1))[: ns.requests]
    try:
        _timed(engine, "Hi", 4)  # warm-up
        single = _timed(engine, prompts[0], ns.max_new_tokens)
        start = time.perf_counter()
        sequential = [_timed(engine, p, ns.max_new_tokens) for p in prompts]
        sequential_wall = time.perf_counter() - start
        start = time.perf_counter()
        concurrent = _concurrent(engine, prompts, ns.max_new_tokens)
        concurrent_wall = time.perf_counter() - start
    finally:
        engine.close()
    device = "cuda:" + torch.cuda.get_device_name() if torch.cuda.is_available() else f"cpu x{torch.get_num_threads()}"
    print(
        json.dumps(
            {
                "bench": "serve",
                "model": ns.model,
                "device": device,
                "python": platform.python_version(),
                "torch": torch.__version__,
                "max_new_tokens": ns.max_new_tokens,
                "single": _summary([single], single["wall_s"]),
                "sequential": _summary(sequential, sequential_wall),
                "concurrent": _summary(concurrent, concurrent_wall),
                "batches_in_concurrent_run": engine.batcher.stats["batches"] - 2 - len(prompts),
                "joined_running_batch": engine.batcher.stats["joined"],
                "concurrent_speedup_x": round(sequential_wall / concurrent_wall, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
