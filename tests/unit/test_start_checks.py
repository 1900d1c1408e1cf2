"""The checks `mintlog run` makes before it says anything (ports, settings) and the text form of its logs."""

from __future__ import annotations

import io
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from mintlog.errors import ConfigError
from mintlog.launch.ports import ready_message
from mintlog.launch.preflight import check_ports_free, check_settings
from mintlog.logs import TextFormatter, resolve_log_format
from mintlog.portcheck import PortUnavailable, ensure_port_free
from mintlog.settings import load_settings


@pytest.fixture
def shared_port() -> Iterator[int]:
    """A port held the way Granian holds one: `SO_REUSEPORT`, which a second such bind would share."""
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def test_a_port_another_server_shares_with_reuseport_is_reported_with_its_setting(shared_port: int) -> None:
    with pytest.raises(PortUnavailable) as refused:
        ensure_port_free("127.0.0.1", shared_port, "MINTLOG_HTTP__API_PORT")
    assert f"MINTLOG_HTTP__API_PORT={shared_port}" in str(refused.value)
    assert "already in use" in str(refused.value)


def test_only_the_ports_of_the_roles_that_run_are_checked(shared_port: int, tmp_path: Path) -> None:
    settings = load_settings(
        {"MINTLOG_DATA_DIR": str(tmp_path), "MINTLOG_ROLES": "api", "MINTLOG_HTTP__INGEST_PORT": str(shared_port)},
        env_file=None,
    )
    check_ports_free(settings)  # the ingest port is not this process's
    with pytest.raises(PortUnavailable, match="MINTLOG_HTTP__INGEST_PORT"):
        check_ports_free(load_settings({"MINTLOG_HTTP__INGEST_PORT": str(shared_port)}, env_file=None))


def test_settings_checks_list_every_problem(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("")
    settings = load_settings(
        {
            "MINTLOG_DATA_DIR": str(a_file / "data"),
            "MINTLOG_HTTP__INGEST_PORT": "9000",
            "MINTLOG_HTTP__API_PORT": "9000",
            "MINTLOG_BLOB__URL": "ftp://x",
        },
        env_file=None,
    )
    with pytest.raises(ConfigError) as refused:
        check_settings(settings)
    message = str(refused.value)
    assert message.startswith("3 problems:")
    assert "MINTLOG_HTTP__INGEST_PORT and MINTLOG_HTTP__API_PORT are both 9000" in message
    assert "invalid setting MINTLOG_BLOB__URL='ftp://x'" in message
    assert f"{a_file} is not a directory" in message
    check_settings(load_settings({"MINTLOG_DATA_DIR": str(tmp_path / "new")}, env_file=None))
    assert not (tmp_path / "new").exists()


def test_the_ready_line_says_where_each_port_is_and_how_to_create_a_key(tmp_path: Path) -> None:
    settings = load_settings({"MINTLOG_DATA_DIR": str(tmp_path)}, env_file=None)
    assert ready_message(settings, serves_http=True) == (
        "mintlog ready: ingest http://127.0.0.1:8080, api http://127.0.0.1:8081; create an API key with: "
        f"MINTLOG_DATA_DIR={tmp_path} mintlog admin bootstrap --tenant NAME"
    )
    worker = load_settings({"MINTLOG_ROLES": "pipeline", "MINTLOG_HTTP__OPS_PORT": "9100"}, env_file=None)
    assert ready_message(worker, serves_http=False) == "mintlog ready: ops http://127.0.0.1:9100"


def test_text_logs_carry_time_level_logger_message_and_extras() -> None:
    record = logging.LogRecord("mintlog.demo", logging.WARNING, __file__, 1, "slow %s", ("disk",), None)
    record.__dict__.update(stage="index", detail="two words")
    line = TextFormatter().format(record)
    assert line.endswith(' WARNING mintlog.demo: slow disk stage=index detail="two words"'), line


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_auto_is_text_on_a_terminal_and_json_elsewhere() -> None:
    assert resolve_log_format("auto", _Terminal()) == "text"
    assert resolve_log_format("auto", io.StringIO()) == "json"
    assert resolve_log_format("json", _Terminal()) == "json"
