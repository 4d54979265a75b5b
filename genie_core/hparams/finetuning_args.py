"""Arguments that say which stage runs and which parameters it trains."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

from genie_core.hparams.stages import STAGE_NAMES, StageName


@dataclass
class FinetuningArguments:
    stage: StageName = field(default="sft", metadata={"help": "Training stage: " + ", ".join(STAGE_NAMES) + "."})
    finetuning_type: Literal["full", "freeze", "lora"] = field(
        default="lora", metadata={"help": "Which parameters train: all, the last layers, or LoRA adapters."}
    )
    num_layer_trainable: int = field(
        default=3,
        metadata={"help": "Freeze tuning: how many layers train; positive counts from the last, negative from first."},
    )
    name_module_trainable: str = field(
        default="mlp",
        metadata={"help": "Freeze tuning: comma-separated sub-module names inside a layer (e.g. mlp,self_attn; all)."},
    )
    lora_rank: int = field(default=8, metadata={"help": "LoRA rank r."})
    lora_alpha: Optional[float] = field(default=None, metadata={"help": "LoRA scaling alpha (default: 2 * rank)."})
    lora_dropout: float = field(default=0.1, metadata={"help": "Dropout on the LoRA path."})
    lora_target: Optional[str] = field(
        default=None,
        metadata={"help": "Comma-separated module names for LoRA, or `all`; default comes from the model family."},
    )
    additional_target: Optional[str] = field(
        default=None, metadata={"help": "Comma-separated modules trained fully and saved with the adapter."}
    )
    resume_lora_training: bool = field(
        default=True,
        metadata={
            "help": "With checkpoint_dir: keep training the last adapter (True) or merge them all and add a new one."
        },
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Start from scratch even if output_dir holds checkpoints (default: resume from the last)."},
    )
    plot_loss: bool = field(default=False, metadata={"help": "Save training_loss.png (and eval loss) at the end."})
    # RLHF (used by the rm/ppo/dpo/kto stages)
    reward_model: Optional[str] = field(
        default=None,
        metadata={
            "help": "PPO: output directory of an rm stage (LoRA adapter + value head, or a full reward model), "
            "or rule:<name>[:<arg>] for a rule-based reward (contains, regex, length, charset, reference)."
        },
    )
    dpo_beta: float = field(
        default=0.1,
        metadata={
            "help": "DPO/KTO: beta, the strength of the KL regularization (alias pref_beta); ORPO: the weight of the "
            "odds-ratio term; SimPO: the reward scale."
        },
    )
    pref_loss: Literal[
        "sigmoid", "ipo", "hinge", "robust", "bco_pair", "sppo_hard", "nca_pair", "apo_zero", "orpo", "simpo"
    ] = field(
        default="sigmoid",
        metadata={
            "help": "Stage dpo's loss (alias dpo_loss): sigmoid (the DPO paper), ipo, hinge (SLiC), robust (with "
            "dpo_label_smoothing), bco_pair, sppo_hard, nca_pair, apo_zero; or the reference-free orpo and simpo, "
            "which build no reference model."
        },
    )
    simpo_gamma: float = field(
        default=0.5,
        metadata={"help": "SimPO (pref_loss simpo): the target reward margin gamma, >= 0."},
    )
    dpo_label_smoothing: float = field(
        default=0.0,
        metadata={"help": "DPO robust loss: the assumed probability that a preference label is flipped, in [0, 0.5)."},
    )
    dpo_ftx: float = field(
        default=0.0,
        metadata={"help": "DPO: weight of an extra SFT loss on the chosen answers (0 disables it; alias pref_ftx)."},
    )
    kto_beta: Optional[float] = field(
        default=None,
        metadata={"help": "KTO: beta, the strength of the KL regularization (default: dpo_beta, alias pref_beta)."},
    )
    kto_desirable_weight: float = field(
        default=1.0,
        metadata={"help": "KTO: weight of the desirable replies' loss (alias kto_chosen_weight)."},
    )
    kto_undesirable_weight: float = field(
        default=1.0,
        metadata={"help": "KTO: weight of the undesirable replies' loss (alias kto_rejected_weight)."},
    )

    def __post_init__(self) -> None:
        from genie_core.extras.errors import ConfigError

        if self.lora_rank < 1:
            raise ConfigError(f"lora_rank must be >= 1, got {self.lora_rank}.")
        if self.lora_alpha is None:
            self.lora_alpha = float(self.lora_rank * 2)

    @property
    def lora_targets(self) -> list[str]:
        return [m.strip() for m in (self.lora_target or "").split(",") if m.strip()]
