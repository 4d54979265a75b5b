"""What a PPO run writes: checkpoints with everything a killed run needs to continue exactly where it stopped,
the step log (trainer_log.jsonl, the LogCallback format) and the final policy adapter.

``checkpoint-N/`` holds the policy adapter (adapter_model.safetensors + adapter_config.json), the critic's value
head (``critic/value_head.safetensors``: kept out of the top level so a checkpoint is never mistaken for a reward
model), optimizer.pt, scheduler.pt, rng_state[_rank].pth and trainer_state.json (step, KL coefficient, score
statistics). It is written as ``checkpoint-N.tmp`` and renamed when complete, so any ``checkpoint-N`` is whole;
trainer_state.json is written last, which is what ``common.complete_checkpoints`` looks for.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genie_core.extras.errors import ConfigError
from genie_core.extras.logging import get_logger, is_main_process
from genie_core.model.value_head import load_value_head, save_value_head
from genie_core.stages.callbacks import TRAINER_LOG, truncate_log
from genie_core.stages.common import complete_checkpoints, write_json

logger = get_logger(__name__)
STATE_FILE = "trainer_state.json"
CRITIC_DIR = "critic"
POLICY_BASE = "policy_base.json"  # the adapters merged under the policy, so evaluation can rebuild its base


def _rng_file(rank: int, world: int) -> str:
    return "rng_state.pth" if world <= 1 else f"rng_state_{rank}.pth"


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch (CPU and CUDA) generator states as tensors and plain values (weights_only-safe)."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": [version, list(internal), gauss],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    output_dir: str | Path,
    step: int,
    policy,
    head,
    optimizer,
    scheduler,
    state: dict[str, Any],
    rank: int = 0,
    world: int = 1,
    save_total_limit: int | None = None,
) -> Path:
    """Write ``checkpoint-<step>`` atomically; every rank writes its RNG state, rank 0 the rest."""
    out = Path(output_dir)
    final, tmp = out / f"checkpoint-{step}", out / f"checkpoint-{step}.tmp"
    if rank == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    _barrier(world)
    torch.save(rng_state(), tmp / _rng_file(rank, world))
    if rank == 0:
        policy.save_pretrained(str(tmp), selected_adapters=["default"])
        save_value_head(head, tmp / CRITIC_DIR)
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    _barrier(world)
    if rank == 0:
        write_json(tmp / STATE_FILE, {"global_step": step, **state})
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        logger.info("Checkpoint saved: %s", final)
        _rotate(out, save_total_limit)
    _barrier(world)
    return final


def _rotate(output_dir: Path, limit: int | None) -> None:
    if not limit or limit < 1:
        return
    for old in complete_checkpoints(output_dir)[:-limit]:
        shutil.rmtree(old, ignore_errors=True)
        logger.info("Deleted old checkpoint %s (save_total_limit=%d)", old, limit)


def _barrier(world: int) -> None:
    if world > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()


def load_checkpoint(path: str | Path, policy, head, optimizer, scheduler, rank: int = 0, world: int = 1) -> dict:
    """Restore policy adapter, critic head, optimizer, scheduler and RNG from ``path``; returns its saved state."""
    from peft import set_peft_model_state_dict
    from peft.utils import load_peft_weights

    path = Path(path)
    state_file = path / STATE_FILE
    if not state_file.is_file() or not (path / "adapter_config.json").is_file():
        raise ConfigError(
            f"{path} is not a complete PPO checkpoint (it needs {STATE_FILE} and adapter files); "
            "delete it or set overwrite_output_dir: true."
        )
    state = json.loads(state_file.read_text(encoding="utf-8"))
    device = next(policy.parameters()).device
    try:
        weights = load_peft_weights(str(path), device=str(device))
        result = set_peft_model_state_dict(policy, weights, adapter_name="default")
    except RuntimeError as exc:  # shape mismatch: lora_rank or targets changed since the checkpoint
        raise ConfigError(f"{path}: the adapter does not fit this model ({exc}); keep the lora_* settings.") from None
    unexpected = [k for k in getattr(result, "unexpected_keys", []) if "lora_" in k]
    if unexpected:
        raise ConfigError(f"{path}: adapter weights {unexpected[:3]} match no module; keep the lora_* settings.")
    head.load_state_dict(load_value_head(path / CRITIC_DIR, hidden_size=head.hidden_size).state_dict())
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", map_location=device, weights_only=True))
    scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=True))
    rng_path = path / _rng_file(rank, world)
    if rng_path.is_file():
        set_rng_state(torch.load(rng_path, weights_only=True))
    else:
        logger.warning("%s has no RNG state for rank %d; sampling will differ from the original run.", path, rank)
    logger.info("Resumed PPO from %s at step %d", path, state["global_step"])
    return state


# ---- the step log and the final adapter ------------------------------------------------------------------


def should_save(t, step: int, total: int) -> bool:
    strategy = str(getattr(t.save_strategy, "value", t.save_strategy))
    if strategy == "no":
        return False
    return step == total or (strategy == "steps" and t.save_steps and step % int(t.save_steps) == 0)


def reset_log(out: Path, step: int) -> None:
    """A fresh run starts a new log; a resumed one drops lines a killed run wrote after its last checkpoint."""
    if is_main_process():
        truncate_log(out / TRAINER_LOG, step)


def write_log(out: Path, step: int, total: int, epoch: float, elapsed: float, stats: dict) -> None:
    if not is_main_process():
        return
    record = {"current_steps": step, "total_steps": total, "epoch": round(epoch, 4), "elapsed_time": round(elapsed, 2)}
    record.update({k: round(v, 6) for k, v in stats.items()})
    with open(out / TRAINER_LOG, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")
    shown = " ".join(f"{k}={stats[k]:.4g}" for k in ("reward", "kl", "entropy", "policy_loss", "value_loss"))
    extra = f"clip={stats['clip_frac']:.3f} len={stats['response_length']:.1f} tok/s={stats['tokens_per_second']:.1f}"
    logger.info("step %d/%d %s %s", step, total, shown, extra)


def last_logged(out: Path) -> dict:
    path = out / TRAINER_LOG
    lines = path.read_text().splitlines() if path.exists() else []
    return json.loads(lines[-1]) if lines else {}


def save_final(policy, out: Path, merged_adapters: list[str]) -> None:
    """The trained policy adapter (plus ``POLICY_BASE``), written to a temp dir and moved into place."""
    tmp = out / ".tmp-final"
    if tmp.exists():
        shutil.rmtree(tmp)
    policy.save_pretrained(str(tmp), selected_adapters=["default"])
    write_json(tmp / POLICY_BASE, {"merged_adapters": merged_adapters})
    for item in tmp.iterdir():
        item.replace(out / item.name)
    tmp.rmdir()
    logger.info("Policy adapter saved to %s", out)
