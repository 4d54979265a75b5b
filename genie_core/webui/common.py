"""What both pages share: the folders a page may read and write (its roots), and serving a gradio app.

A page is reachable by anyone who can reach its port, so every path typed into it (model, adapters, dataset folder,
export folder) must resolve, symlinks followed, to a place under one of the configured roots. The defaults are the
current directory, the project's ``data`` folder and ``genie_home()``; the runs directory is always added, because
that is where the board's own runs write.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from genie_core.extras.env import genie_home, runs_dir
from genie_core.extras.errors import GenieError

PROJECT_DATA = Path(__file__).resolve().parents[2] / "data"
QUIET_GRADIO = {"GRADIO_ANALYTICS_ENABLED": "False", "GRADIO_SSR_MODE": "False"}
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


class PathRefused(GenieError):
    """A path typed into a page is outside the allowed roots, or missing."""


def default_roots() -> list[Path]:
    roots = [Path.cwd(), genie_home()]
    if PROJECT_DATA.is_dir():
        roots.insert(1, PROJECT_DATA)
    return roots


@dataclass(frozen=True)
class Roots:
    """The folders a page accepts paths under."""

    paths: tuple[Path, ...]

    @classmethod
    def from_spec(cls, spec: str | Iterable[str | Path] | None = None) -> Roots:
        """``"DIR,DIR"`` (or a list; empty: the defaults) plus the runs directory, each resolved."""
        if isinstance(spec, str):
            spec = [p for p in spec.split(",") if p.strip()]
        chosen = [Path(str(p).strip()).expanduser() for p in spec or []] or default_roots()
        resolved: list[Path] = []
        for path in [*chosen, runs_dir()]:
            path = path.resolve()
            if path not in resolved:
                resolved.append(path)
        return cls(tuple(resolved))

    def describe(self) -> str:
        return ", ".join(str(p) for p in self.paths)

    def contains(self, path: Path) -> bool:
        return any(path == root or path.is_relative_to(root) for root in self.paths)

    def check(self, value: str | os.PathLike | None, what: str, must_exist: bool = True, is_dir: bool = True) -> Path:
        """The resolved path of ``value``, or ``PathRefused`` saying why it is not accepted."""
        text = str(value or "").strip()
        if not text:
            raise PathRefused(f"{what}: enter a path.")
        path = Path(text).expanduser()
        path = (path if path.is_absolute() else Path.cwd() / path).resolve()
        if not self.contains(path):
            raise PathRefused(
                f"{what}: {path} is outside the allowed folders ({self.describe()}). "
                "Start `genie webui --roots DIR,DIR` to allow another folder."
            )
        if must_exist and not path.exists():
            raise PathRefused(f"{what}: {path} does not exist.")
        if must_exist and is_dir and not path.is_dir():
            raise PathRefused(f"{what}: {path} is not a folder.")
        return path

    def check_model(self, value: str | None, what: str = "model") -> str:
        """A model directory (or ``.gguf`` file) under the roots, or a pullable name such as ``smollm2``."""
        text = str(value or "").strip()
        if text and "/" not in text and os.sep not in text and not Path(text).exists():
            from genie_core.model.pull import PULLABLE

            if text in PULLABLE:
                return text
        path = self.check(text, what, is_dir=not text.endswith(".gguf"))
        return str(path)

    def check_many(self, value: str | None, what: str) -> list[str]:
        """A comma-separated list of folders (adapters); empty is fine."""
        parts = [p.strip() for p in str(value or "").split(",") if p.strip()]
        return [str(self.check(p, what)) for p in parts]

    def check_config(self, config: dict) -> dict:
        """Every path-valued key of a stage config (extra keys typed into the page too), resolved; a copy."""
        from genie_core.hparams.parser import ALIASES

        out = dict(config)
        for key, value in config.items():
            name = ALIASES.get(key, key)
            if name not in PATH_KEYS or not isinstance(value, str) or value.strip().lower() in ("", "true", "false"):
                continue
            if name == "model_name_or_path":
                out[key] = self.check_model(value, key)
            elif name == "checkpoint_dir":
                out[key] = ",".join(self.check_many(value, key))
            elif name in ("tokenized_cache_dir", "cache_dir", "logging_dir"):
                out[key] = str(self.check(value, key, must_exist=False))
            else:
                out[key] = str(self.check(value, key, is_dir=name in ("dataset_dir", "reward_model")))
        return out


# stage config keys that name files or folders: every one is checked against the roots
PATH_KEYS = (
    "model_name_or_path",
    "checkpoint_dir",
    "dataset_dir",
    "reward_model",
    "gguf_file",
    "cache_dir",
    "tokenized_cache_dir",
    "accelerate_config",
    "deepspeed",
    "fsdp_config",
    "logging_dir",
    "resume_from_checkpoint",
)


def set_gradio_env() -> None:
    """No analytics calls, no node server: a page must start offline. The user's own settings win."""
    for key, value in QUIET_GRADIO.items():
        os.environ.setdefault(key, value)


def serve(demo, host: str, port: int, block: bool = True):
    """Serve ``demo`` on ``host:port`` (queue on, errors shown in the page); returns the URL when not blocking."""
    from genie_core.extras.logging import get_logger

    if host not in LOCAL_HOSTS:
        get_logger(__name__).warning("Serving on %s: anyone who can reach this port can use the page.", host)
    demo.queue(default_concurrency_limit=4)
    demo.launch(server_name=host, server_port=port, prevent_thread_lock=True, show_error=True, quiet=True)
    url = f"http://{host}:{port}"
    print(f"Running on {url}  (Ctrl-C stops)", flush=True)
    if block:
        demo.block_thread()
    return url
