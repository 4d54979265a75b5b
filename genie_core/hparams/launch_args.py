"""Arguments for how the training child is started (read by the parent only)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional


@dataclass
class LaunchArguments:
    accelerate_config: Optional[str] = field(
        default=None, metadata={"help": "An accelerate config file (DDP, DeepSpeed ZeRO, FSDP) for the child."}
    )
    num_processes: int = field(default=1, metadata={"help": "Processes (ranks) on this machine."})
