"""The registry of named chat formats; a new family is one ``register_template`` call.

Each format follows the family's published chat layout. Formats without tool roles treat an observation as a user
turn and a function call as an assistant turn (the defaults of ``Template``).
"""

from __future__ import annotations

import difflib
from typing import Any

from genie_core.extras.errors import ConfigError
from genie_core.template.base import Template, TokenizerTemplate

TEMPLATES: dict[str, Template] = {}
AUTO_NAMES = (None, "", "auto")


def register_template(name: str, **parts: Any) -> Template:
    """Declare a format by its parts (see ``Template``); names are unique so a typo cannot shadow a family."""
    if name in TEMPLATES or name == "auto":
        raise ValueError(f"template '{name}' is already registered")
    template = Template(name=name, **parts)
    TEMPLATES[name] = template
    return template


def list_templates() -> list[str]:
    """Valid values of ``template``: ``auto`` (the tokenizer's own) and every registered name."""
    return ["auto", *sorted(TEMPLATES)]


def get_template(name: str | None, tokenizer: Any = None) -> Template:
    """The template for ``name`` bound to ``tokenizer``; ``None``/``""``/``auto`` use the tokenizer's chat template."""
    if name in AUTO_NAMES:
        if tokenizer is None:
            raise ConfigError("template: `auto` needs the model's tokenizer; set `template` to a named format")
        return TokenizerTemplate.from_tokenizer(tokenizer)
    key = name.strip().lower()
    if key in AUTO_NAMES:
        return get_template(None, tokenizer)
    if key not in TEMPLATES:
        close = difflib.get_close_matches(key, list_templates(), n=1, cutoff=0.5)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"template: unknown template '{name}'.{hint} Valid choices: {', '.join(list_templates())}")
    return TEMPLATES[key].bind(tokenizer)


# ---- formats ---------------------------------------------------------------------------------------------------

register_template(
    "default",
    prefix="{{bos}}",
    system_format="System: {{system}}\n",
    user_format="Human: {{content}}\n",
    generation_prompt="Assistant:",
    assistant_format=" {{content}}{{eos}}",
    separator="\n",
)

# Stanford Alpaca's instruction prompt; multi-turn repeats the instruction/response pair
register_template(
    "alpaca",
    prefix="{{bos}}",
    system_format="{{system}}\n\n",
    user_format="### Instruction:\n{{content}}\n\n",
    generation_prompt="### Response:\n",
    assistant_format="{{content}}{{eos}}",
    separator="\n\n",
    default_system=(
        "Below is an instruction that describes a task. Write a response that appropriately completes the request."
    ),
)

# Vicuna v1.1: "<system> USER: q ASSISTANT: a</s>USER: ..."
register_template(
    "vicuna",
    prefix="{{bos}}",
    system_format="{{system}} ",
    user_format="USER: {{content}} ",
    generation_prompt="ASSISTANT:",
    assistant_format=" {{content}}{{eos}}",
    default_system=(
        "A chat between a curious user and an artificial intelligence assistant. "
        "The assistant gives helpful, detailed, and polite answers to the user's questions."
    ),
)

# Llama-2-chat: every round is "<s>[INST] q [/INST] a </s>"; the system block opens the first instruction
register_template(
    "llama2",
    system_format="<<SYS>>\n{{system}}\n<</SYS>>\n\n",
    system_in_user=True,
    user_format="{{bos}}[INST] {{content}} [/INST]",
    assistant_format=" {{content}} {{eos}}",
)

# Baichuan-13B-Chat: user and assistant are marked by the reserved tokens 195 and 196
register_template(
    "baichuan",
    user_format="{{token:<reserved_102>}}{{content}}",
    generation_prompt="{{token:<reserved_103>}}",
)

# Baichuan2 keeps ids 195/196 for the roles, which its vocabulary names differently
register_template(
    "baichuan2",
    user_format="{{token:<reserved_106>}}{{content}}",
    generation_prompt="{{token:<reserved_107>}}",
)

# InternLM-chat: "<|User|>:q<eoh>\n<|Bot|>:a<eoa>\n"; the model stops on <eoa>
register_template(
    "intern",
    prefix="{{bos}}",
    system_format="<|System|>:{{system}}\n",
    user_format="<|User|>:{{content}}{{token:<eoh>}}\n",
    generation_prompt="<|Bot|>:",
    assistant_format="{{content}}{{token:<eoa>}}",
    separator="\n",
    stop_words=["<eoa>"],
)

