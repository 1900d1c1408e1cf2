"""`mintlog import PATH...`: its arguments (`add_import_parser`, called by `mintlog.cli`) and what it does
(`run_import`). Behaviour, options and exit codes: docs/import.md.

Exit codes: 0 every event read was accepted; 1 some were rejected, a batch failed, or the server refused
the key or the URL; 2 bad usage (no key, a path that names nothing, a bad option); 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mintlog.importer.batching import Batch
    from mintlog.importer.progress import ImportStats, Reporter
    from mintlog.importer.reading import FileFormat, Line, Refused, SourceFile, TimeReader
    from mintlog.importer.sender import IngestSender

__all__ = ["DEFAULT_BATCH_BYTES", "DEFAULT_BATCH_EVENTS", "DEFAULT_MAX_LINE_BYTES", "add_import_parser", "run_import"]

DEFAULT_BATCH_EVENTS = 5_000
"""Events per request by default (the server takes up to `MINTLOG_INGEST__MAX_EVENTS_PER_BATCH`, 10,000)."""
DEFAULT_BATCH_BYTES = 4 * 1024 * 1024
"""Body bytes per request by default (the server takes up to `MINTLOG_INGEST__MAX_BODY_BYTES`, 5 MiB)."""
DEFAULT_MAX_LINE_BYTES = 64 * 1024
"""Longest plain text line sent whole (the server's `MINTLOG_INGEST__MAX_MESSAGE_BYTES` default)."""
_USAGE = 2
_INTERRUPTED = 130


def _bounded_int(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not between {low:,} and {high:,}")
        return value

    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"{value} is not between 0 and 3600")
    return value


def add_import_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:  # pyright: ignore[reportPrivateUsage]
    """Register `mintlog import` among the CLI's subcommands."""
    parser = commands.add_parser(
        "import",
        help="load log files into a running Mintlog through its ingest API",
        description="Load plain text, NDJSON and gzip files (or directories, recursively, or globs) into a "
        "running Mintlog through POST /v1/ingest/logs, in batches with retries and idempotency keys. "
        "Exit codes: 0 all accepted, 1 some rejected or failed, 2 usage error, 130 interrupted. See docs/import.md.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files, directories (recursive) or globs")
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="ingest URL (default: %(default)s)")
    parser.add_argument("--key", help="API key with scope ingest:logs (default: $MINTLOG_API_KEY)")
    parser.add_argument("--service", help="service of the events that name none")
    parser.add_argument(
        "--format", choices=("auto", "text", "ndjson"), default="auto", help="(default: auto, per file)"
    )
    parser.add_argument(
        "--timestamps",
        default="server",
        metavar="server|auto|FORMAT",
        help="where plain text times are read: server (default: the pipeline detects them), auto (here, with the "
        "same detection) or a strptime format for the start of each line, e.g. '%%d.%%m.%%Y %%H:%%M:%%S'",
    )
    parser.add_argument(
        "--time-zone", default="UTC", help="zone of times read here without an offset (default: %(default)s)"
    )
    parser.add_argument(
        "--batch-size", type=_bounded_int(1, 100_000), default=DEFAULT_BATCH_EVENTS, help="events per request"
    )
    parser.add_argument(
        "--batch-bytes",
        type=_bounded_int(1024, 256 * 1024 * 1024),
        default=DEFAULT_BATCH_BYTES,
        help="bytes per request",
    )
    parser.add_argument(
        "--max-line-bytes",
        type=_bounded_int(64, 16 * 1024 * 1024),
        default=DEFAULT_MAX_LINE_BYTES,
        help="plain text lines longer are truncated (default: %(default)s)",
    )
    parser.add_argument("--concurrency", type=_bounded_int(1, 64), default=4, help="requests in flight (default: 4)")
    parser.add_argument("--retries", type=_bounded_int(0, 1000), default=10, help="retries of a batch (default: 10)")
    parser.add_argument("--no-progress", action="store_true", help="no progress display")
    parser.add_argument(
        "--progress-interval", type=_positive_float, default=5.0, help="seconds between plain progress lines"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")


@dataclass(frozen=True, slots=True)
class ImportOptions:
    """The parsed options of one import."""

    url: str
    key: str
    service: str | None
    file_format: str
    reader: TimeReader | None
    zone: tzinfo
    batch_events: int
    batch_bytes: int
    max_line_bytes: int
    concurrency: int
    retries: int


def run_import(args: argparse.Namespace) -> int:
    """`mintlog import`: returns the exit code (see the module docstring)."""
    from mintlog.importer.progress import ImportStats, reporter, summary
    from mintlog.importer.reading import find_files

    try:
        options = _options(args)
    except ValueError as exc:
        print(f"mintlog import: error: {exc}", file=sys.stderr)
        return _USAGE
    files, missing = find_files(args.paths)
    if missing:
        print(f"mintlog import: error: no such file, no match or unreadable: {', '.join(missing)}", file=sys.stderr)
        return _USAGE
    stats = ImportStats(
        started=time.monotonic(), files_total=len(files), bytes_total=sum(source.size for source in files)
    )
    display = reporter(enabled=not args.no_progress, interval=args.progress_interval, stats=stats)
    try:
        asyncio.run(_import(files, options, stats, display))
    except KeyboardInterrupt:
        stats.interrupted = True
    finally:
        display.close(stats)
    print(summary(stats, as_json=args.json), flush=True)
    if stats.interrupted:
        return _INTERRUPTED
    return 0 if stats.complete else 1


def _options(args: argparse.Namespace) -> ImportOptions:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from mintlog.importer.reading import time_reader

    key = args.key or os.environ.get("MINTLOG_API_KEY", "")
    if not key:
        raise ValueError("an API key is needed: --key or MINTLOG_API_KEY")
    if not args.url.startswith(("http://", "https://")):
        raise ValueError(f"--url must start with http:// or https://, not {args.url!r}")
    try:
        zone = ZoneInfo(args.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"--time-zone {args.time_zone!r} is not an IANA time zone") from None
    return ImportOptions(
        url=args.url,
        key=key,
        service=args.service or None,
        file_format=args.format,
        reader=time_reader(args.timestamps),
        zone=zone,
        batch_events=args.batch_size,
        batch_bytes=args.batch_bytes,
        max_line_bytes=args.max_line_bytes,
        concurrency=args.concurrency,
        retries=args.retries,
    )


async def _import(files: list[SourceFile], options: ImportOptions, stats: ImportStats, display: Reporter) -> None:
    """Read every file in order and send its batches from `concurrency` workers; stops early when the server
    refuses the key or the URL."""
    from mintlog.importer.sender import IngestSender, RetryPolicy

    queue: asyncio.Queue[Batch | None] = asyncio.Queue(maxsize=options.concurrency)
    aborted = asyncio.Event()
    names = {str(source.path): _display_name(source.path) for source in files}
    sender = IngestSender(
        options.url,
        options.key,
        policy=RetryPolicy(retries=options.retries),
        connections=options.concurrency,
        on_retry=display.note,
    )
    async with sender:
        workers = [
            asyncio.create_task(_worker(queue, sender, stats, display, names, aborted))
            for _ in range(options.concurrency)
        ]
        try:
            for source in files:
                if aborted.is_set():
                    break
                await _read_file(source, options, stats, display, queue, names, aborted)
            for _ in workers:
                await queue.put(None)
            await asyncio.gather(*workers)
        finally:
            for worker in workers:
                worker.cancel()


async def _read_file(
    source: SourceFile,
    options: ImportOptions,
    stats: ImportStats,
    display: Reporter,
    queue: asyncio.Queue[Batch | None],
    names: dict[str, str],
    aborted: asyncio.Event,
) -> None:
    from mintlog.importer.batching import BatchLimits, batch_events
    from mintlog.importer.reading import LineEncoder, file_context, open_file, read_lines

    limits = BatchLimits(max_events=options.batch_events, max_bytes=options.batch_bytes)
    file_format = _file_format(source, options, limits.max_event_bytes)
    stats.files_by_format[file_format] = stats.files_by_format.get(file_format, 0) + 1
    encoder = LineEncoder(
        file_format,
        service=options.service,
        reader=options.reader,
        context=file_context(source, options.zone),
        max_line_bytes=options.max_line_bytes,
        max_event_bytes=limits.max_event_bytes,
        counts=stats.read,
    )
    refused: list[Refused] = []
    bytes_before = stats.bytes_read
    lines_before = stats.read.lines
    path = str(source.path)
    read_errors: list[BaseException] = []
    raw, stream = open_file(source)
    try:
        lines = _until_read_error(read_lines(stream, encoder.read_cap), read_errors)
        for batch in batch_events(path, encoder.encode(lines), limits, refused):
            if aborted.is_set():
                break
            _refuse(stats, names[path], refused)
            stats.bytes_read = bytes_before + raw.tell()
            stats.events_sent += batch.events
            await queue.put(batch)
            await asyncio.sleep(0)  # let the workers read their answers between batches
    finally:
        stream.close()
        raw.close()
    for error in read_errors:
        stats.failures.append(f"{names[path]}: reading stopped after line {stats.read.lines - lines_before}: {error}")
        display.note(f"{names[path]}: {error}")
    _refuse(stats, names[path], refused)
    stats.bytes_read = bytes_before + source.size
    stats.files_done += 1
    display.update(stats)


def _until_read_error(lines: Iterator[Line], errors: list[BaseException]) -> Iterator[Line]:
    """`lines` until reading fails (a corrupt or truncated gzip file, a file gone while read): the error is
    appended to `errors` and the lines read before it are still batched and sent."""
    try:
        yield from lines
    except (OSError, EOFError, zlib.error) as exc:
        errors.append(exc)


def _file_format(source: SourceFile, options: ImportOptions, max_event_bytes: int) -> FileFormat:
    from mintlog.importer.reading import detect_format, open_file, read_lines

    if options.file_format != "auto":
        return "ndjson" if options.file_format == "ndjson" else "text"
    raw, stream = open_file(source)
    try:
        return detect_format(read_lines(stream, max_event_bytes))
    except (OSError, EOFError, zlib.error):
        return "text"  # unreadable: reading it again reports why
    finally:
        stream.close()
        raw.close()


def _refuse(stats: ImportStats, name: str, refused: list[Refused]) -> None:
    for item in refused:
        stats.reject(f"{name}:{item.line}", item.reason)
    refused.clear()


async def _worker(
    queue: asyncio.Queue[Batch | None],
    sender: IngestSender,
    stats: ImportStats,
    display: Reporter,
    names: dict[str, str],
    aborted: asyncio.Event,
) -> None:
    from mintlog.importer.sender import ImportAborted

    while (batch := await queue.get()) is not None:
        if aborted.is_set():
            continue
        try:
            delivery = await sender.deliver(batch)
        except ImportAborted as exc:
            stats.aborted = str(exc)
            aborted.set()
            continue
        stats.accepted += delivery.accepted
        stats.replayed += delivery.replayed
        stats.failed += delivery.failed
        stats.retries += delivery.retries
        stats.splits += delivery.splits
        if delivery.failure:
            stats.failures.append(delivery.failure)
        for line, reason in delivery.rejections:
            stats.reject(f"{names[batch.path]}:{line}", reason)
        display.update(stats)


def _display_name(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
