"""How every command runs: quiet/offline environment defaults first, a GenieError as one `error:` line and exit 2.

The `genie` command table (flows/cli.py) and each module's ``python -m`` entry use this, so both behave the same.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from genie_core.extras.env import apply_quiet_env
from genie_core.extras.errors import GenieError


def run_main(main: Callable[[list[str]], int | None], argv: list[str] | None = None) -> int:
    """Run a command's ``main(argv)`` and turn a GenieError into exit status 2 with its message on stderr."""
    apply_quiet_env()
    try:
        return int(main(sys.argv[1:] if argv is None else argv) or 0)
    except GenieError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `genie train --help | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
