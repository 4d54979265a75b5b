"""`genie api` with the official openai client against a real server process, plus in-process limit checks.

The served model is a tiny llama trained here for a few seconds to answer two prompts word for word (a greeting and
a tool call), so replies can be compared exactly.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
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
    cmd = [sys.executable, "-m", "flows.cli", "api", "--model_name_or_path", str(parrot_dir)]
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


AUTH = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"{not json", "body is not valid JSON: Expecting property name enclosed in double quotes (at character 1)"),
        (b'{"messages": [', "body is not valid JSON: Expecting value (at character 14)"),
        (b"[1, 2]", "body must be a JSON object (sent with Content-Type: application/json)"),
        (b'{"messages": "\xff"}', "body is not valid JSON: it is not UTF-8 text (invalid start byte)"),
    ],
)
def test_malformed_json_is_400_saying_what_is_wrong(server, raw, message):
    response = httpx.post(f"{server}/v1/chat/completions", content=raw, headers=AUTH)
    assert response.status_code == 400
    assert response.json()["error"] == {
        "message": message,
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }


@pytest.mark.parametrize(
    "raw, param, where",
    [
        (b'{"messages": [{"role": "user", "content": "\\ud800"}]}', "messages", "messages[0].content"),
        (
            b'{"messages": [{"role": "user", "content": [{"type": "text", "text": "a\\udfff"}]}]}',
            "messages",
            "messages[0].content[0].text",
        ),
        (
            b'{"messages": [{"role": "user", "content": "hi"}], '
            b'"tools": [{"type": "function", "function": {"name": "f", "description": "\\ud83d"}}]}',
            "tools",
            "tools[0].function.description",
        ),
    ],
)
def test_invalid_unicode_is_400_naming_the_field(server, raw, param, where):
    """JSON lets a lone surrogate through as an escape; the tokenizer cannot take it, so the door refuses it."""
    response = httpx.post(f"{server}/v1/chat/completions", content=raw, headers=AUTH)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param
    assert error["message"].startswith(f"{where} is not valid Unicode: it holds a lone surrogate")
    ok = httpx.post(f"{server}/v1/chat/completions", json={"messages": HELLO, "max_tokens": 2}, headers=AUTH)
    assert ok.status_code == 200  # and the server is still serving


@pytest.mark.parametrize(
    "setting, allowed",
    [
        ({"repetition_penalty": 1e-300}, "in [0.01, 100]"),
        ({"repetition_penalty": 1000}, "in [0.01, 100]"),
        ({"top_k": 10**30}, "in [0, 1000000]"),
        ({"top_k": -1}, "in [0, 1000000]"),
        ({"temperature": 2.5}, "in [0, 2]"),
        ({"top_p": 0}, "in (0, 1]"),
        ({"n": 0}, "in [1, 8]"),
        ({"n": 9}, "in [1, 8]"),
        ({"max_tokens": 0}, "in [1, 256]"),
        ({"max_completion_tokens": 257}, "in [1, 256]"),
    ],
)
def test_sampling_settings_out_of_range_are_400_naming_field_and_range(server, setting, allowed):
    ((name, value),) = setting.items()
    response = httpx.post(f"{server}/v1/chat/completions", json={"messages": HELLO, **setting}, headers=AUTH)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == name and error["message"] == f"{name} must be {allowed}, got {value!r}"


@pytest.mark.parametrize(
    "extra, status",
    [
        ({"max_tokens": 2.0}, 200),  # JSON Schema's integer includes 2.0
        ({"do_sample": "yes"}, 400),
        ({"stream": 1}, 400),
        ({"n": "2"}, 400),
        ({"n": True}, 400),
        ({"temperature": "0.5"}, 400),
        ({"tools": [{"type": "function", "function": {"description": "no name"}}]}, 400),
    ],
)
def test_the_server_accepts_exactly_the_documented_types(server, extra, status):
    response = httpx.post(f"{server}/v1/chat/completions", json={"messages": HELLO, **extra}, headers=AUTH)
    assert response.status_code == status, response.text
    if status == 400:
        assert response.json()["error"]["param"] == next(iter(extra))


def test_a_refused_request_does_not_fail_the_ones_sent_with_it(server):
    bodies = (
        [{"messages": HELLO}] * 2 + [{"messages": HELLO, "repetition_penalty": 1e-300}] + [{"messages": HELLO}] * 2
    )

    async def main():
        async with httpx.AsyncClient(base_url=server, headers=AUTH, timeout=120) as ac:
            return await asyncio.gather(*[ac.post("/v1/chat/completions", json=b) for b in bodies])

    responses = asyncio.run(main())
    assert [r.status_code for r in responses] == [200, 200, 400, 200, 200]
    assert responses[2].json()["error"]["param"] == "repetition_penalty"
    assert {r.json()["choices"][0]["message"]["content"] for r in responses if r.status_code == 200} == {GREETING}


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


def test_openapi_documents_what_the_server_answers(server):
    spec = httpx.get(f"{server}/openapi.json").json()
    chat = spec["paths"]["/v1/chat/completions"]["post"]["responses"]
    error = {"$ref": "#/components/schemas/ErrorResponse"}
    for path, operations in spec["paths"].items():
        for operation in operations.values():  # FastAPI's validation 422 is gone; chat's own 422 is documented
            assert "422" not in operation["responses"] or path == "/v1/chat/completions"
    assert "invalid_model_output" in chat["422"]["description"]
    assert chat["400"]["content"]["application/json"]["schema"] == error
    assert set(chat) == {"200", "400", "401", "404", "413", "422", "503"} and "Retry-After" in chat["503"]["headers"]
    assert set(chat["200"]["content"]) == {"application/json", "text/event-stream"}
    schemas = spec["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    request = schemas["ChatCompletionRequest"]["properties"]
    assert request["do_sample"]["anyOf"] == [{"type": "boolean"}, {"type": "null"}]
    assert {"type": "integer", "minimum": 1, "maximum": 256} in request["max_tokens"]["anyOf"]  # this server's limit
    assert request["n"]["maximum"] == 8  # its max_batch_size
    assert schemas["FunctionDef"]["required"] == ["name"]
    wrong_method = httpx.put(f"{server}/v1/chat/completions", headers=AUTH)  # not in the document
    assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "POST"


def test_scoring_needs_a_reward_model(client):
    with pytest.raises(openai.APIStatusError) as info:
        client.post("/score/evaluation", body={"model": "parrot", "messages": ["a"]}, cast_to=dict)
    assert info.value.status_code == 501 and "rm stage" in info.value.message


# ---- OpenAI compatibility: models, plain completions, tool_choice, response_format, log-probs, refused fields ------

HELLO_PROMPT = "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n"  # HELLO as the chatml template renders it


def test_an_unknown_model_is_404_model_not_found(client):
    for call in (
        lambda: client.chat.completions.create(model="gpt-4o", messages=HELLO),
        lambda: client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Hi"),
        lambda: client.models.retrieve("gpt-4o"),
    ):
        with pytest.raises(openai.NotFoundError) as info:
            call()
        assert info.value.body["code"] == "model_not_found" and info.value.body["type"] == "invalid_request_error"
    assert "gpt-4o" in info.value.body["message"]
    card = client.models.retrieve("parrot")
    assert card.id == "parrot" and card.object == "model"


def test_plain_completion_continues_the_prompt_without_a_template(client):
    """The chat-rendered prompt, sent as plain text, gets the parrot's greeting: nothing was wrapped around it."""
    chat = client.chat.completions.create(model="parrot", messages=HELLO)
    reply = client.completions.create(model="parrot", prompt=HELLO_PROMPT, max_tokens=48)
    assert reply.object == "text_completion" and reply.choices[0].text == GREETING
    assert reply.choices[0].finish_reason == "stop" and reply.choices[0].logprobs is None
    assert reply.usage.prompt_tokens == chat.usage.prompt_tokens
    assert reply.usage.completion_tokens == chat.usage.completion_tokens
    plain = client.completions.create(model="parrot", prompt="Hello", max_tokens=48)
    assert plain.choices[0].text != GREETING  # the bare word is not the conversation the parrot learned

    several = client.completions.create(model="parrot", prompt=[HELLO_PROMPT, "Hello"], n=2, max_tokens=48)
    assert [c.index for c in several.choices] == [0, 1, 2, 3]
    assert [c.text for c in several.choices] == [GREETING, GREETING, plain.choices[0].text, plain.choices[0].text]
    assert several.usage.prompt_tokens == reply.usage.prompt_tokens + plain.usage.prompt_tokens

    echoed = client.completions.create(model="parrot", prompt=HELLO_PROMPT, max_tokens=2, echo=True)
    assert echoed.choices[0].finish_reason == "length" and echoed.usage.completion_tokens == 2
    assert echoed.choices[0].text.startswith(HELLO_PROMPT) and GREETING.startswith(
        echoed.choices[0].text[len(HELLO_PROMPT) :]
    )
    cut = client.completions.create(model="parrot", prompt=HELLO_PROMPT, stop="help", max_tokens=48)
    assert cut.choices[0].text == GREETING[: GREETING.index("help")]


