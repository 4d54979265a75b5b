"""`genie webchat` and `genie webui` served on 127.0.0.1 and driven in headless Chromium (Debian's, via playwright).

The board test is one story told over several tests, in file order: a run started from the page (tiny model, LoRA,
3 steps) runs against a Prefect server and a sqlite MLflow store of this module's own; the page previews the exact
command and YAML, saves the arguments, starts, and is closed at once; the other pages are exercised while it trains;
a reloaded page finds the form as it was left; then the run must have finished without any page open, be recorded
in Prefect and MLflow, and show its loss curve, progress and log end when a page is opened again. Last, a stage
folder as `genie run` leaves it appears in the run list, and selecting it puts its settings in the form.
Screenshots go to tmp dirs.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from helpers import write_registry

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium")
EXPERIMENT = "genie-webui-tests"
RUN_NAME = "board-run"
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (`.ci/run` installs it)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(cmd: list[str], log: Path, env: dict[str, str], cwd: Path) -> subprocess.Popen:
    with open(log, "wb") as fh:
        return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True)


def wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{url} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not come up:\n{log.read_text()[-3000:]}")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def markdown(page, elem_id: str) -> str:
    """The rendered text of a gr.Markdown (not its progress indicator)."""
    return page.locator(f"#{elem_id} [data-testid=markdown]").inner_text()


def wait_markdown(page, elem_id: str, pattern: str, timeout_s: float = 60) -> str:
    deadline = time.monotonic() + timeout_s
    text = ""
    while time.monotonic() < deadline:
        text = markdown(page, elem_id)
        if re.search(pattern, text):
            return text
        page.wait_for_timeout(250)
    raise AssertionError(f"#{elem_id} never matched {pattern!r}; last: {text!r}")


def pick(page, elem_id: str, option: str) -> None:
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=option, exact=True).click()


def open_board(page, url: str | None = None) -> None:
    """Open (or reload) the board and wait for its load event: it fills the form as last left, so typing before
    it ends would be overwritten."""
    if url:
        page.goto(url)
    else:
        page.reload()
    wait_markdown(page, "data_note", "datasets in|Error")


def type_in(page, elem_id: str, text: str) -> None:
    """Type into an editable dropdown (the model box) and confirm the typed value."""
    page.locator(f"#{elem_id} input").fill(text)
    page.locator(f"#{elem_id} input").press("Enter")


def log_box_geometry(page, elem_id: str) -> dict:
    """How the log box's text sits in the box: whether it overflows, and how far its end is from the box's bottom."""
    return page.evaluate(
        """id => { const pre = document.querySelector(`#${id} pre`);
        const box = pre.parentElement.getBoundingClientRect(), text = pre.getBoundingClientRect();
        return {overflows: text.height > box.height + 1, end_above_bottom: box.bottom - text.bottom}; }""",
        elem_id,
    )


def letters(text: str) -> str:
    """Text without markup, whitespace and control characters: what survives markdown rendering unchanged."""
    return re.sub(r"[\W_]+", "", text)


def wait_reply(page, index: int, expected: str, timeout_s: float = 30) -> str:
    """The ``index``-th reply in #chatbot once it reads ``expected`` (streaming may take a moment), or as it is."""
    replies, shown = page.locator("#chatbot [data-testid=bot]"), ""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if replies.count() > index:
            shown = replies.nth(index).inner_text()
            if letters(shown) == letters(expected):
                break
        page.wait_for_timeout(200)
    return shown


@pytest.fixture(scope="module")
def env(tmp_path_factory, tiny_model_dir):
    """Folders and environment for every server and run; a Prefect API server and `genie webui` start booting here,
    side by side, and are waited for only when a test needs them."""
    root = tmp_path_factory.mktemp("webui")
    write_registry(root / "data")
    prefect_port, board_port = free_port(), free_port()
    env = {
        **os.environ,
        "GENIE_HOME": str(root / "home"),
        "GENIE_RUNS_DIR": str(root / "runs"),
        "PREFECT_HOME": str(root / "prefect"),
        "PREFECT_API_URL": f"http://127.0.0.1:{prefect_port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PYTHONUNBUFFERED": "1",
    }
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID", "GENIE_TRACKING"):
        env.pop(key, None)
    cmd = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(prefect_port)]
    cmd += ["--no-services", "--no-ui", "--analytics-off"]
    prefect = start_server(cmd, root / "prefect.log", env, root)
    # the board accepts paths under its folder and the tiny model's; its default dataset folder is ./data
    cmd = [
        sys.executable,
        "-m",
        "flows.cli",
        "webui",
        "--port",
        str(board_port),
        "--roots",
        f"{root},{tiny_model_dir}",
    ]
    board = start_server(cmd, root / "webui.log", env, root)
    mp = pytest.MonkeyPatch()
    for key in ("GENIE_HOME", "GENIE_RUNS_DIR"):  # so this process reads the same runs dir and MLflow store
        mp.setenv(key, env[key])
    for key in ("MLFLOW_TRACKING_URI", "GENIE_TRACKING"):
        mp.delenv(key, raising=False)
    try:
        yield {
            "root": root,
            "env": env,
            "prefect": prefect,
            "api": env["PREFECT_API_URL"],
            "board": board,
            "board_url": f"http://127.0.0.1:{board_port}",
        }
    finally:
        mp.undo()
        stop_server(board)
        stop_server(prefect)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def board(env):
    """The `genie webui` server, once it answers."""
    wait_http(env["board_url"], env["board"], env["root"] / "webui.log")
    return {"url": env["board_url"], "proc": env["board"]}


