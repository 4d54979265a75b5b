"""`genie api` with the official openai client against a real server process, plus in-process limit checks.

The served model is a tiny llama trained here for a few seconds to answer two prompts word for word (a greeting and
a tool call), so replies can be compared exactly.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest
import torch
from conftest import build_tokenizer

from genie_core.api.app import ApiSettings, create_app, wrap_limits
from genie_core.chat.batcher import BatcherConfig
from genie_core.chat.engine import ChatEngine
from genie_core.hparams import get_args
from genie_core.template import get_template

ROOT = Path(__file__).resolve().parents[1]
KEY = "sk-genie-test"
GREETING = "Hi! How can I help you today?"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the weather.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
CALL = {"name": "get_weather", "arguments": {"city": "Paris"}}
HELLO = [{"role": "user", "content": "Hello"}]
WEATHER = [{"role": "user", "content": "What is the weather in Paris?"}]


def _train_parrot(out: Path) -> Path:
    """A tiny llama that has memorised GREETING for HELLO and a get_weather call for WEATHER with TOOLS."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from genie_core.chat.tools import tools_to_text

    tok = build_tokenizer(out)
    template = get_template("chatml", tok)
    template.fix_tokenizer(tok)
    pairs = [(HELLO, None, GREETING), (WEATHER, tools_to_text(TOOLS), json.dumps(CALL))]
    rows = [template.encode_oneturn(tok, [*m, {"role": "assistant", "content": r}], None, t) for m, t, r in pairs]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: more threads only add contention
    try:
        torch.manual_seed(0)
        config = LlamaConfig(
            vocab_size=len(tok),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=512,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            tie_word_embeddings=False,
        )
        model = LlamaForCausalLM(config)
        optim = torch.optim.Adam(model.parameters(), lr=5e-3)
        for _ in range(400):
            total = 0.0
            for prompt, reply in rows:
                labels = torch.tensor([[-100] * len(prompt) + reply])
                loss = model(input_ids=torch.tensor([prompt + reply]), labels=labels).loss
                loss.backward()
                total += loss.item()
            optim.step()
            optim.zero_grad()
            if total < 0.01:
                break
        assert total < 0.05, f"the parrot did not learn its lines (loss {total:.3f})"
    finally:
        torch.set_num_threads(threads)
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def parrot_dir(tmp_path_factory) -> Path:
    return _train_parrot(tmp_path_factory.mktemp("parrot"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(parrot_dir, tmp_path_factory):
    """`genie api` as a real process on a free 127.0.0.1 port."""
    port = _free_port()
    log = tmp_path_factory.mktemp("api") / "server.log"
    cmd = [sys.executable, "-m", "genie_core.cli", "api", "--model_name_or_path", str(parrot_dir)]
    cmd += ["--template", "chatml", "--port", str(port), "--do_sample", "false", "--max_new_tokens", "48"]
    cmd += ["--max_batch_size", "8", "--max_tokens_limit", "256", "--served_model_name", "parrot"]
    env = {**os.environ, "GENIE_API_KEY": KEY, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail(f"server did not start:\n{log.read_text()[-3000:]}")
    yield base
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture()
def client(server):
    return openai.OpenAI(base_url=f"{server}/v1", api_key=KEY, max_retries=0, timeout=120)


def test_lists_the_served_model(client):
    assert [m.id for m in client.models.list().data] == ["parrot"]


def test_chat_completion(client):
    reply = client.chat.completions.create(model="parrot", messages=HELLO)
    choice = reply.choices[0]
    assert choice.message.content == GREETING
    assert choice.finish_reason == "stop"
    assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_streaming_arrives_in_several_chunks(client):
    stream = client.chat.completions.create(
        model="parrot", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    pieces, finish, usage = [], None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.content:
                pieces.append(choice.delta.content)
            finish = choice.finish_reason or finish
    assert len(pieces) >= 3
    assert "".join(pieces) == GREETING
    assert finish == "stop" and usage.completion_tokens >= len(pieces)


def test_tools_come_back_as_tool_calls(client):
    reply = client.chat.completions.create(model="parrot", messages=WEATHER, tools=TOOLS)
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}

    stream = client.chat.completions.create(model="parrot", messages=WEATHER, tools=TOOLS, stream=True)
    calls, content, finish = [], "", None
    for chunk in stream:
        for c in chunk.choices:
            calls += c.delta.tool_calls or []
            content += c.delta.content or ""
            finish = c.finish_reason or finish
    assert finish == "tool_calls" and content == ""
    assert calls[0].function.name == "get_weather" and json.loads(calls[0].function.arguments) == {"city": "Paris"}


def test_a_tool_result_turn_is_accepted(client):
    messages = [
        *WEATHER,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temperature": 20}'},
    ]
    reply = client.chat.completions.create(model="parrot", messages=messages, tools=TOOLS, max_tokens=4)
    assert (
        reply.usage.prompt_tokens
        > client.chat.completions.create(
            model="parrot", messages=WEATHER, tools=TOOLS, max_tokens=1
        ).usage.prompt_tokens
    )


def test_n_stop_and_max_tokens(client):
    reply = client.chat.completions.create(model="parrot", messages=HELLO, n=2)
    assert [c.message.content for c in reply.choices] == [GREETING, GREETING]
    reply = client.chat.completions.create(model="parrot", messages=HELLO, stop=["help"])
    assert reply.choices[0].message.content == GREETING[: GREETING.index("help")]
    reply = client.chat.completions.create(model="parrot", messages=HELLO, max_tokens=2)
    assert reply.choices[0].finish_reason == "length" and reply.usage.completion_tokens == 2


def test_wrong_or_missing_key_is_401(server):
    wrong = openai.OpenAI(base_url=f"{server}/v1", api_key="wrong-key", max_retries=0)
    missing = openai.OpenAI(
        base_url=f"{server}/v1", api_key="unused", max_retries=0, default_headers={"Authorization": ""}
    )
    for bad in (wrong, missing):
        with pytest.raises(openai.AuthenticationError):
            bad.models.list()
        with pytest.raises(openai.AuthenticationError):
            bad.chat.completions.create(model="parrot", messages=HELLO)
    assert httpx.get(f"{server}/v1/models").status_code == 401


@pytest.mark.parametrize(
    "body, field",
    [
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "robot", "content": "hi"}]}, "messages"),
        ({"messages": HELLO, "temperature": "hot"}, "temperature"),
        ({"messages": HELLO, "max_tokens": 100000}, "max_tokens"),
        ({"messages": [*HELLO, {"role": "assistant", "content": "Hi"}]}, "messages"),
        ({"messages": HELLO, "n": 50}, "n"),
    ],
)
def test_bad_body_is_400_naming_the_field(client, body, field):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="parrot", **body)
    assert info.value.body["param"] == field or field in info.value.body["message"]


