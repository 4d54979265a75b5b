"""Chat engine: batched decoding matches transformers' generate, streaming, stop words, tools, template choice, CLI."""

from __future__ import annotations

import functools
import json
import math
import os
import pty
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from genie_core.chat.args import parse_infer_args
from genie_core.chat.batcher import Batcher, BatcherConfig, EngineBusy, GenerationRequest
from genie_core.chat.engine import ChatEngine, resolve_template_name
from genie_core.chat.grammar import JsonObject, feed_all
from genie_core.chat.sampling import BatchSampler, SamplingParams
from genie_core.chat.textstream import TextStream
from genie_core.chat.tools import (
    call_affixes,
    call_grammar,
    calls_to_text,
    may_be_tool_call,
    parse_tool_calls,
    tools_to_text,
)
from genie_core.extras.errors import ConfigError, GenieError
from genie_core.hparams import get_args

ROOT = Path(__file__).resolve().parents[1]
CONVERSATIONS = [
    [{"role": "user", "content": "hello"}],
    [{"role": "user", "content": "What is the capital of France? Tell me more about it, please."}],
    [
        {"role": "user", "content": "Add 12 and 30."},
        {"role": "assistant", "content": "The answer is 42."},
        {"role": "user", "content": "And 1 and 2?"},
    ],
]


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    overrides = {"model_name_or_path": str(tiny_model_dir), "template": "chatml", "output_dir": "unused"}
    args = get_args(None, {**overrides, "do_sample": False, "max_new_tokens": 16})
    eng = ChatEngine.from_args(args, BatcherConfig(max_batch_size=8, batch_wait_ms=50))
    yield eng
    eng.close()


def _hf_greedy(engine, ids: list[int], max_new_tokens: int, **kwargs) -> str:
    """Reference: transformers' own generate on one unpadded prompt."""
    with torch.no_grad():
        out = engine.model.generate(
            torch.tensor([ids]),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=engine.stop_token_ids,
            pad_token_id=engine.tokenizer.pad_token_id,
            **kwargs,
        )
    new = [t for t in out[0, len(ids) :].tolist() if t not in engine.stop_token_ids]
    return engine.tokenizer.decode(new, skip_special_tokens=True)