@pytest.fixture(scope="module")
def submitted(env, board, browser, tiny_model_dir):
    """Fill the Train tab, preview the dataset and the command, save the arguments, Start a 3-step LoRA run and
    close the page at once."""
    from genie_core.webui import runs

    page = browser.new_page(viewport={"width": 1400, "height": 2400})
    open_board(page, board["url"])
    type_in(page, "model", str(tiny_model_dir))
    pick(page, "template", "chatml")
    pick(page, "dataset", "toy")  # the default dataset folder is ./data, listed when the page loads
    page.locator("#preview_button").click()
    page.wait_for_selector("#preview .genie-preview-row", timeout=60_000)
    preview = page.locator("#preview").inner_text()
    page.screenshot(path=str(env["root"] / "board-preview.png"), full_page=True)
    for key, value in {"max_steps": "3", "logging_steps": "1", "cutoff_len": "64", "save_steps": "0"}.items():
        page.locator(f"#{key} input").fill(value)
    page.locator("#run_name textarea").fill(RUN_NAME)
    page.locator("#experiment textarea").fill(EXPERIMENT)
    page.locator("#preview_command").click()
    shown = wait_markdown(page, "command_preview", "genie run|Error", timeout_s=120)
    assert "Error" not in shown, shown
    command = page.locator("#command_preview pre").nth(0).inner_text()
    shown_yaml = page.locator("#command_preview pre").nth(1).inner_text()
    page.locator("#save_args").click()
    saved = wait_markdown(page, "message", "Saved|Error")
    wait_http(env["api"] + "/health", env["prefect"], env["root"] / "prefect.log")
    page.locator("#start").click()
    message = wait_markdown(page, "message", "Started|Error")
    page.close()  # the run must not care
    sub = runs.Submission.load(RUN_NAME) if "Started" in message else None
    try:
        yield {
            "preview": preview,
            "message": message,
            "sub": sub,
            "closed_at": time.monotonic(),
            "command": command,
            "yaml": shown_yaml,
            "saved": saved,
        }
    finally:
        if sub is not None and runs.status(sub) in ("running", "stopping"):
            runs.stop(sub, grace_s=5)
            time.sleep(6)


def test_board_previews_formatted_rows_and_starts_a_detached_run(submitted, board):
    assert "toy.json:0" in submitted["preview"]
    assert (
        "<|im_start|>user\nAdd 1 and 1.<|im_end|>\n<|im_start|>assistant\nThe answer is 2.<|im_end|>"
        in (submitted["preview"])
    )
    assert f"Started {RUN_NAME}" in submitted["message"], submitted["message"]
    sub = submitted["sub"]
    assert Path(sub.command[0]).name == "genie" and sub.command[1] == "run"  # the documented command
    # the preview showed exactly the command and YAML that Start then ran
    assert submitted["command"].strip() == " ".join(sub.command)
    written = (sub.folder / "pipeline.yaml").read_text()
    assert submitted["yaml"].strip() == written.strip()
    saved = Path(os.environ["GENIE_RUNS_DIR"]) / "webui" / "saved" / f"{RUN_NAME}.yaml"
    assert f"Saved the arguments to {saved}" in submitted["saved"]
    saved_stage, run_stage = (
        yaml.safe_load(saved.read_text())["stages"]["sft"],
        yaml.safe_load(written)["stages"]["sft"],
    )
    assert saved_stage.pop("dataset_dir") == "data"  # as typed; Start resolves it
    assert saved_stage == {k: v for k, v in run_stage.items() if k != "dataset_dir"}
    try:
        assert os.getsid(sub.pid) == sub.pid != os.getsid(board["proc"].pid)  # not in the board's session
    except ProcessLookupError:
        pass  # already finished