def test_malformed_json_is_400(server):
    response = httpx.post(
        f"{server}/v1/chat/completions",
        content=b"{not json",
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400 and "error" in response.json()


def test_16_concurrent_requests_complete_in_shared_batches(server):
    before = httpx.get(f"{server}/health").json()

    async def main():
        async with openai.AsyncOpenAI(base_url=f"{server}/v1", api_key=KEY, max_retries=0, timeout=300) as aclient:
            calls = [aclient.chat.completions.create(model="parrot", messages=HELLO) for _ in range(16)]
            return await asyncio.gather(*calls)

    replies = asyncio.run(main())
    assert [r.choices[0].message.content for r in replies] == [GREETING] * 16
    after = httpx.get(f"{server}/health").json()
    assert after["requests"] - before["requests"] == 16
    assert after["batches"] - before["batches"] < 16  # batched, not one by one
    assert after["max_rows"] > 1


def test_docs_and_openapi_are_served(server):
    spec = httpx.get(f"{server}/openapi.json").json()
    assert {"/v1/models", "/v1/chat/completions", "/v1/score/evaluation"} <= set(spec["paths"])
    assert httpx.get(f"{server}/docs").status_code == 200


def test_scoring_needs_a_reward_model(client):
    with pytest.raises(openai.APIStatusError) as info:
        client.post("/score/evaluation", body={"model": "parrot", "messages": ["a"]}, cast_to=dict)
    assert info.value.status_code == 501 and "rm stage" in info.value.message


# ---- in-process: limits and the reward endpoint --------------------------------------------------------------


def _engine(model_dir: Path, batching: BatcherConfig | None = None, **extra) -> ChatEngine:
    overrides = {"model_name_or_path": str(model_dir), "template": "chatml", "output_dir": "x", "do_sample": False}
    return ChatEngine.from_args(get_args(None, {**overrides, **extra}), batching)


async def _post_many(app, bodies: list[dict]) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=300) as ac:
        return await asyncio.gather(*[ac.post("/v1/chat/completions", json=b) for b in bodies])


