"""Chat templates: golden renderings are the spec; label masks and the tokenizer's own template are checked on ids."""

from __future__ import annotations

import pytest

from genie_core.extras.errors import ConfigError, DataError
from genie_core.template import TEMPLATES, Template, get_template, list_templates, register_template

SYSTEM = "You are helpful."
CONVO = [
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "What is 2+2?"},
    {"role": "assistant", "content": "4"},
]
TOOLS = '[{"name": "get_weather", "parameters": {"city": "string"}}]'
CALL = '{"name": "get_weather", "arguments": {"city": "Paris"}}'
TOOL_CONVO = [
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "function", "content": CALL},
    {"role": "observation", "content": '{"temp": 22}'},
    {"role": "assistant", "content": "It is 22 degrees."},
]

GOLDEN = {
    "default": (
        "<s>System: You are helpful.\nHuman: Hi\nAssistant: Hello!</s>\nHuman: What is 2+2?\nAssistant: 4</s>\n"
    ),
    "alpaca": (
        "<s>You are helpful.\n\n### Instruction:\nHi\n\n### Response:\nHello!</s>\n\n"
        "### Instruction:\nWhat is 2+2?\n\n### Response:\n4</s>\n\n"
    ),
    "vicuna": "<s>You are helpful. USER: Hi ASSISTANT: Hello!</s>USER: What is 2+2? ASSISTANT: 4</s>",
    "llama2": (
        "<s>[INST] <<SYS>>\nYou are helpful.\n<</SYS>>\n\nHi [/INST] Hello! </s><s>[INST] What is 2+2? [/INST] 4 </s>"
    ),
    "baichuan": (
        "You are helpful.<reserved_102>Hi<reserved_103>Hello!</s><reserved_102>What is 2+2?<reserved_103>4</s>"
    ),
    "baichuan2": (
        "You are helpful.<reserved_106>Hi<reserved_107>Hello!</s><reserved_106>What is 2+2?<reserved_107>4</s>"
    ),
    "intern": (
        "<s><|System|>:You are helpful.\n<|User|>:Hi<eoh>\n<|Bot|>:Hello!<eoa>\n"
        "<|User|>:What is 2+2?<eoh>\n<|Bot|>:4<eoa>\n"
    ),
    "chatml": (
        "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
        "<|im_start|>assistant\n4<|im_end|>\n"
    ),
    "chatglm2": (
        "[gMASK]sopYou are helpful.\n\n[Round 1]\n\n问：Hi\n\n答：Hello!</s>\n\n"
        "[Round 2]\n\n问：What is 2+2?\n\n答：4</s>\n\n"
    ),
    "llama3": (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are helpful.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
        "Hello!<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n4<|eot_id|>"
    ),
    "mistral": "<s>[INST] You are helpful.\n\nHi [/INST] Hello!</s>[INST] What is 2+2? [/INST] 4</s>",
    "qwen": (
        "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
        "<|im_start|>assistant\n4<|im_end|>\n"
    ),
    "qwen3": (
        "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
        "<|im_start|>assistant\n4<|im_end|>\n"
    ),
    "intern2": (
        "<s><|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
        "<|im_start|>assistant\n4<|im_end|>\n"
    ),
    "gemma": (
        "<s><start_of_turn>user\nYou are helpful.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n"
        "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n4<end_of_turn>\n"
    ),
    "phi3": (
        "<|system|>\nYou are helpful.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\nHello!<|end|>\n"
        "<|user|>\nWhat is 2+2?<|end|>\n<|assistant|>\n4<|end|>\n"
    ),
    "falcon": "System: You are helpful.\nUser: Hi\nFalcon: Hello!</s>\nUser: What is 2+2?\nFalcon: 4</s>\n",
    "xverse": "You are helpful.\n\nHuman: Hi\n\nAssistant: Hello!</s>Human: What is 2+2?\n\nAssistant: 4</s>",
    "chatglm3": (
        "[gMASK]sop<|system|>\n You are helpful.<|user|>\n Hi<|assistant|>\n Hello!</s>"
        "<|user|>\n What is 2+2?<|assistant|>\n 4</s>"
    ),
    "glm4": (
        "[gMASK]<sop><|system|>\nYou are helpful.<|user|>\nHi<|assistant|>\nHello!</s>"
        "<|user|>\nWhat is 2+2?<|assistant|>\n4</s>"
    ),
}

