"""The Elasticsearch/OpenSearch `_bulk` body: NDJSON action and source lines (`POST /_bulk`), source `es_bulk`.

The body is pairs of lines, an action (`{"index": {"_index": ..., "_id": ...}}` or `create`) and the document
to store; `delete` has no document line and `update` has one. Mintlog stores logs append-only: `index` and
`create` documents become events, `delete` and `update` are answered per item (400
`illegal_argument_exception`), as is a document line that is not a JSON object (400
`mapper_parsing_exception`). What cannot be read as a bulk body at all (an action line that is not a JSON
object naming one known action, a missing document line, no action) refuses the whole request
(`BulkBodyError`, 400).

A document becomes an event by these rules (docs/ingest.md, "Elasticsearch and OpenSearch `_bulk`"), each
member taken from the document, nested (`{"log": {"level": ...}}`) or dotted (`"log.level"`):

- message: `message`, `log`, `msg` (the first that is a string);
- timestamp: `@timestamp`, `timestamp`;
- level: `log.level`, `level`, `severity`;
- service: `service.name`, `service` (a string), `service_name`; with none of them, the index name (the
  action's `_index`, else the one in the path) without a trailing date (`logs-2026.12.05` → `logs`);
- host: `host.name`, `host` (a string), `hostname`;
- trace_id, span_id: `trace.id`, `trace_id`, `span.id`, `span_id`;
- every other member is a field under its own name (what is left of `host`, `log`, ... included).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

import msgspec

from mintlog.errors import BadRequest, UnsupportedMediaType

__all__ = ["ES_BULK_SOURCE", "BulkBodyError", "BulkItem", "EsBulkDecoder", "ItemError", "service_of_index"]

ES_BULK_SOURCE = "es_bulk"
"""The `source` of every event that came through `_bulk`."""

EsAction = Literal["index", "create", "update", "delete"]
_ACTIONS: frozenset[str] = frozenset({"index", "create", "update", "delete"})
_STORED_ACTIONS = frozenset({"index", "create"})
# What Elasticsearch and OpenSearch clients send: plain, and ES 8's vendor types (`application/vnd.elasticsearch
# +x-ndjson; compatible-with=8`).
_MEDIA_TYPES = frozenset({"application/json", "application/x-ndjson", "text/plain"})
_MEDIA_SUFFIXES = ("+json", "+x-ndjson")
_DATE_SUFFIX = re.compile(r"[-_.]\d{4}[-_.]?\d{2}(?:[-_.]?\d{2})?$")
_MESSAGE_KEYS = ("message", "log", "msg")
_decoder = msgspec.json.Decoder()


class BulkBodyError(BadRequest):
    """A `_bulk` body that cannot be read as one: answered whole with the Elasticsearch error `es_type`."""

    def __init__(self, detail: str, *, es_type: str = "illegal_argument_exception") -> None:
        super().__init__(detail, code="malformed_bulk", extra={"es_type": es_type})


@dataclass(frozen=True, slots=True)
class ItemError:
    """Why one item of the bulk was refused before it became an event, as Elasticsearch names it."""

    type: str
    reason: str


@dataclass(frozen=True, slots=True)
class BulkItem:
    """One action of the bulk body, in request order: what its answer item is made from."""

    action: EsAction
    index: str | None
    """The action's `_index`, else the index of the path; None when neither names one."""
    doc_id: str | None
    """The action's `_id`, as sent."""
    event_index: int | None
    """The item's position in the events handed to `IngestService.accept`; None when it was refused here."""
    error: ItemError | None


def service_of_index(index: str) -> str:
    """The service an index name stands for: the name without a trailing date (`-2026.12.05`, `-2026-12`)."""
    return _DATE_SUFFIX.sub("", index) or index


class EsBulkDecoder:
    """Reads one `_bulk` request: make one per request (`default_index` is its path's); after `decode`, `items`
    holds its actions in order. Pure otherwise: no I/O."""

    source = ES_BULK_SOURCE

    def __init__(self, default_index: str | None = None) -> None:
        self.default_index = default_index
        self.items: list[BulkItem] = []

    def check_content_type(self, content_type: str | None) -> None:
        """NDJSON or JSON, ES 8's vendor types included, or no type at all; anything else is 415."""
        if not content_type:
            return
        media_type = content_type.split(";", 1)[0].strip().lower()
        if media_type in _MEDIA_TYPES or media_type.endswith(_MEDIA_SUFFIXES):
            return
        raise UnsupportedMediaType(
            f"Content-Type header [{media_type}] is not supported; send application/x-ndjson",
            code="unsupported_content_type",
        )

    def decode(self, body: bytes, headers: Mapping[str, str]) -> list[Any]:
        """The events of the `index` and `create` items, in order; fills `items`. Raises `BulkBodyError`."""
        lines = _decode_lines(body)
        events: list[Any] = []
        items: list[BulkItem] = []
        position = 0
        # Shippers write the same action line again and again (`{"create":{"_index":"logs"}}`): one equal to the
        # one before, whose metadata were all strings (equality would not tell `1` from `1.0` or `true`), is the
        # same action.
        repeated_line: Any = _NO_LINE
        repeated: tuple[EsAction, str | None, str | None] = ("index", None, None)
        while position < len(lines):
            action_number = position + 1
            line = lines[position]
            position += 1
            if line == repeated_line:
                action, index, doc_id = repeated
            else:
                action, meta = _action_of(line, action_number)
                index = _text(meta.get("_index")) or self.default_index
                doc_id = _text(meta.get("_id"))
                if all(type(value) is str for value in meta.values()):
                    repeated_line, repeated = line, (action, index, doc_id)
            if action == "delete":
                items.append(BulkItem(action, index, doc_id, None, _unsupported(action)))
                continue
            if position >= len(lines):
                raise BulkBodyError(f"the {action} action on line {action_number} has no document line after it")
            document = lines[position]
            position += 1
            if action not in _STORED_ACTIONS:
                items.append(BulkItem(action, index, doc_id, None, _unsupported(action)))
            elif isinstance(document, _Malformed) or not isinstance(document, dict):
                reason = document.reason if isinstance(document, _Malformed) else "the document is not a JSON object"
                items.append(BulkItem(action, index, doc_id, None, ItemError("mapper_parsing_exception", reason)))
            else:
                items.append(BulkItem(action, index, doc_id, len(events), None))
                events.append(to_event(document, index))  # pyright: ignore[reportUnknownArgumentType]
        if not items:
            raise BulkBodyError(
                "Validation Failed: 1: no requests added;", es_type="action_request_validation_exception"
            )
        self.items = items
        return events


