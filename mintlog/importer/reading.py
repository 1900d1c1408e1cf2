"""Files to import, their format, and their lines as native ingest events (pure: no network).

Guarantees:

- `find_files` expands every argument (a file, a directory searched recursively, or a glob with `*`, `?`,
  `[...]` and `**`) into regular files, sorted, each once; an argument that names nothing is reported, never
  silently skipped.
- `open_file` streams gzip (recognized by its magic bytes `1f 8b`, whatever the name; several members are
  read as one stream, like `gzip -d`) and never holds more than one line in memory.
- `read_lines` yields every line with its 1-based number and the byte offset where it starts in the
  (decompressed) stream; `\\n` and `\\r\\n` endings are removed; a line longer than the cap is cut at the
  cap and the rest is read and dropped, its full length kept in `Line.length`.
- `LineEncoder.encode` never raises on content: invalid UTF-8 is replaced (U+FFFD) and counted; a plain text
  line over `max_line_bytes` is truncated on a character boundary, counted, and marked with
  `fields.import.truncated_from_bytes`; a line of an NDJSON file that is not a JSON object is sent as a plain
  text event and counted; an event larger than one batch may hold is refused here and counted.
"""

from __future__ import annotations

import glob
import gzip
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import IO, Any, Literal, cast

import msgspec

from mintlog.parsing.detect import detect
from mintlog.parsing.timestamps import TimeContext, parse_with_format

__all__ = [
    "FORMATS",
    "GZIP_MAGIC",
    "Encoded",
    "FileFormat",
    "Line",
    "LineCounts",
    "LineEncoder",
    "Refused",
    "SourceFile",
    "TimeReader",
    "detect_format",
    "file_context",
    "find_files",
    "open_file",
    "read_lines",
    "time_reader",
]

FileFormat = Literal["text", "ndjson"]
FORMATS: tuple[FileFormat, ...] = ("text", "ndjson")
GZIP_MAGIC = b"\x1f\x8b"
_GLOB_CHARACTERS = frozenset("*?[")
_SAMPLE_LINES = 5
_SAMPLE_MAX_LINES = 100
_json_encode = msgspec.json.encode
_json_decode = msgspec.json.decode


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One file to import: its absolute path (its identity in idempotency keys), size on disk and mtime."""

    path: Path
    size: int
    modified: datetime
    compressed: bool


def find_files(arguments: Sequence[str]) -> tuple[list[SourceFile], list[str]]:
    """The files the arguments name, in argument order (a directory's and a glob's sorted), each once; and the
    arguments that name no file, with the files that cannot be read (and why)."""
    found: list[SourceFile] = []
    seen: set[Path] = set()
    missing: list[str] = []
    for argument in arguments:
        candidates = _expand(argument)
        if not candidates:
            missing.append(argument)
        for candidate in candidates:
            resolved = candidate.resolve()
            if resolved in seen:
                continue
            seen.add(resolved)
            try:
                found.append(_source_file(resolved))
            except OSError as exc:  # unreadable (permissions) or gone since it was listed
                missing.append(f"{candidate} ({exc.strerror or exc})")
    return found, missing


def _expand(argument: str) -> list[Path]:
    path = Path(argument).expanduser()
    if path.is_file():
        return [path]
    if path.is_dir():
        return _files_under(path)
    if _GLOB_CHARACTERS.isdisjoint(argument):
        return []
    expanded: list[Path] = []
    for match in sorted(glob.glob(os.path.expanduser(argument), recursive=True)):
        candidate = Path(match)
        if candidate.is_file():
            expanded.append(candidate)
        elif candidate.is_dir():
            expanded.extend(_files_under(candidate))
    return expanded


def _files_under(directory: Path) -> list[Path]:
    return sorted(path for path in directory.rglob("*") if path.is_file())


def _source_file(path: Path) -> SourceFile:
    stat = path.stat()
    with path.open("rb") as raw:
        compressed = raw.read(2) == GZIP_MAGIC
    return SourceFile(
        path=path,
        size=stat.st_size,
        modified=datetime.fromtimestamp(stat.st_mtime, UTC),
        compressed=compressed,
    )


def open_file(source: SourceFile) -> tuple[IO[bytes], IO[bytes]]:
    """`(raw, stream)`: the file on disk (its `tell()` is the progress in bytes on disk) and the stream of
    its (decompressed) bytes. Close `stream`, then `raw`."""
    raw = source.path.open("rb")
    if source.compressed:
        return raw, cast("IO[bytes]", gzip.GzipFile(fileobj=raw, mode="rb"))
    return raw, raw


@dataclass(frozen=True, slots=True)
class Line:
    """One line: its 1-based number, the offset of its first byte in the (decompressed) stream, its bytes
    without the line ending (at most the reader's cap) and its full length without the ending."""

    number: int
    offset: int
    data: bytes
    length: int

    @property
    def cut(self) -> bool:
        """The line was longer than the reader's cap: `data` holds its first bytes only."""
        return self.length > len(self.data)


def read_lines(stream: IO[bytes], cap: int) -> Iterator[Line]:
    """Every line of `stream`, holding at most `cap` bytes of one line in memory (see the module docstring)."""
    offset = 0
    number = 0
    limit = cap + 2  # room for "\r\n" after a line of exactly `cap` bytes
    while raw := stream.readline(limit):
        number += 1
        start = offset
        offset += len(raw)
        if raw.endswith(b"\n"):
            data = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1]
            length = len(data)
        elif len(raw) < limit:  # the last line, without an ending
            data = raw[:-1] if raw.endswith(b"\r") else raw
            length = len(data)
        else:
            length = len(raw)
            while rest := stream.readline(1 << 20):
                offset += len(rest)
                length += len(rest)
                if rest.endswith(b"\n"):
                    length -= 2 if rest.endswith(b"\r\n") else 1
                    break
            data = raw
        if len(data) > cap:
            data = data[:cap]
        yield Line(number, start, data, length)


