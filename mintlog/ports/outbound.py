"""The outbound HTTP port: every request Mintlog makes to a URL a tenant named (webhooks today, uptime probes
next) goes through one `OutboundHttp`, built once per process by the composition root (`runtime.outbound`).

Every implementation applies the egress policy of `mintlog.domain.egress` (`MINTLOG_EGRESS_ALLOW` on top of
the built-in refusals) to the URL before the request and to every address it connects to, never follows a
redirect, and quotes an answer's body only when `shows_answer_body` allows it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

__all__ = ["AttemptResult", "OutboundHttp"]


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """What one outbound request got: the status (None when no answer came), how long it took, and why it
    failed (None for a 2xx). `retry_after_seconds` is the answer's `Retry-After`, when it had a valid one."""

    status_code: int | None
    duration_seconds: float
    error: str | None
    retry_after_seconds: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class OutboundHttp(Protocol):
    """Requests to tenants' URLs under the egress policy. Safe to share between roles and concurrent tasks."""

    async def check_target(self, url: str) -> None:
        """The check when a tenant names a URL (a channel is created or updated): the URL as the client will
        read it and, for a name, every address it resolves to now. Raises `EgressRefused`
        (`mintlog.domain.egress`) whose `reason` is safe to show the tenant. A name that does not resolve yet
        passes: every request judges the addresses again before connecting."""
        ...

    async def request(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout_seconds: float,
    ) -> AttemptResult:
        """Send one request, once, within `timeout_seconds` (connecting included). Never raises for what the
        receiver or the network does: a refused address, a timeout, a connection failure, a redirect (3xx,
        never followed) or a non-2xx answer is an `AttemptResult` with its `error`."""
        ...

    async def post(self, url: str, body: bytes, headers: Mapping[str, str], *, timeout_seconds: float) -> AttemptResult:
        """`request("POST", …)` of a JSON `body`: `Content-Type: application/json` whatever `headers` say."""
        ...

    async def close(self) -> None:
        """Release connections. Idempotent; a later request opens them again."""
        ...
