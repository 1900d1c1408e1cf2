"""Probes: run one uptime check against its target and say what was found.

`Prober.run(spec, timeout_seconds=...)` guarantees:

- it never raises for what the target, the network or DNS does: a refused connection, a timeout, a TLS or DNS
  failure, an unexpected answer are all a `CheckOutcome` with `ok=False` and a short `error` a user can read;
  only programming errors (an invalid spec that skipped `validate_check`, a bug) raise;
- it returns within `timeout_seconds` plus a few milliseconds: the whole check (DNS, connecting, TLS,
  redirects, reading the body) runs under one deadline, after which the outcome is "timed out after Ns";
- everything it connects to passes the egress policy (`mintlog.domain.egress`) at connect time, after DNS:
  HTTP through the webhooks' egress connector (every hop of a redirect judged again), TCP and TLS to an address
  judged after the one resolution, DNS queries only to a nameserver address the policy accepts (the answer is
  data). A refusal is `error="refused by egress policy: <reason>"`.

One `Prober` per process is enough and is safe to share between concurrent checks; `close()` (or `async with`)
releases its HTTP session.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from mintlog.adapters.probes.connect import insecure_tls_context, verifying_tls_context
from mintlog.adapters.probes.dns import DnsProbe
from mintlog.adapters.probes.http import HttpProbe
from mintlog.adapters.probes.tcp import probe_tcp
from mintlog.adapters.probes.tls import probe_tls
from mintlog.domain.egress import EgressPolicy, Resolve
from mintlog.domain.uptime_checks import CheckOutcome, CheckSpec, DnsCheck, HeartbeatCheck, HttpCheck, TcpCheck
from mintlog.resolver import system_resolve

if TYPE_CHECKING:
    from aiohttp.abc import AbstractResolver

__all__ = ["Prober"]


class Prober:
    """Runs checks under `policy`. `ca_file` replaces the default CA store for verified TLS (a private CA, or a
    test CA); `resolve` replaces the system resolver of TCP and TLS checks and `inner_resolver` aiohttp's resolver
    under the egress check of HTTP checks (tests); `nameservers` answer the DNS checks that name no nameserver
    (`MINTLOG_UPTIME__NAMESERVERS`; empty: the system resolver)."""

    def __init__(
        self,
        policy: EgressPolicy,
        *,
        ca_file: str | None = None,
        resolve: Resolve = system_resolve,
        inner_resolver: AbstractResolver | None = None,
        max_body_bytes: int = 1 << 20,
        nameservers: Sequence[str] = (),
    ) -> None:
        self._policy = policy
        self._resolve = resolve
        self._verifying = verifying_tls_context(ca_file)
        self._insecure = insecure_tls_context()
        self._http = HttpProbe(
            policy,
            verifying=self._verifying,
            insecure=self._insecure,
            inner_resolver=inner_resolver,
            max_body_bytes=max_body_bytes,
        )
        self._dns = DnsProbe(policy, nameservers=nameservers)

    async def run(self, spec: CheckSpec, *, timeout_seconds: float) -> CheckOutcome:
        """One run of `spec` (already valid under `validate_check`) within `timeout_seconds`; see the module
        docstring for the guarantees."""
        started = time.monotonic()
        try:
            async with asyncio.timeout(timeout_seconds):
                return await self._run(spec, timeout_seconds)
        except TimeoutError:
            latency_ms = (time.monotonic() - started) * 1000
            return CheckOutcome(ok=False, latency_ms=latency_ms, error=f"timed out after {timeout_seconds:g}s")

    async def _run(self, spec: CheckSpec, timeout_seconds: float) -> CheckOutcome:
        if isinstance(spec, HttpCheck):
            return await self._http.run(spec)
        if isinstance(spec, TcpCheck):
            return await probe_tcp(
                spec, self._policy, resolve=self._resolve, verifying=self._verifying, insecure=self._insecure
            )
        if isinstance(spec, DnsCheck):
            return await self._dns.run(spec, timeout_seconds=timeout_seconds)
        if isinstance(spec, HeartbeatCheck):
            # Heartbeats are judged by their pings and deadlines (`mintlog.roles.uptime.heartbeats`).
            return CheckOutcome(ok=False, latency_ms=0.0, error="a heartbeat monitor is not probed")
        return await probe_tls(
            spec, self._policy, resolve=self._resolve, verifying=self._verifying, insecure=self._insecure
        )

    async def close(self) -> None:
        """Release the HTTP session. Idempotent."""
        await self._http.close()

    async def __aenter__(self) -> Prober:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
