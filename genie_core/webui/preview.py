"""Datasets as the board shows them: the names in a ``dataset_info.json`` and a few rows rendered through a template.

The rows go through the same registry, converters and template as training, so the preview is the text the model
will see (with the tokenizer's own bos/eos when a tokenizer is given), and a row the loader would drop is shown with
its reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genie_core.data.registry import load_dataset_info
from genie_core.schema import Example

PREVIEW_ROWS = 3


@dataclass
class PreviewRow:
    dataset: str
    source: str  # file:index
    text: str  # the formatted example, or why the row is dropped
    dropped: bool = False


def list_datasets(dataset_dir: str | Path) -> list[str]:
    """Dataset names registered in ``dataset_dir/dataset_info.json``, in file order."""
    return list(load_dataset_info(dataset_dir))


def preview_rows(
    dataset_dir: str | Path,
    names: list[str],
    template_name: str | None,
    stage: str = "sft",
    tokenizer: Any = None,
    rows: int = PREVIEW_ROWS,
) -> list[PreviewRow]:
    """The first ``rows`` records of each dataset, converted for ``stage`` and rendered with the template."""
    from genie_core.data.assemble import check_stage, load_dataset_examples
    from genie_core.data.registry import get_dataset_attrs
    from genie_core.hparams.data_args import DataArguments
    from genie_core.template import get_template
    from genie_core.template.base import EOS_TEXT

    template = get_template(template_name, tokenizer)
    eos = (getattr(tokenizer, "eos_token", None) or "") if tokenizer is not None else EOS_TEXT
    data_args = DataArguments(dataset_dir=str(dataset_dir), max_samples=rows, template=template_name)
    attrs = get_dataset_attrs(names, dataset_dir)
    check_stage(attrs, stage)
    out: list[PreviewRow] = []
    for attr in attrs:
        load = load_dataset_examples(attr, data_args, stage)
        out += [PreviewRow(attr.name, ex.source, render_example(ex, template, stage, eos)) for ex in load.examples]
        out += [PreviewRow(attr.name, d.source, f"dropped: {d.reason}", dropped=True) for d in load.dropped]
    return out


def render_example(example: Example, template: Any, stage: str, eos: str = "") -> str:
    """The text of one example as the stage builds it (pt: the raw text ended by ``eos``)."""
    system = example.system or None
    tools = example.tools or None
    if stage == "pt":
        return (example.prompt[0]["content"] if example.prompt else "") + eos
    if stage == "ppo" or not example.response:
        return template.render(example.prompt, system, tools, add_generation_prompt=True)
    if stage in ("rm", "dpo") and len(example.response) == 2:
        chosen, rejected = (template.render([*example.prompt, r], system, tools) for r in example.response)
        return f"[chosen]\n{chosen}\n\n[rejected]\n{rejected}"
    return template.render([*example.prompt, example.response[0]], system, tools)
