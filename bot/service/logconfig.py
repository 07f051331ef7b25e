"""Process-wide logging for ``acrcheck serve``: text for people, JSON lines for collectors.

``ACRCHECK_LOG_FORMAT=json`` writes one JSON object per line (``ts``, ``level``, ``logger``,
``msg``, and ``exc`` for tracebacks), which Azure Monitor / Loki / Elastic ingest without a
parsing rule. Secrets are removed before any handler sees a record: ``handlers.logsafe``
wraps the record factory (so the message *and* any traceback are redacted with
``bot.engine.redact`` plus log-specific patterns), and this formatter only serialises the result.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from handlers import logsafe

#: Record attributes that are part of every record; anything else was passed with ``extra=``.
_STANDARD = frozenset(vars(logging.LogRecord("x", logging.INFO, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's ANSI-coloured duplicate of msg
}
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per line; ``extra=`` fields are kept (redacted, stringified if needed)."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:  # logsafe folds tracebacks into msg; this covers records made without it
            payload["exc"] = logsafe.scrub_message(self.formatException(record.exc_info))
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_") and key not in payload:
                payload[key] = value if isinstance(value, int | float | bool | None) else logsafe.scrub_message(str(value))
        return json.dumps(payload, ensure_ascii=False)


def configure_logging(fmt: str = "text", level: str = "INFO", *, stream: TextIO | None = None) -> logging.Handler:
    """Install the redacting record factory and one root handler in the chosen format.

    Replaces existing root handlers (``basicConfig`` from the CLI) so every line has one
    shape; uvicorn's loggers propagate to root (it is started with ``log_config=None``).
    """
    logsafe.install()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(str(level).upper())
    return handler
