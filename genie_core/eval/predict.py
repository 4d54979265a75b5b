"""Batched generation over a prompt-only split, with BLEU/ROUGE against the references."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from genie_core.data.collator import PadCollator
from genie_core.extras.logging import get_logger
from genie_core.model.few_rows import few_row_linears

logger = get_logger(__name__)
PREDICTIONS_FILE = "generated_predictions.jsonl"


@torch.no_grad()
def generate_predictions(
    model, tokenizer, template, dataset, generating_args, batch_size: int = 8, max_new_tokens: int | None = None
) -> list[dict[str, Any]]:
    """Generate a reply for every row of ``dataset`` (columns input_ids, reference)."""
    model.eval()
    device = next(model.parameters()).device
    collate = PadCollator(tokenizer.pad_token_id, padding_side="left")
    gen_kwargs = generating_args.to_generate_kwargs()
    if max_new_tokens is not None:
        gen_kwargs["max_new_tokens"] = min(gen_kwargs["max_new_tokens"], max_new_tokens)
    stop_ids = template.get_stop_token_ids(tokenizer)
    rows: list[dict[str, Any]] = []
    for start in tqdm(range(0, len(dataset), batch_size), desc="Generating", unit="batch"):
        chunk = dataset[start : start + batch_size]
        features = [{"input_ids": ids} for ids in chunk["input_ids"]]
        batch = {k: v.to(device) for k, v in collate(features).items()}
        with few_row_linears(model):
            output = model.generate(
                **batch, eos_token_id=stop_ids, pad_token_id=tokenizer.pad_token_id, use_cache=True, **gen_kwargs
            )
        new_tokens = output[:, batch["input_ids"].shape[1] :]
        for i, ids in enumerate(new_tokens.tolist()):
            rows.append(
                {
                    "prompt": tokenizer.decode(chunk["input_ids"][i], skip_special_tokens=False),
                    "predict": tokenizer.decode(_strip(ids, stop_ids), skip_special_tokens=True).strip(),
                    "label": chunk["reference"][i],
                }
            )
    return rows


def _strip(ids: list[int], stop_ids: list[int]) -> list[int]:
    for pos, tok in enumerate(ids):
        if tok in stop_ids:
            return ids[:pos]
    return ids


def write_predictions(output_dir: str | Path, rows: list[dict[str, Any]]) -> Path:
    path = Path(output_dir) / PREDICTIONS_FILE
    tmp = path.with_suffix(".jsonl.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return path
