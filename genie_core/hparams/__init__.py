from genie_core.hparams.data_args import DataArguments
from genie_core.hparams.finetuning_args import FinetuningArguments
from genie_core.hparams.generating_args import GeneratingArguments
from genie_core.hparams.launch_args import LaunchArguments
from genie_core.hparams.model_args import ModelArguments
from genie_core.hparams.parser import (
    GenieArgs,
    build_args,
    check_config,
    dump_config,
    get_args,
    load_config,
    merge_config,
    parse_cli_tokens,
)

__all__ = [
    "DataArguments",
    "FinetuningArguments",
    "GeneratingArguments",
    "GenieArgs",
    "LaunchArguments",
    "ModelArguments",
    "build_args",
    "check_config",
    "dump_config",
    "get_args",
    "load_config",
    "merge_config",
    "parse_cli_tokens",
]