register_template(
    "chatml",
    system_format="<|im_start|>system\n{{system}}<|im_end|>\n",
    tools_format=(
        "# Tools\n\nYou can call these functions:\n{{tools}}\n\n"
        'To call one, reply with only a JSON object: {"name": <function name>, "arguments": <arguments object>}'
    ),
    user_format="<|im_start|>user\n{{content}}<|im_end|>\n",
    observation_format="<|im_start|>tool\n{{content}}<|im_end|>\n",
    generation_prompt="<|im_start|>assistant\n",
    assistant_format="{{content}}<|im_end|>",
    separator="\n",
    stop_words=["<|im_end|>"],
)

# ChatGLM2-6B: "[gMASK]sop" then "[Round n]\n\n问：q\n\n答：a"; it has no system role, so the system is plain text
register_template(
    "chatglm2",
    prefix="{{token:[gMASK]}}{{token:sop}}",
    system_format="{{system}}\n\n",
    user_format="[Round {{idx}}]\n\n问：{{content}}\n\n",
    generation_prompt="答：",
    separator="\n\n",
)

# Llama 3 / 3.1 Instruct: header-delimited turns ending with <|eot_id|>; tool results use the ipython role
register_template(
    "llama3",
    prefix="<|begin_of_text|>",
    system_format="<|start_header_id|>system<|end_header_id|>\n\n{{tools}}{{system}}<|eot_id|>",
    tools_format=(
        "Environment: ipython\n\nYou have access to the following functions. To call a function, please respond "
        'with JSON for a function call. Respond in the format {"name": function name, "parameters": dictionary of '
        "argument name and its value}. Do not use variables.\n\n{{tools}}\n\n"
    ),
    user_format="<|start_header_id|>user<|end_header_id|>\n\n{{content}}<|eot_id|>",
    observation_format="<|start_header_id|>ipython<|end_header_id|>\n\n{{content}}<|eot_id|>",
    generation_prompt="<|start_header_id|>assistant<|end_header_id|>\n\n",
    assistant_format="{{content}}<|eot_id|>",
    stop_words=["<|eot_id|>"],
)

# Mistral-Instruct: "<s>[INST] q [/INST] a</s>"; the system opens the first instruction, tools precede it
register_template(
    "mistral",
    prefix="{{bos}}{{tools}}",
    system_format="{{system}}\n\n",
    system_in_user=True,
    tools_format="[AVAILABLE_TOOLS] {{tools}}[/AVAILABLE_TOOLS]",
    user_format="[INST] {{content}} [/INST]",
    observation_format="[TOOL_RESULTS] {{content}}[/TOOL_RESULTS]",
    assistant_format=" {{content}}{{eos}}",
    function_format="[TOOL_CALLS] {{content}}{{eos}}",
)

# Qwen (1.5/2/2.5): ChatML with a default system; tool calls and results use Qwen's XML-tagged layout
register_template(
    "qwen",
    system_format="<|im_start|>system\n{{system}}<|im_end|>\n",
    tools_format=(
        "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
        "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{{tools}}\n</tools>\n\n"
        "For each function call, return a json object with function name and arguments within "
        "<tool_call></tool_call> XML tags:\n<tool_call>\n"
        '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
    ),
    user_format="<|im_start|>user\n{{content}}<|im_end|>\n",
    observation_format="<|im_start|>user\n<tool_response>\n{{content}}\n</tool_response><|im_end|>\n",
    generation_prompt="<|im_start|>assistant\n",
    assistant_format="{{content}}<|im_end|>",
    function_format="<tool_call>\n{{content}}\n</tool_call><|im_end|>",
    separator="\n",
    stop_words=["<|im_end|>"],
    default_system="You are a helpful assistant.",
)

# Qwen3: ChatML without a default system prompt. Its own chat template also writes an empty <think></think> block
# before the last reply; here a reasoning trace stays part of the reply text, as the data gives it.
register_template(
    "qwen3",
    system_format="<|im_start|>system\n{{system}}<|im_end|>\n",
    tools_format=TEMPLATES["qwen"].tools_format,
    user_format="<|im_start|>user\n{{content}}<|im_end|>\n",
    observation_format="<|im_start|>user\n<tool_response>\n{{content}}\n</tool_response><|im_end|>\n",
    generation_prompt="<|im_start|>assistant\n",
    assistant_format="{{content}}<|im_end|>",
    function_format="<tool_call>\n{{content}}\n</tool_call><|im_end|>",
    separator="\n",
    stop_words=["<|im_end|>"],
)