# reply terminators as the fixture tokenizer decodes them
TERMINATORS = {
    "default": "</s>",
    "alpaca": "</s>",
    "vicuna": "</s>",
    "llama2": " </s>",
    "chatml": "<|im_end|>",
    "qwen": "<|im_end|>",
    "llama3": "<|eot_id|>",
    "intern": "<eoa>",
    "chatglm2": "</s>",
    "mistral": "</s>",
    "baichuan": "</s>",
    "baichuan2": "</s>",
    "qwen3": "<|im_end|>",
    "intern2": "<|im_end|>",
    "gemma": "<end_of_turn>",
    "phi3": "<|end|>",
    "falcon": "</s>",
    "xverse": "</s>",
    "chatglm3": "</s>",
    "glm4": "</s>",
}
# text before the reply content that the assistant format itself writes
REPLY_LEAD = {
    "default": " ",
    "vicuna": " ",
    "llama2": " ",
    "mistral": " ",
    "falcon": " ",
    "chatglm3": "\n ",
    "glm4": "\n",
}


@pytest.fixture(scope="module")
def tok(tiny_tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_tokenizer_dir)


def _decode(tok, ids: list[int]) -> str:
    return tok.decode(ids, skip_special_tokens=False)


# ---- golden strings ---------------------------------------------------------------------------------------------


def test_every_registered_template_has_a_golden_string():
    assert set(GOLDEN) == set(TEMPLATES)


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_rendering(name):
    assert get_template(name).render(CONVO, system=SYSTEM) == GOLDEN[name]


def test_default_system_used_when_system_is_none_and_dropped_when_empty():
    qwen = get_template("qwen")
    assert qwen.render(CONVO[:1]).startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n")
    assert qwen.render(CONVO[:1], system="").startswith("<|im_start|>user\nHi")
    assert get_template("vicuna").render(CONVO[:1]).startswith("<s>A chat between a curious user")


def test_generation_prompt_only_on_request():
    chatml = get_template("chatml")
    assert chatml.render(CONVO[:1], system="") == "<|im_start|>user\nHi<|im_end|>\n"
    assert chatml.render(CONVO[:1], system="", add_generation_prompt=True).endswith("<|im_start|>assistant\n")


def test_bound_tokenizer_spells_bos_and_eos(tok):
    tok2 = type(tok).from_pretrained(tok.name_or_path, eos_token="<|im_end|>")
    text = get_template("llama2", tok2).render(CONVO[:2], system="")
    assert text == "<s>[INST] Hi [/INST] Hello! <|im_end|>"


def test_message_text_is_never_parsed_as_a_slot():
    convo = [{"role": "user", "content": "say {{eos}}"}, {"role": "assistant", "content": "{{content}}"}]
    assert get_template("default").render(convo, system="") == "<s>Human: say {{eos}}\nAssistant: {{content}}</s>\n"


# ---- tools -------------------------------------------------------------------------------------------------------


def test_chatml_tool_call_and_observation():
    text = get_template("chatml").render(TOOL_CONVO, system=SYSTEM, tools=TOOLS)
    assert text.startswith(f"<|im_start|>system\n{SYSTEM}\n\n# Tools\n\n")
    assert TOOLS in text.split("<|im_end|>")[0]
    assert text.endswith(
        "<|im_start|>user\nWeather in Paris?<|im_end|>\n"
        f"<|im_start|>assistant\n{CALL}<|im_end|>\n"
        '<|im_start|>tool\n{"temp": 22}<|im_end|>\n'
        "<|im_start|>assistant\nIt is 22 degrees.<|im_end|>\n"
    )


