"""Progress of an import and its final summary.

- On a terminal (stderr, as `rich` sees it): a bar with files done, events accepted, bytes read of the total,
  events/s, bytes/s and the time left.
- Otherwise: one plain line on stderr every `interval` seconds (and one at the end), no escape codes.
- The summary goes to stdout: text, or one JSON object with `--json`.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

import msgspec
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from mintlog.importer.reading import LineCounts

__all__ = ["MAX_SHOWN_REJECTIONS", "ImportStats", "PlainProgress", "Reporter", "RichProgress", "summary"]

MAX_SHOWN_REJECTIONS = 10
"""How many rejection reasons the summary lists (all are counted)."""


@dataclass(slots=True)
class ImportStats:
    """Every count of one import; `started` is a `time.monotonic()` reading."""

    started: float
    files_total: int
    bytes_total: int
    files_done: int = 0
    files_by_format: dict[str, int] = field(default_factory=lambda: {})
    bytes_read: int = 0
    read: LineCounts = field(default_factory=LineCounts)
    """What reading the lines of every file found (the encoders count into it)."""
    events_sent: int = 0
    accepted: int = 0
    replayed: int = 0
    rejected: int = 0
    failed: int = 0
    retries: int = 0
    splits: int = 0
    rejections: list[str] = field(default_factory=lambda: [])
    failures: list[str] = field(default_factory=lambda: [])
    aborted: str | None = None
    interrupted: bool = False

    def elapsed(self) -> float:
        return max(1e-9, time.monotonic() - self.started)

    def reject(self, where: str, reason: str) -> None:
        """Count one rejected event; keep its reason when among the first shown."""
        self.rejected += 1
        if len(self.rejections) < MAX_SHOWN_REJECTIONS:
            self.rejections.append(f"{where}: {reason}")

    @property
    def complete(self) -> bool:
        """Every event read was accepted (nothing rejected, failed, aborted or interrupted)."""
        return not (self.rejected or self.failed or self.failures or self.aborted or self.interrupted)


class Reporter(Protocol):
    """Shows progress while the import runs."""

    def update(self, stats: ImportStats) -> None:
        """Called after every batch; cheap when nothing is due."""
        ...

    def note(self, message: str) -> None:
        """A line worth showing now (a retry, a skipped file)."""
        ...

    def close(self, stats: ImportStats) -> None:
        """The import ended: the last progress is shown."""
        ...


class RichProgress:
    """A `rich` progress bar on the terminal of `console`."""

    def __init__(self, console: Console, stats: ImportStats) -> None:
        self._progress = Progress(
            TextColumn("[bold]import[/] {task.fields[files]}"),
            BarColumn(),
            TextColumn("{task.fields[events]} events"),
            DownloadColumn(),
            TextColumn("{task.fields[rate]} ev/s"),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._task: TaskID = self._progress.add_task("import", total=stats.bytes_total or None, **_fields(stats))
        self._progress.start()

    def update(self, stats: ImportStats) -> None:
        self._progress.update(self._task, completed=stats.bytes_read, **_fields(stats))

    def note(self, message: str) -> None:
        self._progress.console.print(message, markup=False, highlight=False)

    def close(self, stats: ImportStats) -> None:
        self.update(stats)
        self._progress.stop()


def _fields(stats: ImportStats) -> dict[str, Any]:
    return {
        "files": f"{stats.files_done}/{stats.files_total} files",
        "events": f"{stats.accepted:,}",
        "rate": f"{stats.accepted / stats.elapsed():,.0f}",
    }


class PlainProgress:
    """A plain line on `out` at most every `interval` seconds, for logs and pipes."""

    def __init__(self, out: IO[str], interval: float) -> None:
        self._out = out
        self._interval = interval
        self._next = time.monotonic() + interval

    def update(self, stats: ImportStats) -> None:
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self._interval
            self._write(stats)

    def note(self, message: str) -> None:
        print(f"import: {message}", file=self._out, flush=True)

    def close(self, stats: ImportStats) -> None:
        self._write(stats)

    def _write(self, stats: ImportStats) -> None:
        elapsed = stats.elapsed()
        percent = 100.0 * stats.bytes_read / stats.bytes_total if stats.bytes_total else 100.0
        rate = stats.bytes_read / elapsed
        left = (stats.bytes_total - stats.bytes_read) / rate if rate > 0 else 0.0
        print(
            f"import: {stats.files_done}/{stats.files_total} files, {stats.accepted:,} events accepted, "
            f"{stats.rejected:,} rejected, {_size(stats.bytes_read)} of {_size(stats.bytes_total)} ({percent:.0f}%), "
            f"{stats.accepted / elapsed:,.0f} events/s, {_size(rate)}/s, ETA {left:.0f} s",
            file=self._out,
            flush=True,
        )


class Silent:
    """No progress (`--no-progress`)."""

    def update(self, stats: ImportStats) -> None:
        return

    def note(self, message: str) -> None:
        return

    def close(self, stats: ImportStats) -> None:
        return


def reporter(*, enabled: bool, interval: float, stats: ImportStats) -> Reporter:
    """The progress display for this process's stderr: a bar on a terminal, plain lines otherwise."""
    if not enabled:
        return Silent()
    console = Console(stderr=True)
    if console.is_terminal:
        return RichProgress(console, stats)
    return PlainProgress(sys.stderr, interval)