def test_plain_completion_streams_openai_chunks(client):
    stream = client.completions.create(
        model="parrot", prompt=HELLO_PROMPT, max_tokens=48, stream=True, stream_options={"include_usage": True}
    )
    pieces, finish, usage = [], None, None
    for chunk in stream:
        assert chunk.object == "text_completion"
        usage = chunk.usage or usage
        for choice in chunk.choices:
            pieces.append(choice.text)
            finish = choice.finish_reason or finish
    assert len([p for p in pieces if p]) >= 3 and "".join(pieces) == GREETING
    whole = client.completions.create(model="parrot", prompt=HELLO_PROMPT, max_tokens=48)
    assert finish == "stop" and usage == whole.usage


def test_plain_completion_logprobs_in_the_legacy_layout(client):
    reply = client.completions.create(model="parrot", prompt=HELLO_PROMPT, max_tokens=48, logprobs=2)
    logprobs = reply.choices[0].logprobs
    assert "".join(logprobs.tokens) == GREETING and len(logprobs.tokens) == reply.usage.completion_tokens
    assert logprobs.text_offset == [sum(len(t) for t in logprobs.tokens[:i]) for i in range(len(logprobs.tokens))]
    for token, value, top in zip(logprobs.tokens, logprobs.token_logprobs, logprobs.top_logprobs):
        assert value <= 0 and 1 <= len(top) <= 3
        assert top[token] == value == max(top.values())  # greedy: the chosen token is the most likely one
    streamed = client.completions.create(model="parrot", prompt=HELLO_PROMPT, max_tokens=48, logprobs=2, stream=True)
    tokens, offsets = [], []
    for chunk in streamed:
        for choice in chunk.choices:
            if choice.logprobs:
                tokens += choice.logprobs.tokens
                offsets += choice.logprobs.text_offset
    assert tokens == logprobs.tokens and offsets == logprobs.text_offset


