"""Arguments that say which datasets to use and how to turn them into tokens."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional


@dataclass
class DataArguments:
    template: Optional[str] = field(
        default=None,
        metadata={"help": "Chat template name (see `genie templates`); `auto` or empty uses the tokenizer's own."},
    )
    dataset: Optional[str] = field(
        default=None, metadata={"help": "Comma-separated names from `<dataset_dir>/dataset_info.json`."}
    )
    eval_dataset: Optional[str] = field(
        default=None, metadata={"help": "Comma-separated datasets used only for evaluation/prediction."}
    )
    dataset_dir: str = field(default="data", metadata={"help": "Folder holding dataset_info.json and the files."})
    split: str = field(default="train", metadata={"help": "Split to read for hub datasets."})
    cutoff_len: int = field(default=1024, metadata={"help": "Maximum tokens per example after tokenization."})
    max_target_length: Optional[int] = field(
        default=None,
        metadata={"help": "Token budget kept for the response when truncating; also caps generation in predict."},
    )
    train_on_prompt: bool = field(default=False, metadata={"help": "Compute the loss on prompt tokens too."})
    mix_strategy: Literal["concat", "interleave_under", "interleave_over"] = field(
        default="concat", metadata={"help": "How several datasets are combined."}
    )
    interleave_probs: Optional[str] = field(
        default=None, metadata={"help": "Comma-separated sampling probabilities for interleave strategies."}
    )
    overwrite_cache: bool = field(default=False, metadata={"help": "Re-tokenize even if a valid cache exists."})
    preprocessing_num_workers: Optional[int] = field(
        default=None,
        metadata={"help": "Processes that tokenize (datasets.map num_proc); the same rows and cache as one process."},
    )
    max_samples: Optional[int] = field(default=None, metadata={"help": "Use at most this many records per dataset."})
    val_size: float = field(
        default=0.0, metadata={"help": "Held-out part of the training data: a fraction (<1) or a record count."}
    )
    eval_split: float = field(
        default=0.0,
        metadata={
            "help": "Held-out part of every dataset, a fraction in [0, 1) of its prompts chosen by a seeded hash of "
            "their content: training never reads it, evaluation reads only it, and every stage on the same dataset "
            "holds out the same prompts. Set it once in a pipeline's defaults."
        },
    )
    eval_split_seed: int = field(
        default=0, metadata={"help": "Seed of the eval_split hash; change it to draw another held-out set."}
    )
    packing: Optional[bool] = field(
        default=None,
        metadata={
            "help": "sft: pack a batch's examples into one row without cross-example attention. Unset: on where the "
            "model keeps packed examples apart (checked at start, logged); false: padded batches. pt packs always."
        },
    )
    group_by_length: bool = field(
        default=False,
        metadata={
            "help": "Batch examples of similar length together to cut padding (sft: instead of packing). dpo groups "
            "by length unless this or train_sampling_strategy is set; rm needs no grouping: it scores without padding."
        },
    )
    default_system: Optional[str] = field(default=None, metadata={"help": "Override the template's system prompt."})
    self_cognition_name: str = field(
        default="LLM-Genie", metadata={"help": "Fills {{name}} in self-cognition style datasets."}
    )
    self_cognition_author: str = field(
        default="ByteGenie", metadata={"help": "Fills {{author}} in self-cognition style datasets."}
    )
    tokenized_cache_dir: Optional[str] = field(
        default=None, metadata={"help": "Where tokenized Arrow caches live (default: $GENIE_HOME/datasets)."}
    )
    seed: int = field(default=42, metadata={"help": "Seed for shuffling, splitting and interleaving."})

    def __post_init__(self) -> None:
        from genie_core.extras.errors import ConfigError

        if self.cutoff_len < 2:
            raise ConfigError(f"cutoff_len must be at least 2, got {self.cutoff_len}.")
        if self.val_size < 0:
            raise ConfigError(f"val_size must be >= 0, got {self.val_size}.")
        if not 0 <= self.eval_split < 1:
            raise ConfigError(f"eval_split is a fraction of the prompts in [0, 1), got {self.eval_split}.")

    @property
    def dataset_names(self) -> list[str]:
        return _split(self.dataset)

    @property
    def eval_dataset_names(self) -> list[str]:
        return _split(self.eval_dataset)


def _split(value: Optional[str]) -> list[str]:
    return [name.strip() for name in (value or "").split(",") if name.strip()]
