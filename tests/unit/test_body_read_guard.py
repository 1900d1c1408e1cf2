"""Request bodies as a slow, stalled, or broken client sends them: the app in front of a fake ASGI server.

`BodyReadGuard` answers 408 `body_timeout` (and closes) when a body stalls or takes too long, 400
`incomplete_body` when the server reports a disconnect mid-body, and passes `receive` through once the body is
complete. A body nested too deeply for the JSON decoder is a 400 `too_deep`, never a 500.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any, cast

import msgspec
from litestar import Request, post

from mintlog.http.app import BodyReadGuard, create_app
from mintlog.metrics import Metrics

Message = dict[str, Any]


@post("/echo", status_code=200)
async def echo(request: Request[Any, Any, Any]) -> dict[str, int]:
    return {"received": len(await request.body())}


@post("/decode", status_code=200)
async def decode(request: Request[Any, Any, Any]) -> dict[str, str]:
    msgspec.json.decode(await request.body())
    return {"decoded": "yes"}


@post("/wait-for-disconnect", status_code=200)
async def wait_for_disconnect(request: Request[Any, Any, Any]) -> dict[str, str]:
    await request.body()
    message = await request.receive()
    return {"then": message["type"]}


class Client:
    """A fake ASGI server: hands the app the scripted `receive` messages, each after its delay, then waits
    forever (a client that sends nothing more)."""

    def __init__(self, script: Sequence[tuple[float, Message]]) -> None:
        self._script = list(script)
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        if not self._script:
            await asyncio.Event().wait()
        delay, message = self._script.pop(0)
        await asyncio.sleep(delay)
        return message

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.sent[0]["headers"])

    @property
    def problem(self) -> dict[str, Any]:
        assert self.headers[b"content-type"] == b"application/problem+json"
        return cast("dict[str, Any]", msgspec.json.decode(b"".join(m.get("body", b"") for m in self.sent[1:])))


async def serve(
    path: str, script: Sequence[tuple[float, Message]], *, idle: float = 0.3, total: float = 1.0
) -> tuple[Client, float]:
    app = BodyReadGuard(
        create_app(
            server="test", route_handlers=[echo, decode, wait_for_disconnect], metrics=Metrics(), readiness_checks={}
        ),
        idle_timeout_seconds=idle,
        total_timeout_seconds=total,
    )
    client = Client(script)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"test"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8080),
    }
    started = time.monotonic()
    await asyncio.wait_for(app(cast("Any", scope), cast("Any", client.receive), cast("Any", client.send)), 10)
    return client, time.monotonic() - started


def part(body: bytes, *, more: bool = True) -> Message:
    return {"type": "http.request", "body": body, "more_body": more}


async def test_a_body_that_arrives_in_time_is_read_whole() -> None:
    client, _ = await serve("/echo", [(0.0, part(b"12345")), (0.2, part(b"678")), (0.2, part(b"90", more=False))])
    assert client.status == 200
    assert msgspec.json.decode(client.sent[1]["body"]) == {"received": 10}


async def test_a_stalled_body_is_answered_408_after_the_idle_timeout_and_closes() -> None:
    client, elapsed = await serve("/echo", [(0.0, part(b'{"events": '))], idle=0.3)
    assert client.status == 408
    assert client.headers[b"connection"] == b"close"
    problem = client.problem
    assert problem["code"] == "body_timeout"
    assert problem["detail"] == "no part of the request body arrived for 0.3 s; the connection is closed"
    assert 0.3 <= elapsed < 1.0


async def test_a_body_dribbled_past_the_total_timeout_is_answered_408() -> None:
    dribble = [(0.2, part(b"x")) for _ in range(20)]
    client, elapsed = await serve("/echo", dribble, idle=0.3, total=1.0)
    assert client.status == 408
    assert client.problem["detail"] == "the request body did not arrive within 1 s; the connection is closed"
    assert 1.0 <= elapsed < 1.5


async def test_a_disconnect_mid_body_is_a_400_incomplete_body() -> None:
    client, _ = await serve("/echo", [(0.0, part(b'{"events": [')), (0.0, {"type": "http.disconnect"})])
    assert client.status == 400
    assert client.problem["code"] == "incomplete_body"


async def test_once_the_body_is_complete_receive_waits_without_a_deadline() -> None:
    script = [(0.0, part(b"{}", more=False)), (0.6, {"type": "http.disconnect"})]
    client, elapsed = await serve("/wait-for-disconnect", script, idle=0.2, total=0.4)
    assert client.status == 200
    assert msgspec.json.decode(client.sent[1]["body"]) == {"then": "http.disconnect"}
    assert elapsed >= 0.6


async def test_json_too_deep_for_the_decoder_is_a_400_too_deep() -> None:
    client, _ = await serve("/decode", [(0.0, part(b"[" * 100_000 + b"]" * 100_000, more=False))])
    assert client.status == 400
    problem = client.problem
    assert problem["code"] == "too_deep"
    assert "too deeply" in problem["detail"]
