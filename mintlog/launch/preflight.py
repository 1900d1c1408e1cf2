"""What `mintlog run` checks before it opens anything; `mintlog config check` runs the same checks alone.

- `check_settings(settings)` raises one `ConfigError` listing every problem it finds (settings parsing itself
  happened in `load_settings`, which both commands call first):
  - the Granian workers combination (`check_worker_settings`);
  - the ports this process binds are distinct (one port named by two settings cannot be bound twice);
  - the syslog TLS listener's certificate and key load, when its port is on;
  - the data directory, when the process keeps embedded state there, is a directory this user can write, or
    can be created;
  - every adapter can be built from its URL (`bootstrap`, which connects to nothing): the schemes, the
    OpenSearch CA file.
- `check_ports_free(settings)` (`mintlog run` only) binds nothing but finds, before the first server starts,
  a port taken by another program: `PortUnavailable` naming the port and its setting.

The ports are those of `mintlog.launch.ports.listening_ports`.
"""

from __future__ import annotations

import os
import ssl

from mintlog.errors import ConfigError
from mintlog.launch.bootstrap import bootstrap
from mintlog.launch.datadir import uses_data_dir
from mintlog.launch.ports import ListeningPort, listening_ports
from mintlog.launch.workers import check_worker_settings
from mintlog.portcheck import ensure_port_free
from mintlog.settings import Settings

__all__ = ["check_ports_free", "check_settings"]


def _port_clashes(settings: Settings) -> list[str]:
    seen: dict[tuple[int, bool], ListeningPort] = {}
    problems: list[str] = []
    for port in listening_ports(settings):
        earlier = seen.setdefault((port.port, port.udp), port)
        if earlier is not port:
            problems.append(
                f"{earlier.setting} and {port.setting} are both {port.port}: this process binds each, so give "
                "them different ports"
            )
    return problems


def _syslog_tls_problems(settings: Settings) -> list[str]:
    syslog = settings.syslog
    if not syslog.tls_port or "ingest" not in settings.roles:
        return []
    if not (syslog.tls_cert_file and syslog.tls_key_file):
        return ["MINTLOG_SYSLOG__TLS_PORT needs MINTLOG_SYSLOG__TLS_CERT_FILE and MINTLOG_SYSLOG__TLS_KEY_FILE"]
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(syslog.tls_cert_file, syslog.tls_key_file)
    except (OSError, ssl.SSLError) as exc:
        return [
            f"invalid setting MINTLOG_SYSLOG__TLS_CERT_FILE={syslog.tls_cert_file!r} or "
            f"MINTLOG_SYSLOG__TLS_KEY_FILE={syslog.tls_key_file!r}: {exc}"
        ]
    return []


def _data_dir_problems(settings: Settings) -> list[str]:
    if not uses_data_dir(settings):
        return []
    shown = f"invalid setting MINTLOG_DATA_DIR={settings.data_dir!r}"
    existing = settings.data_path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return [f"{shown}: {existing} is not a directory"]
    if not os.access(existing, os.W_OK | os.X_OK):
        action = "write to" if existing == settings.data_path else f"create {settings.data_path} in"
        return [f"{shown}: this user cannot {action} {existing}"]
    return []


def check_settings(settings: Settings) -> None:
    """Raise `ConfigError` listing every problem of `settings` found without connecting or binding (see the
    module); return when there is none."""
    problems: list[str] = []
    for check in (check_worker_settings, bootstrap):
        try:
            check(settings)
        except ConfigError as exc:
            problems.append(str(exc))
    problems += _port_clashes(settings) + _syslog_tls_problems(settings) + _data_dir_problems(settings)
    if len(problems) == 1:
        raise ConfigError(problems[0])
    if problems:
        raise ConfigError(f"{len(problems)} problems:\n" + "\n".join(f"  - {problem}" for problem in problems))


def check_ports_free(settings: Settings) -> None:
    """Raise `PortUnavailable` for the first port of `listening_ports` that another program holds."""
    for port in listening_ports(settings):
        ensure_port_free(port.host, port.port, port.setting, udp=port.udp)