def detect_format(lines: Iterable[Line]) -> FileFormat:
    """`ndjson` when each of the first non-blank lines (up to 5, among the first 100 lines) is a JSON object
    (or starts like one when it was too long to read whole); otherwise `text`. A file without any non-blank
    line is `text`."""
    looked_at = 0
    for index, line in enumerate(lines):
        if index >= _SAMPLE_MAX_LINES or looked_at >= _SAMPLE_LINES:
            break
        data = line.data.strip()
        if not data:
            continue
        looked_at += 1
        if not data.startswith(b"{"):
            return "text"
        if line.cut:
            continue
        try:
            decoded: object = _json_decode(data)
        except (msgspec.DecodeError, UnicodeDecodeError):
            return "text"
        if not isinstance(decoded, dict):
            return "text"
    return "ndjson" if looked_at else "text"


TimeReader = Callable[[str, TimeContext], datetime | None]
"""Reads the time written in a plain text line, or None."""


def time_reader(spec: str) -> TimeReader | None:
    """The client-side timestamp reader that `--timestamps` names: None for `server` (the pipeline detects it),
    the pipeline's own detection for `auto`, else a strptime format matched against as many leading
    whitespace-separated words of the line as the format has. Raises `ValueError` for anything else."""
    if spec == "server":
        return None
    if spec == "auto":
        return _detected_time
    if "%" not in spec or not spec.strip():
        raise ValueError(f"--timestamps must be server, auto or a strptime format with % codes, not {spec!r}")
    words = len(spec.split())

    def read(text: str, context: TimeContext) -> datetime | None:
        head = text.split(None, words)[:words]
        if len(head) < words:
            return None
        return parse_with_format(" ".join(head), spec, context)

    return read


def _detected_time(text: str, context: TimeContext) -> datetime | None:
    return detect(text, context).moment


@dataclass(slots=True)
class LineCounts:
    """What reading the lines found, for the summary."""

    lines: int = 0
    blank: int = 0
    truncated: int = 0
    invalid_utf8: int = 0
    not_json: int = 0
    timestamps_found: int = 0
    too_large: int = 0


@dataclass(frozen=True, slots=True)
class Encoded:
    """One event encoded as a member of `{"events": [...]}`, with where its line is."""

    line: int
    offset: int
    part: bytes


@dataclass(frozen=True, slots=True)
class Refused:
    """A line that cannot be sent (larger than a batch may hold), with why."""

    line: int
    reason: str


