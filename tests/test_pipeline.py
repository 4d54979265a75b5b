"""Pipeline planning without running anything: YAML errors, cache keys, wiring, checkpoint choice, the gate,
the child-process runner, and the example pipelines and deployment files."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml
from helpers import write_registry

from genie_core.data import fingerprint
from genie_core.extras.errors import ConfigError
from genie_core.extras.process import StageFailed, is_important, run_child
from genie_core.pipeline.plan import plan_pipeline
from genie_core.pipeline.selection import gate_decision, select_best, value_at
from genie_core.pipeline.spec import load_pipeline
from genie_core.tracking import ModelVersionInfo

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def runs(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("GENIE_RUNS_DIR", str(tmp_path / "runs"))
    fingerprint.reset_memo()
    yield tmp_path / "runs"
    fingerprint.reset_memo()


def _pipeline(model_dir, data_dir, **stage_extra) -> dict:
    return {
        "name": "p",
        "defaults": {
            "model_name_or_path": str(model_dir),
            "template": "chatml",
            "dataset": "toy",
            "dataset_dir": str(data_dir),
            "cutoff_len": 64,
            "max_steps": 2,
        },
        "stages": {
            "a": {"stage": "sft", "learning_rate": 1e-3},
            "b": {"stage": "sft", "from": "a", "learning_rate": 1e-3, **stage_extra},
            "c": {"kind": "evaluate", "from": "b", "max_samples": 4},
            "x": {"kind": "export", "from": "b", "metric": "loss"},
            "r": {"kind": "register", "from": "x"},
        },
    }


def _keys(raw, overrides=None) -> dict[str, str]:
    return {p.name: p.key for p in plan_pipeline(load_pipeline(raw, overrides), validate=False)}


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda r: r["stages"]["b"].update({"from": "z"}), "stage 'b': from: 'z' must name an earlier stage"),
        (lambda r: r["stages"]["c"].update({"kind": "evalute"}), "kind 'evalute' is not one of"),
        (
            lambda r: r["stages"]["x"].update({"metrc": "loss"}),
            "unknown key 'metrc' for a export step. Did you mean 'metric'",
        ),
        (lambda r: r["stages"]["a"].update({"output_dir": "x"}), "stage 'a': remove `output_dir`"),
        (lambda r: r["stages"]["r"].update({"from": "a"}), "a register step reads from an export step"),
        (lambda r: r.update({"stagez": {}}), "unknown top-level key(s) ['stagez']"),
        (lambda r: r.update({"eval_split": 1.2}), "eval_split is the held-out fraction of every dataset, in [0, 1)"),
        (
            lambda r: (r.update({"eval_split": 0.2}), r["stages"]["b"].update({"eval_split": 0.3})),
            "stage 'b': eval_split is set for the whole pipeline (0.2); a stage cannot change it",
        ),
        (lambda r: r["stages"]["c"].update({"compare": "yes"}), "compare must be true"),
    ],
)
def test_structural_errors_name_stage_and_key(tmp_path, runs, mutate, message):
    raw = _pipeline(tmp_path / "model", write_registry(tmp_path / "data"))
    mutate(raw)
    with pytest.raises(ConfigError) as err:
        plan_pipeline(load_pipeline(raw), validate=False)
    assert message in str(err.value)


def test_bad_stage_config_fails_before_anything_runs(tmp_path, runs, tiny_model_dir):
    data = write_registry(tmp_path / "data")
    raw = _pipeline(tiny_model_dir, data)
    raw["stages"]["b"]["lerning_rate"] = 1
    with pytest.raises(
        ConfigError, match=r"stage 'b': Unknown config key 'lerning_rate'. Did you mean 'learning_rate'"
    ):
        plan_pipeline(load_pipeline(raw))
    raw = _pipeline(tiny_model_dir, data)
    raw["stages"]["c"]["dataset"] = "toyy"
    with pytest.raises(ConfigError, match=r"stage 'c': dataset 'toyy' is not defined"):
        plan_pipeline(load_pipeline(raw))
    assert not list(runs.glob("p/*"))  # nothing was created


def test_override_for_unknown_stage_suggests_one(tmp_path, runs):
    raw = _pipeline(tmp_path / "m", write_registry(tmp_path / "data"))
    with pytest.raises(ConfigError, match=r"no stage 'bb'. Did you mean 'b.max_steps'"):
        load_pipeline(raw, {"bb.max_steps": 3})


def test_keys_follow_config_data_and_upstream(tmp_path, runs, tiny_model_dir):
    data = write_registry(tmp_path / "data")
    raw = _pipeline(tiny_model_dir, data)
    base = _keys(raw)
    assert _keys(raw) == base  # deterministic

    lr_b = _keys(raw, {"b.learning_rate": 5e-4})
    assert lr_b["a"] == base["a"]
    assert all(lr_b[s] != base[s] for s in "bcxr")  # b and everything downstream of it

    lr_all = _keys(raw, {"learning_rate": 5e-4})  # a default override reaches every stage
    assert lr_all["a"] != base["a"] and lr_all["b"] != base["b"]

    assert _keys(raw, {"b.dataloader_num_workers": 2}) == base  # unkeyed: changes nothing the model learns

    toy = data / "toy.json"
    stamp = toy.stat().st_mtime_ns
    os.utime(toy, ns=(stamp + 10**9, stamp + 10**9))  # touched, same bytes
    assert _keys(raw) == base
    rows = json.loads(toy.read_text())
    rows[0]["output"] = "changed"
    toy.write_text(json.dumps(rows))
    assert all(_keys(raw)[s] != base[s] for s in "abc")  # dataset bytes changed


def test_wiring_fills_adapters_and_stage_dirs(tmp_path, runs, tiny_model_dir):
    raw = _pipeline(tiny_model_dir, write_registry(tmp_path / "data"), resume_lora_training=False)
    plans = {p.name: p for p in plan_pipeline(load_pipeline(raw), validate=False)}
    a, b, c, x = plans["a"], plans["b"], plans["c"], plans["x"]
    assert a.stage_dir == str(runs / "p" / f"a-{a.key[:10]}") and a.config["output_dir"] == a.stage_dir
    assert b.config["checkpoint_dir"] == a.stage_dir and b.config["model_name_or_path"] == str(tiny_model_dir)
    assert b.adapters == [a.stage_dir, b.stage_dir]  # a merged, a new adapter on top
    chain = [(m["name"], m["checkpoint_dir"]) for m in json.loads(c.config["compare_models"])]
    assert chain == [("base", None), ("a", a.stage_dir), ("b", f"{a.stage_dir},{b.stage_dir}")]  # every model
    assert "checkpoint_dir" not in c.config and c.config["model_name_or_path"] == str(tiny_model_dir)
    assert c.config["do_eval"] is True and c.config["do_predict"] is False
    assert c.config["do_train"] is False and x.upstream == {"from": "b"}
    raw["stages"]["c"]["compare"] = False  # the evaluation of `from:` alone
    c1 = {p.name: p for p in plan_pipeline(load_pipeline(raw), validate=False)}["c"]
    assert c1.config["checkpoint_dir"] == f"{a.stage_dir},{b.stage_dir}" and c1.config["do_predict"] is True
    del raw["stages"]["c"]["compare"]
    raw["stages"]["b"]["resume_lora_training"] = True
    b2 = {p.name: p for p in plan_pipeline(load_pipeline(raw), validate=False)}["b"]
    assert b2.adapters == [b2.stage_dir]  # the same adapter, trained further


def test_full_stage_cannot_start_from_lora(tmp_path, runs, tiny_model_dir):
    raw = _pipeline(tiny_model_dir, write_registry(tmp_path / "data"), finetuning_type="full")
    with pytest.raises(ConfigError, match=r"stage 'b': full tuning cannot start from the LoRA adapters of 'a'"):
        plan_pipeline(load_pipeline(raw), validate=False)


def _stage_with_history(tmp_path, history, final_step, checkpoints, metrics=None) -> dict:
    out = tmp_path / "stage"
    for step in checkpoints:
        (out / f"checkpoint-{step}").mkdir(parents=True)
        (out / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    (out / "checkpoint-9").mkdir()  # incomplete: no trainer_state.json
    (out / "trainer_state.json").write_text(json.dumps({"global_step": final_step, "log_history": history}))
    return {
        "name": "sft",
        "output_dir": str(out),
        "model_name_or_path": "base",
        "adapters": ["sft0", str(out)],
        "metrics": metrics or {},
    }


def test_best_checkpoint_by_metric(tmp_path):
    history = [
        {"step": 2, "loss": 3.0},
        {"step": 2, "eval_loss": 2.5},
        {"step": 4, "loss": 2.0},
        {"step": 4, "eval_loss": 1.5},
        {"step": 6, "loss": 1.0},
        {"step": 6, "eval_loss": 1.9},
    ]
    source = _stage_with_history(tmp_path, history, 6, [2, 4, 6])
    assert value_at(history, "eval_loss", 5) == 1.5 and value_at(history, "eval_loss", 1) is None
    best, scored = select_best(source, "eval_loss", "min")
    assert best["label"] == "checkpoint-4" and best["value"] == 1.5
    assert best["adapters"] == ["sft0", str(Path(source["output_dir"]) / "checkpoint-4")]
    assert [c["label"] for c in scored] == ["final", "checkpoint-2", "checkpoint-4"]  # 6 is the final model
    assert select_best(source, "loss", "min")[0]["label"] == "final"
    assert select_best(source, "eval_loss", "max")[0]["label"] == "checkpoint-2"
    assert select_best(source, None, "min")[0]["label"] == "final"
    with pytest.raises(ConfigError, match=r"metric 'bleu' was never logged by stage 'sft'; logged: eval_loss, loss"):
        select_best(source, "bleu", "max")
    evaluated = {"name": "evaluate", "metrics": {"predict_bleu-4": 12.5}}
    best, _ = select_best(source, "predict_bleu-4", "max", evaluated)
    assert best["label"] == "final" and best["value"] == 12.5


def test_champion_gate():
    holder = ModelVersionInfo("m", "3", "/x", tags={"genie.metric": "eval_loss", "genie.metric.value": "1.5"})
    assert gate_decision(None, "eval_loss", 9.0)[0]  # nothing to beat
    assert gate_decision(holder, "eval_loss", 1.2)[0]
    assert not gate_decision(holder, "eval_loss", 1.6)[0]
    assert not gate_decision(holder, "eval_loss", 1.45, min_delta=0.1)[0]
    assert gate_decision(holder, "eval_loss", 1.6, gate=False)[0]
    assert not gate_decision(holder, "reward", 1.6, mode="max")[0]  # measured differently: never silently replaced
    reward_holder = ModelVersionInfo("m", "1", "/x", tags={"genie.metric": "reward", "genie.metric.value": "0.2"})
    assert gate_decision(reward_holder, "reward", 0.3, mode="max")[0]
    assert not gate_decision(reward_holder, "reward", 0.1, mode="max")[0]


def test_champion_gate_on_heldout_evidence():
    """Held out: beat the predecessor on the same prompts, then the holder only if it was measured the same way."""
    tags = {
        "genie.metric": "eval/ppo/reward_mean",
        "genie.metric.value": "0.5",
        "genie.eval.split": "s1",
        "genie.eval.scorer": "r1",
    }
    holder = ModelVersionInfo("m", "4", "/x", tags=tags)
    evidence = {"split": "s1", "scorer": "r1", "prompts": 40, "baseline": "sft", "baseline_value": 0.3}
    metric = "eval/ppo/reward_mean"
    ok, why = gate_decision(None, metric, 0.2, "max", heldout=evidence)
    assert not ok and "does not beat sft's 0.3 on the same 40 held-out prompts" in why  # worse than where it started
    ok, why = gate_decision(None, metric, 0.4, "max", heldout=evidence)
    assert ok and "no current holder" in why and "sft's 0.3" in why
    assert gate_decision(holder, metric, 0.6, "max", heldout=evidence)[0]
    ok, why = gate_decision(holder, metric, 0.45, "max", heldout=evidence)  # beats sft, not the holder
    assert not ok and "does not beat 0.5 of v4" in why
    ok, why = gate_decision(holder, metric, 0.9, "max", heldout={**evidence, "split": "s2"})
    assert not ok and "another held-out split" in why  # other prompts: the numbers do not compare
    ok, why = gate_decision(holder, metric, 0.9, "max", heldout={**evidence, "scorer": "r2"})
    assert not ok and "another held-out scorer" in why
    assert gate_decision(holder, metric, 0.1, "max", gate=False, heldout=evidence)[0]


def test_export_by_heldout_metric_needs_a_comparison(tmp_path, runs, tiny_model_dir):
    raw = _pipeline(tiny_model_dir, write_registry(tmp_path / "data"))
    raw["stages"]["x"]["metric"] = "eval/b/reward_mean"
    plans = {p.name: p for p in plan_pipeline(load_pipeline(raw), validate=False)}
    assert plans["x"].upstream["metric_from"] == "c" and plans["x"].options["mode"] == "max"
    raw["stages"]["x"]["metric"] = "eval/b/log_ratio"  # a cost: lower is better
    assert {p.name: p for p in plan_pipeline(load_pipeline(raw), validate=False)}["x"].options["mode"] == "min"
    raw["stages"]["x"]["metric"] = "eval/b/reward_mean"
    raw["stages"]["c"]["from"] = "a"
    with pytest.raises(ConfigError, match="no evaluate step compares 'b'"):
        plan_pipeline(load_pipeline(raw), validate=False)
    raw["stages"]["c"] = {"kind": "evaluate", "stage": "rm", "from": "a"}
    raw["stages"]["a"]["stage"] = "rm"
    with pytest.raises(ConfigError, match="'a' is a reward model; an evaluate step compares generating models"):
        plan_pipeline(load_pipeline(raw), validate=False)


def test_important_lines():
    assert is_important("[10:01:02 INFO genie.stages.callbacks] step 3/10 loss=2.1 learning_rate=0.0001")
    assert is_important("RuntimeError: CUDA out of memory")
    assert not is_important(" 40%|████      | 4/10 [00:02<00:03,  1.9it/s]")
    assert not is_important("Loading weights: 100%|██████████| 24/24")
    assert not is_important("some library chatter")


_SPAWNER = """
import subprocess, sys, time
# a grandchild in its own session, as torchrun's workers are
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
print("[10:00:00 INFO genie.test] started", flush=True)
time.sleep(600)
"""


def test_interrupted_child_tree_is_killed(tmp_path):
    seen = []

    class Interrupting:
        def log(self, level, line):
            seen.append(line)
            raise KeyboardInterrupt  # what Ctrl-C or a cancelled flow's SIGTERM raises in the task

    me = psutil.Process()
    before = {p.pid for p in psutil.process_iter()}
    with pytest.raises(KeyboardInterrupt):
        run_child([sys.executable, "-c", _SPAWNER], dict(os.environ), tmp_path / "log", log=Interrupting(), grace_s=5)
    assert seen == ["[10:00:00 INFO genie.test] started"]
    time.sleep(0.5)
    new = [p for p in psutil.process_iter(["cmdline"]) if p.pid not in before and p.pid != me.pid]
    leftover = [p for p in new if "time.sleep(600)" in " ".join(p.info["cmdline"] or [])]
    assert not leftover, leftover
    assert "stopping the child process tree" in (tmp_path / "log").read_text()


def test_failed_child_raises_with_log_tail(tmp_path):
    script = "import sys; print('working'); print('ValueError: bad row 7', file=sys.stderr); sys.exit(3)"
    with pytest.raises(StageFailed) as err:
        run_child([sys.executable, "-c", script], dict(os.environ), tmp_path / "stage.log")
    assert "code 3" in str(err.value) and "ValueError: bad row 7" in err.value.tail
    assert "working" in (tmp_path / "stage.log").read_text()


def test_example_pipelines_are_valid(runs, monkeypatch):
    """Every example plans and validates (config keys, templates, datasets) the way `genie run` would."""
    monkeypatch.chdir(ROOT)
    for path in sorted((ROOT / "examples" / "pipelines").glob("*.yaml")):
        first = path.read_text().splitlines()[0]
        assert first == f"# genie run examples/pipelines/{path.name}", path
        plans = plan_pipeline(load_pipeline(path))
        kinds = [p.kind for p in plans]
        assert kinds[-2:] == ["export", "register"], path
    rlhf = {p.name: p for p in plan_pipeline(load_pipeline(ROOT / "examples/pipelines/rlhf_smollm2.yaml"), False)}
    assert rlhf["ppo"].config["reward_model"] == rlhf["rm"].stage_dir
    chain = json.loads(rlhf["evaluate"].config["compare_models"])
    assert [(m["name"], m["checkpoint_dir"]) for m in chain] == [
        ("base", None),
        ("sft", rlhf["sft"].stage_dir),
        ("ppo", f"{rlhf['sft'].stage_dir},{rlhf['ppo'].stage_dir}"),
    ]
    assert all(p.config["eval_split"] == 0.2 for p in rlhf.values() if p.kind in ("train", "evaluate"))
    assert rlhf["export"].upstream["metric_from"] == "evaluate" and rlhf["export"].options["mode"] == "max"


def test_deployment_file_schedules_pipelines():
    data = yaml.safe_load((ROOT / "deployments" / "prefect.yaml").read_text())
    pull = data["pull"][0]["prefect.deployments.steps.set_working_directory"]
    assert pull["directory"] == "{{ $PWD }}"  # resolved at deploy time, not a machine path
    for dep in data["deployments"]:
        assert dep["entrypoint"] == "flows/pipelines.py:pipeline"
        assert (ROOT / dep["parameters"]["config"]).is_file()
        assert dep["work_pool"]["name"] == "genie-local"
        assert dep["schedules"][0]["cron"] and dep["schedules"][0]["timezone"]


def test_accelerate_configs_load():
    from accelerate.commands.config.config_args import load_config_from_file

    kinds = {}
    for path in sorted((ROOT / "deployments" / "accelerate").glob("*.yaml")):
        kinds[path.stem] = str(load_config_from_file(str(path)).distributed_type)
    assert kinds == {
        "deepspeed_zero2": "DistributedType.DEEPSPEED",
        "deepspeed_zero3": "DistributedType.DEEPSPEED",
        "fsdp": "DistributedType.FSDP",
        "multi_gpu_ddp": "DistributedType.MULTI_GPU",
        "single_device": "DistributedType.NO",
    }


def test_genie_run_and_deploy_refuse_bad_input_fast(tmp_path, monkeypatch):
    import subprocess

    bad = tmp_path / "bad.yaml"
    bad.write_text("name: p\nstages:\n  a: {stage: sft}\n  b: {from: c}\n")
    proc = subprocess.run([sys.executable, "-m", "flows.cli", "run", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2 and "stage 'b': from: 'c' must name an earlier stage" in proc.stderr
    assert "Prefect" not in proc.stdout  # refused before any flow started

    from flows.deploy import main as deploy

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    assert deploy([]) == 2


def test_grpo_key_follows_its_reward_function_file_and_rm_step(tmp_path, runs, tiny_model_dir):
    """Editing a reward function's file gives the grpo stage a new key; an rm step named in reward_funcs is wired."""
    data = write_registry(tmp_path / "data")
    scorer = tmp_path / "scorer.py"
    scorer.write_text("def short(prompts, completions, **kw):\n    return [-len(c) for c in completions]\n")
    raw = _pipeline(tiny_model_dir, data)
    raw["stages"] = {
        "rm": {"stage": "rm", "dataset": "toy"},
        "g": {"stage": "grpo", "reward_funcs": f"{scorer}:short,rm,rule:length:8", "num_generations": 2},
    }
    plans = {p.name: p for p in plan_pipeline(load_pipeline(raw), validate=False)}
    assert plans["g"].config["reward_funcs"].split(",")[1] == plans["rm"].stage_dir
    assert plans["g"].upstream["reward_funcs.rm"] == "rm"
    before = plans["g"].key
    assert _keys(raw)["g"] == before
    scorer.write_text("def short(prompts, completions, **kw):\n    return [-2 * len(c) for c in completions]\n")
    assert _keys(raw)["g"] != before