def test_chat_logprobs_come_from_the_sampling_distribution(client):
    reply = client.chat.completions.create(model="parrot", messages=HELLO, logprobs=True, top_logprobs=3)
    content = reply.choices[0].logprobs.content
    assert "".join(e.token for e in content) == GREETING and len(content) == reply.usage.completion_tokens
    for entry in content:
        assert bytes(entry.bytes) == entry.token.encode() and entry.logprob <= 0
        assert len(entry.top_logprobs) == 3 and entry.top_logprobs[0].token == entry.token  # greedy: the best
        values = [t.logprob for t in entry.top_logprobs]
        assert values == sorted(values, reverse=True) and values[0] == entry.logprob
    assert client.chat.completions.create(model="parrot", messages=HELLO).choices[0].logprobs is None

    stream = client.chat.completions.create(model="parrot", messages=HELLO, logprobs=True, top_logprobs=3, stream=True)
    streamed = [e for chunk in stream for c in chunk.choices if c.logprobs for e in c.logprobs.content]
    assert [(e.token, e.top_logprobs[1].token) for e in streamed] == [
        (e.token, e.top_logprobs[1].token) for e in content
    ]
    assert [e.logprob for e in streamed] == pytest.approx([e.logprob for e in content], abs=1e-4)


def test_tool_choice_required_and_named_force_a_call(client):
    auto = client.chat.completions.create(model="parrot", messages=HELLO, tools=TOOLS)
    assert auto.choices[0].message.tool_calls is None  # left to itself, the parrot writes no call here
    for choice in ("required", {"type": "function", "function": {"name": "get_weather"}}):
        reply = client.chat.completions.create(model="parrot", messages=HELLO, tools=TOOLS, tool_choice=choice)
        assert reply.choices[0].finish_reason == "tool_calls"
        (call,) = reply.choices[0].message.tool_calls
        assert call.function.name == "get_weather" and isinstance(json.loads(call.function.arguments), dict)
    stream = client.chat.completions.create(
        model="parrot", messages=HELLO, tools=TOOLS, tool_choice="required", stream=True
    )
    calls, finish = [], None
    for chunk in stream:
        for c in chunk.choices:
            calls += c.delta.tool_calls or []
            finish = c.finish_reason or finish
    assert finish == "tool_calls" and [c.function.name for c in calls] == ["get_weather"]


