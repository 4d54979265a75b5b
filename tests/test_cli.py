"""`genie train` through the real `accelerate launch` child, and its refusals before any model loads."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml
from helpers import stage_config, write_registry

from flows.cli import COMMANDS


def _genie(*argv: str, env_home=None, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ}
    if env_home is not None:
        env["GENIE_HOME"] = str(env_home)
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *argv], capture_output=True, text=True, timeout=timeout, env=env
    )


def test_train_yaml_runs_in_accelerate_child(tmp_path, tiny_model_dir, genie_home):
    data_dir = write_registry(tmp_path / "data")
    out = tmp_path / "out"
    cfg = stage_config(tiny_model_dir, data_dir, out, max_steps=2)
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump({**cfg, "lora_rank": 4}))
    proc = _genie("train", str(path), "lora_rank=2", env_home=genie_home)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "accelerate.commands.launch" in proc.stderr  # the launch line is logged
    written = yaml.safe_load((out / "genie_config.yaml").read_text())
    assert written["lora_rank"] == 2 and written["max_steps"] == 2  # the override won; the input dict was written
    adapter_cfg = yaml.safe_load((out / "adapter_config.json").read_text())
    assert adapter_cfg["r"] == 2
    assert (out / "train_results.json").exists()


def test_unknown_key_fails_before_anything_is_written(tmp_path, tiny_model_dir):
    out = tmp_path / "out"
    proc = _genie(
        "train",
        "--stage",
        "sft",
        "--model_name_or_path",
        str(tiny_model_dir),
        "--output_dir",
        str(out),
        "--lerning_rate",
        "1e-4",
    )
    assert proc.returncode == 2
    assert "lerning_rate" in proc.stderr and "learning_rate" in proc.stderr
    assert not out.exists()


def test_bad_dataset_fails_before_model_load(tmp_path, tiny_model_dir):
    data_dir = write_registry(tmp_path / "data")
    out = tmp_path / "out"
    cfg = stage_config(tiny_model_dir, data_dir, out, dataset="toyy")
    proc = _genie("train", *[f"{k}={v}" for k, v in cfg.items()])
    assert proc.returncode == 2
    assert "toyy" in proc.stderr and "toy" in proc.stderr
    assert "Loading weights" not in proc.stderr and not out.exists()


def test_bad_record_names_file_index_field(tmp_path, tiny_model_dir):
    data_dir = write_registry(tmp_path / "data", rows=[{"instruction": "a", "output": "b"}, {"instruction": 3}])
    cfg = stage_config(tiny_model_dir, data_dir, tmp_path / "out")
    proc = _genie("train", *[f"{k}={v}" for k, v in cfg.items()])
    assert proc.returncode == 2
    assert "toy.json:1" in proc.stderr and "instruction" in proc.stderr


def test_bad_template_and_lora_target(tmp_path, tiny_model_dir, genie_home):
    data_dir = write_registry(tmp_path / "data")
    cfg = stage_config(tiny_model_dir, data_dir, tmp_path / "out", template="chatmll")
    proc = _genie("train", *[f"{k}={v}" for k, v in cfg.items()])
    assert proc.returncode == 2 and "chatml" in proc.stderr
    cfg = stage_config(tiny_model_dir, data_dir, tmp_path / "out2", lora_target="q_projj")
    proc = _genie("train", "--no-launch", *[f"{k}={v}" for k, v in cfg.items()], env_home=genie_home)
    assert proc.returncode == 2 and "q_projj" in proc.stderr and "q_proj" in proc.stderr


def test_data_check_reports_dropped_records(tmp_path):
    rows = [
        {"instruction": "a", "output": "b"},
        {"instruction": "c", "output": ""},
        {"instruction": "d", "output": "e"},
    ]
    data_dir = write_registry(tmp_path / "data", rows=rows)
    proc = _genie("data", "check", "--dataset", "toy", "--dataset_dir", str(data_dir))
    assert proc.returncode == 0, proc.stderr
    assert "toy.json:1:" in proc.stdout


def _bad_configs(tmp_path, model_dir) -> dict[str, tuple[dict, str]]:
    """Each bad input the parent must refuse, with the words its message must carry."""
    corrupt = tmp_path / "corrupt-model"
    corrupt.mkdir()
    (corrupt / "config.json").write_text("{not json")
    return {
        "missing model": ({"model_name_or_path": str(tmp_path / "no-such-model")}, "no-such-model does not exist"),
        "corrupt config.json": ({"model_name_or_path": str(corrupt)}, "config.json is not valid JSON"),
        "batch size 0": ({"per_device_train_batch_size": 0}, "per_device_train_batch_size must be at least 1"),
        "negative max_steps": ({"max_steps": -5}, "max_steps must be a positive number of steps, or -1"),
        "fractional count": ({"val_size": 2.5}, "val_size is a fraction below 1"),
        "bad scheduler": ({"lr_scheduler_type": "cosinee"}, "Did you mean 'cosine'?"),
        "lora_target typo": ({"lora_target": "q_proj,v_prj"}, "v_prj matches no linear module"),
        "lora_target suggestion": ({"lora_target": "v_prj"}, "Did you mean 'v_proj'?"),
        "freeze module typo": (
            {"finetuning_type": "freeze", "name_module_trainable": "mlpp"},
            "Did you mean 'mlp'?",
        ),
        "template typo": ({"template": "chatmll"}, "chatml"),
    }


def test_bad_configs_fail_in_the_parent_without_torch(tmp_path, tiny_model_dir):
    """Every bad config ends with exit 2 and its reason, before a child starts, torch loads or a file is written."""
    data_dir = write_registry(tmp_path / "data")
    script = (
        "import sys; from flows.cli import main; code = main(sys.argv[1:]); "
        "print('torch imported' if 'torch' in sys.modules else 'no torch'); sys.exit(code)"
    )
    for name, (bad, words) in _bad_configs(tmp_path, tiny_model_dir).items():
        out = tmp_path / f"out-{name.replace(' ', '-')}"
        cfg = {**stage_config(tiny_model_dir, data_dir, out), **bad}
        proc = subprocess.run(
            [sys.executable, "-c", script, "train", *[f"{k}={v}" for k, v in cfg.items()]],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 2, (name, proc.stderr[-2000:])
        assert words in proc.stderr, (name, proc.stderr[-2000:])
        assert "no torch" in proc.stdout, name
        assert not out.exists(), name


def test_bad_pipeline_stage_fails_before_prefect(tmp_path, tiny_model_dir):
    """`genie run` checks every stage's config, model path and data before a Prefect server starts."""
    data_dir = write_registry(tmp_path / "data")
    runs = tmp_path / "runs"
    pipeline = {
        "name": "bad",
        "defaults": {**stage_config(tiny_model_dir, data_dir, tmp_path / "unused")},
        "stages": {"sft": {"stage": "sft"}, "sft2": {"from": "sft", "max_steps": -5}},
    }
    del pipeline["defaults"]["output_dir"]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(pipeline))
    env = {**os.environ, "GENIE_RUNS_DIR": str(runs), "PREFECT_API_URL": "http://127.0.0.1:9/api"}  # nothing there
    proc = subprocess.run(
        [sys.executable, "-m", "flows.cli", "run", str(path)], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "stage 'sft2': max_steps must be a positive number of steps" in proc.stderr
    assert not (runs / "bad").exists()


def test_models_list_marks_pulled_models(tmp_path, capsys, monkeypatch):
    """`genie models list` says which pullable models are installed and where."""
    from flows.cli import main
    from genie_core.model.pull import smollm2_dir

    monkeypatch.setenv("GENIE_HOME", str(tmp_path / "home"))
    assert main(["models", "list"]) == 0
    assert "smollm2    not pulled yet" in capsys.readouterr().out
    target = smollm2_dir()
    target.mkdir(parents=True)
    from genie_core.model import pull

    for name in pull._REQUIRED_FILES:
        (target / name).write_text("{}")
    assert main(["models", "list"]) == 0
    assert f"smollm2    installed at {target}" in capsys.readouterr().out


def test_templates_one_line_each_with_families_and_stops(capsys):
    from flows.cli import main
    from genie_core.template import list_templates

    assert main(["templates"]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    assert [line.split()[0] for line in lines] == list_templates()
    chatml = next(line for line in lines if line.startswith("chatml "))
    assert "qwen" in chatml and "'<|im_end|>'" in chatml


def test_train_help_lists_every_group_without_torch(tmp_path, monkeypatch):
    """The help groups every key by dataclass with type, default and help, and printing it never imports torch."""
    from genie_core.hparams.training_fields import training_fields

    monkeypatch.setenv("GENIE_HOME", str(tmp_path / "home"))
    training_fields.cache_clear()
    training_fields()  # the trainer's field table is cached on disk once per transformers version
    training_fields.cache_clear()
    script = (
        "import sys; from genie_core.hparams.help import format_train_help; print(format_train_help()); "
        "print('heavy:', sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    env = {**os.environ, "GENIE_HOME": str(tmp_path / "home"), "COLUMNS": "119"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("usage: genie train CONFIG.yaml")
    assert "heavy: []" in proc.stdout
    text = " ".join(proc.stdout.split())
    for group in ("ModelArguments", "DataArguments", "FinetuningArguments", "GeneratingArguments", "LaunchArguments"):
        assert f"{group}:" in text, group
    assert "EvalArguments:" in text and "Seq2SeqTrainingArguments:" in text and "Aliases:" in text
    assert "--lora_target str Comma-separated module names for LoRA, or `all`" in text
    assert "default comes from the model family. (default: None)" in text
    assert "--learning_rate float The initial learning rate for the optimizer. (default: 5e-05)" in text
    assert "--compute_dtype {auto,float32,float16,bfloat16}" in text
    assert "--report_to" in text and "(default: 'none')" in text  # our default, not the trainer's
    assert "--adapter_name_or_path value Alias of --checkpoint_dir." in text
    assert text.count("--seed ") == 1 and "Also sets Seq2SeqTrainingArguments.seed." in text


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_of_every_command_exits_0_and_lists_its_arguments(command, capsys):
    from flows.cli import main

    try:
        code = main([command, "--help"])
    except SystemExit as exc:  # argparse's own --help
        code = exc.code
    out = capsys.readouterr().out
    assert code == 0, out
    if command not in ("templates", "version"):
        assert "usage" in out.lower() and ("--" in out or "genie train --help" in out), out
    if command == "train":
        assert "--lora_target" in out and "--learning_rate" in out


# Makes bitsandbytes take its AVX512-BF16 path on any CPU, where its import warns about missing kernels.
_FAKE_AVX512_BF16 = """
import importlib.abc, importlib.machinery, sys

class _Patch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "bitsandbytes.functional":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            module.has_avx512bf16 = lambda: True

        spec.loader.exec_module = exec_module
        return spec

sys.meta_path.insert(0, _Patch())
"""
_KERNELS_NOTICE = "pip install kernels"


def test_bitsandbytes_kernel_notice_only_when_quantizing(tmp_path, tiny_model_dir):
    """A command that imports bitsandbytes without quantizing prints no kernel notice; a quantized load does."""
    data_dir = write_registry(tmp_path / "data")
    cfg = {**stage_config(tiny_model_dir, data_dir, tmp_path / "out"), "max_steps": -5}
    command = (
        "from flows.cli import main; code = main(sys.argv[1:]); "
        "print('bitsandbytes imported:', 'bitsandbytes' in sys.modules); sys.exit(code)"
    )
    env = {**os.environ, "GENIE_HOME": str(tmp_path / "home")}  # no cached trainer fields: the parent imports them
    args = ["train", *[f"{k}={v}" for k, v in cfg.items()]]
    proc = subprocess.run(
        [sys.executable, "-c", _FAKE_AVX512_BF16 + command, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 2 and "max_steps must be a positive number" in proc.stderr, proc.stderr[-2000:]
    assert "bitsandbytes imported: True" in proc.stdout  # else this command no longer tests anything
    assert _KERNELS_NOTICE not in proc.stderr

    quantized = (
        "from genie_core.extras.env import apply_quiet_env; apply_quiet_env(); "
        "from genie_core.hparams import FinetuningArguments, ModelArguments; "
        "from genie_core.model import load_model, load_tokenizer; "
        f"m = ModelArguments(model_name_or_path={str(tiny_model_dir)!r}, quantization_bit=4); "
        "load_model(load_tokenizer(m), m, FinetuningArguments(), is_trainable=False)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", _FAKE_AVX512_BF16 + quantized], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _KERNELS_NOTICE in proc.stderr


def test_a_child_that_does_not_quantize_never_imports_bitsandbytes(tmp_path):
    """The stage child and the export hide bitsandbytes (seconds of start-up) unless the command line quantizes."""
    config = tmp_path / "c.yaml"
    config.write_text("model_name_or_path: m\nstage: sft\n")
    probe = (
        "import sys; from genie_core.hparams.parser import skip_unused_quantizer; "
        "skip_unused_quantizer(sys.argv[1:]); import peft; "
        "print('bitsandbytes:', sys.modules.get('bitsandbytes', 'absent') is None)"
    )
    for extra, hidden in (([], True), (["quantization_bit=4"], False), (["--quantization_bit", "8"], False)):
        proc = subprocess.run(
            [sys.executable, "-c", probe, str(config), *extra], capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert f"bitsandbytes: {hidden}" in proc.stdout, (extra, proc.stdout)
