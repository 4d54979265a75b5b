"""The Train tab's behaviour without a browser: field defaults, the form <-> config round trip, saved arguments,
the command preview, the form kept between page loads, the model list, every run of the runs directory (the
board's and `genie run`'s), and what the run view shows (phase, progress and ETA, the log's last lines)."""

from __future__ import annotations

import html
import json
import os
import subprocess
import sys
import time
import typing
import zlib
from pathlib import Path

import pytest
import yaml
from helpers import write_registry

from genie_core.extras.errors import ConfigError, GenieError
from genie_core.extras.locks import DirLock
from genie_core.webui import board_state, form, run_config, run_files, run_index, run_panel, runs, train_actions
from genie_core.webui.common import Roots
from genie_core.webui.model_list import model_choices, pulled_choices


@pytest.fixture()
def runs_root(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("GENIE_RUNS_DIR", str(tmp_path / "runs"))
    return tmp_path / "runs"


@pytest.fixture()
def stub_flows(tmp_path, monkeypatch) -> None:
    """`python -m flows.cli run X` prints its arguments and ends: Start without training anything."""
    stub = tmp_path / "stub"
    (stub / "flows").mkdir(parents=True)
    (stub / "flows" / "__init__.py").write_text("")
    (stub / "flows" / "cli.py").write_text("import sys\nprint('Pipeline', 'ran', sys.argv[1:])\n")
    monkeypatch.setenv("PYTHONPATH", str(stub))


def board_form(**changes) -> dict:
    """A filled form as the page sends it (numbers arrive as floats)."""
    values = form.defaults()
    values.update(model_name_or_path="/m", template="chatml", dataset=["toy"], max_steps=3.0, run_name="mine")
    values.update(changes)
    return values


# ---- fields ------------------------------------------------------------------------------------------------------


def test_defaults_are_read_from_the_config_dataclasses(monkeypatch):
    from genie_core.hparams.data_args import DataArguments
    from genie_core.hparams.finetuning_args import FinetuningArguments
    from genie_core.hparams.parser import TRAINING_DEFAULTS
    from genie_core.hparams.training_fields import training_fields

    trainer = training_fields()
    d = form.defaults()
    assert d["learning_rate"] == trainer["learning_rate"].default
    assert d["num_train_epochs"] == trainer["num_train_epochs"].default
    assert d["per_device_train_batch_size"] == trainer["per_device_train_batch_size"].default
    assert d["lr_scheduler_type"] == trainer["lr_scheduler_type"].default
    assert d["logging_steps"] == TRAINING_DEFAULTS["logging_steps"]  # the parser's own default wins
    assert d["cutoff_len"] == DataArguments().cutoff_len and d["lora_dropout"] == FinetuningArguments().lora_dropout
    assert d["max_steps"] == 0 and d["max_samples"] == 0 and d["quantization_bit"] == "none"  # not set
    assert form.choices_of("stage") == list(typing.get_args(typing.get_type_hints(FinetuningArguments)["stage"]))
    assert form.choices_of("lr_scheduler_type") == list(trainer["lr_scheduler_type"].choices)
    # read, not copied: a changed dataclass default shows in a fresh form
    monkeypatch.setattr(FinetuningArguments.__dataclass_fields__["lora_rank"], "default", 24)
    assert form.defaults()["lora_rank"] == 24
    assert set(form.defaults()) == set(form.ALL_FIELDS)


@pytest.mark.parametrize(
    "changes, extra",
    [
        ({}, ""),
        ({"val_size": 0.1, "save_steps": 0.0, "quantization_bit": "4", "lora_alpha": 16.0}, "warmup_ratio: 0.1"),
        ({"finetuning_type": "full", "dataset": ["a", "b"], "checkpoint_dir": "/c"}, "seed: 3\nsave_strategy: epoch"),
    ],
)
def test_a_board_config_comes_back_as_the_same_fields(changes, extra):
    values = board_form(**changes, extra=extra)
    config, _, _ = train_actions.stage_config_of(values)
    back = form.form_from_config(config, "mine", "exp")
    again, name, experiment = train_actions.stage_config_of(back)
    assert again == config and (name, experiment) == ("mine", "exp")
    assert yaml.safe_load(back["extra"] or "{}") == yaml.safe_load(extra or "{}")  # derived keys stay derived


def test_a_pipeline_stage_config_fills_the_fields():
    """A `genie run` stage's genie_config.yaml: planned keys dropped, aliases resolved, the rest as extra YAML."""
    written = {
        "model_name_or_path": "smollm2",
        "dataset": "alpaca_demo_en,self_cognition",
        "do_train": True,
        "output_dir": "/runs/p/sft-0123456789",
        "learning_rate": "2e-4",  # a string to YAML 1.1, a number to the parser and to the field
        "max_samples": "lots",  # no number: kept as written, for the check to report
        "lora_r": 16,
        "max_steps": 20,
        "save_strategy": "no",
        "eval_split": 0.2,
        "plot_loss": True,
    }
    values = form.form_from_config(written, "p")
    assert values["dataset"] == ["alpaca_demo_en", "self_cognition"] and values["lora_rank"] == 16
    assert values["max_steps"] == 20 and values["save_steps"] == 0 and values["run_name"] == "p"
    assert values["dataset_dir"] == form.default_dataset_dir()  # not in the config: the default applies
    assert values["learning_rate"] == 2e-4 and values["max_samples"] == form.defaults()["max_samples"]
    assert yaml.safe_load(values["extra"]) == {"max_samples": "lots", "eval_split": 0.2}
    config, _, _ = train_actions.stage_config_of(values)
    for key in ("model_name_or_path", "dataset", "max_steps", "save_strategy", "eval_split", "max_samples"):
        assert config[key] == written[key], key
    assert config["lora_rank"] == 16 and config["learning_rate"] == 2e-4
    assert "output_dir" not in config and "do_train" not in config


def test_arguments_files_are_read_back(tmp_path):
    pipeline = {
        "name": "two",
        "experiment": "e",
        "defaults": {"model_name_or_path": "smollm2", "template": "chatml"},
        "eval_split": 0.2,
        "stages": {"sft": {"dataset": "toy", "max_steps": 5}, "export": {"kind": "export", "from": "sft"}},
    }
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(pipeline, sort_keys=False))
    config, name, experiment = run_config.read_arguments(path)
    assert (name, experiment) == ("two", "e")
    assert config == {
        "model_name_or_path": "smollm2",
        "template": "chatml",
        "stage": "sft",
        "dataset": "toy",
        "max_steps": 5,
        "eval_split": 0.2,
    }
    path.write_text("stage: sft\nlearning_rate: 0.001\n")
    assert run_config.read_arguments(path) == ({"stage": "sft", "learning_rate": 0.001}, None, None)
    path.write_text("stages:\n  e: {kind: export}\n")
    with pytest.raises(ConfigError, match="needs `from:`"):
        run_config.read_arguments(path)
    with pytest.raises(ConfigError, match="cannot read"):
        run_config.read_arguments(tmp_path / "missing.yaml")


