"""`MINTLOG_HTTP__WORKERS`: its bounds, the combinations refused at start, the dispatch of `mintlog run`, and the
worker app's lifespan, `X-Mintlog-Worker` header and stop-signal handling (`mintlog/launch/workers.py`)."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from mintlog import cli
from mintlog.errors import ConfigError
from mintlog.launch import workers
from mintlog.launch.workers import WORKER_HEADER, WorkerApp, check_worker_settings
from mintlog.settings import Settings, load_settings

NATS = {"MINTLOG_NATS__URL": "nats://127.0.0.1:4222"}


def _settings(**env: str) -> Settings:
    return load_settings(env, env_file=None)


def test_one_worker_is_the_default_and_keeps_the_embedded_server() -> None:
    settings = _settings()
    assert settings.http.workers == 1
    assert check_worker_settings(settings) is None  # every role, embedded NATS: today's single process
    assert check_worker_settings(_settings(MINTLOG_HTTP__WORKERS="1", MINTLOG_ROLES="ingest,api")) is None


@pytest.mark.parametrize("value", ["0", "65", "two"])
def test_a_worker_count_out_of_bounds_names_the_setting(value: str) -> None:
    with pytest.raises(ConfigError, match=f"MINTLOG_HTTP__WORKERS='{value}'"):
        _settings(MINTLOG_HTTP__WORKERS=value)


@pytest.mark.parametrize("role", ["ingest", "api"])
def test_workers_serve_one_http_role_on_an_external_nats(role: str) -> None:
    settings = _settings(MINTLOG_HTTP__WORKERS="64", MINTLOG_ROLES=role, **NATS)
    assert check_worker_settings(settings) == role


@pytest.mark.parametrize(
    "roles", ["pipeline", "api,pipeline", "ingest,alert,notify", "ingest,api,pipeline,alert,notify"]
)
def test_workers_are_refused_for_roles_other_than_ingest_and_api(roles: str) -> None:
    with pytest.raises(ConfigError) as error:
        check_worker_settings(_settings(MINTLOG_HTTP__WORKERS="2", MINTLOG_ROLES=roles, **NATS))
    assert "MINTLOG_HTTP__WORKERS=2" in str(error.value)
    assert "ingest and api roles only" in str(error.value)


def test_workers_are_refused_for_ingest_and_api_in_one_process() -> None:
    with pytest.raises(ConfigError, match=r"MINTLOG_HTTP__WORKERS=2 serves one HTTP role per process"):
        check_worker_settings(_settings(MINTLOG_HTTP__WORKERS="2", MINTLOG_ROLES="ingest,api", **NATS))


def test_workers_are_refused_with_the_embedded_nats_server() -> None:
    with pytest.raises(ConfigError) as error:
        check_worker_settings(_settings(MINTLOG_HTTP__WORKERS="2", MINTLOG_ROLES="api"))
    assert "MINTLOG_HTTP__WORKERS=2" in str(error.value)
    assert "MINTLOG_NATS__URL" in str(error.value)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("MINTLOG_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no .env
    return monkeypatch


def test_mintlog_run_refuses_a_bad_combination_with_exit_code_2(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clean_env.setenv("MINTLOG_HTTP__WORKERS", "2")
    assert cli.main(["run", "--role=pipeline"]) == 2
    assert "MINTLOG_HTTP__WORKERS=2" in capsys.readouterr().err


def test_mintlog_run_hands_an_http_role_with_workers_to_granian(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    served: list[tuple[Settings, str | None, str | None]] = []

    def serve(settings: Settings) -> None:
        served.append((settings, os.environ.get("MINTLOG_ROLES"), os.environ.get("MINTLOG_DATA_DIR")))

    clean_env.setattr(workers, "serve_workers", serve)
    clean_env.setenv("MINTLOG_HTTP__WORKERS", "3")
    clean_env.setenv("MINTLOG_NATS__URL", "nats://127.0.0.1:4222")
    # CLI flags win over the environment, and the workers see them there (monkeypatch restores both after).
    clean_env.setenv("MINTLOG_ROLES", "api")
    clean_env.setenv("MINTLOG_DATA_DIR", str(tmp_path / "elsewhere"))
    assert cli.main(["run", "--role=ingest", f"--data-dir={tmp_path / 'data'}"]) == 0
    ((settings, roles, data_dir),) = served
    assert settings.http.workers == 3
    assert settings.roles == ("ingest",)
    assert (roles, data_dir) == ("ingest", str(tmp_path / "data"))
    # The worker's own settings, read from the environment as the app factory does.
    assert load_settings(env_file=None).roles == ("ingest",)


async def _call(app: WorkerApp, scope: dict[str, Any], incoming: list[dict[str, Any]]) -> list[dict[str, Any]]:
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for message in incoming:
        queue.put_nowait(message)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return await queue.get()

    async def send(message: Any) -> None:
        sent.append(dict(message))

    await app(scope, receive, send)
    return sent


async def test_lifespan_startup_failure_is_reported_to_granian(monkeypatch: pytest.MonkeyPatch) -> None:
    app = WorkerApp("api", _settings())

    async def fail() -> None:
        raise ConnectionRefusedError("nats unreachable")

    monkeypatch.setattr(app, "startup", fail)
    sent = await _call(app, {"type": "lifespan"}, [{"type": "lifespan.startup"}])
    assert sent == [{"type": "lifespan.startup.failed", "message": "nats unreachable"}]


async def test_lifespan_opens_before_serving_and_closes_at_shutdown(monkeypatch: pytest.MonkeyPatch) -> None:
    app = WorkerApp("ingest", _settings())
    events: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})

    async def startup() -> None:
        events.append("open")
        app._app = inner  # pyright: ignore[reportPrivateUsage]

    async def close() -> None:
        events.append("close")

    monkeypatch.setattr(app, "startup", startup)
    lifespan = asyncio.Queue[dict[str, Any]]()
    lifespan.put_nowait({"type": "lifespan.startup"})
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(dict(message))

    running = asyncio.create_task(app({"type": "lifespan"}, lifespan.get, send))
    await asyncio.sleep(0.01)
    assert sent == [{"type": "lifespan.startup.complete"}]
    assert events == ["open"]

    answer = await _call(app, {"type": "http", "path": "/healthz"}, [])
    assert answer[0]["status"] == 200
    assert (WORKER_HEADER.encode(), str(os.getpid()).encode()) in answer[0]["headers"]
    assert (b"content-type", b"text/plain") in answer[0]["headers"]

    app._close = close  # pyright: ignore[reportPrivateUsage]
    lifespan.put_nowait({"type": "lifespan.shutdown"})
    await asyncio.wait_for(running, 5)
    assert sent[-1] == {"type": "lifespan.shutdown.complete"}
    assert events == ["open", "close"]
    with pytest.raises(RuntimeError, match="not started"):
        await _call(app, {"type": "http", "path": "/healthz"}, [])


async def test_a_stop_signal_starts_the_role_stop_and_still_reaches_granian() -> None:
    loop = asyncio.get_running_loop()
    granian_saw = asyncio.Event()
    stops: list[str] = []

    async def stop_role() -> None:
        stops.append("tails closed")

    loop.add_signal_handler(signal.SIGTERM, granian_saw.set)  # what Granian's worker registers first
    try:
        workers._on_stop_signal(stop_role)  # pyright: ignore[reportPrivateUsage]
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(granian_saw.wait(), 5)
        await asyncio.sleep(0.01)
        os.kill(os.getpid(), signal.SIGTERM)  # a second signal does not stop the role twice
        await asyncio.sleep(0.05)
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        loop.remove_signal_handler(signal.SIGINT)
    assert stops == ["tails closed"]