def _concurrently(fn, items):
    results = [None] * len(items)

    def run(i):
        results[i] = fn(items[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(items))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


def test_concurrent_requests_share_a_batch_and_match_generate(engine):
    before = dict(engine.batcher.stats)
    replies = _concurrently(lambda conv: engine.chat(conv)[0], CONVERSATIONS)
    assert engine.batcher.stats["batches"] - before["batches"] == 1  # one left-padded batch, not three runs
    assert engine.batcher.stats["max_rows"] >= 3
    for conv, reply in zip(CONVERSATIONS, replies):
        ids = engine.encode(conv)
        assert reply.prompt_tokens == len(ids)
        assert reply.text == _hf_greedy(engine, ids, 16)
        assert reply.finish_reason in ("stop", "length")


def test_requests_join_a_running_batch_without_changing_replies(engine):
    looping = [{"role": "user", "content": "vat vat vat"}]
    first = iter(engine.submit(looping, max_new_tokens=120))
    head = next(first)  # the first request is decoding now
    before = engine.batcher.stats["joined"]
    joiners = [engine.submit(conv, max_new_tokens=16) for conv in CONVERSATIONS[1:]]  # a longer and a shorter prompt
    first_text = head.text + "".join(event.text for event in first)
    texts = [h.result()[0].text for h in joiners]
    assert engine.batcher.stats["joined"] - before == 2  # they did not wait for the first request to finish
    assert first_text == _hf_greedy(engine, engine.encode(looping), 120)
    for conv, text in zip(CONVERSATIONS[1:], texts):
        assert text == _hf_greedy(engine, engine.encode(conv), 16)


def test_repetition_penalty_matches_generate(engine):
    conv = [{"role": "user", "content": "vat vat vat"}]  # greedy decoding loops on this prompt
    reply = engine.chat(conv, repetition_penalty=5.0, max_new_tokens=30)[0]
    assert reply.text == _hf_greedy(engine, engine.encode(conv), 30, repetition_penalty=5.0)
    assert reply.text != engine.chat(conv, max_new_tokens=30)[0].text


def test_sampling_rows_do_not_disturb_greedy_rows(engine):
    conv = CONVERSATIONS[0]
    greedy = engine.chat(conv)[0].text
    convs = [conv] * 4
    kinds = [{}, {"do_sample": True, "temperature": 1.5, "top_p": 1.0, "top_k": 0}] * 2
    replies = _concurrently(lambda i: engine.chat(convs[i], **kinds[i])[0].text, list(range(4)))
    assert replies[0] == replies[2] == greedy
    # top_k=1 sampling can only pick the arg-max
    assert engine.chat(conv, do_sample=True, temperature=1.0, top_k=1)[0].text == greedy


def test_n_choices_and_stream_equals_whole_reply(engine):
    conv = CONVERSATIONS[1]
    whole = engine.chat(conv)[0].text
    deltas = list(engine.stream_chat(conv))
    assert len(deltas) > 1
    assert "".join(deltas) == whole
    sampled = engine.chat(conv, n=3, do_sample=True, temperature=1.5, top_p=1.0, top_k=0)
    assert len(sampled) == 3 and len({r.text for r in sampled}) > 1


def test_stop_string_cuts_the_reply(engine):
    conv = CONVERSATIONS[1]
    full = engine.chat(conv, max_new_tokens=16)[0].text
    assert len(full) > 6
    stop = full[3:6]
    reply = engine.chat(conv, max_new_tokens=16, stop=[stop])[0]
    assert reply.text == full[: full.index(stop)]
    assert reply.finish_reason == "stop"
    streamed = "".join(engine.stream_chat(conv, max_new_tokens=16, stop=[stop]))
    assert streamed == reply.text


def test_system_prompt_and_history_reach_the_prompt(engine):
    plain = engine.submit(CONVERSATIONS[0])
    with_system = engine.submit(CONVERSATIONS[0], system="You are terse.")
    history = engine.submit(CONVERSATIONS[2])
    for handle in (plain, with_system, history):
        handle.result()
    expected = engine.template.encode_prompt(engine.tokenizer, CONVERSATIONS[0], "You are terse.")
    assert with_system.request.prompt_ids == expected
    assert with_system.prompt_tokens > plain.prompt_tokens
    assert engine.tokenizer.decode(history.request.prompt_ids).count("<|im_start|>user") == 2


def test_bad_requests_are_refused_before_generation(engine):
    with pytest.raises(GenieError, match="max_new_tokens"):
        engine.chat(CONVERSATIONS[0], max_new_tokens=0)
    with pytest.raises(GenieError, match="unknown generation option"):
        engine.chat(CONVERSATIONS[0], beams=2)
    with pytest.raises(GenieError, match="must end with a user"):
        engine.chat(CONVERSATIONS[2][:2])
    with pytest.raises(GenieError, match="at most 1024"):
        engine.chat([{"role": "user", "content": "word " * 2000}])


def test_full_queue_refuses_and_cancel_frees_the_batch(tiny_model_dir):
    args = get_args(None, {"model_name_or_path": str(tiny_model_dir), "template": "chatml", "output_dir": "x"})
    eng = ChatEngine.from_args(args, BatcherConfig(max_batch_size=1, max_queue=1, batch_wait_ms=0))
    try:
        conv = CONVERSATIONS[0]
        first = eng.submit(conv, max_new_tokens=1000, do_sample=False)
        deadline = time.monotonic() + 30
        while eng.batcher.queued and time.monotonic() < deadline:  # the worker has taken the first one
            time.sleep(0.01)
        second = eng.submit(conv, max_new_tokens=4)
        with pytest.raises(EngineBusy):
            eng.submit(conv, max_new_tokens=4)
        first.cancel()
        events = list(first)
        assert events[-1].finish_reason == "cancelled"
        assert events[-1].completion_tokens < 1000
        assert second.result()[0].completion_tokens > 0
    finally:
        eng.close()
    with pytest.raises(GenieError, match="shut down"):
        eng.batcher.submit(GenerationRequest([1, 2, 3]))


@pytest.fixture()
def patient_batcher(engine):
    """A second batcher on the engine's model that waits long enough for a few quick submits to share a batch."""
    batcher = Batcher(engine.model, engine.tokenizer, engine.stop_token_ids, BatcherConfig(batch_wait_ms=300))
    yield batcher
    batcher.close()


GOOD_PROMPTS = [*CONVERSATIONS, [{"role": "user", "content": "Give three tips for staying healthy."}]]


def _greedy(ids: list[int]) -> GenerationRequest:
    return GenerationRequest(ids, SamplingParams(do_sample=False), max_new_tokens=12)


@pytest.mark.parametrize(
    "bad, error",
    [
        ({"params": SamplingParams(do_sample=True, repetition_penalty=1e-300)}, "no valid distribution"),
        ({"params": SamplingParams(do_sample=True, temperature=float("nan"))}, "no valid distribution"),
        ({"extra_ids": "marker"}, "simulated prefill error"),  # the batch's prefill raises because of it
    ],
    ids=["penalty-underflow", "nan-temperature", "prefill-raises"],
)
def test_a_failing_request_fails_alone_in_its_batch(engine, patient_batcher, bad, error):
    """Door validation bypassed: whatever one request breaks, the four sharing its batch still complete."""
    prompts = [engine.encode(c) for c in GOOD_PROMPTS]
    marker = engine.vocab_size - 1
    assert not any(marker in ids for ids in prompts)
    forward = patient_batcher._forward

    def fails_on_marker(**inputs):
        if inputs["input_ids"].shape[1] > 1 and (inputs["input_ids"] == marker).any():  # prefills only
            raise RuntimeError("simulated prefill error")
        return forward(**inputs)

    patient_batcher._forward = fails_on_marker
    culprit = GenerationRequest(
        prompts[0] + ([marker] if "extra_ids" in bad else []), bad.get("params", SamplingParams(do_sample=False)), 12
    )
    requests = [_greedy(prompts[0]), _greedy(prompts[1]), culprit, _greedy(prompts[2]), _greedy(prompts[3])]
    handles = [patient_batcher.submit(r) for r in requests]
    with pytest.raises(GenieError, match=error):
        handles[2].result()
    good = handles[:2] + handles[3:]
    assert [h.result()[0].text for h in good] == [_hf_greedy(engine, ids, 12) for ids in prompts]
    stats = patient_batcher.stats
    assert stats["requests"] == 5 and stats["failed"] == 1
    if "extra_ids" in bad:  # the batch's prefill raised: each request was re-run alone, only the culprit failed
        assert stats["retries"] == 1
    else:  # the sampler flagged one row: it left, the others went on in the same batch
        assert stats["batches"] == 1 and stats["retries"] == 0


def test_a_prompt_id_past_the_vocabulary_is_refused_before_the_device_sees_it(engine):
    """On a GPU the embedding lookup of such an id is a device-side assert that poisons the process for every
    request after it, so the batcher refuses it at the door, naming the id."""
    ids = engine.encode(CONVERSATIONS[0])
    with pytest.raises(GenieError, match=f"prompt token id {10**6} is not in the vocabulary"):
        engine.batcher.submit(GenerationRequest(ids + [10**6]))
    with pytest.raises(GenieError, match="prompt token id -1 is not in the vocabulary"):
        engine.batcher.submit(GenerationRequest([-1] + ids))
    (reply,) = engine.batcher.submit(_greedy(ids)).result()  # the engine goes on serving
    assert reply.completion_tokens > 0


def test_a_failed_decoding_step_resumes_each_request_alone(engine, patient_batcher):
    """A step that raises with several requests aboard (say, a device error) retries them one by one, each
    from the tokens it already streamed: the replies equal undisturbed ones, nothing repeated or lost."""
    forward, steps = patient_batcher._forward, []

    def flaky(**inputs):
        ids = inputs["input_ids"]
        if ids.shape[0] > 1 and ids.shape[1] == 1:  # a decoding step of a shared batch
            steps.append(ids.shape[0])
            if len(steps) == 5:
                raise RuntimeError("simulated device error")
        return forward(**inputs)

    patient_batcher._forward = flaky
    prompts = [engine.encode(c) for c in GOOD_PROMPTS]
    handles = [patient_batcher.submit(_greedy(ids)) for ids in prompts]
    streamed = [[ev.text for ev in h] for h in handles]
    assert ["".join(parts) for parts in streamed] == [_hf_greedy(engine, ids, 12) for ids in prompts]
    assert len(steps) >= 5 and patient_batcher.stats["retries"] == 1 and patient_batcher.stats["failed"] == 0


def test_sampler_reports_bad_rows_and_clamps_top_k():
    logits = torch.tensor([[0.0, 1.0, 2.0], [float("nan"), 0.0, 1.0], [1.0, 2.0, 3.0]])
    params = [
        SamplingParams(do_sample=False),
        SamplingParams(do_sample=False),
        SamplingParams(do_sample=True, top_k=10**30, top_p=1.0),  # past int64: keeps the whole vocabulary
    ]
    tokens, valid = BatchSampler(params, [[0], [0], [0]], 3, "cpu")(logits)
    assert valid.tolist() == [True, False, True]
    assert tokens[0].item() == 2 and 0 <= tokens[2].item() < 3


def test_text_stream_holds_partial_characters_and_stop_prefixes(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    ids = tok.encode("你好，我是 END here", add_special_tokens=False)
    stream = TextStream(tok, stop=["END"])
    pieces = []
    for tid in ids:
        stream.push(tid)
        pieces.append(stream.take())
        if stream.stopped:
            break
    pieces.append(stream.take(final=True))
    assert all("\ufffd" not in p for p in pieces)
    assert "".join(pieces) == "你好，我是 "
    assert not any("E" in p for p in pieces)


def test_sampling_params_greedy_flags():
    assert SamplingParams(do_sample=False).greedy
    assert SamplingParams(temperature=0.0).greedy
    assert not SamplingParams(temperature=0.7).greedy


# ---- penalties, logit bias, seeds and log-probs ------------------------------------------------------------------


class _OpenAIPenalties:
    """Reference for OpenAI's rule, as a transformers logits processor: bias, then presence/frequency on the reply."""

    def __init__(self, prompt_len: int, presence: float, frequency: float, bias: dict[int, float], vocab: int):
        self.prompt_len, self.presence, self.frequency = prompt_len, presence, frequency
        self.bias = torch.zeros(vocab)
        for token, value in bias.items():
            self.bias[token] = value

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        reply = input_ids[:, self.prompt_len :]
        counts = torch.zeros_like(scores).scatter_add_(1, reply, torch.ones_like(reply, dtype=scores.dtype))
        return scores + self.bias - self.frequency * counts - self.presence * (counts > 0)


def test_presence_frequency_penalties_and_logit_bias_match_a_reference(engine):
    from transformers import LogitsProcessorList

    conv = [{"role": "user", "content": "vat vat vat"}]  # greedy decoding loops on this prompt
    ids = engine.encode(conv)
    plain = engine.chat(conv, max_new_tokens=20)[0].text
    first = engine.tokenizer.encode(plain, add_special_tokens=False)[0]
    settings = {"presence_penalty": 0.5, "frequency_penalty": 1.5, "logit_bias": {first: -100.0, 7: 2.0}}
    # beside a plain request in the same batch, so rows with and without penalty tables are joined and selected
    replies = _concurrently(lambda kw: engine.chat(conv, max_new_tokens=20, **kw)[0].text, [settings, {}])
    reference = _OpenAIPenalties(len(ids), 0.5, 1.5, settings["logit_bias"], engine.vocab_size)
    assert replies[0] == _hf_greedy(engine, ids, 20, logits_processor=LogitsProcessorList([reference]))
    assert replies[1] == plain != replies[0]
    with pytest.raises(GenieError, match="logit_bias: token id 100000 is not in the vocabulary"):
        engine.chat(conv, logit_bias={100000: 1.0})


def test_a_seed_repeats_sampled_replies(engine):
    conv = CONVERSATIONS[1]
    hot = {"do_sample": True, "temperature": 1.5, "top_p": 1.0, "top_k": 0, "max_new_tokens": 12}
    first = [r.text for r in engine.chat(conv, n=2, seed=5, **hot)]
    again = _concurrently(lambda kw: [r.text for r in engine.chat(conv, **kw)], [{"n": 2, "seed": 5, **hot}, hot])
    assert again[0] == first and first[0] != first[1]  # each row of a request has its own seed
    assert engine.chat(conv, seed=6, **hot)[0].text != first[0]


def test_logprobs_are_those_of_the_distribution_sampled_from(engine):
    ids = engine.encode(CONVERSATIONS[1])
    with torch.no_grad():
        logits = engine.model(torch.tensor([ids], device=engine.model.device)).logits[0, -1].float()

    def first_token(**kw):
        (completion,) = engine.submit_ids(ids, max_new_tokens=1, **kw).result()
        (entry,) = completion.logprobs
        return entry

    greedy = first_token(logprobs=3, do_sample=False)  # greedy: the model's own distribution
    reference = torch.log_softmax(logits, -1)
    assert greedy.token == int(reference.argmax())
    assert [t for t, _ in greedy.top] == reference.topk(3).indices.tolist()
    assert [v for _, v in greedy.top] == pytest.approx(reference.topk(3).values.tolist(), abs=1e-4)
    assert greedy.logprob == pytest.approx(greedy.top[0][1])
    hot = first_token(logprobs=2, do_sample=True, temperature=0.5, top_k=0, top_p=1.0, seed=1)
    assert hot.logprob == pytest.approx(float(torch.log_softmax(logits / 0.5, -1)[hot.token]), abs=1e-4)
    narrow = first_token(logprobs=3, do_sample=True, temperature=1.0, top_k=2, top_p=1.0, seed=1)
    assert sum(math.exp(v) for _, v in narrow.top[:2]) == pytest.approx(1.0)  # only two tokens were in play
    assert narrow.top[2][1] == float("-inf") and narrow.token in {t for t, _ in narrow.top[:2]}
    streamed = [e for event in engine.submit_ids(ids, max_new_tokens=8, logprobs=1) for e in event.logprobs]
    (whole,) = engine.submit_ids(ids, max_new_tokens=8, logprobs=1).result()
    assert [e.token for e in streamed] == [e.token for e in whole.logprobs] and len(
        streamed
    ) == whole.completion_tokens


# ---- constrained decoding ------------------------------------------------------------------------------------


def test_json_grammar_takes_json_objects_and_completes_any_prefix():
    good = ["{}", '{"a": 1}', '{"a": [1, 2.5e-3, {"b": null}], "c": "x\\u00e9\\n"}', '{"k":-0.5E+10,"t":true}']
    bad = [
        '{"a": 01}',
        '{"a": 1,}',
        "[1]",
        " {}",
        '{"a" 1}',
        '{"a": tru}',
        "{}x",
        '{"a": 1.}',
        '{"a": "\x01"}',
        '{"a": "\\x"}',
    ]
    for text in good:
        machine = JsonObject()
        assert feed_all(machine, text.encode()) and machine.done, text
    for text in bad:
        machine = JsonObject()
        assert not (feed_all(machine, text.encode()) and machine.done), text
    for text in good:
        for cut in range(len(text)):
            machine = JsonObject()
            assert feed_all(machine, text[:cut].encode())
            ending = machine.closing()
            assert isinstance(json.loads(text[:cut] + ending.decode()), dict), (text[:cut], ending)
    call = call_grammar(["get", "get_weather"], ("<tool_call>\n", "\n</tool_call>"))
    assert call.closing() == b'<tool_call>\n{"name": "get", "arguments": {}}\n</tool_call>'
    text = b'<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    assert feed_all(call, text) and call.done and not feed_all(call_grammar(["get"]), b'{"name": "got"')


def test_constrained_replies_are_well_formed_within_their_budget(engine):
    """The random model never writes JSON on its own; constrained, every reply parses, however short the budget."""
    conv = CONVERSATIONS[1]
    hot = {"do_sample": True, "temperature": 1.5, "top_p": 1.0, "top_k": 0, "seed": 0}
    for budget, kw in ((2, {}), (9, {}), (40, {}), (9, hot), (40, hot)):
        completions = engine.submit(conv, max_new_tokens=budget, n=3, constraint=JsonObject, **kw).result()
        for c in completions:
            assert isinstance(json.loads(c.text), dict), c.text
            assert c.finish_reason == "stop" and c.completion_tokens <= budget
    assert any(len(c.text) > 2 for c in completions)  # not only "{}"
    for affixes in (("", ""), ("<tool_call>\n", "\n</tool_call>"), ("[TOOL_CALLS] ", "")):
        grammar = functools.partial(call_grammar, ["get_weather", "get_time"], affixes)
        for c in engine.submit(conv, max_new_tokens=48, n=2, constraint=grammar, **hot).result():
            _, calls = parse_tool_calls(c.text)
            assert [call.name in ("get_weather", "get_time") for call in calls] == [True], c.text
            assert isinstance(json.loads(calls[0].arguments), dict)


def test_call_affixes_follow_the_template():
    from genie_core.template.templates import TEMPLATES

    assert call_affixes(TEMPLATES["qwen"]) == ("<tool_call>\n", "\n</tool_call>")
    assert call_affixes(TEMPLATES["mistral"]) == ("[TOOL_CALLS] ", "")
    assert call_affixes(TEMPLATES["chatml"]) == call_affixes(TEMPLATES["llama3"]) == ("", "")


# ---- tools ---------------------------------------------------------------------------------------------------


def test_tool_calls_parse_for_each_family_format():
    call = {"name": "get_weather", "arguments": {"city": "Paris"}}
    chatml = json.dumps(call)
    qwen = f"<tool_call>\n{json.dumps(call)}\n</tool_call>\n<tool_call>\n{json.dumps(call)}\n</tool_call>"
    llama3 = json.dumps({"name": "get_weather", "parameters": {"city": "Paris"}})
    mistral = "[TOOL_CALLS] " + json.dumps([call])
    for text, count in ((chatml, 1), (qwen, 2), (llama3, 1), (mistral, 1), ("```json\n" + chatml + "\n```", 1)):
        content, calls = parse_tool_calls(text)
        assert len(calls) == count, text
        assert calls[0].name == "get_weather" and json.loads(calls[0].arguments) == {"city": "Paris"}
        assert calls[0].id.startswith("call_")
    assert parse_tool_calls("The weather is nice.") == ("The weather is nice.", [])
    assert parse_tool_calls('{"not": "a call"}')[1] == []
    assert may_be_tool_call(" {") and may_be_tool_call("<tool") and not may_be_tool_call("Sure")


def test_openai_tools_and_calls_become_training_format():
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    assert json.loads(tools_to_text(tools)) == [{"name": "f", "parameters": {"type": "object"}}]
    text = calls_to_text([{"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}])
    assert json.loads(text) == {"name": "f", "arguments": {"x": 1}}
    with pytest.raises(GenieError, match="tools\\[0\\]"):
        tools_to_text([{"type": "retrieval"}])


def test_engine_parses_tool_calls_only_when_tools_were_given():
    reply = ChatEngine.to_reply('{"name": "f", "arguments": {}}', "stop", 3, 5, tools='[{"name": "f"}]')
    assert reply.finish_reason == "tool_calls" and reply.tool_calls[0].name == "f" and reply.text == ""
    plain = ChatEngine.to_reply('{"name": "f", "arguments": {}}', "stop", 3, 5, tools=None)
    assert plain.tool_calls == [] and plain.text.startswith("{")


# ---- template choice and arguments ---------------------------------------------------------------------------


def test_training_template_is_used_and_a_mismatch_is_warned(tmp_path, genie_logs):
    from genie_core.hparams import ModelArguments

    adapter = tmp_path / "saves" / "sft"
    adapter.mkdir(parents=True)
    (adapter / "genie_config.yaml").write_text("template: qwen\nstage: sft\n")
    model_args = ModelArguments(model_name_or_path="base", checkpoint_dir=str(adapter / "checkpoint-3"))
    assert resolve_template_name(model_args, None) == "qwen"  # found in the parent of a checkpoint
    assert resolve_template_name(model_args, "chatml") == "chatml"
    assert "TEMPLATE MISMATCH" in genie_logs.text and "qwen" in genie_logs.text


def test_inference_args_split_command_options_and_name_typos(tmp_path):
    from genie_core.api.server import ServerArguments

    args, (server,) = parse_infer_args(
        ["--model_name_or_path", "m", "--template", "chatml", "--port", "9001", "--do_sample", "false"],
        ServerArguments,
    )
    assert server.port == 9001 and server.host == "127.0.0.1"
    assert args.generating.do_sample is False and args.data.template == "chatml"
    with pytest.raises(ConfigError, match="Did you mean 'port'"):
        parse_infer_args(["--model_name_or_path", "m", "--prot", "1"], ServerArguments)
    with pytest.raises(ConfigError, match="'port' expects int"):
        parse_infer_args(["--model_name_or_path", "m", "--port", "abc"], ServerArguments)


# ---- the terminal REPL ---------------------------------------------------------------------------------------


def _chat_cmd(model_dir: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "flows.cli",
        "chat",
        "--model_name_or_path",
        str(model_dir),
        "--template",
        "chatml",
        "--do_sample",
        "false",
        "--max_new_tokens",
        "8",
    ]


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "GENIE_HOME": str(tmp_path / "home"), "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def test_cli_chat_from_a_pipe(tiny_model_dir, tmp_path):
    proc = subprocess.run(
        _chat_cmd(tiny_model_dir),
        input="hello\nclear\nhello\nexit\nnever read\n",
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(tmp_path),
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert out.count("Assistant: ") == 2
    assert "History cleared." in out
    first, second = (part.split("\n")[0] for part in out.split("Assistant: ")[1:])
    assert first and first == second  # greedy, and `clear` really emptied the history
    assert out.count("User: ") == 4  # the line after `exit` is never read


def test_cli_chat_in_a_terminal(tiny_model_dir, tmp_path):
    main_fd, child_fd = pty.openpty()
    proc = subprocess.Popen(
        _chat_cmd(tiny_model_dir), stdin=child_fd, stdout=child_fd, stderr=subprocess.DEVNULL, env=_env(tmp_path)
    )
    os.close(child_fd)
    seen = b""

    def read_until(marker: bytes, timeout: float = 300) -> bytes:
        nonlocal seen
        deadline = time.monotonic() + timeout
        while marker not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([main_fd], [], [], 1)
            if ready:
                try:
                    seen += os.read(main_fd, 4096)
                except OSError:
                    break
        assert marker in seen, seen[-500:]
        found, seen = seen, seen[seen.index(marker) + len(marker) :]
        return found

    try:
        read_until(b"User: ")
        os.write(main_fd, b"What is the capital of France?\r")
        reply = read_until(b"User: ")
        assert b"Assistant: " in reply
        os.write(main_fd, b"exit\r")
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(main_fd)


def test_model_generation_config_wins_over_generic_defaults():
    """A model's own generation_config.json sets sampling (as `generate` would); what the user set wins over it, and a
    config derived from the model config (no file) leaves our defaults alone."""
    from transformers import GenerationConfig

    from genie_core.chat.engine import model_generation_defaults
    from genie_core.hparams import GeneratingArguments

    shipped = GenerationConfig(do_sample=True, temperature=0.3, top_p=0.9, max_new_tokens=200)
    ours = GeneratingArguments()
    merged = model_generation_defaults(ours, shipped, set_by_user={"top_p"})
    assert (merged.temperature, merged.max_new_tokens, merged.top_p) == (0.3, 200, ours.top_p)
    derived = GenerationConfig(_from_model_config=True, temperature=0.3)
    assert model_generation_defaults(ours, derived, set()) == ours


# The first transformers whose models take the KV cache as ``cache=`` (5.23's take only ``past_key_values`` and would
# drop ``cache`` into their **kwargs, decoding every step without the cache).
CACHE_KEYWORD_SINCE = "5.24"


def test_transformers_floor_takes_the_cache_keyword(tiny_model_dir):
    """The batcher passes the KV cache as ``cache=``: the model takes it, and pyproject allows no transformers that
    does not."""
    import inspect

    from packaging.requirements import Requirement
    from packaging.version import Version
    from transformers import AutoModelForCausalLM

    tomllib = pytest.importorskip("tomllib")
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    requirement = next(Requirement(d) for d in declared if Requirement(d).name == "transformers")
    floors = [Version(s.version) for s in requirement.specifier if s.operator in (">=", ">", "==", "~=")]
    assert floors and min(floors) >= Version(CACHE_KEYWORD_SINCE), str(requirement)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert "cache" in inspect.signature(model.forward).parameters
