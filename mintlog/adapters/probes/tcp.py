"""The TCP probe: one connection to `host:port` (and a TLS handshake when asked) to an address the egress
policy accepted. Never raises for what the target or the network does: every failure is an outcome."""

from __future__ import annotations

import ssl
import time

from mintlog.adapters.probes.connect import close_quietly, describe_os_error, open_judged, resolve_judged
from mintlog.domain.egress import EgressPolicy, Resolve
from mintlog.domain.uptime_checks import CheckOutcome, TcpCheck, normalize_host

__all__ = ["probe_tcp"]


async def probe_tcp(
    spec: TcpCheck, policy: EgressPolicy, *, resolve: Resolve, verifying: ssl.SSLContext, insecure: ssl.SSLContext
) -> CheckOutcome:
    """Up when a connection (with a TLS handshake when `spec.tls`, verified when `spec.verify_tls`) opens."""
    started = time.monotonic()
    try:
        host = normalize_host(spec.host)
        addresses = await resolve_judged(host, policy, resolve)
        tls = (verifying if spec.verify_tls else insecure) if spec.tls else None
        writer, address = await open_judged(addresses, spec.port, tls=tls, server_name=host)
    except OSError as exc:
        return CheckOutcome(ok=False, latency_ms=_elapsed_ms(started), error=describe_os_error(exc))
    latency_ms = _elapsed_ms(started)
    await close_quietly(writer)
    return CheckOutcome(ok=True, latency_ms=latency_ms, detail={"address": address, "port": spec.port})


def _elapsed_ms(started: float) -> float:
    return (time.monotonic() - started) * 1000