# ---- save, load, preview, start ----------------------------------------------------------------------------------


def test_saved_arguments_load_back_and_run_with_genie_run(runs_root, tmp_path):
    from genie_core.pipeline.spec import load_pipeline

    roots = Roots.from_spec([tmp_path])
    values = board_form(val_size=0.1, extra="warmup_ratio: 0.1", experiment="exp")
    message, path = train_actions.save_args(roots, values, "")
    assert path == str(runs_root / "webui" / "saved" / "mine.yaml") and "Saved" in message
    spec = load_pipeline(path)  # what `genie run saved.yaml` reads
    config, _, _ = train_actions.stage_config_of(values)
    assert spec.name == "mine" and spec.experiment == "exp" and spec.steps[0].config == {**config, "do_train": True}
    loaded, message = train_actions.load_args(roots, {**form.defaults(), "run_name": "mine"}, "")
    assert "Loaded" in message and loaded == values
    assert board_state.recent_models()[0] == "/m"  # a loaded model counts as recently used

    chosen = tmp_path / "mine.yml"
    assert train_actions.save_args(roots, values, str(chosen))[1] == str(chosen) and chosen.is_file()
    assert train_actions.load_args(roots, form.defaults(), str(chosen))[0] == values
    outside = tmp_path.parent / f"{tmp_path.name}-elsewhere.yaml"
    assert "outside the allowed folders" in train_actions.save_args(roots, values, str(outside))[0]
    assert not outside.exists()
    assert "must end in .yaml" in train_actions.save_args(roots, values, str(tmp_path / "x.txt"))[0]
    assert train_actions.load_args(roots, form.defaults(), str(tmp_path / "none.yaml"))[0] is None


