"""`mintlog import`'s sending, progress and command against a fake ingest endpoint (aiohttp, in this process):
retries, splits, aborts, the summary, the exit codes and the plain progress lines."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from mintlog.cli import main
from mintlog.importer.batching import Batch, BatchLimits, batch_events
from mintlog.importer.reading import Encoded
from mintlog.importer.sender import ImportAborted, IngestSender, RetryPolicy

Answer = tuple[int, dict[str, Any], dict[str, str]]
"""(status, JSON body, headers) of one scripted answer."""


@dataclass
class FakeIngest:
    """`POST /v1/ingest/logs` that stores each Idempotency-Key's batch once (as the real one does) and answers
    from `script` first: each call gets the request's events and returns an answer, or None for the default."""

    script: list[Callable[[list[dict[str, Any]]], Answer | None]] = field(default_factory=lambda: [])
    max_events: int = 10_000
    reject_messages: frozenset[str] = frozenset()
    requests: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=lambda: [])
    stored: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {})
    keys_seen: list[str] = field(default_factory=lambda: [])

    def events(self) -> list[dict[str, Any]]:
        return [event for batch in self.stored.values() for event in batch]

    async def handle(self, request: web.Request) -> web.Response:
        key = request.headers.get("Idempotency-Key", "")
        events: list[dict[str, Any]] = json.loads(await request.read())["events"]
        self.requests.append((key, events))
        if request.headers.get("X-API-Key") != "good-key":
            return web.json_response({"code": "unauthorized", "detail": "no valid key"}, status=401)
        if self.script:
            scripted = self.script.pop(0)(events)
            if scripted is not None:
                status, body, headers = scripted
                return web.json_response(body, status=status, headers=headers)
        if len(events) > self.max_events:
            return web.json_response({"code": "too_many_events", "detail": "too many"}, status=413)
        errors = [
            {"index": index, "reason": f"refused {event.get('message')}"}
            for index, event in enumerate(events)
            if event.get("message") in self.reject_messages
        ]
        kept = [event for event in events if event.get("message") not in self.reject_messages]
        replayed = key in self.stored
        if not replayed:
            self.stored[key] = kept
        self.keys_seen.append(key)
        answer = {"accepted": len(kept), "rejected": len(errors), "errors": errors, "batch_id": "b"}
        return web.json_response(answer, status=202, headers={"Idempotent-Replayed": "true"} if replayed else {})


async def serve(fake: FakeIngest) -> tuple[web.AppRunner, str]:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/ingest/logs", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


