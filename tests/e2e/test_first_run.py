"""A first run that never misleads: what a person sees when they start `mintlog run` in a terminal, press Ctrl-C,
create a key, check a configuration, or start it on a port another program holds."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import START_TIMEOUT_SECONDS, MintlogProcess, free_port, with_ctrl_c_enabled

pytestmark = pytest.mark.e2e

KEY = re.compile(r"mlk_[A-Za-z0-9]+")
# A refused start reads the settings and checks the ports before it opens anything: no embedded server starts.
REFUSED_WITHIN_SECONDS = 60.0
TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) +[\w.]+: ")


@pytest.fixture
def occupied_port() -> Iterator[int]:
    """A port held by another program: a plain listening socket."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def _group_run(mintlog: MintlogProcess, *, stderr: int) -> subprocess.Popen[bytes]:
    """`mintlog run` as the leader of its own process group, as a shell starts a foreground job."""
    mintlog.data_dir.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        with_ctrl_c_enabled([sys.executable, "-m", "mintlog", "run"]),
        env=mintlog.env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        cwd=mintlog.data_dir.parent,
        start_new_session=True,
    )


def _wait_healthy(mintlog: MintlogProcess, process: subprocess.Popen[bytes], output: Callable[[], str]) -> None:
    """Wait until the api port answers; `output()` is read meanwhile (a terminal's buffer must not fill up)."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        seen = output()
        assert process.poll() is None, f"mintlog exited with {process.returncode}:\n{seen}"
        try:
            if httpx.get(f"{mintlog.api_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"mintlog did not become healthy:\n{output()}")


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _refused_run(mintlog: MintlogProcess) -> subprocess.CompletedProcess[str]:
    """`mintlog run` expected to give up at start, within `REFUSED_WITHIN_SECONDS`."""
    try:
        return subprocess.run(
            [sys.executable, "-m", "mintlog", "run"],
            env=mintlog.env(),
            capture_output=True,
            text=True,
            timeout=REFUSED_WITHIN_SECONDS,
            cwd=mintlog.data_dir.parent,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"still running after {REFUSED_WITHIN_SECONDS}s:\n{exc.stderr!r}") from None


def _assert_clean_stop(log: str) -> None:
    assert "Traceback" not in log, log
    assert not re.search(r'"level":"(error|critical)"|^\S+ \S+ (ERROR|CRITICAL) ', log, re.MULTILINE), log
    assert "exited with code" not in log, log
    assert "restart" not in log.lower(), log
    # Each pipeline child was started once, and not again while stopping.
    assert log.count("pipeline child process running") == 2, log
    assert log.count("pipeline child process stopped") == 2, log
    assert "mintlog stopped" in log.rstrip().splitlines()[-1], log[-2000:]


@pytest.mark.timeout(300)
def test_a_terminal_run_reads_as_text_says_ready_once_and_ctrl_c_stops_it_cleanly(
    mintlog_factory: Callable[..., MintlogProcess],
) -> None:
    mintlog = mintlog_factory()
    terminal, terminal_side = pty.openpty()
    process = _group_run(mintlog, stderr=terminal_side)
    os.close(terminal_side)
    received = bytearray()

    def output() -> str:
        while select.select([terminal], [], [], 0.05)[0]:
            try:
                chunk = os.read(terminal, 65536)
            except OSError:  # the last writer closed the terminal
                break
            if not chunk:
                break
            received.extend(chunk)
        return received.decode(errors="replace").replace("\r\n", "\n")

    try:
        _wait_healthy(mintlog, process, output)
        deadline = time.monotonic() + 30
        while "mintlog ready" not in output() and time.monotonic() < deadline:
            time.sleep(0.1)
        key = mintlog.bootstrap("terminal")
        assert mintlog.ingest(key, {"events": [{"message": "hello", "service": "first-run"}]}).status_code == 202

        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C at the terminal does
        assert process.wait(timeout=90) == 0
        log = output()
    finally:
        _kill_group(process)
        os.close(terminal)

    lines = [line for line in log.splitlines() if line.strip()]
    assert all(TEXT_LINE.match(line) for line in lines), log
    assert "experimental" not in log.lower(), log
    ready = [line for line in lines if "mintlog ready" in line]
    assert len(ready) == 1, log
    assert f"ingest http://127.0.0.1:{mintlog.ingest_port}" in ready[0], ready[0]
    assert f"api http://127.0.0.1:{mintlog.api_port}" in ready[0], ready[0]
    assert f"MINTLOG_DATA_DIR={mintlog.data_dir.resolve()} mintlog admin bootstrap --tenant NAME" in ready[0]
    _assert_clean_stop(log)


@pytest.mark.timeout(300)
def test_sigterm_to_the_process_group_stops_cleanly_with_json_logs(
    mintlog_factory: Callable[..., MintlogProcess],
) -> None:
    mintlog = mintlog_factory()
    log_path = mintlog.data_dir.parent / "group-sigterm.log"
    mintlog.data_dir.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log_file:
        process = _group_run(mintlog, stderr=log_file.fileno())
    try:
        _wait_healthy(mintlog, process, log_path.read_text)
        os.killpg(process.pid, signal.SIGTERM)  # a supervisor that signals the whole group
        assert process.wait(timeout=90) == 0
    finally:
        _kill_group(process)
    log = log_path.read_text()
    assert all(line.startswith('{"time":') for line in log.splitlines() if line.strip()), log
    assert sum('"message":"mintlog ready' in line for line in log.splitlines()) == 1, log
    _assert_clean_stop(log)


@pytest.mark.parametrize(
    ("roles", "busy_setting"),
    [
        ("", "MINTLOG_HTTP__INGEST_PORT"),
        ("", "MINTLOG_HTTP__API_PORT"),
        ("api", "MINTLOG_HTTP__API_PORT"),
        ("pipeline", "MINTLOG_HTTP__OPS_PORT"),
    ],
)
def test_a_port_held_by_another_program_stops_the_start_naming_the_port_and_its_setting(
    mintlog_factory: Callable[..., MintlogProcess], occupied_port: int, roles: str, busy_setting: str
) -> None:
    mintlog = mintlog_factory(**{busy_setting: str(occupied_port)}, **({"MINTLOG_ROLES": roles} if roles else {}))
    mintlog.data_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    refused = _refused_run(mintlog)
    assert refused.returncode == 1, refused.stderr
    assert time.monotonic() - started < REFUSED_WITHIN_SECONDS
    errors = [line for line in refused.stderr.splitlines() if '"level":"error"' in line]
    assert len(errors) == 1, refused.stderr
    assert f"127.0.0.1:{occupied_port}" in errors[0], errors[0]
    assert f"{busy_setting}={occupied_port}" in errors[0], errors[0]
    assert f"set {busy_setting} to a free port" in errors[0], errors[0]
    assert "mintlog ready" not in refused.stderr, refused.stderr
    assert "listening" not in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr, refused.stderr


def test_admin_bootstrap_prints_nothing_but_the_key_on_stdout(tmp_path: Path) -> None:
    mintlog = MintlogProcess(data_dir=tmp_path / "data")
    first = mintlog.cli("admin", "bootstrap", "--tenant", "shell")
    again = mintlog.cli("admin", "bootstrap", "--tenant", "shell")  # the tenant exists: a second key
    for result in (first, again):
        assert KEY.fullmatch(result.stdout.strip()), result.stdout
        assert result.stdout.count("\n") == 1, result.stdout
        assert "created API key" in result.stderr, result.stderr
    assert first.stdout != again.stdout


def _check(tmp_path: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    mintlog = MintlogProcess(data_dir=tmp_path / "data", extra_env=settings)
    return mintlog.cli("config", "check", check=False)


def test_config_check_accepts_a_good_configuration_and_binds_nothing(tmp_path: Path, occupied_port: int) -> None:
    # A held port is `run`'s concern at start, not a configuration error.
    good = _check(tmp_path, MINTLOG_HTTP__INGEST_PORT=str(occupied_port))
    assert good.returncode == 0, good.stderr
    assert good.stdout.startswith("configuration OK"), good.stdout
    assert f"MINTLOG_HTTP__INGEST_PORT={occupied_port}" in good.stdout, good.stdout
    assert not (tmp_path / "data").exists(), "a check must not create the data directory"


def test_config_check_lists_every_problem_and_run_refuses_the_same(tmp_path: Path) -> None:
    not_a_directory = tmp_path / "a-file"
    not_a_directory.write_text("")
    port = str(free_port())
    bad = {
        "MINTLOG_HTTP__INGEST_PORT": port,
        "MINTLOG_HTTP__API_PORT": port,
        "MINTLOG_STORE__URL": "elastic://somewhere",
        "MINTLOG_DATA_DIR": str(not_a_directory / "data"),
    }
    checked = _check(tmp_path, **bad)
    assert checked.returncode == 1, checked.stdout
    assert "configuration OK" not in checked.stdout
    problems = (
        "MINTLOG_HTTP__INGEST_PORT and MINTLOG_HTTP__API_PORT are both",
        "invalid setting MINTLOG_STORE__URL='elastic://somewhere'",
        f"invalid setting MINTLOG_DATA_DIR='{not_a_directory / 'data'}': {not_a_directory} is not a directory",
    )
    for problem in problems:
        assert problem in checked.stderr, checked.stderr

    refused = _refused_run(MintlogProcess(data_dir=tmp_path / "data", extra_env=bad))
    assert refused.returncode == 2, refused.stderr
    for problem in problems:
        assert problem in refused.stderr, refused.stderr
    assert "mintlog ready" not in refused.stderr


def test_config_check_refuses_a_value_that_does_not_parse(tmp_path: Path) -> None:
    checked = _check(tmp_path, MINTLOG_HTTP__API_PORT="99999")
    assert checked.returncode == 1
    assert "invalid setting MINTLOG_HTTP__API_PORT='99999'" in checked.stderr, checked.stderr


def test_log_format_follows_the_terminal_unless_asked(tmp_path: Path) -> None:
    """Text when stderr is a terminal, JSON lines into a pipe, and JSON on a terminal when asked."""

    def logs_of_bootstrap(tenant: str, *, on_terminal: bool, **settings: str) -> list[str]:
        mintlog = MintlogProcess(data_dir=tmp_path / "data", extra_env=settings)
        command = [sys.executable, "-m", "mintlog", "admin", "bootstrap", "--tenant", tenant]
        if not on_terminal:
            return mintlog.cli(*command[3:]).stderr.splitlines()
        terminal, terminal_side = pty.openpty()
        received = bytearray()
        try:
            with subprocess.Popen(
                command, env=mintlog.env(), stdout=subprocess.PIPE, stderr=terminal_side, cwd=tmp_path
            ) as process:
                os.close(terminal_side)
                while True:
                    try:
                        chunk = os.read(terminal, 65536)
                    except OSError:  # the process closed the terminal: it exited
                        break
                    if not chunk:
                        break
                    received.extend(chunk)
                stdout, _ = process.communicate(timeout=60)
            assert process.returncode == 0
            assert KEY.fullmatch(stdout.decode().strip()), stdout
        finally:
            os.close(terminal)
        return received.decode().replace("\r\n", "\n").splitlines()

    text = logs_of_bootstrap("tty", on_terminal=True)
    assert any("INFO    mintlog.launch.commands: created tenant tty" in line for line in text), text
    assert all(TEXT_LINE.match(line) for line in text if line.strip()), text
    piped = logs_of_bootstrap("pipe", on_terminal=False)
    assert any('"message":"created tenant pipe' in line for line in piped), piped
    assert all(line.startswith('{"time":') for line in piped if line.strip()), piped
    asked = logs_of_bootstrap("asked", on_terminal=True, MINTLOG_LOG_FORMAT="json")
    assert any('"message":"created tenant asked' in line for line in asked), asked