def test_the_command_preview_is_what_start_runs(runs_root, tmp_path, tiny_model_dir, stub_flows, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = write_registry(tmp_path / "data")
    roots = Roots.from_spec([tmp_path, tiny_model_dir])
    values = board_form(model_name_or_path=str(tiny_model_dir), dataset_dir=str(data), save_steps=0.0)
    shown = train_actions.command_preview(roots, values)
    planned = train_actions.prepare(roots, values)
    assert f"```bash\n{' '.join(planned.command)}\n```" in shown
    assert f"```yaml\n{planned.yaml_text}```" in shown and f"genie run {planned.yaml_path}" in shown
    message, sub = train_actions.start(roots, values)
    assert sub is not None, message
    assert sub.command == planned.command and sub.folder / runs.PIPELINE_FILE == planned.yaml_path
    assert planned.yaml_path.read_text() == planned.yaml_text  # byte for byte what the preview showed
    assert board_state.load_form() == values and board_state.recent_models() == [str(tiny_model_dir)]
    bad = train_actions.command_preview(roots, {**values, "extra": "learnin_rate: 1"})
    assert bad.startswith("**Error:**") and "learning_rate" in bad


def test_the_form_is_kept_between_page_loads(runs_root):
    assert board_state.load_form() == form.defaults()  # nothing saved yet
    values = board_form(learning_rate=0.01, dataset=["a", "b"])
    train_actions.persist({**values, "not_a_field": 1})
    assert board_state.load_form() == values
    saved = json.loads((runs_root / "webui" / board_state.FORM_FILE).read_text())
    saved.update(max_steps="many", cutoff_len=None, gone=1)  # an older or hand-edited file
    (runs_root / "webui" / board_state.FORM_FILE).write_text(json.dumps(saved))
    kept = board_state.load_form()
    assert kept["max_steps"] == form.defaults()["max_steps"] and kept["cutoff_len"] == form.defaults()["cutoff_len"]
    assert kept["learning_rate"] == 0.01 and "gone" not in kept
    for n in range(board_state.RECENT_KEPT + 2):
        board_state.remember_model(f"/m{n}")
    board_state.remember_model("/m3")
    recent = board_state.recent_models()
    assert recent[:2] == ["/m3", f"/m{board_state.RECENT_KEPT + 1}"] and len(recent) == board_state.RECENT_KEPT


def test_models_offered_are_pulled_then_recent(tmp_path, monkeypatch):
    monkeypatch.setenv("GENIE_HOME", str(tmp_path / "home"))
    assert pulled_choices() == [("smollm2 (not pulled yet: fetched on first use)", "smollm2")]
    models = tmp_path / "home" / "models"
    for name in ("smollm2-135m-instruct", "mine"):
        for file in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
            (models / name).mkdir(parents=True, exist_ok=True)
            (models / name / file).write_text("{}")
    (models / "half").mkdir()  # an unfinished pull: not offered
    assert pulled_choices() == [("smollm2 (pulled)", "smollm2"), (str(models / "mine"), str(models / "mine"))]
    (tmp_path / "recent").mkdir()
    recent = [str(tmp_path / "recent"), str(tmp_path / "gone"), "smollm2", str(tmp_path / "recent")]
    assert [value for _, value in model_choices(recent)] == ["smollm2", str(models / "mine"), str(tmp_path / "recent")]


# ---- every run in the runs directory -----------------------------------------------------------------------------


def stage_folder(root: Path, pipeline: str, step: str, started: float, files: dict[str, str] | None = None) -> Path:
    """A stage folder as `genie run` leaves it: its config (written at ``started``) and ``files``."""
    folder = root / pipeline / f"{step}-{zlib.crc32(f'{pipeline}/{step}'.encode()):010x}"
    folder.mkdir(parents=True)
    (folder / run_files.CONFIG_FILE).write_text(yaml.safe_dump({"stage": step, "learning_rate": 0.01}))
    os.utime(folder / run_files.CONFIG_FILE, (started, started))
    for name, text in (files or {}).items():
        (folder / name).write_text(text)
    return folder


def test_the_run_list_holds_board_and_command_line_runs(runs_root):
    now = time.time()
    done = stage_folder(runs_root, "demo", "sft", now - 300, {"genie_result.json": "{}"})
    failed = stage_folder(runs_root, "demo", "rm", now - 200, {"stage.log": "==> x\nerror: dataset 'x' missing\n"})
    stopped = stage_folder(
        runs_root, "other", "dpo", now - 100, {"stage.log": "==> stopping the child process tree\n"}
    )
    (runs_root / "mlartifacts" / "llm-genie" / "0123456789abcdef0123456789abcdef").mkdir(parents=True)
    (runs_root / ".prefect-results").mkdir()
    sub = runs.Submission("mine", "sft", 1, now, ["x"], str(runs_root / "mine"))
    sub.folder.mkdir(parents=True)
    sub.save()
    (sub.folder / runs.EXIT_FILE).write_text("0")
    own = stage_folder(runs_root, "mine", "sft", now - 50)  # the board run's own stage: listed once, as `mine`
    listed = run_index.list_runs()
    assert [ref.id for ref in listed] == ["mine", "other/" + stopped.name, "demo/" + failed.name, "demo/" + done.name]
    assert [ref.state() for ref in listed] == ["finished", "stopped", "failed", "finished"]
    assert listed[0].stage_dir() == own and "(board," in listed[0].label and "(genie run," in listed[1].label
    assert run_index.open_run("demo/" + failed.name).failure() == "error: dataset 'x' missing"
    assert run_panel.run_choices()[1] == (listed[1].label, listed[1].id)
    for bad in ("demo/../other", "demo", "a/b/c", "demo/sft-zzzzzzzzzz", ""):
        with pytest.raises(GenieError):
            run_index.open_run(bad)


def test_a_command_line_stage_is_running_while_its_writer_lives(runs_root):
    folder = stage_folder(runs_root, "cli", "sft", time.time())
    ref = run_index.open_run(f"cli/{folder.name}")
    lock = DirLock(folder).acquire()  # what `genie run` holds while it runs the stage
    try:
        assert ref.state() == "running" and ref.phase() == run_files.STARTING
    finally:
        lock.release()
    assert ref.state() == "failed"  # the same process lives on, but the lock is gone: the stage is over
    (folder / run_files.TOKENIZE_LOG).write_text("")
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(30)", str(folder / run_files.CONFIG_FILE)]
    )
    try:  # the tokenizing child holds no lock: found by its command line
        assert ref.state() == "running" and ref.phase() == run_files.TOKENIZING
    finally:
        child.kill()
        child.wait()
    assert ref.state() == "failed"