class LineEncoder:
    """Turns the lines of one file into encoded native events (see the module docstring).

    Plain text: `{"message": line}`, plus `service` when given, plus `timestamp` (RFC 3339, UTC) when a
    client-side time reader finds one. NDJSON: the object as written; `service` is added when given and the
    object names none (`service`/`service_name` absent, null or empty).
    """

    def __init__(
        self,
        file_format: FileFormat,
        *,
        service: str | None,
        reader: TimeReader | None,
        context: TimeContext,
        max_line_bytes: int,
        max_event_bytes: int,
        counts: LineCounts,
    ) -> None:
        self._ndjson = file_format == "ndjson"
        self._service = service
        self._reader = reader
        self._context = context
        self._max_line_bytes = max_line_bytes
        self._max_event_bytes = max_event_bytes
        self._counts = counts
        self._suffix = b"}" if service is None else b',"service":' + _json_encode(service) + b"}"

    @property
    def read_cap(self) -> int:
        """The longest line this encoder wants whole: an NDJSON object may be as large as an event may be."""
        return self._max_event_bytes if self._ndjson else self._max_line_bytes

    def encode(self, lines: Iterable[Line]) -> Iterator[Encoded | Refused]:
        """The events of `lines`, in order; blank lines are skipped."""
        counts = self._counts
        for line in lines:
            counts.lines += 1
            data = line.data
            if not data.strip():
                counts.blank += 1
                continue
            outcome = self._ndjson_event(line) if self._ndjson else self._text_event(line, _text(data, counts))
            if isinstance(outcome, Encoded) and len(outcome.part) > self._max_event_bytes:
                counts.too_large += 1
                outcome = Refused(
                    line.number,
                    f"the event is {len(outcome.part)} bytes encoded, over the {self._max_event_bytes} bytes a "
                    "batch may hold",
                )
            yield outcome

    def _text_event(self, line: Line, text: str) -> Encoded:
        counts = self._counts
        extra = b""
        if line.length > self._max_line_bytes or len(text.encode()) > self._max_line_bytes:
            counts.truncated += 1
            text = _truncate(text, self._max_line_bytes)
            extra = b',"fields":{"import":{"truncated_from_bytes":%d}}' % line.length
        if self._reader is not None:
            moment = self._reader(text, self._context)
            if moment is not None:
                counts.timestamps_found += 1
                extra += b',"timestamp":"' + _rfc3339(moment).encode() + b'"'
        return Encoded(line.number, line.offset, b'{"message":' + _json_encode(text) + extra + self._suffix)

    def _ndjson_event(self, line: Line) -> Encoded | Refused:
        counts = self._counts
        if line.cut:
            counts.too_large += 1
            return Refused(
                line.number,
                f"the JSON line is {line.length} bytes, over the {self._max_event_bytes} bytes a batch may hold",
            )
        data = line.data.strip()
        try:
            decoded: object = _json_decode(data)
        except (msgspec.DecodeError, UnicodeDecodeError):
            decoded = None
            if not _is_utf8(data):
                counts.invalid_utf8 += 1
                data = data.decode("utf-8", "replace").encode()
                try:
                    decoded = _json_decode(data)
                except msgspec.DecodeError:
                    decoded = None
        if not isinstance(decoded, dict):
            counts.not_json += 1
            return self._text_event(line, data.decode("utf-8", "replace"))
        event: dict[str, Any] = decoded  # pyright: ignore[reportUnknownVariableType]
        if self._service is not None and not (event.get("service") or event.get("service_name")):
            event["service"] = self._service
            return Encoded(line.number, line.offset, _json_encode(event))
        return Encoded(line.number, line.offset, data)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


def _text(data: bytes, counts: LineCounts) -> str:
    try:
        return data.decode()
    except UnicodeDecodeError:
        counts.invalid_utf8 += 1
        return data.decode("utf-8", "replace")


def _truncate(text: str, max_bytes: int) -> str:
    """`text` cut to at most `max_bytes` UTF-8 bytes, on a character boundary."""
    return text.encode()[:max_bytes].decode("utf-8", "ignore")


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def file_context(source: SourceFile, zone: tzinfo) -> TimeContext:
    """What client-side times without a year or a date are relative to: the file's modification time (its
    last line was written then), and `zone` for times without an offset."""
    return TimeContext(received_at=source.modified, zone=zone)
