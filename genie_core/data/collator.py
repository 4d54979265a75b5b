"""Batch builders: right-padded for training, left-padded for generation, padding-free packing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from genie_core.data.processors import IGNORE_INDEX

_TEXT_COLUMNS = ("source", "reference")


@dataclass
class PadCollator:
    """Pads input_ids/labels to the longest row in the batch (not to cutoff_len)."""

    pad_token_id: int
    padding_side: str = "right"
    pad_to_multiple_of: int | None = None

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        longest = max(len(f["input_ids"]) for f in features)
        if self.pad_to_multiple_of:
            m = self.pad_to_multiple_of
            longest = (longest + m - 1) // m * m
        has_labels = "labels" in features[0]
        batch: dict[str, list] = {"input_ids": [], "attention_mask": []}
        if has_labels:
            batch["labels"] = []
        for f in features:
            ids = list(f["input_ids"])
            pad = longest - len(ids)
            mask = [1] * len(ids)
            if self.padding_side == "left":
                batch["input_ids"].append([self.pad_token_id] * pad + ids)
                batch["attention_mask"].append([0] * pad + mask)
            else:
                batch["input_ids"].append(ids + [self.pad_token_id] * pad)
                batch["attention_mask"].append(mask + [0] * pad)
            if has_labels:
                labels = list(f["labels"])
                fill = [IGNORE_INDEX] * pad
                batch["labels"].append(fill + labels if self.padding_side == "left" else labels + fill)
        return {k: torch.tensor(v, dtype=torch.long) for k, v in batch.items()}


@dataclass
class PackingCollator:
    """Concatenates the batch into one row with position ids restarting per example.

    transformers builds a block-diagonal causal mask from restarting position ids, so no example
    attends to another and no compute is spent on padding. The first label of every example is
    ignored so the previous example's last token does not learn to predict it.
    """

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        input_ids: list[int] = []
        labels: list[int] = []
        positions: list[int] = []
        for f in features:
            ids = list(f["input_ids"])
            lab = list(f["labels"])
            input_ids += ids
            labels += [IGNORE_INDEX] + lab[1:]
            positions += list(range(len(ids)))
        return {
            "input_ids": torch.tensor([input_ids], dtype=torch.long),
            "labels": torch.tensor([labels], dtype=torch.long),
            "position_ids": torch.tensor([positions], dtype=torch.long),
        }


def drop_text_columns(dataset):
    """Remove columns the model cannot take (kept in the cache for reports and predictions)."""
    present = [c for c in _TEXT_COLUMNS if c in dataset.column_names]
    return dataset.remove_columns(present) if present else dataset


@dataclass
class PairwiseCollator:
    """Preference rows -> one right-padded batch: every chosen answer first, then every rejected one.

    Row ``i`` and row ``i + B`` share the prompt, so one forward scores both sides of each pair.
    """

    pad_token_id: int
    pad_to_multiple_of: int | None = None

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        rows = [list(f["prompt_ids"]) + list(f["chosen_ids"]) for f in features]
        rows += [list(f["prompt_ids"]) + list(f["rejected_ids"]) for f in features]
        return PadCollator(self.pad_token_id, pad_to_multiple_of=self.pad_to_multiple_of)(
            [{"input_ids": ids} for ids in rows]
        )