def test_a_past_run_restores_its_settings(runs_root):
    values = board_form(lora_rank=16.0, extra="seed: 7", experiment="exp")
    config, name, experiment = train_actions.stage_config_of(values)
    planned = runs.plan_run(config, name, experiment)
    planned.folder.mkdir(parents=True)
    planned.yaml_path.write_text(planned.yaml_text)
    runs.Submission(planned.name, planned.step, 1, time.time(), planned.command, str(runs_root / "mine")).save()
    restored, message = train_actions.restore_run("mine")
    assert restored == values and "mine" in message
    folder = stage_folder(runs_root, "demo", "sft", time.time())
    restored, _ = train_actions.restore_run(f"demo/{folder.name}")
    assert restored["learning_rate"] == 0.01 and restored["run_name"] == "demo"
    assert train_actions.restore_run("nope")[0] is None


# ---- what the run view shows -------------------------------------------------------------------------------------


def test_progress_and_eta_from_trainer_log():
    records = [
        {"current_steps": 2, "total_steps": 10, "elapsed_time": 4.0, "loss": 2.0},
        {"current_steps": 4, "total_steps": 10, "elapsed_time": 8.0, "loss": 1.5},
    ]
    done = run_files.progress_of(records)
    assert (done.current, done.total, done.elapsed_s, done.eta_s, done.fraction) == (4, 10, 8.0, 12.0, 0.4)
    # resumed at step 4: elapsed_time starts again, the pace counts from step 4
    resumed = records + [{"current_steps": 6, "total_steps": 10, "elapsed_time": 1.0}]
    assert run_files.progress_of(resumed).eta_s == pytest.approx(2.0)
    assert run_files.progress_of([{"current_steps": 10, "total_steps": 10, "elapsed_time": 9}]).eta_s == 0.0
    assert run_files.progress_of([{"current_steps": 3, "total_steps": 10}]).eta_s is None
    assert run_files.progress_of([{"loss": 1.0}]) is None
    assert run_panel.progress_text("training", done) == "training · step 4/10 (40%) · 0:08 elapsed · about 0:12 left"
    assert run_panel.duration(3725) == "1:02:05"


