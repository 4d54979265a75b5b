"""The single parse path: YAML + overrides, flags, aliases, unknown keys, cross-field rules."""

from __future__ import annotations

import pytest
import yaml

from genie_core.extras.errors import ConfigError
from genie_core.hparams import get_args, parse_cli_tokens
from genie_core.stage_parent import launch_command


def _write(tmp_path, data):
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


BASE = {"model_name_or_path": "m", "output_dir": "out", "dataset": "alpaca_demo_en", "do_train": True}


def test_yaml_with_overrides_that_win(tmp_path):
    cfg = _write(tmp_path, {**BASE, "learning_rate": 1e-4, "lora_rank": 4})
    file, overrides = parse_cli_tokens([cfg, "lora_rank=16", "--learning_rate", "5e-5"])
    args = get_args(file, overrides)
    assert args.finetuning.lora_rank == 16
    assert args.training.learning_rate == pytest.approx(5e-5)
    assert args.finetuning.lora_alpha == 32.0


def test_seed_flag_form():
    tokens = (
        "--stage sft --model_name_or_path m --do_train --dataset a,b --template default --finetuning_type lora "
        "--output_dir o --overwrite_cache --per_device_train_batch_size 4 --gradient_accumulation_steps 4 "
        "--lr_scheduler_type cosine --logging_steps 10 --save_steps 1000 --learning_rate 5e-5 --num_train_epochs 3.0 "
        "--plot_loss --resume_lora_training False --checkpoint_dir x,y"
    ).split()
    args = get_args(*parse_cli_tokens(tokens))
    assert args.training.do_train and args.data.overwrite_cache and args.finetuning.plot_loss
    assert args.finetuning.resume_lora_training is False
    assert args.model.adapter_dirs == ["x", "y"]
    assert args.training.per_device_train_batch_size == 4
    assert args.data.dataset_names == ["a", "b"]


def test_alias_adapter_name_or_path():
    args = get_args(None, {**BASE, "adapter_name_or_path": "ad"})
    assert args.model.checkpoint_dir == "ad"


def test_unknown_key_names_closest():
    with pytest.raises(ConfigError, match="'learnig_rate'.*'learning_rate'"):
        get_args(None, {**BASE, "learnig_rate": 1e-4})


def test_bad_choice_and_type():
    with pytest.raises(ConfigError, match="finetuning_type"):
        get_args(None, {**BASE, "finetuning_type": "lorra"})
    with pytest.raises(ConfigError, match="lora_rank"):
        get_args(None, {**BASE, "lora_rank": "eight"})


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"quantization_bit": 4, "finetuning_type": "full"}, "QLoRA"),
        ({"quantization_bit": 3}, "4 or 8"),
        ({"predict_with_generate": True}, "do_train"),
        ({"output_dir": None}, "output_dir"),
        ({"dataset": None}, "dataset is required"),
    ],
)
def test_cross_field_rules(extra, message):
    cfg = {**BASE, **extra}
    cfg = {k: v for k, v in cfg.items() if v is not None}
    with pytest.raises(ConfigError, match=message):
        get_args(None, cfg)


def test_launch_command_uses_same_interpreter_and_module(tmp_path):
    import sys

    cmd = launch_command(tmp_path / "genie_config.yaml")
    assert cmd[:4] == [sys.executable, "-m", "accelerate.commands.launch", "--quiet"]
    assert cmd[-3:] == ["-m", "genie_core.stage_child", str(tmp_path / "genie_config.yaml")]
    two = launch_command("c.yaml", num_processes=2)
    assert "--multi_gpu" in two and "--cpu" not in two


