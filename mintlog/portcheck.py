"""Whether a port can be bound, asked before a server says it listens.

Granian binds its listening socket with `SO_REUSEPORT`, so a second program that does the same on the same port
would share it silently, and a readiness probe that connects to the port is answered by whichever program holds
it. `ensure_port_free` binds a plain socket instead (`SO_REUSEADDR` only, so connections of an earlier run in
TIME_WAIT do not count): the bind fails while any other socket listens on the port, whatever its options.
"""

from __future__ import annotations

import errno
import socket

from mintlog.errors import MintlogError

__all__ = ["PortUnavailable", "ensure_port_free"]


class PortUnavailable(MintlogError):
    """A port Mintlog must bind is taken by another program, or cannot be bound; names the port and its setting."""

    def __init__(self, host: str, port: int, setting: str, reason: str) -> None:
        super().__init__(
            f"cannot listen on {host}:{port} ({setting}={port}): {reason}; "
            f"stop the program that uses it, or set {setting} to a free port"
        )
        self.host = host
        self.port = port
        self.setting = setting


def _reason(error: OSError) -> str:
    if error.errno == errno.EADDRINUSE:
        return "the port is already in use by another program"
    if error.errno == errno.EACCES:
        return "permission denied (ports below 1024 need privileges)"
    if error.errno == errno.EADDRNOTAVAIL:
        return "the host is not an address of this machine (check the host setting beside it)"
    return error.strerror or str(error)


def ensure_port_free(host: str, port: int, setting: str, *, udp: bool = False) -> None:
    """Return when `host:port` can be bound now (TCP, or UDP when `udp`); raise `PortUnavailable` naming
    `setting` otherwise. Port 0 (the system picks one) always can. Binds nothing that outlives the call."""
    if port == 0:
        return
    kind = socket.SOCK_DGRAM if udp else socket.SOCK_STREAM
    try:
        family, _type, _proto, _name, address = socket.getaddrinfo(host, port, type=kind, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise PortUnavailable(host, port, setting, f"the host cannot be resolved ({exc.strerror})") from None
    with socket.socket(family, kind) as probe:
        if not udp:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise PortUnavailable(host, port, setting, _reason(exc)) from None