LAUNCH = (
    "==> 2026-11-30 04:01:43 $ python -m accelerate.commands.launch -m genie_core.stage_child /r/genie_config.yaml"
)
DATA = "[04:02:03 INFO genie.data.assemble] Dataset 'alpaca_demo_en': 200 examples."
SAVING_DATA = "Saving the dataset (1/1 shards): 100%|██████████| 241/241 [00:00<00:00, 33945.44 examples/s]"
WEIGHTS = "Loading weights: 100%|██████████| 272/272 [00:00<00:00, 9188.77it/s]"
LOADED = "[04:02:05 INFO genie.model.loader] trainable params: 460800 || all params: 134975808"
BAR = "  5%|▌         | 1/20 [00:23<07:26, 23.52s/it]"
STEP = "[04:02:44 INFO genie.stages.callbacks] step 2/20 loss=2.743 grad_norm=1.626"
SAVED = "[04:38:20 INFO genie.stages.trainer] Model saved to /r"
COMPARE = "[05:05:02 INFO genie.stages.compare] Comparing base -> sft on 48 held-out prompts"


@pytest.mark.parametrize(
    "lines, phase",
    [
        ([], None),
        ([LAUNCH], "starting"),
        ([LAUNCH, DATA], "tokenizing"),
        ([LAUNCH, DATA, SAVING_DATA], "tokenizing"),
        ([LAUNCH, DATA, WEIGHTS], "loading model"),
        ([LAUNCH, DATA, WEIGHTS, LOADED], "loading model"),
        ([LAUNCH, DATA, WEIGHTS, LOADED, BAR], "training"),
        ([LOADED, BAR, STEP, BAR], "training"),
        ([STEP, SAVED], "saving"),
        ([STEP, SAVED, BAR], "evaluating"),  # the bar after training: the final evaluation
        ([LAUNCH, DATA, COMPARE, WEIGHTS, "Generating (base):  17%|█▋  | 1/6 [00:06<00:34]"], "evaluating"),
        ([STEP, "==> stopping the child process tree"], "stopping"),
    ],
)
def test_the_phase_comes_from_the_last_log_lines(lines, phase):
    assert run_files.phase_from_log(lines) == phase


