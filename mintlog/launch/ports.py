"""The ports a `mintlog run` process binds, and the one line that says it is ready.

Only ports named by a setting are listed. The embedded nats-server (client and monitoring ports) and the
pipeline children (their ops ports) listen on `127.0.0.1` ports found free at their start, which no setting
names: the nats-server moves to another free port when its port was taken meanwhile, and a child that cannot
bind its port fails its start, which `mintlog run` reports.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from mintlog.launch.registry import role_entry
from mintlog.settings import Settings

__all__ = ["ListeningPort", "key_command", "listening_ports", "ready_message"]

_DEFAULT_DATA_DIR = Settings().data_dir


@dataclass(frozen=True, slots=True)
class ListeningPort:
    """A port this process binds: what listens there, the setting that names it, and where."""

    what: str
    setting: str
    host: str
    port: int
    udp: bool = False

    @property
    def url(self) -> str:
        """`http://host:port` for an HTTP port, `udp://…`/`tcp://…` for a syslog one."""
        scheme = "udp" if self.udp else "http" if self.setting.startswith("MINTLOG_HTTP__") else "tcp"
        return f"{scheme}://{self.host}:{self.port}"


def listening_ports(settings: Settings) -> list[ListeningPort]:
    """The ports with a setting that this process binds, in the order `mintlog run` reports them: ingest (and
    its syslog listeners), api, ops. A port set to 0 is off (or picked by the system) and left out."""
    http, syslog, roles = settings.http, settings.syslog, settings.roles
    ports: list[ListeningPort] = []
    if "ingest" in roles:
        ports.append(ListeningPort("ingest", "MINTLOG_HTTP__INGEST_PORT", http.host, http.ingest_port))
        if http.workers <= 1:  # Granian workers serve the HTTP app only
            ports.extend(
                (
                    ListeningPort("syslog TCP", "MINTLOG_SYSLOG__TCP_PORT", syslog.host, syslog.tcp_port),
                    ListeningPort("syslog TLS", "MINTLOG_SYSLOG__TLS_PORT", syslog.host, syslog.tls_port),
                    ListeningPort("syslog UDP", "MINTLOG_SYSLOG__UDP_PORT", syslog.host, syslog.udp_port, udp=True),
                )
            )
    if "api" in roles:
        ports.append(ListeningPort("api", "MINTLOG_HTTP__API_PORT", http.host, http.api_port))
    if not any(role_entry(name).serves_http for name in roles):
        ports.append(ListeningPort("ops", "MINTLOG_HTTP__OPS_PORT", http.host, http.ops_port))
    return [port for port in ports if port.port]


def key_command(settings: Settings) -> str:
    """The command that creates the first tenant and API key against this process's metadata database."""
    command = "mintlog admin bootstrap --tenant NAME"
    if not settings.database.url and settings.data_dir != _DEFAULT_DATA_DIR:
        return f"MINTLOG_DATA_DIR={shlex.quote(str(settings.data_path))} {command}"
    return command


def ready_message(settings: Settings, *, serves_http: bool) -> str:
    """The line `mintlog run` logs once every role runs: where each port is, and (for a process serving HTTP)
    the command that creates an API key."""
    ports = listening_ports(settings)
    where = ", ".join(f"{port.what} {port.url}" for port in ports)
    if not ports:
        where = f"roles {','.join(settings.roles)}, no port (MINTLOG_HTTP__OPS_PORT serves /healthz and /metrics)"
    if not serves_http:
        return f"mintlog ready: {where}"
    return f"mintlog ready: {where}; create an API key with: {key_command(settings)}"