# InternLM2-chat: ChatML after <s>, with the system prompt its chat() method uses by default
register_template(
    "intern2",
    prefix="{{bos}}",
    system_format="<|im_start|>system\n{{system}}<|im_end|>\n",
    user_format="<|im_start|>user\n{{content}}<|im_end|>\n",
    generation_prompt="<|im_start|>assistant\n",
    assistant_format="{{content}}<|im_end|>",
    separator="\n",
    stop_words=["<|im_end|>"],
    default_system=(
        "You are an AI assistant whose name is InternLM (书生·浦语).\n"
        "- InternLM (书生·浦语) is a conversational language model that is developed by Shanghai AI Laboratory "
        "(上海人工智能实验室). It is designed to be helpful, honest, and harmless.\n"
        "- InternLM (书生·浦语) can understand and communicate fluently in the language chosen by the user such as "
        "English and 中文."
    ),
)

# Gemma (1, 2, 3): "<bos><start_of_turn>user\nq<end_of_turn>\n<start_of_turn>model\na<end_of_turn>\n"; there is no
# system role, so the system prompt opens the first user turn (as Gemma 3's own template does)
register_template(
    "gemma",
    prefix="{{bos}}",
    system_format="{{system}}\n\n",
    system_in_user=True,
    user_format="<start_of_turn>user\n{{content}}<end_of_turn>\n",
    generation_prompt="<start_of_turn>model\n",
    assistant_format="{{content}}<end_of_turn>",
    separator="\n",
    stop_words=["<end_of_turn>"],
)

# Phi-3 / Phi-3.5: "<|system|>\ns<|end|>\n<|user|>\nq<|end|>\n<|assistant|>\na<|end|>\n"
register_template(
    "phi3",
    system_format="<|system|>\n{{system}}<|end|>\n",
    user_format="<|user|>\n{{content}}<|end|>\n",
    generation_prompt="<|assistant|>\n",
    assistant_format="{{content}}<|end|>",
    separator="\n",
    stop_words=["<|end|>"],
)

# Falcon-instruct: "System: s\nUser: q\nFalcon: a\nUser: ..."; replies end with eos so the model learns to stop
register_template(
    "falcon",
    system_format="System: {{system}}\n",
    user_format="User: {{content}}\n",
    generation_prompt="Falcon:",
    assistant_format=" {{content}}{{eos}}",
    separator="\n",
)

# XVERSE-Chat: "Human: q\n\nAssistant: a<eos>Human: ..."; it has no system role, so the system is plain text
register_template(
    "xverse",
    system_format="{{system}}\n\n",
    user_format="Human: {{content}}\n\nAssistant: ",
)

# ChatGLM3-6B: "[gMASK]sop<|system|>\n s<|user|>\n q<|assistant|>\n a<|user|>..."; the role markers are single tokens.
# The model stops on the next <|user|>/<|observation|>; for training a reply ends with eos.
register_template(
    "chatglm3",
    prefix="{{token:[gMASK]}}{{token:sop}}",
    system_format="{{token:<|system|>}}\n {{system}}",
    user_format="{{token:<|user|>}}\n {{content}}",
    observation_format="{{token:<|observation|>}}\n {{content}}",
    generation_prompt="{{token:<|assistant|>}}",
    assistant_format="\n {{content}}{{eos}}",
    stop_words=["<|user|>", "<|observation|>"],
)

# GLM-4 (glm-4-9b-chat, its -hf conversion and GLM-4-0414): "[gMASK]<sop><|system|>\ns<|user|>\nq<|assistant|>\na..."
register_template(
    "glm4",
    prefix="{{token:[gMASK]}}{{token:<sop>}}",
    system_format="{{token:<|system|>}}\n{{system}}",
    user_format="{{token:<|user|>}}\n{{content}}",
    observation_format="{{token:<|observation|>}}\n{{content}}",
    generation_prompt="{{token:<|assistant|>}}",
    assistant_format="\n{{content}}{{eos}}",
    stop_words=["<|user|>", "<|observation|>"],
)
