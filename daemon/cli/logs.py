"""Logging to stderr: plain lines journald understands, or one JSON object per line."""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone

from daemon.core.text import escape_invisible, json_escape_invisible

# One logger tree: every module logs to ``logging.getLogger(f"salvage.{__name__}")`` (e.g.
# ``salvage.daemon.engine.pipeline``, ``salvage.providers.google.client``), so one level set here
# governs all of Salvage and nothing of the libraries'. tests/test_layers.py checks the spelling.
LOG_ROOT = "salvage"


class TextFormatter(logging.Formatter):
    """Plain lines; the message is one line whatever it quotes (newlines and escapes shown as ``\\n``).

    Messages quote event titles and mailbox text: a title with a newline must not be able to forge
    a second, official-looking log line, nor an escape sequence act on the terminal reading it.
    Tracebacks (exception text) keep their lines.
    """

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        record.message = escape_invisible(record.message)
        return super().formatMessage(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message (and exception text if any)."""

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": datetime.fromtimestamp(record.created, tz=timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json_escape_invisible(json.dumps(data, ensure_ascii=False))


def configure(level: int = logging.INFO, fmt: str = "text") -> None:
    """Send Salvage's logs to stderr. Text lines carry no timestamp when journald adds its own."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        import os

        stamp = "" if os.environ.get("JOURNAL_STREAM") else "%(asctime)s "
        handler.setFormatter(TextFormatter(stamp + "%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger(LOG_ROOT).setLevel(level)  # every module logs under it (see LOG_ROOT)
    for noisy in ("googleapiclient", "httpx", "httpcore", "msal", "urllib3", "apscheduler"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
