"""The one table of training stages: what each is called, which function runs it and what data it reads.

Every other place that needs the list (the config's ``stage`` choices, dataset checks, pipeline specs, the
board's form) reads it from here, so adding a stage is one entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DataKind = Literal["text", "supervised", "pairwise", "prompt", "unpaired"]


@dataclass(frozen=True)
class StageInfo:
    name: str
    runner: str  # "module:function", imported only when the stage runs
    data: DataKind  # text: plain text; supervised: prompt + reply; pairwise: chosen/rejected; prompt: prompts only;
    # unpaired: prompt + reply tagged desirable or not (kto_tag)
    help: str


STAGE_TABLE: dict[str, StageInfo] = {
    info.name: info
    for info in (
        StageInfo("pt", "genie_core.stages.pt:run_pt", "text", "continued pre-training on plain text"),
        StageInfo("sft", "genie_core.stages.sft:run_sft", "supervised", "supervised fine-tuning on prompt/reply"),
        StageInfo("rm", "genie_core.stages.rm:run_rm", "pairwise", "reward model on chosen/rejected pairs"),
        StageInfo("ppo", "genie_core.stages.ppo:run_ppo", "prompt", "PPO against a reward model or rule"),
        StageInfo("dpo", "genie_core.stages.dpo:run_dpo", "pairwise", "direct preference optimisation"),
        StageInfo("grpo", "genie_core.stages.grpo:run_grpo", "prompt", "GRPO: groups of sampled replies, scored"),
        StageInfo("rloo", "genie_core.stages.rloo:run_rloo", "prompt", "RLOO: leave-one-out baseline, scored"),
        StageInfo("kto", "genie_core.stages.kto:run_kto", "unpaired", "KTO on replies tagged good or bad (kto_tag)"),
    )
}
STAGE_NAMES: tuple[str, ...] = tuple(STAGE_TABLE)
RANKING_STAGES: tuple[str, ...] = tuple(n for n, s in STAGE_TABLE.items() if s.data == "pairwise")
UNPAIRED_STAGES: tuple[str, ...] = tuple(n for n, s in STAGE_TABLE.items() if s.data == "unpaired")
# kept equal to STAGE_NAMES by a test (typing needs literals)
StageName = Literal["pt", "sft", "rm", "ppo", "dpo", "grpo", "rloo", "kto"]