_NO_LINE = object()
"""Equal to no line."""


class _Malformed:
    """A line that is not JSON, with why."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _decode_lines(body: bytes) -> list[Any]:
    """Every non-blank line decoded, a `_Malformed` for each one that is not JSON (one pass when all are)."""
    try:
        return _decoder.decode_lines(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        pass
    lines: list[Any] = []
    for line in body.split(b"\n"):
        if not line.strip():
            continue
        try:
            lines.append(_decoder.decode(line))
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            lines.append(_Malformed(f"failed to parse: {exc}"))
        except RecursionError:
            lines.append(_Malformed("failed to parse: the document nests too deeply"))
    return lines


def _action_of(line: Any, line_number: int) -> tuple[EsAction, dict[str, Any]]:
    if isinstance(line, _Malformed):
        raise BulkBodyError(
            f"Malformed action/metadata line [{line_number}]: {line.reason}", es_type="x_content_parse_exception"
        )
    if not isinstance(line, dict) or len(line) != 1:  # pyright: ignore[reportUnknownArgumentType]
        raise BulkBodyError(f"Malformed action/metadata line [{line_number}], expected a JSON object with one action")
    ((action, meta),) = line.items()  # pyright: ignore[reportUnknownVariableType]
    if action not in _ACTIONS:
        raise BulkBodyError(
            f"Malformed action/metadata line [{line_number}], expected one of [create, delete, index, update] but "
            f"found [{action}]"
        )
    if not isinstance(meta, dict):
        raise BulkBodyError(f"Malformed action/metadata line [{line_number}], expected an object after [{action}]")
    return cast("EsAction", action), cast("dict[str, Any]", meta)


def _unsupported(action: str) -> ItemError:
    return ItemError(
        "illegal_argument_exception",
        f"the [{action}] action is not supported: Mintlog stores log events append-only (use index or create)",
    )


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def to_event(document: dict[str, Any], index: str | None) -> dict[str, Any]:
    """The event of one document (the module's rules); `document` is consumed."""
    event: dict[str, Any] = {}
    for key in _MESSAGE_KEYS:
        if isinstance(document.get(key), str):
            event["message"] = document.pop(key)
            break
    for name, paths in _EVENT_PATHS:
        _take(event, name, document, paths)
    if "service" not in event and index is not None:
        event["service"] = service_of_index(index)
    if document:
        event["fields"] = document
    return event


_Path = tuple[str, str | None, str | None]
"""A member's path, as `_take` reads it: its first step, its second step (None: a top-level member) and the
dotted name of the two (`"log.level"`)."""


def _paths(*paths: tuple[str, ...]) -> tuple[_Path, ...]:
    return tuple((path[0], None, None) if len(path) == 1 else (path[0], path[1], ".".join(path)) for path in paths)


_EVENT_PATHS: tuple[tuple[str, tuple[_Path, ...]], ...] = (
    ("timestamp", _paths(("@timestamp",), ("timestamp",))),
    ("level", _paths(("log", "level"), ("level",), ("severity",))),
    ("service", _paths(("service", "name"), ("service",), ("service_name",))),
    ("host", _paths(("host", "name"), ("host",), ("hostname",))),
    ("trace_id", _paths(("trace", "id"), ("trace_id",))),
    ("span_id", _paths(("span", "id"), ("span_id",))),
)
"""The event members taken from a document, each from the first of its paths that holds a scalar."""


def _take(event: dict[str, Any], name: str, document: dict[str, Any], paths: tuple[_Path, ...]) -> None:
    """Move the first of `paths` (one or two steps) the document holds a scalar at, dotted (`"log.level"`) or
    nested (`{"log": {"level": ...}}`), into `event[name]`; an object the move leaves empty goes too."""
    for first, second, dotted in paths:
        holder, key = document, first
        if second is not None:
            if dotted in document:
                key = dotted
            else:
                nested = document.get(first)
                if not isinstance(nested, dict):
                    continue
                holder, key = cast("dict[str, Any]", nested), second
        value = holder.get(key)
        if isinstance(value, _SCALARS) and not isinstance(value, bool) and value != "":
            event[name] = holder.pop(key)
            if holder is not document and not holder:
                del document[first]
            return


_SCALARS = (str, int, float)
