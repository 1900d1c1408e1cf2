"""`system_resolve`: the addresses the operating system's resolver gives for a name.

Shared by the egress checks made when a tenant names a target (API) and by the outbound adapters, which judge
the addresses again when they connect.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence

__all__ = ["system_resolve"]


async def system_resolve(host: str) -> Sequence[str]:
    """The addresses the system resolver gives for `host` (what a connection to it may use)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]