def test_a_comparison_on_one_process_skips_the_launcher(tmp_path, monkeypatch):
    """An evaluate step's comparison is never distributed: it runs as a plain child with the launcher's threads."""
    import sys

    from genie_core.pipeline.steps import _single_process
    from genie_core.stage_parent import single_process_command

    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setattr("genie_core.stage_parent._has_cuda", lambda: False)
    cmd, env = single_process_command(tmp_path / "genie_config.yaml")
    assert cmd == [sys.executable, "-m", "genie_core.stage_child", str(tmp_path / "genie_config.yaml")]
    assert env == {"OMP_NUM_THREADS": "3"}
    chain = {"compare_models": '[{"name": "base", "model_name_or_path": "m"}]'}
    assert _single_process(chain, 1)
    assert not _single_process(chain, 2)  # several ranks: launched as configured
    assert not _single_process({**chain, "accelerate_config": "zero3.yaml"}, 1)
    assert not _single_process({"do_eval": True}, 1)  # a single model's evaluation goes through the trainer


def test_stage_literal_matches_the_stage_table():
    import typing

    from genie_core.hparams.stages import STAGE_NAMES, StageName

    assert typing.get_args(StageName) == STAGE_NAMES


@pytest.mark.parametrize("switch, strategy", [(True, "sequential"), ("false", "random")])
def test_disable_shuffling_is_the_sampling_strategy(switch, strategy):
    """LLaMA-Factory's ``disable_shuffling`` resolves to the same trainer value as our own key."""
    from genie_core.hparams import check_config, load_config

    ours = get_args(None, {**BASE, "train_sampling_strategy": strategy})
    theirs = get_args(*parse_cli_tokens([f"--disable_shuffling={switch}", *(f"{k}={v}" for k, v in BASE.items())]))
    assert theirs.training.train_sampling_strategy == ours.training.train_sampling_strategy == strategy
    assert check_config(load_config(None, {**BASE, "disable_shuffling": switch})).training.train_sampling_strategy == (
        strategy
    )


# keys as a user types them (strings where a form or command line gives strings) and the value every reader resolves
SAME_EVERYWHERE = {
    "learning_rate": ("5e-5", 5e-5),
    "lora_rank": ("4", 4),
    "cutoff_len": ("96", 96),
    "lora_target": ("q_proj,v_proj", "q_proj,v_proj"),
    "finetuning_type": ("lora", "lora"),
    "stage": ("sft", "sft"),
}


def _resolved(args) -> dict:
    out = {}
    for key in SAME_EVERYWHERE:
        for part in (args.model, args.data, args.finetuning, args.training):
            if hasattr(part, key):
                out[key] = getattr(part, key)
                break
    return out


def test_every_config_reader_resolves_a_key_the_same_way(tmp_path, tiny_model_dir):
    """YAML, the command line, the pipeline planner, the board's form and the chat/API reader: one parse path."""
    from helpers import write_registry

    from genie_core.chat.args import parse_infer_args
    from genie_core.hparams import check_config, load_config
    from genie_core.hparams.parser import build_args, merge_config
    from genie_core.pipeline.plan import plan_pipeline
    from genie_core.pipeline.spec import load_pipeline
    from genie_core.webui.run_config import stage_config

    data_dir = write_registry(tmp_path / "data")
    base = {"model_name_or_path": str(tiny_model_dir), "dataset": "toy", "dataset_dir": str(data_dir)}
    typed = {key: text for key, (text, _) in SAME_EVERYWHERE.items()}
    expected = {key: value for key, (_, value) in SAME_EVERYWHERE.items()}
    out = str(tmp_path / "out")

    from_yaml = get_args(_write(tmp_path, {**base, **typed, "output_dir": out, "do_train": True}))
    tokens = [t for k, v in {**base, **typed, "output_dir": out}.items() for t in (f"--{k}", v)]
    from_cli = check_config(load_config(*parse_cli_tokens(tokens)))
    form = {**base, **typed, "lora_target": ["q_proj", "v_proj"], "max_steps": 0, "save_steps": 0}
    from_board = build_args(merge_config({**stage_config(form), "output_dir": out}, {}))
    spec = load_pipeline({"name": "p", "defaults": base, "stages": {"sft": {"stage": "sft", **typed}}})
    from_plan = build_args(merge_config(plan_pipeline(spec, validate=False)[0].config, {}))
    from_chat, _ = parse_infer_args(tokens)

    readers = {"yaml": from_yaml, "cli": from_cli, "board": from_board, "planner": from_plan, "chat": from_chat}
    for name, args in readers.items():
        assert _resolved(args) == expected, name
