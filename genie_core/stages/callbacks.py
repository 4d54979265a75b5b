"""Trainer callbacks: a readable progress log and trainer_log.jsonl for plots and the UI."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from genie_core.extras.logging import get_logger, is_main_process
from genie_core.extras.supervise import stop_requested

logger = get_logger(__name__)
TRAINER_LOG = "trainer_log.jsonl"
PREFERENCE_METRICS = ("rewards/", "logps/", "kl", "nll_loss", "log_odds")
# grpo/rloo: reward mean/std (per reward function too), completion lengths, clipping, entropy
ONLINE_RL_METRICS = ("reward", "completions/", "clip_ratio/", "entropy", "frac_reward_zero_std", "policy_loss")


class LogCallback(TrainerCallback):
    """Appends one JSON line per logging step and prints a short human line."""

    def __init__(self, output_dir: str | Path):
        self.path = Path(output_dir) / TRAINER_LOG
        self.start = time.time()

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.time()
        if is_main_process():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if state.global_step == 0 and self.path.exists() and not _resuming(args):
                self.path.unlink()
            elif state.global_step > 0:  # resumed: steps a killed run logged after its checkpoint run again
                truncate_log(self.path, state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not is_main_process() or not logs:
            return
        record = {
            "current_steps": state.global_step,
            "total_steps": state.max_steps,
            "epoch": round(state.epoch or 0.0, 4),
            "elapsed_time": round(time.time() - self.start, 2),
        }
        for key in ("loss", "eval_loss", "learning_rate", "grad_norm", "train_loss", "eval_accuracy", "reward"):
            if key in logs:
                record[key] = logs[key]
        for key, value in logs.items():  # the preference trainers' rewards/margins, logps/chosen, kl, ...
            if key.removeprefix("eval_").startswith(PREFERENCE_METRICS + ONLINE_RL_METRICS):
                record[key] = value
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
        shown = " ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in logs.items() if k != "epoch"
        )
        logger.info("step %d/%d %s", state.global_step, state.max_steps, shown)


class StopOnSignal(TrainerCallback):
    """A stop request (SIGTERM, Ctrl-C, the parent gone) ends training after this step, with a checkpoint saved."""

    def on_step_end(self, args, state, control, **kwargs):
        if stop_requested():
            control.should_save = True
            control.should_training_stop = True


class QuietProgressCallback(ProgressCallback):
    """The tqdm bar without its copy of every log dict: LogCallback already prints one readable line per step."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        return


def quiet_progress(trainer) -> None:
    """Swap the trainer's log-printing progress (or printer) callback for the quiet bar, keeping stdout readable."""
    had_bar = trainer.pop_callback(ProgressCallback) is not None
    trainer.pop_callback(PrinterCallback)
    if had_bar:
        trainer.add_callback(QuietProgressCallback)


def truncate_log(path: Path, step: int) -> None:
    """Keep the lines up to ``step`` (all dropped for 0), so a resumed run logs every step exactly once; the summary
    line of an attempt that was stopped there goes too, since training did not end at that step."""
    if not path.exists():
        return
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()] if step else []
    records = [json.loads(line) for line in lines]
    kept = [line for line, r in zip(lines, records) if r.get("current_steps", 0) <= step and "train_loss" not in r]
    if len(kept) != len(lines):
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
        tmp.replace(path)


def _resuming(args) -> bool:
    return bool(getattr(args, "resume_from_checkpoint", None)) or bool(os.environ.get("GENIE_RESUMING"))
