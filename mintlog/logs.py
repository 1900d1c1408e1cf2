"""Mintlog's own logs, on standard error: JSON lines for machines, or one readable line per record for people.

`MINTLOG_LOG_FORMAT` picks the format: `json`, `text`, or `auto` (the default: `text` when standard error is a
terminal, `json` otherwise, so a container or a pipe gets JSON and a person at a terminal gets text). Both
carry the time, the level, the logger, the message, the request id of the request being served and the record's
extra fields (JSON members, or `key=value` after the text message).

Known noise is dropped whatever the format: Granian's "Embedded server is experimental!" (one per HTTP port,
about its API, not about the server's behaviour) and Alembic's announcements of its SQL dialect.
"""

from __future__ import annotations

import contextvars
import logging
import sys
from datetime import UTC, datetime
from typing import Literal, TextIO

import msgspec

__all__ = ["configure_logging", "request_id_var", "resolve_log_format"]

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName", "request_suffix"}
_encoder = msgspec.json.Encoder()

# (logger, message prefix) of records that tell an operator nothing.
_NOISE: tuple[tuple[str, str], ...] = (
    ("_granian", "Embedded server is experimental"),
    ("alembic.runtime.migration", "Context impl "),
    ("alembic.runtime.migration", "Will assume "),
)


def _extras(record: logging.LogRecord) -> dict[str, object]:
    """The record's extra fields (`logger.info(..., extra={...})`), values JSON-safe."""
    return {
        key: value if isinstance(value, str | int | float | bool | None) else repr(value)
        for key, value in record.__dict__.items()
        if key not in _RESERVED and not key.startswith("_")
    }


class JsonFormatter(logging.Formatter):
    """Formats a record as a JSON line: time, level, logger, message, request_id, extras, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id is not None:
            entry["request_id"] = request_id
        entry.update(_extras(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return _encoder.encode(entry).decode()


def _text_value(value: object) -> str:
    text = str(value)
    return _encoder.encode(text).decode() if not text or any(c in text for c in ' "=\n') else text


class TextFormatter(logging.Formatter):
    """One line per record for a person: local time, level, logger, message, then `key=value` extras (the
    request id first); an exception's traceback follows on the next lines."""

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created).strftime("%Y-%m-%d %H:%M:%S")
        line = f"{moment}.{int(record.msecs):03d} {record.levelname:<7} {record.name}: {record.getMessage()}"
        pairs = {"request_id": request_id_var.get(), **_extras(record)}
        line += "".join(f" {key}={_text_value(value)}" for key, value in pairs.items() if value is not None)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _is_noise(record: logging.LogRecord) -> bool:
    return any(record.name == name and str(record.msg).startswith(prefix) for name, prefix in _NOISE)


def resolve_log_format(log_format: str, stream: TextIO) -> Literal["json", "text"]:
    """The format `log_format` means on `stream`: `auto` is `text` on a terminal and `json` elsewhere."""
    if log_format == "auto":
        isatty = getattr(stream, "isatty", None)
        return "text" if isatty is not None and isatty() else "json"
    return "text" if log_format == "text" else "json"


def configure_logging(level: str, log_format: str, stream: TextIO | None = None) -> Literal["json", "text"]:
    """Send every logger's records to `stream` (standard error by default) in the chosen format, known noise
    dropped; idempotent. Returns the format in use (`auto` resolved)."""
    output = stream or sys.stderr
    chosen = resolve_log_format(log_format, output)
    handler = logging.StreamHandler(output)
    handler.setFormatter(JsonFormatter() if chosen == "json" else TextFormatter())
    handler.addFilter(lambda record: not _is_noise(record))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in (
        "_granian",
        "granian",
        "granian.access",
        "aiosqlite",
        "nats",
        "asyncio",
        "alembic.runtime.plugins",
    ):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    return chosen