def test_tool_choice_none_offers_no_tools(client):
    with_tools = client.chat.completions.create(model="parrot", messages=WEATHER, tools=TOOLS)
    assert with_tools.choices[0].message.tool_calls  # the parrot calls when offered the tool...
    reply = client.chat.completions.create(model="parrot", messages=WEATHER, tools=TOOLS, tool_choice="none")
    assert reply.choices[0].message.tool_calls is None and reply.choices[0].finish_reason != "tool_calls"
    assert reply.usage.prompt_tokens < with_tools.usage.prompt_tokens  # ...and here was not shown it


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "send_mail"}}}, "send_mail"),
        ({"tool_choice": "required"}, "needs `tools`"),
        ({"tools": TOOLS, "tool_choice": "sometimes"}, "tool_choice"),
    ],
)
def test_a_tool_choice_that_cannot_be_honoured_is_400(client, extra, message):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="parrot", messages=HELLO, **extra)
    assert info.value.body["param"] == "tool_choice" and message in info.value.body["message"]


def test_response_format_json_object_is_a_json_object(client):
    assert client.chat.completions.create(model="parrot", messages=HELLO).choices[0].message.content == GREETING
    reply = client.chat.completions.create(model="parrot", messages=HELLO, response_format={"type": "json_object"})
    assert isinstance(json.loads(reply.choices[0].message.content), dict)
    assert reply.choices[0].finish_reason == "stop"
    stream = client.chat.completions.create(
        model="parrot", messages=HELLO, response_format={"type": "json_object"}, stream=True
    )
    assert (
        "".join(c.delta.content or "" for chunk in stream for c in chunk.choices) == reply.choices[0].message.content
    )


