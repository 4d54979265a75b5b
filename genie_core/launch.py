"""Entry point of the training child: ``python -m genie_core.launch <genie_config.yaml>``.

`accelerate launch` starts this module once per rank; it re-parses the file the parent wrote.
"""

from __future__ import annotations

import sys

from genie_core.extras.env import apply_quiet_env


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m genie_core.launch <genie_config.yaml>", file=sys.stderr)
        return 2
    apply_quiet_env()
    from genie_core.extras.errors import GenieError
    from genie_core.hparams import get_args
    from genie_core.stages import run_stage

    try:
        args = get_args(argv[0])
        run_stage(args)
    except GenieError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
