"""Entry point of the training child: ``python -m genie_core.stage_child <genie_config.yaml>``.

`accelerate launch` starts this module once per rank; it re-parses the file the parent wrote.
"""

from __future__ import annotations

import errno
import os
import sys

from genie_core.extras.env import apply_quiet_env
from genie_core.extras.supervise import EXIT_STOPPED, StopRequested, die_with_parent, install_stop_handler, quick_exit


def disk_full_message(exc: OSError, needed: int | None = None) -> str:
    """One line for a full disk: which path, how much room is left there and about how much the stage needs."""
    import shutil

    path = exc.filename or "the output directory"
    where = os.path.dirname(str(exc.filename)) if exc.filename else "."
    while where and not os.path.isdir(where):
        where = os.path.dirname(where)
    free = shutil.disk_usage(where or ".").free / 2**20
    need = f", the stage needs about {needed / 2**20:.0f} MiB" if needed else ""
    return f"no space left on device while writing {path} ({free:.0f} MiB free there{need}); free space, run again."


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m genie_core.stage_child <genie_config.yaml>", file=sys.stderr)
        return 2
    die_with_parent()  # accelerate's launcher may be killed without passing the signal on
    install_stop_handler()
    apply_quiet_env()
    from genie_core.extras.errors import GenieError
    from genie_core.hparams import get_args
    from genie_core.hparams.parser import skip_unused_quantizer
    from genie_core.stages import run_stage

    args = None
    try:
        skip_unused_quantizer(argv)
        args = get_args(argv[0])
        run_stage(args)
    except StopRequested as exc:
        print(f"[genie] {exc}; run the same command again to resume.", file=sys.stderr, flush=True)
        quick_exit(EXIT_STOPPED)
    except GenieError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        from genie_core.stage_parent import expected_output_bytes

        needed = expected_output_bytes(args) if args is not None else None
        print(f"error: {disk_full_message(exc, needed)}", file=sys.stderr, flush=True)
        return 3
    finish_quickly()
    return 0


def finish_quickly() -> None:
    """Everything is written (results, checkpoints, MLflow calls return once logged): skip the interpreter's
    teardown, which takes seconds once torch and its thread pools are loaded, and which no one is waiting for."""
    import logging

    logging.shutdown()  # flush every handler (trainer_log.jsonl is written and closed per record)
    quick_exit(0)


if __name__ == "__main__":
    from genie_core.extras.warm import run_warm

    status = run_warm("genie_core.stage_child:main", sys.argv[1:])  # forked from a pipeline's warm interpreter
    sys.exit(main() if status is None else status)