def test_response_format_json_schema_is_checked(client):
    def ask(schema):
        fmt = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}
        return client.chat.completions.create(model="parrot", messages=HELLO, response_format=fmt)

    assert isinstance(json.loads(ask({"type": "object"}).choices[0].message.content), dict)
    with pytest.raises(openai.UnprocessableEntityError) as info:  # the parrot never writes a city
        ask({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
    assert (
        info.value.body["code"] == "invalid_model_output"
        and "'city' is a required property" in info.value.body["message"]
    )
    for bad, words in (({"type": "array"}, "must describe an object"), ({"type": 5}, "not a valid JSON Schema")):
        with pytest.raises(openai.BadRequestError) as info:
            ask(bad)
        assert info.value.body["param"] == "response_format" and words in info.value.body["message"]


@pytest.mark.parametrize(
    "endpoint, extra, field",
    [
        ("chat", {"store": True}, "store"),
        ("chat", {"audio": {"voice": "alloy", "format": "wav"}}, "audio"),
        ("chat", {"functions": [{"name": "f"}]}, "functions"),
        ("chat", {"modalities": ["text", "audio"]}, "modalities"),
        ("chat", {"top_logprobs": 2}, "top_logprobs"),
        ("chat", {"logit_bias": {"123456": 5}}, "logit_bias"),
        ("chat", {"presence_penalty": 3}, "presence_penalty"),
        ("completions", {"suffix": "!"}, "suffix"),
        ("completions", {"best_of": 3}, "best_of"),
        ("completions", {"echo": True, "logprobs": 1}, "logprobs"),
        ("completions", {"logprobs": 6}, "logprobs"),
    ],
)
def test_fields_not_honoured_are_refused_naming_them(client, endpoint, extra, field):
    with pytest.raises(openai.BadRequestError) as info:
        if endpoint == "chat":
            client.chat.completions.create(model="parrot", messages=HELLO, **extra)
        else:
            client.completions.create(model="parrot", prompt="Hi", **extra)
    assert info.value.body["param"] == field and field in info.value.body["message"]


def test_logit_bias_and_seed_are_honoured(client, parrot_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(parrot_dir)
    first = tok.encode(GREETING, add_special_tokens=False)[0]
    forced = tok.encode(" Paris", add_special_tokens=False)[0]
    plain = client.chat.completions.create(model="parrot", messages=HELLO, logprobs=True, max_tokens=1)
    assert plain.choices[0].logprobs.content[0].token == tok.decode([first])
    banned = client.chat.completions.create(
        model="parrot", messages=HELLO, logprobs=True, max_tokens=1, logit_bias={str(first): -100}
    )
    assert banned.choices[0].logprobs.content[0].token != tok.decode([first])
    pushed = client.chat.completions.create(
        model="parrot", messages=HELLO, logit_bias={str(forced): 100}, max_tokens=1
    )
    assert pushed.choices[0].message.content == tok.decode([forced])

    def sample(seed):
        return (
            client.chat.completions.create(
                model="parrot",
                messages=WEATHER,
                temperature=2,
                seed=seed,
                max_tokens=24,
                extra_body={"top_k": 0, "top_p": 1},
            )
            .choices[0]
            .message.content
        )

    assert sample(3) == sample(3) and sample(3) != sample(4)
    # presence and frequency penalties are compared with a reference decoder in test_chat.py
    penalized = client.chat.completions.create(model="parrot", messages=HELLO, frequency_penalty=1, presence_penalty=1)
    assert penalized.choices[0].finish_reason in ("stop", "length")


def test_health_answers_on_both_paths_without_a_key(server):
    for path in ("/health", "/v1/health"):
        response = httpx.get(f"{server}{path}")
        assert response.status_code == 200 and response.json()["status"] == "ok"


# ---- in-process: limits, disconnects, the OpenAPI contract and the reward endpoint -----------------------------


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


@contextmanager
def _serving(app) -> Iterator[str]:
    """``app`` under uvicorn on a free 127.0.0.1 port in this process, so a test can watch its batcher."""
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _wait_for(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_client_that_goes_away_frees_its_rows(tiny_model_dir, stream):
    """Eight rows that would decode 900 tokens each leave the batch as soon as their client hangs up."""
    engine = _engine(tiny_model_dir)
    n, max_tokens = 8, 900
    try:
        settings = ApiSettings(max_tokens_limit=max_tokens)
        with _serving(wrap_limits(create_app(engine, settings), settings)) as base:
            batcher = engine.batcher
            body = json.dumps(
                {"messages": [{"role": "user", "content": "vat vat vat"}], "n": n, "max_tokens": max_tokens}
                | ({"stream": True} if stream else {})
            ).encode()
            port = int(base.rsplit(":", 1)[1])
            head = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            with socket.create_connection(("127.0.0.1", port)) as client:
                client.sendall(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
                if stream:
                    client.settimeout(60)
                    received = b""
                    while b"data:" not in received:  # the first chunk arrived: generation is under way
                        piece = client.recv(4096)  # (headers and chunks may come in separate reads)
                        assert piece, received
                        received += piece
                else:
                    _wait_for(lambda: batcher.running == n, "the rows to start")
            # the client has hung up; the random model never stops on this prompt, so only a cancel ends the rows
            _wait_for(lambda: batcher.running == 0 and batcher.queued == 0, "the rows to leave")
            stats = batcher.stats
            assert stats["cancelled"] == n
            assert stats["tokens"] < n * max_tokens // 10  # left within a few steps, not after 900
            with httpx.Client(base_url=base, timeout=60) as again:
                reply = again.post("/v1/chat/completions", json={"messages": HELLO, "max_tokens": 3})
            assert reply.status_code == 200 and reply.json()["usage"]["completion_tokens"] == 3
    finally:
        engine.close()


# Schemathesis' CLI, as its pytest loader for a schema served by a fixture does not run under pytest 9. Per operation:
# its coverage cases (boundaries, wrong types, missing fields, unexpected methods), then this many generated ones.
FUZZ_EXAMPLES = 100
FUZZ_CONFIG = """
headers = {{ Authorization = "Bearer {key}" }}

[generation]
max-examples = {examples}
deterministic = true
database = "none"

# A schema cannot state a conversation's rules (it starts with a user turn and ends with a user or tool turn, tool
# call arguments are JSON, it fits the context), so a schema-valid chat body may still be refused with a 400; nor
# can it say that a plain prompt holds tokens and fits the context, or that logit_bias ids are in the vocabulary.
[[operations]]
include-path = "/v1/chat/completions"
checks.positive_data_acceptance.enabled = false

[[operations]]
include-path = "/v1/completions"
checks.positive_data_acceptance.enabled = false
"""


def test_the_server_keeps_its_openapi_contract(tiny_model_dir, tmp_path):
    """Generated requests, valid and not, over loopback: no 5xx; every status, content type, header and body (JSON,
    and each server-sent event) is one the OpenAPI document allows; invalid bodies are refused and valid scoring
    requests accepted. The server caps max_tokens at 4 (and says so in its schema), so every case stays cheap."""
    pytest.importorskip("schemathesis")
    engine = _engine(
        tiny_model_dir, BatcherConfig(batch_wait_ms=0), checkpoint_dir=str(_reward_model(tiny_model_dir, tmp_path))
    )
    settings = ApiSettings(api_key=KEY, max_tokens_limit=4, max_body_bytes=256 * 1024)
    config = tmp_path / "schemathesis.toml"
    config.write_text(FUZZ_CONFIG.format(key=KEY, examples=FUZZ_EXAMPLES))
    try:
        with _serving(wrap_limits(create_app(engine, settings), settings)) as base:
            cmd = [sys.executable, "-m", "schemathesis.cli", "--no-color", "--config-file", str(config), "run"]
            cmd += [f"{base}/openapi.json", "--workers", "1"]
            env = {**os.environ, "OMP_NUM_THREADS": "1"}
            run = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    finally:
        engine.close()
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:]
    generated = re.search(r"(\d+) generated, \1 passed", run.stdout)
    assert generated and int(generated.group(1)) >= 300, run.stdout[-2000:]
    assert engine.batcher.stats["requests"] >= 50  # plenty of them got as far as generating


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


def _reward_model(tiny_model_dir: Path, tmp_path: Path) -> Path:
    """An rm stage's output on the tiny model: a LoRA adapter and a random value head."""
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
    return rm_dir


def test_reward_model_scores_texts(tiny_model_dir, tmp_path):
    engine = _engine(tiny_model_dir, checkpoint_dir=str(_reward_model(tiny_model_dir, tmp_path)))
    try:
        assert engine.can_score
        app = create_app(engine, ApiSettings())
        texts = ["<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\nHi!<|im_end|>", "The quick brown fox"]

        async def score():
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as ac:
                return await ac.post("/v1/score/evaluation", json={"messages": texts})

        response = asyncio.run(score())
        assert response.status_code == 200, response.text
        scores = response.json()["scores"]
        assert len(scores) == 2 and scores[0] != scores[1]
        assert scores == pytest.approx(engine.score(texts), abs=1e-5)
        # the same text scored alone (no padding) gets the same reward
        assert engine.score(texts[1:]) == pytest.approx(scores[1:], abs=1e-5)
    finally:
        engine.close()


def test_each_request_is_logged_once_with_status_latency_and_tokens(tiny_model_dir, genie_logs):
    engine = _engine(tiny_model_dir)
    try:
        settings = ApiSettings(max_body_bytes=4000)
        with _serving(wrap_limits(create_app(engine, settings), settings)) as base:
            with httpx.Client(base_url=base, timeout=60) as http:
                whole = http.post("/v1/chat/completions", json={"messages": HELLO, "max_tokens": 3}).json()
                body = {"prompt": "The quick", "max_tokens": 4, "stream": True}
                with http.stream("POST", "/v1/completions", json=body) as streamed:
                    events = [line for line in streamed.iter_lines() if line.startswith("data: {")]
                too_big = http.post(
                    "/v1/chat/completions", json={"messages": [{"role": "user", "content": "x" * 5000}]}
                )
                http.get("/v1/health")
    finally:
        engine.close()
    assert too_big.status_code == 413 and events
    pattern = r"(\S+) (\S+) (\d+) (\d+\.\d) ms prompt_tokens=(\d+) completion_tokens=(\d+)"
    lines = [re.fullmatch(pattern, r.getMessage()) for r in genie_logs.records if r.name == "genie.api.access"]
    assert all(lines), [r.getMessage() for r in genie_logs.records]
    # a stream's line is written when its response ends, which may be after the next request's
    logged = {(method, path, status): rest for method, path, status, *rest in (line.groups() for line in lines)}
    assert len(lines) == len(logged) == 4
    chat, stream = logged["POST", "/v1/chat/completions", "200"], logged["POST", "/v1/completions", "200"]
    assert chat[1:] == [str(whole["usage"]["prompt_tokens"]), str(whole["usage"]["completion_tokens"])]
    prompt = len(engine.tokenizer.encode("The quick"))
    assert stream[1] == str(prompt) and 1 <= int(stream[2]) <= 4  # counted as the stream went
    assert logged["POST", "/v1/chat/completions", "413"][1:] == ["0", "0"]
    assert ("GET", "/v1/health", "200") in logged and all(float(rest[0]) > 0 for rest in logged.values())


def test_checked_replies_are_regenerated_then_refused_with_422():
    """The retry loop of json_schema / strict tools, with scripted replies: only failing choices are asked again."""
    from genie_core.api.chat import _checked
    from genie_core.api.errors import ApiError
    from genie_core.chat.batcher import Completion

    class Scripted:
        def __init__(self, texts):
            self.texts = texts

        async def aresult(self):
            return [Completion(text, "stop", 1) for text in self.texts]

        def cancel(self):
            pass

    class Connected:  # a client that stays
        async def receive(self):
            await asyncio.sleep(3600)

    def run(script, n, attempts):
        asked = []

        def submit(rows, attempt):
            asked.append((rows, attempt))
            return Scripted(script[attempt][:rows])

        def check(text, reason):
            return None if text.startswith("ok") else f"{text!r} is not ok"

        return asyncio.run(_checked(Connected(), submit, n, check, attempts)), asked

    result, asked = run([["bad", "ok 1"], ["ok 0"]], n=2, attempts=3)
    assert [c.text for c in result] == ["ok 0", "ok 1"] and asked == [(2, 0), (1, 1)]
    with pytest.raises(ApiError) as info:
        run([["bad"], ["worse"], ["worst"]], n=1, attempts=3)
    error = info.value
    assert error.status == 422 and error.code == "invalid_model_output"
    assert error.message == "choice 0: 'worst' is not ok; gave up after 3 attempts."


def test_schema_checks_agree_with_and_without_the_jsonschema_package(monkeypatch):
    from genie_core.api.errors import ApiError
    from genie_core.api.structured import schema_checker

    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "array", "items": {"type": "integer"}}},
        "required": ["city"],
        "additionalProperties": False,
    }
    values = [{"city": "Paris"}, {"city": "Paris", "days": [1, 2]}, {}, {"city": 3}, {"city": "P", "days": [1.5]}]
    values.append({"city": "Paris", "extra": 1})
    where = "response_format.json_schema.schema"
    full = schema_checker(schema, where)
    monkeypatch.setitem(sys.modules, "jsonschema", None)  # as if it were not installed
    lite = schema_checker(schema, where)
    expected = [True, True, False, False, False, False]
    assert [full(v) is None for v in values] == expected and [lite(v) is None for v in values] == expected
    with pytest.raises(ApiError) as info:  # rules the small checker does not know are refused, not skipped
        schema_checker({"type": "object", "minProperties": 2}, where)
    assert info.value.param == "response_format" and "minProperties" in info.value.message


def test_output_plans_check_what_the_grammar_cannot_state():
    """tool_choice / response_format / strict tools -> grammar and check, tried on replies written by hand."""
    from genie_core.api.protocol import ChatCompletionRequest
    from genie_core.api.structured import plan_output
    from genie_core.template.templates import TEMPLATES

    strict = {**TOOLS[0]["function"], "strict": True}
    strict["parameters"] = {**strict["parameters"], "required": ["city"], "additionalProperties": False}
    call = '{"name": "get_weather", "arguments": %s}'

    def plan(**extra):
        body = {"messages": HELLO, "tools": [{"type": "function", "function": strict}], **extra}
        return plan_output(ChatCompletionRequest.model_validate(body), TEMPLATES["chatml"])

    auto = plan()
    assert auto.constraint is None and auto.tools_text
    assert auto.check(call % '{"city": "Paris"}', "stop") is None
    assert "'city' is a required property" in auto.check(call % "{}", "stop")
    assert auto.check("Sunny, I think.", "stop") is None  # auto: text is a fine reply
    assert "not among the functions" in auto.check('{"name": "send_mail", "arguments": {}}', "stop")
    required = plan(tool_choice="required")
    assert required.check("Sunny, I think.", "stop") == "the reply is not a tool call"
    assert required.check("Sunny", "length") == "max_tokens ran out before the tool call was complete"
    assert required.constraint().closing() == b'{"name": "get_weather", "arguments": {}}'
    none = plan(tool_choice="none", response_format={"type": "json_object"})
    assert none.tools_text == "" and none.check is None and none.constraint().closing() == b"{}"
    schema = {"type": "json_schema", "json_schema": {"name": "a", "schema": {"required": ["x"]}}}
    checked = plan(tool_choice="none", response_format=schema)
    assert checked.check('{"x": 1}', "stop") is None and "'x' is a required property" in checked.check("{}", "stop")
    assert checked.check('{"y"', "length") is None  # cut short: returned as it is, as OpenAI does
    assert plan(parallel_tool_calls=False).single_call