def test_the_run_view_shows_phase_progress_and_the_last_log_lines(runs_root):
    log = [LAUNCH, DATA, WEIGHTS, LOADED] + [f"line {n}" for n in range(300)] + [BAR]
    records = [{"current_steps": s, "total_steps": 10, "elapsed_time": 2.0 * s, "loss": 3.0 / s} for s in (1, 2, 3)]
    files = {"stage.log": "\n".join(log) + "\n", "trainer_log.jsonl": "\n".join(map(json.dumps, records)) + "\n"}
    folder = stage_folder(runs_root, "cli", "sft", time.time(), files)
    lock = DirLock(folder).acquire()
    try:
        status, bar, curve, shown = run_panel.watch(f"cli/{folder.name}")
    finally:
        lock.release()
    assert status.startswith(f"**cli/{folder.name}**: running · step 3/10") and "(3 loss points)" in status
    assert 'data-phase="training"' in bar and "width: 30.0%" in bar
    assert "training · step 3/10 (30%) · 0:06 elapsed · about 0:14 left" in bar
    assert list(curve["step"]) == [1, 2, 3]
    assert shown.endswith(html.escape(BAR) + "</pre></div>") and "flex-direction: column-reverse" in shown
    assert "line 101\n" in shown and "line 100\n" not in shown  # the last LOG_LINES lines, oldest dropped
    # once it failed: the phase says so, with the child's error
    (folder / run_files.STAGE_LOG).write_text(LAUNCH + "\nerror: cutoff_len must be > 0\n")
    _, bar, _, _ = run_panel.watch(f"cli/{folder.name}")
    assert 'data-phase="failed"' in bar and "error: cutoff_len must be &gt; 0" in bar
    assert run_panel.stop(f"cli/{folder.name}").startswith(f"cli/{folder.name} was started by `genie run`")
    assert run_panel.watch(None)[0] == "No run selected." and "Error" in run_panel.watch("nope")[0]


def test_tail_lines_keeps_the_last_lines_and_the_last_refresh(tmp_path):
    path = tmp_path / "log"
    path.write_text("".join(f"l{n}\n" for n in range(100)) + "bar 10%\rbar 90%\n\n")
    assert run_files.tail_lines(path, 3) == ["l98", "l99", "bar 90%"]
    assert run_files.tail_lines(tmp_path / "missing", 3) == [] and run_files.tail_lines(None) == []


def test_the_board_builds_with_every_field_and_the_run_view(runs_root):
    """The layout the browser tests drive, built without a browser: every form field is wired, the model boxes
    take typed folders, and the run view has its progress bar and log box."""
    import gradio as gr

    from genie_core.webui.board import build_board

    demo = build_board(Roots.from_spec([runs_root.parent]))
    try:
        by_id = {block.elem_id: block for block in demo.blocks.values() if getattr(block, "elem_id", None)}
        for elem_id in ("model", "chat_model", "export_model"):
            assert isinstance(by_id[elem_id], gr.Dropdown) and by_id[elem_id].allow_custom_value
        assert isinstance(by_id["run_progress"], gr.HTML) and isinstance(by_id["log_tail"], gr.HTML)
        for elem_id in ("preview_command", "command_preview", "save_args", "load_args", "args_path", "run"):
            assert elem_id in by_id
        assert by_id["learning_rate"].value == form.defaults()["learning_rate"]
        assert by_id["stage"].choices == [(c, c) for c in form.choices_of("stage")]
    finally:
        demo.close()
