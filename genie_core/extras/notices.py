"""bitsandbytes' import-time notices, shown only to runs that quantize.

On import, bitsandbytes warns about 4-bit kernels it could not load (on CPUs with AVX512-BF16: "Failed to load CPU
gemm_4bit_forward ... `pip install kernels`"). transformers' trainer imports it, so every command that touches a model
printed that line although only a quantized model (``quantization_bit``) ever uses those kernels. Entry points hold
the notices back; loading a quantized model shows what was held.
"""

from __future__ import annotations

import logging
import sys

# the loggers of the bitsandbytes backends that announce missing kernels when they are imported
BNB_NOTICE_LOGGERS = ("bitsandbytes.backends.cpu.ops", "bitsandbytes.backends.xpu.ops")


class _HeldNotices(logging.Filter):
    """Keeps warnings back instead of dropping them, so a run that quantizes can still show them."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        self.records.append(record)
        return False


_held = _HeldNotices()


def hold_bitsandbytes_notices() -> None:
    """Keep bitsandbytes' kernel notices back; call before anything imports bitsandbytes."""
    for name in BNB_NOTICE_LOGGERS:
        logger = logging.getLogger(name)
        if _held not in logger.filters:
            logger.addFilter(_held)


def release_bitsandbytes_notices() -> None:
    """The run quantizes: show the notices held so far, and let later ones through."""
    for name in BNB_NOTICE_LOGGERS:
        logging.getLogger(name).removeFilter(_held)
    records, _held.records = _held.records, []
    for record in records:
        logging.getLogger(record.name).handle(record)


def skip_bitsandbytes() -> None:
    """Make bitsandbytes look absent to peft and transformers in a process that does not quantize.

    peft imports it whenever it is installed, and it pulls in torch's compiler stack: about two seconds of every
    training child's start. Call before peft or the trainer is imported; a quantizing run must not call it.
    """
    sys.modules.setdefault("bitsandbytes", None)  # type: ignore[arg-type]  # find_spec() then answers None