def test_llama3_tool_call_and_ipython_observation():
    text = get_template("llama3").render(TOOL_CONVO, system=SYSTEM, tools=TOOLS)
    head = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nEnvironment: ipython\n\n"
    assert text.startswith(head)
    assert f"{TOOLS}\n\n{SYSTEM}<|eot_id|>" in text
    assert text.endswith(
        "<|start_header_id|>user<|end_header_id|>\n\nWeather in Paris?<|eot_id|>"
        f"<|start_header_id|>assistant<|end_header_id|>\n\n{CALL}<|eot_id|>"
        '<|start_header_id|>ipython<|end_header_id|>\n\n{"temp": 22}<|eot_id|>'
        "<|start_header_id|>assistant<|end_header_id|>\n\nIt is 22 degrees.<|eot_id|>"
    )


def test_qwen_and_mistral_tool_layouts():
    qwen = get_template("qwen").render(TOOL_CONVO, tools=TOOLS)
    assert f"<tools>\n{TOOLS}\n</tools>" in qwen
    assert f"<|im_start|>assistant\n<tool_call>\n{CALL}\n</tool_call><|im_end|>\n" in qwen
    assert '<|im_start|>user\n<tool_response>\n{"temp": 22}\n</tool_response><|im_end|>\n' in qwen
    mistral = get_template("mistral").render(TOOL_CONVO, system="", tools=TOOLS)
    assert mistral == (
        f"<s>[AVAILABLE_TOOLS] {TOOLS}[/AVAILABLE_TOOLS][INST] Weather in Paris? [/INST][TOOL_CALLS] {CALL}</s>"
        '[TOOL_RESULTS] {"temp": 22}[/TOOL_RESULTS] It is 22 degrees.</s>'
    )


def test_formats_without_tool_roles_map_them_to_user_and_assistant():
    text = get_template("vicuna").render(TOOL_CONVO, system="", tools="TOOLS")
    assert text == (
        f'<s>TOOLS USER: Weather in Paris? ASSISTANT: {CALL}</s>USER: {{"temp": 22}} ASSISTANT: It is 22 degrees.</s>'
    )


# ---- ids and the label mask --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TERMINATORS))
def test_multiturn_mask_covers_exactly_the_replies(tok, name):
    template = get_template(name, tok)
    pairs = template.encode_multiturn(tok, CONVO, SYSTEM)
    assert len(pairs) == 2
    lead, end = REPLY_LEAD.get(name, ""), TERMINATORS[name]
    assert [_decode(tok, r) for _, r in pairs] == [f"{lead}Hello!{end}", f"{lead}4{end}"]
    full = [i for p, r in pairs for i in p + r]
    # the training sequence is the rendering without the separator that trails the last reply
    assert _decode(tok, full) == template.render(CONVO, SYSTEM).removesuffix(template.separator)


def test_every_template_has_its_label_mask_checked():
    assert set(TERMINATORS) == set(TEMPLATES)


@pytest.mark.parametrize(
    ("name", "markers"),
    [
        ("glm4", ["[gMASK]", "<sop>", "<|system|>", "<|user|>", "<|assistant|>", "<|observation|>"]),
        ("chatglm3", ["[gMASK]", "sop", "<|system|>", "<|user|>", "<|assistant|>", "<|observation|>"]),
    ],
)
def test_glm_role_markers_are_ids_and_the_prompt_ends_at_the_assistant_marker(tiny_tokenizer_dir, name, markers):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>", *markers]})
    ids = dict(zip(markers, tok.convert_tokens_to_ids(markers)))
    template = get_template(name, tok)
    (p1, r1), (p2, r2) = template.encode_multiturn(tok, CONVO, SYSTEM)
    assert p1[:3] == [ids[markers[0]], ids[markers[1]], ids["<|system|>"]]
    assert p1[-1] == p2[-1] == ids["<|assistant|>"] and p2[0] == ids["<|user|>"]
    assert r1[-1] == r2[-1] == tok.eos_token_id
    assert template.get_stop_token_ids(tok) == [tok.eos_token_id, ids["<|user|>"], ids["<|observation|>"]]