def _size(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:,.0f} {unit}" if unit == "B" else f"{count:,.1f} {unit}"
        count /= 1000
    return f"{count:,.1f} GB"


def summary_document(stats: ImportStats) -> dict[str, Any]:
    """The summary as one JSON-able object (what `--json` prints)."""
    elapsed = stats.elapsed()
    return {
        "files": stats.files_done,
        "files_by_format": stats.files_by_format,
        "lines": stats.read.lines,
        "blank_lines": stats.read.blank,
        "events_sent": stats.events_sent,
        "accepted": stats.accepted,
        "already_stored": stats.replayed,
        "rejected": stats.rejected,
        "failed": stats.failed,
        "truncated_lines": stats.read.truncated,
        "invalid_utf8_lines": stats.read.invalid_utf8,
        "not_json_lines": stats.read.not_json,
        "timestamps_found": stats.read.timestamps_found,
        "bytes": stats.bytes_read,
        "seconds": round(elapsed, 3),
        "events_per_second": round(stats.accepted / elapsed, 1),
        "bytes_per_second": round(stats.bytes_read / elapsed, 1),
        "retries": stats.retries,
        "splits": stats.splits,
        "first_rejections": stats.rejections,
        "failures": stats.failures,
        "aborted": stats.aborted,
        "interrupted": stats.interrupted,
    }


def summary(stats: ImportStats, *, as_json: bool) -> str:
    """The final summary (see the module docstring)."""
    if as_json:
        return msgspec.json.encode(summary_document(stats)).decode()
    elapsed = stats.elapsed()
    formats = ", ".join(f"{count} {name}" for name, count in sorted(stats.files_by_format.items()))
    lines = [
        f"files:    {stats.files_done} of {stats.files_total}" + (f" ({formats})" if formats else ""),
        f"events:   {stats.accepted:,} accepted"
        + (f" ({stats.replayed:,} of them stored by an earlier run)" if stats.replayed else "")
        + f", {stats.rejected:,} rejected, {stats.failed:,} failed",
        f"lines:    {stats.read.lines:,} read, {stats.read.blank:,} blank skipped, {stats.read.truncated:,} truncated, "
        f"{stats.read.invalid_utf8:,} with invalid UTF-8 (replaced), "
        f"{stats.read.not_json:,} not JSON in NDJSON files (sent as text)",
        f"bytes:    {_size(stats.bytes_read)} in {elapsed:.1f} s: {stats.accepted / elapsed:,.0f} events/s, "
        f"{_size(stats.bytes_read / elapsed)}/s",
    ]
    if stats.retries or stats.splits:
        lines.append(f"retries:  {stats.retries:,}, batches split: {stats.splits:,}")
    if stats.rejections:
        lines.append(f"first rejections ({len(stats.rejections)} of {stats.rejected:,}):")
        lines.extend(f"  {reason}" for reason in stats.rejections)
    if stats.failures:
        lines.append("failed batches:")
        lines.extend(f"  {failure}" for failure in stats.failures[:MAX_SHOWN_REJECTIONS])
    if stats.aborted:
        lines.append(f"aborted:  {stats.aborted}")
    if stats.interrupted:
        lines.append("interrupted: run the same command again to finish (batches already stored are not stored twice)")
    return "\n".join(lines)
