"""`genie train`: validate in the parent, write the resolved config, run the stage in a child.

The child is `python -m accelerate.commands.launch ... -m genie_core.stage_child <yaml>` with the same
interpreter, so one code path serves one CPU, several GPUs or DeepSpeed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from genie_core.extras.locks import DirLock
from genie_core.extras.logging import get_logger
from genie_core.extras.process import supervised_call
from genie_core.extras.supervise import EXIT_STOPPED, quick_exit
from genie_core.extras.threads import threads_per_process
from genie_core.hparams import GenieArgs, dump_config

logger = get_logger(__name__)
CONFIG_NAME = "genie_config.yaml"


def preflight(args: GenieArgs, check_reward_model: bool = True, check_model: bool = True) -> None:
    """Check model path, datasets, template name and reward model before any model or child process starts.

    A pipeline passes ``check_reward_model``/``check_model`` False when that model is an upstream stage not yet run.
    """
    from genie_core.data.assemble import load_examples, prompt_stage
    from genie_core.model.source import check_model_source
    from genie_core.model.weight_names import check_module_names
    from genie_core.template import TEMPLATES

    if check_model:
        check_model_source(args.model.model_name_or_path)
        check_module_names(args.model, args.finetuning)  # lora_target / freeze module typos, from the headers
    template = args.data.template
    if template not in (None, "", "auto") and template not in TEMPLATES:
        from genie_core.template import get_template

        get_template(template)  # raises ConfigError naming the valid choices
    t, d = args.training, args.data
    if args.finetuning.stage == "ppo" and t.do_train and check_reward_model:
        from genie_core.stages.ppo_rollout import check_reward_model as check_reward

        check_reward(args.finetuning.reward_model, args.model)  # names the path before a model loads
    if args.finetuning.stage in ("grpo", "rloo") and t.do_train:
        from genie_core.rewards.functions import check_reward_funcs

        # imports the functions and checks their signatures; an rm step of the pipeline is checked once it ran
        check_reward_funcs(args.grpo.reward_specs, args.model, check_models=check_reward_model)
        if args.finetuning.reward_model:
            check_reward_funcs([args.finetuning.reward_model], check_models=check_reward_model, key="reward_model")
    stage = prompt_stage(d) if args.eval.compare_models else args.finetuning.stage
    if args.eval.compare_models:
        from genie_core.rewards.rules import parse_rule

        for spec in args.eval.rule_specs:
            parse_rule(spec, key="eval_rewards")
    if t.do_train and d.dataset:
        load_examples(d, stage, "train", part="train")
    if d.eval_dataset:
        load_examples(d, stage, "eval")
    elif (t.do_eval or t.do_predict) and d.dataset and not t.do_train:
        load_examples(d, stage, "train", part="heldout")
    warn_if_disk_short(args)


def expected_output_bytes(args: GenieArgs) -> int:
    """A rough size of what a stage writes: checkpoints hold weights plus two optimizer moments when the whole
    model trains, an adapter when LoRA does."""
    source = Path(args.model.model_name_or_path).expanduser()
    weights = 0
    if source.is_dir():
        weights = sum(p.stat().st_size for p in source.glob("*.safetensors"))
        weights = weights or sum(p.stat().st_size for p in source.glob("*.bin"))
    per_checkpoint = weights * 3 if args.finetuning.finetuning_type in ("full", "freeze") else weights // 20
    kept = args.training.save_total_limit or 2
    return per_checkpoint * kept + weights + (64 << 20)


def warn_if_disk_short(args: GenieArgs) -> None:
    import shutil

    where = Path(args.training.output_dir).expanduser().resolve()
    while not where.exists() and where != where.parent:
        where = where.parent
    free, needed = shutil.disk_usage(where).free, expected_output_bytes(args)
    if free < needed:
        logger.warning(
            "Only %.1f GiB free under %s; this stage may write about %.1f GiB (checkpoints and the final model).",
            free / 2**30, where, needed / 2**30,
        )  # fmt: skip


def write_config(args: GenieArgs) -> Path:
    return dump_config(args.raw, Path(args.training.output_dir) / CONFIG_NAME)


def launch_command(config_path: str | Path, num_processes: int = 1, accelerate_config: str | None = None) -> list[str]:
    """The `accelerate launch` command line for one stage config."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--quiet"]  # the child's own error, not the launcher's
    if accelerate_config:
        cmd += ["--config_file", str(accelerate_config)]
    else:
        cmd += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
        cmd += ["--num_processes", str(num_processes)]
        if not _has_cuda():
            threads, reason = threads_per_process(num_processes)
            logger.info("CPU threads per process: %d (%s)", threads, reason)
            cmd += ["--num_cpu_threads_per_process", str(threads)]
            # --cpu alone silently runs one process; several CPU ranks need --multi_gpu + ACCELERATE_USE_CPU
            cmd += ["--multi_gpu"] if num_processes > 1 else ["--cpu"]
        elif num_processes > 1:
            cmd += ["--multi_gpu"]
    return cmd + ["-m", "genie_core.stage_child", str(config_path)]


def single_process_command(config_path: str | Path) -> tuple[list[str], dict[str, str]]:
    """The child without accelerate's launcher, and its thread setting, for work that never runs on several ranks
    (the comparison of an evaluate step): the launcher would only add its own torch import, about 4 s."""
    env = {}
    if not _has_cuda():
        threads, reason = threads_per_process(1)
        logger.info("CPU threads: %d (%s)", threads, reason)
        env["OMP_NUM_THREADS"] = str(threads)
    return [sys.executable, "-m", "genie_core.stage_child", str(config_path)], env


def child_env(num_processes: int = 1) -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if num_processes > 1 and not _has_cuda():
        env["ACCELERATE_USE_CPU"] = "true"
    return env


def _has_cuda() -> bool:
    """Whether accelerate should use GPUs, decided without importing torch (seconds the parent need not spend):
    an NVIDIA driver is present and ``CUDA_VISIBLE_DEVICES`` does not hide every device."""
    import shutil

    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    if "torch" in sys.modules:
        import torch

        return torch.cuda.is_available()
    return Path("/proc/driver/nvidia/version").exists() or shutil.which("nvidia-smi") is not None


def run_train(args: GenieArgs, launch: bool = True) -> int:
    """Check ``args`` here (``check_config``'s light arguments are enough), then run the stage in a child.

    The parent never needs torch: the child parses the written config into the real training arguments.
    """
    preflight(args)
    with DirLock(args.training.output_dir):
        return _run_locked(args, launch)


def _run_locked(args: GenieArgs, launch: bool) -> int:
    config_path = write_config(args)
    logger.info("Resolved config written to %s", config_path)
    if not launch:
        from genie_core.hparams import build_args
        from genie_core.stages import run_stage

        run_stage(build_args(args.raw))
        return 0
    cmd = launch_command(config_path, args.launch.num_processes, args.launch.accelerate_config)
    logger.info("Launching: %s", " ".join(cmd))
    code = supervised_call(cmd, env=child_env(args.launch.num_processes))
    if code in (130, EXIT_STOPPED):
        logger.warning("Stopped; run the same command again to resume from the last checkpoint.")
        quick_exit(code)  # nothing left to do; torch's teardown would only keep the terminal waiting
    return code