@pytest.fixture
def threaded_fake() -> Iterator[tuple[FakeIngest, str]]:
    """A fake ingest in its own thread and loop, for the synchronous command (`mintlog.cli.main`)."""
    fake = FakeIngest()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict[str, Any] = {}

    def run() -> None:
        asyncio.set_event_loop(loop)
        holder["runner"], holder["url"] = loop.run_until_complete(serve(fake))
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(10)
    yield fake, holder["url"]
    asyncio.run_coroutine_threadsafe(holder["runner"].cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def batch_of(messages: list[str], path: str = "/logs/a.log") -> Batch:
    items: list[Any] = [
        Encoded(line=n + 1, offset=n * 10, part=json.dumps({"message": m}).encode()) for n, m in enumerate(messages)
    ]
    [batch] = batch_events(path, items, BatchLimits(max_events=10_000, max_bytes=1 << 24), [])
    return batch


FAST = RetryPolicy(retries=3, first_backoff_seconds=0.01, max_backoff_seconds=0.02)


async def deliver(fake: FakeIngest, batch: Batch, key: str = "good-key", policy: RetryPolicy = FAST) -> Any:
    runner, url = await serve(fake)
    try:
        async with IngestSender(url, key, policy=policy, connections=2) as sender:
            return await sender.deliver(batch)
    finally:
        await runner.cleanup()


# ------------------------------------------------------------------ the sender


async def test_rejections_of_a_202_are_mapped_to_their_lines() -> None:
    fake = FakeIngest(reject_messages=frozenset({"bad"}))
    delivery = await deliver(fake, batch_of(["ok", "bad", "ok too"]))
    assert (delivery.accepted, delivery.rejections) == (2, [(2, "refused bad")])


async def test_a_503_is_retried_with_the_same_key_and_body_and_stored_once() -> None:
    unavailable: Answer = (503, {"code": "service_unavailable", "detail": "bus"}, {"Retry-After": "0"})
    fake = FakeIngest(script=[lambda _events: unavailable, lambda _events: unavailable])
    batch = batch_of(["a", "b"])
    delivery = await deliver(fake, batch)
    assert (delivery.accepted, delivery.retries, delivery.failed) == (2, 2, 0)
    assert [key for key, _ in fake.requests] == [batch.key] * 3
    assert len(fake.events()) == 2


async def test_a_429_waits_retry_after_and_does_not_use_up_the_retries() -> None:
    limited: Answer = (429, {"code": "rate_limited", "detail": "slow down"}, {"Retry-After": "1"})
    fake = FakeIngest(script=[lambda _events: limited] * 2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    delivery = await deliver(fake, batch_of(["a"]), policy=RetryPolicy(retries=0))
    assert delivery.accepted == 1
    assert loop.time() - started >= 2.0  # two waits of Retry-After: 1 s


async def test_a_503_backlog_exceeded_waits_retry_after_and_does_not_use_up_the_retries() -> None:
    """Ingest pauses while the pipeline catches up, which can take longer than the retries of an outage."""
    paused: Answer = (503, {"code": "backlog_exceeded", "detail": "catching up"}, {"Retry-After": "0"})
    fake = FakeIngest(script=[lambda _events: paused] * 5)
    delivery = await deliver(fake, batch_of(["a"]), policy=RetryPolicy(retries=1))
    assert (delivery.accepted, delivery.failed, delivery.retries) == (1, 0, 5)
    assert len(fake.events()) == 1


async def test_a_413_splits_the_batch_until_the_halves_fit() -> None:
    fake = FakeIngest(max_events=2)
    batch = batch_of([f"m{n}" for n in range(5)])
    delivery = await deliver(fake, batch)
    assert (delivery.accepted, delivery.splits) == (5, 2)  # 5 → 2 + 3 → 2 + 1 + 2
    assert sorted(event["message"] for event in fake.events()) == [f"m{n}" for n in range(5)]
    assert batch.key not in fake.stored


async def test_a_429_for_a_batch_over_the_tenants_burst_splits_it() -> None:
    burst: Answer = (
        429,
        {"code": "ingest_quota_exceeded", "detail": "a batch of 4 events exceeds this tenant's ingest burst of 3"},
        {"Retry-After": "30"},
    )
    fake = FakeIngest(script=[lambda events: burst if len(events) > 3 else None] * 3)
    delivery = await deliver(fake, batch_of(["a", "b", "c", "d"]))
    assert (delivery.accepted, delivery.splits) == (4, 1)


async def test_a_single_event_too_large_is_rejected_with_the_servers_reason() -> None:
    fake = FakeIngest(max_events=0)
    delivery = await deliver(fake, batch_of(["alone"]))
    assert delivery.accepted == 0
    assert delivery.rejections == [(1, "413 too_many_events: too many")]


async def test_a_batch_the_server_never_answers_fails_after_its_retries() -> None:
    async with IngestSender("http://127.0.0.1:9", "good-key", policy=FAST, connections=1) as sender:
        delivery = await sender.deliver(batch_of(["a", "b"]))
    assert (delivery.accepted, delivery.failed, delivery.retries) == (0, 2, 3)
    assert delivery.failure is not None
    assert "no answer after 4 attempts" in delivery.failure


class CancelSwallowingSender(IngestSender):
    """A sender whose request turns the task's cancellation into a connection error, as aiohttp can when a
    cancellation lands mid-connect (aio-libs/aiohttp#5979)."""

    posts = 0

    async def _post(self, batch: Batch) -> tuple[int, dict[str, str], bytes]:
        self.posts += 1
        task = asyncio.current_task()
        assert task is not None
        task.cancel()  # Ctrl-C arrives while this request connects
        try:
            await asyncio.sleep(1)
        except asyncio.CancelledError:
            raise aiohttp.ClientConnectionError("connection lost") from None
        raise AssertionError("the cancellation was not delivered")


async def test_a_cancellation_turned_into_a_connection_error_stops_the_retries() -> None:
    sender = CancelSwallowingSender("http://127.0.0.1:9", "good-key", policy=FAST, connections=1)
    async with sender:
        with pytest.raises(asyncio.CancelledError):
            await sender.deliver(batch_of(["a"]))
    assert sender.posts == 1


async def test_a_bad_key_aborts() -> None:
    with pytest.raises(ImportAborted, match="401"):
        await deliver(FakeIngest(), batch_of(["a"]), key="wrong")


async def test_all_events_rejected_counts_every_event_with_its_reason() -> None:
    rejected: Answer = (
        422,
        {"code": "all_events_rejected", "errors": [{"index": 0, "reason": "too old"}, {"index": 1, "reason": "x"}]},
        {},
    )
    delivery = await deliver(FakeIngest(script=[lambda _events: rejected]), batch_of(["a", "b"]))
    assert (delivery.accepted, delivery.rejections) == (0, [(1, "too old"), (2, "x")])


# ------------------------------------------------------------------ the command


def write_logs(root: Path) -> None:
    (root / "sub").mkdir(parents=True)
    (root / "a.log").write_text("".join(f"line {n}\n" for n in range(50)))
    (root / "sub" / "b.ndjson").write_text("".join(json.dumps({"msg": f"json {n}"}) + "\n" for n in range(30)))


def run_cli(*args: str) -> int:
    return main(["import", *args])


def test_import_sends_every_line_once_and_a_rerun_stores_nothing_new(
    threaded_fake: tuple[FakeIngest, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake, url = threaded_fake
    write_logs(tmp_path / "logs")
    args = [str(tmp_path / "logs"), "--url", url, "--key", "good-key", "--batch-size", "7", "--json"]
    assert run_cli(*args) == 0
    first = json.loads(capsys.readouterr().out)
    assert (first["accepted"], first["files"], first["files_by_format"]) == (80, 2, {"text": 1, "ndjson": 1})
    assert run_cli(*args) == 0
    second = json.loads(capsys.readouterr().out)
    assert (second["accepted"], second["already_stored"]) == (80, 80)
    assert len(fake.events()) == 80
    assert sorted(str(event.get("message") or event.get("msg")) for event in fake.events()) == sorted(
        [f"line {n}" for n in range(50)] + [f"json {n}" for n in range(30)]
    )


def test_the_summary_counts_rejections_and_shows_the_first_reasons_and_exit_is_1(
    threaded_fake: tuple[FakeIngest, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake, url = threaded_fake
    fake.reject_messages = frozenset({"line 3", "line 40"})
    write_logs(tmp_path / "logs")
    code = run_cli(str(tmp_path / "logs" / "a.log"), "--url", url, "--key", "good-key", "--no-progress")
    out = capsys.readouterr().out
    assert code == 1
    assert "48 accepted, 2 rejected, 0 failed" in out
    assert "a.log:4: refused line 3" in out
    assert "a.log:41: refused line 40" in out


def test_plain_progress_lines_when_stderr_is_not_a_terminal(
    threaded_fake: tuple[FakeIngest, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fake, url = threaded_fake
    write_logs(tmp_path / "logs")
    assert run_cli(str(tmp_path / "logs"), "--url", url, "--key", "good-key") == 0
    err = capsys.readouterr().err
    assert "\x1b" not in err
    assert err.strip().splitlines()[-1].startswith("import: 2/2 files, 80 events accepted, 0 rejected")


def test_a_bad_key_stops_the_import_with_exit_1(
    threaded_fake: tuple[FakeIngest, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake, url = threaded_fake
    write_logs(tmp_path / "logs")
    assert run_cli(str(tmp_path / "logs"), "--url", url, "--key", "wrong", "--no-progress") == 1
    assert "aborted:  401 unauthorized: no valid key" in capsys.readouterr().out
    assert len(fake.requests) <= 4  # at most the batches already in flight


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--url", "http://127.0.0.1:9"], "an API key is needed"),
        (["--key", "k", "--url", "127.0.0.1:8080"], "--url must start with http"),
        (["--key", "k", "--time-zone", "Mars/Olympus"], "is not an IANA time zone"),
        (["--key", "k", "--timestamps", "sometimes"], "--timestamps must be"),
    ],
)
def test_usage_errors_exit_2_before_sending(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MINTLOG_API_KEY", raising=False)
    (tmp_path / "a.log").write_text("x\n")
    assert run_cli(str(tmp_path / "a.log"), *args) == 2
    assert message in capsys.readouterr().err


def test_a_path_that_names_nothing_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(str(tmp_path / "missing.log"), "--key", "k") == 2
    assert "no such file, no match or unreadable" in capsys.readouterr().err


def test_the_key_may_come_from_the_environment(
    threaded_fake: tuple[FakeIngest, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, url = threaded_fake
    monkeypatch.setenv("MINTLOG_API_KEY", "good-key")
    (tmp_path / "a.log").write_text("x\n")
    assert run_cli(str(tmp_path / "a.log"), "--url", url, "--no-progress") == 0
    assert len(fake.events()) == 1


def test_on_a_terminal_progress_is_a_rich_bar_with_events_bytes_and_rate() -> None:
    import io
    import time

    from rich.console import Console

    from mintlog.importer.progress import ImportStats, RichProgress

    out = io.StringIO()
    stats = ImportStats(started=time.monotonic() - 2, files_total=3, bytes_total=2_000_000)
    bar = RichProgress(Console(file=out, force_terminal=True, width=160), stats)
    stats.files_done, stats.accepted, stats.bytes_read = 1, 12_345, 1_000_000
    bar.update(stats)
    bar.close(stats)
    shown = out.getvalue()
    assert "\x1b" in shown  # a terminal: drawn with escape codes
    assert "1/3 files" in shown
    assert "12,345 events" in shown
    assert "1.0/2.0 MB" in shown


def test_a_truncated_gzip_file_imports_what_it_holds_and_says_where_it_stopped(
    threaded_fake: tuple[FakeIngest, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import gzip

    fake, url = threaded_fake
    whole = gzip.compress("".join(f"line {n} {'x' * 50}\n" for n in range(20_000)).encode())
    (tmp_path / "cut.log.gz").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "fine.log").write_text("fine\n")
    code = run_cli(str(tmp_path), "--url", url, "--key", "good-key", "--no-progress", "--batch-size", "100", "--json")
    summary = json.loads(capsys.readouterr().out)
    assert code == 1
    [failure] = summary["failures"]
    assert failure.startswith(f"{tmp_path / 'cut.log.gz'}: reading stopped after line {summary['lines'] - 1}: ")
    stored = {str(event["message"]) for event in fake.events()}
    assert 0 < summary["lines"] - 1 < 20_000
    assert stored == {"fine"} | {f"line {n} {'x' * 50}" for n in range(summary["lines"] - 1)}  # every line read