def test_full_queue_answers_503_and_the_server_keeps_serving(tiny_model_dir):
    engine = _engine(tiny_model_dir, BatcherConfig(max_batch_size=1, max_queue=1, batch_wait_ms=0))
    try:
        app = wrap_limits(create_app(engine, ApiSettings()), ApiSettings())
        looping = [{"role": "user", "content": "vat vat vat"}]  # the random model never stops on this one
        body = {"messages": looping, "max_tokens": 60}
        responses = asyncio.run(_post_many(app, [body] * 6))
        codes = sorted(r.status_code for r in responses)
        assert 503 in codes and codes.count(200) >= 2, codes
        busy = next(r for r in responses if r.status_code == 503)
        assert busy.headers["retry-after"] == "1" and busy.json()["error"]["type"] == "server_busy"
        assert [r.status_code for r in asyncio.run(_post_many(app, [body]))] == [200]
    finally:
        engine.close()


def test_oversized_body_is_413(tiny_model_dir):
    engine = _engine(tiny_model_dir)
    try:
        settings = ApiSettings(max_body_bytes=2000)
        app = wrap_limits(create_app(engine, settings), settings)
        big = {"messages": [{"role": "user", "content": "x" * 5000}]}
        (response,) = asyncio.run(_post_many(app, [big]))
        assert response.status_code == 413 and "2000 bytes" in response.json()["error"]["message"]
        (ok,) = asyncio.run(_post_many(app, [{"messages": HELLO, "max_tokens": 2}]))
        assert ok.status_code == 200
    finally:
        engine.close()


def test_reward_model_scores_texts(tiny_model_dir, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from genie_core.model.value_head import attach_value_head, save_value_head

    rm_dir = tmp_path / "rm"
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    peft_model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    peft_model.save_pretrained(rm_dir)
    torch.manual_seed(0)
    head = attach_value_head(base, init_std=1.0)
    save_value_head(head, rm_dir)

    engine = _engine(tiny_model_dir, checkpoint_dir=str(rm_dir))
    try:
        assert engine.can_score
        app = create_app(engine, ApiSettings())
        texts = ["<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\nHi!<|im_end|>", "The quick brown fox"]

        async def score():
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as ac:
                return await ac.post("/v1/score/evaluation", json={"model": "rm", "messages": texts})

        response = asyncio.run(score())
        assert response.status_code == 200, response.text
        scores = response.json()["scores"]
        assert len(scores) == 2 and scores[0] != scores[1]
        assert scores == pytest.approx(engine.score(texts), abs=1e-5)
        # the same text scored alone (no padding) gets the same reward
        assert engine.score(texts[1:]) == pytest.approx(scores[1:], abs=1e-5)
    finally:
        engine.close()