def test_steps_sharing_a_first_adapter_keep_one_merged_base(tmp_path, monkeypatch):
    """The demo's rm, ppo and evaluate steps all merge the SFT adapter first: they get one merged-base cache."""
    from genie_core.pipeline.plan import MERGED_DIR, UNKEYED, plan_pipeline
    from genie_core.pipeline.spec import load_pipeline

    monkeypatch.setenv("GENIE_RUNS_DIR", str(tmp_path / "runs"))
    demo = Path(__file__).resolve().parents[1] / "examples" / "pipelines" / "rlhf_smollm2.yaml"
    plans = {p.name: p for p in plan_pipeline(load_pipeline(str(demo)), validate=False)}
    kept = str(tmp_path / "runs" / "rlhf_smollm2" / MERGED_DIR)
    assert [n for n, p in plans.items() if p.config and p.config.get("merge_cache_dir") == kept] == [
        "rm",
        "ppo",
        "evaluate",
    ]
    assert "merge_cache_dir" in UNKEYED and not plans["sft"].config.get("merge_cache_dir")  # nothing to merge


@pytest.mark.parametrize("raised, code", [("interrupted", 143), ("ctrl-c", 130)])
def test_genie_run_stops_its_warm_interpreter_before_a_quick_exit(
    tmp_path, runs, tiny_model_dir, monkeypatch, raised, code
):
    """An interrupted flow (reported) or a Ctrl-C before the flow began (no traceback) ends `genie run` with
    os._exit, which skips every `finally`: the warm interpreter must be stopped and gone before it, not left to
    its parent-death signal after this process. The real warm interpreter runs (stopped mid-import)."""
    from flows import run
    from genie_core.extras import supervise, warm

    if not warm.enabled():
        pytest.skip("no warm interpreter on this machine (a GPU is visible, or the platform has no fork)")
    data = write_registry(tmp_path / "data")
    config = tmp_path / "p.yaml"
    config.write_text(yaml.safe_dump(_pipeline(tiny_model_dir, data), sort_keys=False))
    started = {}

    def fake_run(spec, config, overrides):
        started["pid"] = warm.serving_pid()
        assert started["pid"] and psutil.pid_exists(started["pid"])
        raise run._Interrupted(code) if raised == "interrupted" else KeyboardInterrupt

    def exit_now(status):
        proc = psutil.Process(started["pid"]) if psutil.pid_exists(started["pid"]) else None
        started["alive_at_exit"] = proc is not None and proc.status() != psutil.STATUS_ZOMBIE
        raise SystemExit(status)

    monkeypatch.setattr(run, "_run", fake_run)
    monkeypatch.setattr(supervise, "quick_exit", exit_now)
    with pytest.raises(SystemExit) as stopped:
        run.main([str(config)])
    assert stopped.value.code == code and started["alive_at_exit"] is False
