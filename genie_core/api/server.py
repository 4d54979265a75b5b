"""`genie api`: serve a model (+ adapters) as an OpenAI-compatible API with uvicorn.

    genie api --model_name_or_path smollm2 --template chatml [--checkpoint_dir saves/sft] [--port 8000] [--api_key K]

Binds 127.0.0.1 unless ``--host`` says otherwise; the API key comes from ``--api_key`` or ``$GENIE_API_KEY``.
OpenAPI docs are at ``/docs``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

from genie_core.api.app import ApiSettings
from genie_core.chat.args import help_lines, parse_infer_args
from genie_core.chat.batcher import BatcherConfig
from genie_core.extras.logging import get_logger

logger = get_logger(__name__)

API_KEY_ENV = "GENIE_API_KEY"
USAGE = """usage: genie api [CONFIG.yaml] --model_name_or_path M [--template T] [--checkpoint_dir A[,B]] [options]
Model, adapter and generating options are the same as for `genie train`/`genie chat`. Server options:
"""


@dataclass
class ServerArguments:
    host: str = field(default="127.0.0.1", metadata={"help": "Address to bind; 0.0.0.0 exposes the server."})
    port: int = field(default=8000, metadata={"help": "TCP port."})
    log_level: str = field(default="info", metadata={"help": "uvicorn log level (debug, info, warning, error)."})


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE + help_lines(ServerArguments, ApiSettings, BatcherConfig))
        return 0 if argv else 2
    args, (server, settings, batching) = parse_infer_args(argv, ServerArguments, ApiSettings, BatcherConfig)
    if settings.api_key is None:
        settings.api_key = os.environ.get(API_KEY_ENV) or None
    if server.host not in ("127.0.0.1", "localhost", "::1") and not settings.api_key:
        logger.warning("Serving on %s without an API key: anyone who can reach it can use it.", server.host)

    import uvicorn

    from genie_core.api.app import create_app, wrap_limits
    from genie_core.chat.engine import ChatEngine

    engine = ChatEngine.from_args(args, batching)
    app = wrap_limits(create_app(engine, settings), settings)
    print(f"Serving {engine.model_name} on http://{server.host}:{server.port} (docs at /docs)", flush=True)
    try:
        uvicorn.run(  # RequestLog writes one line per request, with latency and tokens: uvicorn's would repeat it
            app,
            host=server.host,
            port=server.port,
            log_level=server.log_level,
            access_log=False,
            timeout_graceful_shutdown=5,
        )
    finally:
        engine.close()
    return 0


if __name__ == "__main__":
    from genie_core.extras.entry import run_main

    sys.exit(run_main(main))  # same environment and error handling as the `genie` command