def test_paths_outside_the_roots_are_refused(board, browser, env, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    write_registry(outside / "data")
    page = browser.new_page()
    open_board(page, board["url"])
    page.locator("#dataset_dir textarea").fill(str(outside / "data"))
    page.locator("#dataset_dir textarea").press("Enter")
    assert "outside the allowed folders" in wait_markdown(page, "data_note", "outside")
    type_in(page, "model", str(outside))
    page.locator("#start").click()
    text = wait_markdown(page, "message", "Error")
    assert f"model_name_or_path: {outside.resolve()} is outside the allowed folders" in text
    page.screenshot(path=str(env["root"] / "board-refused.png"), full_page=True)
    # a reload finds the form as it was left (kept by the board, refused paths and all), not a fresh one
    page.wait_for_timeout(1500)  # the form is saved as it changes
    open_board(page)
    assert page.locator("#model input").input_value() == str(outside)
    assert page.locator("#dataset_dir textarea").input_value() == str(outside / "data")
    assert page.locator("#max_steps input").input_value() == "3"  # as the first page set it
    assert page.locator("#run_name textarea").input_value() == RUN_NAME
    page.close()


def test_webchat_streams_the_engines_greedy_reply(browser, tiny_model_dir, tmp_path):
    """The `genie webchat` page, served from this process so the reply can be compared with the same engine's."""
    from genie_core.chat.args import parse_infer_args
    from genie_core.chat.engine import ChatEngine
    from genie_core.webui.chat_page import PageArguments, build_chat_page
    from genie_core.webui.common import serve

    port = free_port()
    argv = ["--model_name_or_path", str(tiny_model_dir), "--template", "chatml", "--do_sample", "false"]
    args, (page_args,) = parse_infer_args([*argv, "--max_new_tokens", "16", "--port", str(port)], PageArguments)
    assert (page_args.host, page_args.port) == ("127.0.0.1", port)
    engine = ChatEngine.from_args(args)
    demo = build_chat_page(engine)
    try:
        expected = engine.chat([{"role": "user", "content": "hello"}])[0].text
        assert letters(expected)
        url = serve(demo, page_args.host, page_args.port, block=False)
        page = browser.new_page()
        page.goto(url)
        page.locator("#query textarea").fill("hello")
        page.locator("#send").click()
        shown = wait_reply(page, 0, expected)
        assert page.locator("#chatbot [data-testid=user]").inner_text() == "hello"
        assert letters(shown) == letters(expected), (shown, expected)
        # a second turn sends the first one back as history
        turns = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": expected}]
        second = engine.chat([*turns, {"role": "user", "content": "Add 1 and 2."}])[0].text
        page.locator("#query textarea").fill("Add 1 and 2.")
        page.locator("#send").click()
        assert letters(wait_reply(page, 1, second)) == letters(second)
        page.screenshot(path=str(tmp_path / "webchat.png"), full_page=True)
        page.locator("#clear").click()
        page.wait_for_selector("#chatbot [data-testid=bot]", state="detached", timeout=10_000)
        page.close()
    finally:
        demo.close()
        engine.close()


def test_run_finishes_with_the_page_closed_and_is_tracked(submitted, board, browser, env):
    import httpx
    from mlflow import MlflowClient

    from genie_core.tracking import tracking_uri
    from genie_core.webui import runs

    sub = submitted["sub"]
    assert sub is not None, submitted["message"]
    deadline = time.monotonic() + 400
    while runs.status(sub) == "running" and time.monotonic() < deadline:
        time.sleep(1)
    assert runs.status(sub) == "finished", runs.log_tail(sub, 60)

    client = MlflowClient(tracking_uri())
    experiment = client.get_experiment_by_name(EXPERIMENT)
    [parent] = client.search_runs([experiment.experiment_id], f"attributes.run_name = '{RUN_NAME}'")
    assert parent.info.status == "FINISHED"
    [stage] = client.search_runs([experiment.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert [m.step for m in client.get_metric_history(stage.info.run_id, "loss")] == [1, 2, 3]
    flow_run = httpx.get(f"{env['api']}/flow_runs/{parent.data.tags['prefect.flow_run_id']}").json()
    assert flow_run["state"]["type"] == "COMPLETED" and flow_run["parameters"]["config"].endswith("pipeline.yaml")

    page = browser.new_page(viewport={"width": 1400, "height": 2400})
    page.goto(board["url"])  # the newest run is selected when the page loads
    status = wait_markdown(page, "run_status", "finished.*loss points", timeout_s=30)
    assert f"{RUN_NAME}: finished" in status and "step 3/3" in status and "(3 loss points)" in status
    page.wait_for_selector("#loss_plot .mark-line path", timeout=15_000)  # the curve is drawn
    progress = page.locator("#run_progress .genie-progress")
    assert progress.get_attribute("data-phase") == "finished"
    assert progress.inner_text().startswith("finished · step 3/3 (100%) · ")
    assert f"Pipeline {RUN_NAME} finished" in page.locator("#log_tail pre").inner_text()
    box = log_box_geometry(page, "log_tail")  # the box opens on the log's end, not its beginning
    assert 0 <= box["end_above_bottom"] <= 20, box
    assert box["overflows"] or len(runs.log_tail(sub, 200).splitlines()) < 15, box
    page.screenshot(path=str(env["root"] / "board-finished.png"), full_page=True)
    page.close()


def test_board_chats_with_the_result_and_exports_it(submitted, board, browser, env):
    from genie_core.webui import runs

    assert submitted["sub"] is not None and runs.status(submitted["sub"]) == "finished"
    page = browser.new_page(viewport={"width": 1400, "height": 1600})
    page.goto(board["url"])
    wait_markdown(page, "run_status", "finished")
    page.get_by_role("tab", name="Chat").click()
    page.locator("#chat_use_run").click()
    wait_markdown(page, "chat_message", f"Filled in from {RUN_NAME}")
    page.locator("#chat_load").click()
    assert "template chatml" in wait_markdown(page, "chat_message", "Loaded|Error")
    page.locator("#chat_query textarea").fill("Add 1 and 2.")
    page.locator("#chat_send").click()
    page.wait_for_selector("#chat_chatbot [data-testid=bot]", timeout=30_000)
    page.screenshot(path=str(env["root"] / "board-chat.png"), full_page=True)

    page.get_by_role("tab", name="Export").click()
    page.locator("#export_use_run").click()
    wait_markdown(page, "export_message", "Filled in")
    out = env["root"] / "exported"
    page.locator("#export_dir textarea").fill(str(out))
    page.locator("#export_button").click()
    assert str(out) in wait_markdown(page, "export_message", "Exported|Error", timeout_s=120)
    assert (out / "model.safetensors").is_file() and (out / "genie_export.json").is_file()
    page.close()


def test_board_lists_a_genie_run_stage_and_restores_its_settings(submitted, board, browser, env, tiny_model_dir):
    """A stage folder as `genie run` in a terminal leaves it (the finished run's own files, in another pipeline)."""
    from genie_core.webui import runs

    source = runs.stage_dir(submitted["sub"])
    cli = Path(os.environ["GENIE_RUNS_DIR"]) / "cli-pipe" / "sft-0123456789"
    shutil.copytree(source, cli)
    config = yaml.safe_load((cli / "genie_config.yaml").read_text())
    config.update(learning_rate=0.0123, output_dir=str(cli))
    (cli / "genie_config.yaml").write_text(yaml.safe_dump(config))  # written now: the newest run

    page = browser.new_page(viewport={"width": 1400, "height": 2400})
    page.goto(board["url"])
    status = wait_markdown(page, "run_status", "cli-pipe", timeout_s=30)
    assert "cli-pipe/sft-0123456789: finished · step 3/3" in status
    assert "cli-pipe/sft-0123456789/stage.log" in page.locator("#log_tail").inner_text()
    page.locator("#model input").click()  # the models offered: the registry's, then recently used ones
    models = page.get_by_role("option").all_inner_texts()
    assert "smollm2 (not pulled yet: fetched on first use)" in models and str(tiny_model_dir) in models, models
    page.keyboard.press("Escape")
    page.locator("#run input").click()
    options = page.get_by_role("option").all_inner_texts()
    assert any("cli-pipe/sft-0123456789 (genie run," in o for o in options), options
    assert any(f"{RUN_NAME} (board," in o for o in options), options
    page.get_by_role("option", name="cli-pipe/sft-0123456789 (genie run,").click()  # a substring of the label
    wait_markdown(page, "message", "settings of cli-pipe/sft-0123456789")
    assert page.locator("#learning_rate input").input_value() == "0.0123"
    assert page.locator("#run_name textarea").input_value() == "cli-pipe"
    page.wait_for_timeout(1500)  # the restored form is saved as it changes
    open_board(page)
    assert page.locator("#learning_rate input").input_value() == "0.0123"  # kept over the reload
    page.screenshot(path=str(env["root"] / "board-cli-run.png"), full_page=True)
    page.close()