def test_gemma_system_opens_the_first_user_turn_only():
    gemma = get_template("gemma")
    assert gemma.render(CONVO[:1], system="") == "<s><start_of_turn>user\nHi<end_of_turn>\n"
    text = gemma.render(CONVO, system=SYSTEM)
    assert text.count(SYSTEM) == 1 and text.index(SYSTEM) < text.index("Hi")


def test_special_markers_are_single_ids(tok):
    pairs = get_template("llama2", tok).encode_multiturn(tok, CONVO, SYSTEM)
    (p1, r1), (p2, _) = pairs
    assert p1[0] == tok.bos_token_id and p2[0] == tok.bos_token_id
    assert r1[-1] == tok.eos_token_id
    pairs = get_template("chatml", tok).encode_multiturn(tok, CONVO, SYSTEM)
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    assert all(r[-1] == im_end for _, r in pairs)


def test_oneturn_and_prompt_agree_with_multiturn(tok):
    template = get_template("chatml", tok)
    pairs = template.encode_multiturn(tok, CONVO, SYSTEM)
    prompt, response = template.encode_oneturn(tok, CONVO, SYSTEM)
    assert prompt == pairs[0][0] + pairs[0][1] + pairs[1][0]
    assert response == pairs[1][1]
    assert template.encode_prompt(tok, CONVO[:3], SYSTEM) == prompt
    assert _decode(tok, prompt).endswith("<|im_start|>assistant\n")


def test_roles_must_alternate_and_calls_must_end_right(tok):
    template = get_template("chatml", tok)
    with pytest.raises(DataError, match="role"):
        template.encode_multiturn(tok, [CONVO[0], CONVO[0]])
    with pytest.raises(DataError):
        template.encode_multiturn(tok, CONVO[:3])
    with pytest.raises(DataError):
        template.encode_prompt(tok, CONVO)


def test_stop_token_ids(tok):
    assert get_template("default", tok).get_stop_token_ids(tok) == [tok.eos_token_id]
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    assert get_template("chatml", tok).get_stop_token_ids(tok) == [tok.eos_token_id, im_end]


# ---- the tokenizer's own template (auto) -------------------------------------------------------------------------


def test_auto_renders_like_apply_chat_template(tok):
    auto = get_template("auto", tok)
    hf = [{"role": "system", "content": SYSTEM}] + CONVO
    assert auto.render(CONVO, SYSTEM) == tok.apply_chat_template(hf, tokenize=False)
    assert auto.render(CONVO[:1], add_generation_prompt=True) == tok.apply_chat_template(
        CONVO[:1], tokenize=False, add_generation_prompt=True
    )
    assert get_template(None, tok).render(CONVO) == get_template("", tok).render(CONVO)


def test_chatml_agrees_with_the_tokenizer_template(tok):
    chatml, auto = get_template("chatml", tok), get_template("auto", tok)
    for system in ("", SYSTEM):
        assert chatml.render(CONVO, system) == auto.render(CONVO, system)
        assert chatml.encode_multiturn(tok, CONVO, system) == auto.encode_multiturn(tok, CONVO, system)
        assert chatml.encode_prompt(tok, CONVO[:3], system) == auto.encode_prompt(tok, CONVO[:3], system)
    assert chatml.render(CONVO) == tok.apply_chat_template(CONVO, tokenize=False)


