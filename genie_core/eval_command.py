"""`genie eval CONFIG.yaml [key=value ...]`: score a stage's output on held-out data, results as JSON in output_dir.

What is measured follows ``stage``:
  sft  generate for every prompt, BLEU-4 / ROUGE against the references -> predict_results.json,
       generated_predictions.jsonl
  rm   reward accuracy (chosen scored above rejected) and margins -> eval_results.json, reward_scores.jsonl
  ppo  mean reward of the policy's answers, scored by reward_model -> eval_results.json, generated_predictions.jsonl

The config is a stage config (model, checkpoint_dir, dataset, template, output_dir); training keys are overridden so
nothing trains. A LoRA reward model trained on top of merged SFT adapters needs only its own directory as
checkpoint_dir: the adapters it was trained over are read from its value head and merged first.
"""

from __future__ import annotations

import json
import sys

from genie_core.extras.errors import ConfigError

USAGE = """usage: genie eval CONFIG.yaml [key=value ...] [--key value ...]
   or: genie eval --stage rm --model_name_or_path M --checkpoint_dir RM_DIR --dataset NAME --template T --output_dir D
stage sft: BLEU-4/ROUGE of generated answers; rm: pair accuracy; ppo: mean reward (needs reward_model).
Every `genie train` key is accepted (`genie train --help` lists them); training keys are overridden."""

_EVAL_MODE = {
    "sft": {"do_train": False, "do_eval": False, "do_predict": True, "predict_with_generate": True},
    "rm": {"do_train": False, "do_eval": True, "do_predict": False},
    "ppo": {"do_train": False, "do_eval": True, "do_predict": False},
}


def eval_overrides(stage: str, overrides: dict) -> dict:
    """The overrides that turn a stage config into an evaluation of that stage."""
    if stage not in _EVAL_MODE:
        raise ConfigError(
            f"genie eval covers stage sft, rm or ppo, got '{stage}'; evaluate dpo with do_eval + val_size."
        )
    return {**overrides, **_EVAL_MODE[stage]}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    from genie_core.hparams import get_args, parse_cli_tokens
    from genie_core.hparams.parser import load_config_file, setting
    from genie_core.model.value_head import assert_reward_model_dir, reward_checkpoint_chain
    from genie_core.stage_parent import preflight
    from genie_core.stages import run_stage

    config_file, overrides = parse_cli_tokens(argv)
    merged = {**(load_config_file(config_file) if config_file else {}), **overrides}
    stage = setting(merged, "stage")
    overrides = eval_overrides(stage, overrides)
    if stage == "rm":
        given = merged.get("checkpoint_dir") or merged.get("adapter_name_or_path")
        dirs = [d.strip() for d in str(given or "").split(",") if d.strip()]
        # the reward model is the last checkpoint_dir, or the model itself for a full reward model
        assert_reward_model_dir(dirs[-1] if dirs else str(merged.get("model_name_or_path")), key="checkpoint_dir")
        if dirs:
            overrides["checkpoint_dir"] = ",".join(reward_checkpoint_chain(dirs))
    args = get_args(config_file, overrides)
    preflight(args)  # dataset problems surface before a model loads
    results = run_stage(args)
    print(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    from genie_core.extras.entry import run_main

    sys.exit(run_main(main))
