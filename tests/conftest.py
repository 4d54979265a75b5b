"""Shared fixtures: a real (trained in-process) BPE tokenizer and tiny random models.

Nothing here downloads: the tokenizer is trained on a small corpus written below and the
model weights are random, built from a config.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
CHATML_JINJA = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

_CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Give three tips for staying healthy. Eat a balanced diet, exercise regularly and sleep well.",
    "What is the capital of France? The capital of France is Paris.",
    "Translate to French: good morning. Bonjour.",
    "Add 12 and 30. The answer is 42.",
    "You are a helpful assistant. Human: hello Assistant: Hi! How can I help you today?",
    "user assistant system observation function tool call name arguments result",
    "人工智能是计算机科学的一个分支。你好，我是一个人工智能助手。",
    "请问今天天气怎么样？今天天气晴朗，适合出门散步。",
    "[INST] <<SYS>> <</SYS>> [/INST] ### Instruction: ### Response: USER: ASSISTANT:",
    "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 + - * / = ( ) { } [ ] : , . ? !",
]


def build_tokenizer(out_dir: Path, vocab_size: int = 600):
    """Train a byte-level BPE tokenizer and save it as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 20, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
    )
    fast.chat_template = CHATML_JINJA
    fast.save_pretrained(out_dir)
    return fast


def build_tiny_llama(out_dir: Path, tokenizer, seed: int = 0):
    """A 2-layer llama with random weights, saved next to the tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(out_dir)
    return model


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny_tokenizer")
    build_tokenizer(out)
    return out


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """Directory with a tiny random llama and the trained tokenizer (read-only for tests)."""
    out = tmp_path_factory.mktemp("tiny_llama")
    tok = build_tokenizer(out)
    build_tiny_llama(out, tok)
    return out


@pytest.fixture()
def genie_home(tmp_path, monkeypatch) -> Path:
    """Isolate caches per test."""
    home = tmp_path / "genie_home"
    monkeypatch.setenv("GENIE_HOME", str(home))
    return home


@pytest.fixture()
def genie_logs(caplog):
    """Records of the ``genie`` loggers: they do not propagate to the root logger that caplog listens on."""
    import logging

    from genie_core.extras.logging import get_logger

    get_logger("genie_core.tests")  # configures the genie logger once
    logger = logging.getLogger("genie")
    logger.addHandler(caplog.handler)
    try:
        yield caplog
    finally:
        logger.removeHandler(caplog.handler)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return ROOT / "data"


@pytest.fixture()
def one_thread():
    """Tiny matrices run fastest on one thread, and a busy second core cannot slow them down."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture()
def no_model_load(monkeypatch):
    """Fail the test if anything tries to load a model: bad input must be caught before that."""

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the input was checked")

    import genie_core.model as model_pkg
    import genie_core.model.loader as loader

    monkeypatch.setattr(loader, "load_model", refuse)
    monkeypatch.setattr(model_pkg, "load_model", refuse)