def test_chatml_agrees_with_smollm2s_own_template():
    """SmolLM2 ships a ChatML chat template: our chatml must give the same text and the same ids."""
    from transformers import AutoTokenizer

    from genie_core.model.pull import is_pulled, smollm2_dir

    if not is_pulled(smollm2_dir()):
        pytest.skip("SmolLM2 is not pulled (`genie models pull smollm2`)")
    smol = AutoTokenizer.from_pretrained(smollm2_dir())
    chatml, auto = get_template("chatml", smol), get_template("auto", smol)
    hf = [{"role": "system", "content": SYSTEM}, *CONVO]
    assert chatml.render(CONVO, SYSTEM) == smol.apply_chat_template(hf, tokenize=False)
    assert chatml.encode_multiturn(smol, CONVO, SYSTEM) == auto.encode_multiturn(smol, CONVO, SYSTEM)
    assert chatml.encode_prompt(smol, CONVO[:3], SYSTEM) == auto.encode_prompt(smol, CONVO[:3], SYSTEM)
    default_system = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
    assert chatml.render(CONVO, default_system) == smol.apply_chat_template(CONVO, tokenize=False)


def test_auto_finds_the_stop_word(tok):
    auto = get_template("auto", tok)
    assert auto.stop_words == ["<|im_end|>"]
    assert auto.get_stop_token_ids(tok) == get_template("chatml", tok).get_stop_token_ids(tok)


def test_auto_without_chat_template_asks_for_a_template(tok):
    bare = type(tok).from_pretrained(tok.name_or_path)
    bare.chat_template = None
    with pytest.raises(ConfigError, match="set `template`"):
        get_template("auto", bare)
    with pytest.raises(ConfigError, match="set `template`"):
        get_template(None, None)


# ---- registry ------------------------------------------------------------------------------------------------------


def test_duplicate_registration_raises():
    with pytest.raises(ValueError, match="already registered"):
        register_template("chatml", user_format="{{content}}")


def test_new_family_is_one_call():
    try:
        template = register_template("echo_test", user_format="Q: {{content}}\n", generation_prompt="A: ")
        assert isinstance(template, Template)
        assert get_template("echo_test").render(CONVO[:2], system="") == "Q: Hi\nA: Hello!</s>"
        assert "echo_test" in list_templates()
    finally:
        TEMPLATES.pop("echo_test", None)


def test_unknown_slot_is_rejected():
    with pytest.raises(ValueError, match="unknown slot"):
        Template(name="bad", user_format="{{contnet}}")


def test_unknown_name_suggests_the_closest():
    with pytest.raises(ConfigError) as err:
        get_template("lama3")
    message = str(err.value)
    assert "Did you mean 'llama3'" in message
    for name in ("auto", "chatml", "qwen"):
        assert name in message


def test_names_are_case_insensitive_and_bound_copies_leave_the_registry_alone(tok):
    template = get_template("ChatML", tok)
    assert template.name == "chatml" and template is not TEMPLATES["chatml"]
    template.stop_words.append("x")
    assert TEMPLATES["chatml"].stop_words == ["<|im_end|>"]


def test_list_templates_names_auto_and_every_family():
    assert list_templates()[0] == "auto"
    assert set(list_templates()) == {"auto", *TEMPLATES}


# ---- fix_tokenizer -------------------------------------------------------------------------------------------------


def test_fix_tokenizer_sets_pad(tiny_tokenizer_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    assert tok.pad_token is None
    size = len(tok)
    get_template("chatml", tok).fix_tokenizer(tok)
    assert tok.pad_token == tok.eos_token == "</s>"
    assert len(tok) == size  # <|im_end|> is one token already


def test_fix_tokenizer_adds_missing_stop_word_and_eos(tiny_tokenizer_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    tok.eos_token = None
    template = get_template("llama3", tok)
    template.fix_tokenizer(tok)
    eot = tok.convert_tokens_to_ids("<|eot_id|>")
    assert tok.eos_token == "<|eot_id|>" and tok.pad_token_id == eot
    assert tok.encode("a<|eot_id|>", add_special_tokens=False)[-1] == eot
    assert template.get_stop_token_ids(tok) == [eot]


def test_template_fingerprint_state_is_plain_data(tok):
    import json

    state = {k: v for k, v in vars(get_template("auto", tok)).items() if not k.startswith("_")}
    json.dumps(state)
