"""The TLS certificate probe: a handshake with `host:port` at an address the egress policy accepted, then the
leaf certificate's expiry. With `verify` the chain and name must validate (the handshake fails otherwise); without
it the certificate is read as presented (parsed with `cryptography`). Never raises for what the target does."""

from __future__ import annotations

import datetime
import ssl
import time

from cryptography import x509

from mintlog.adapters.probes.connect import close_quietly, describe_os_error, open_judged, resolve_judged
from mintlog.domain.egress import EgressPolicy, Resolve
from mintlog.domain.uptime_checks import CheckOutcome, DetailValue, TlsCheck, normalize_host

__all__ = ["days_left", "probe_tls"]

_SECONDS_PER_DAY = 86_400


def days_left(not_after: datetime.datetime, now: datetime.datetime) -> int:
    """Whole days from `now` until `not_after` (rounded down; negative once expired)."""
    return int((not_after - now).total_seconds() // _SECONDS_PER_DAY)


async def probe_tls(
    spec: TlsCheck, policy: EgressPolicy, *, resolve: Resolve, verifying: ssl.SSLContext, insecure: ssl.SSLContext
) -> CheckOutcome:
    """Up when the handshake succeeds (verified when `spec.verify`) and the leaf certificate has at least
    `spec.min_days_left` days left. `detail`: address, days_left, not_after (ISO 8601), subject, issuer."""
    started = time.monotonic()
    try:
        host = normalize_host(spec.host)
        server_name = normalize_host(spec.server_name) if spec.server_name is not None else host
        addresses = await resolve_judged(host, policy, resolve)
        writer, address = await open_judged(
            addresses, spec.port, tls=verifying if spec.verify else insecure, server_name=server_name
        )
    except OSError as exc:
        return CheckOutcome(ok=False, latency_ms=_elapsed_ms(started), error=describe_os_error(exc))
    latency_ms = _elapsed_ms(started)
    ssl_object = writer.get_extra_info("ssl_object")
    der = ssl_object.getpeercert(binary_form=True) if isinstance(ssl_object, ssl.SSLObject) else None
    await close_quietly(writer)
    if not der:
        return CheckOutcome(ok=False, latency_ms=latency_ms, error="the server presented no certificate")
    try:
        certificate = x509.load_der_x509_certificate(der)
    except ValueError:
        return CheckOutcome(ok=False, latency_ms=latency_ms, error="the server's certificate cannot be parsed")
    not_after = certificate.not_valid_after_utc
    remaining = days_left(not_after, datetime.datetime.now(datetime.UTC))
    detail: dict[str, DetailValue] = {
        "address": address,
        "days_left": remaining,
        "not_after": not_after.isoformat(),
        "subject": certificate.subject.rfc4514_string()[:300],
        "issuer": certificate.issuer.rfc4514_string()[:300],
    }
    if remaining < 0:
        error = f"certificate expired {-remaining} days ago"
    elif remaining < spec.min_days_left:
        error = f"certificate expires in {remaining} days (< {spec.min_days_left})"
    else:
        error = None
    return CheckOutcome(ok=error is None, latency_ms=latency_ms, error=error, detail=detail)


def _elapsed_ms(started: float) -> float:
    return (time.monotonic() - started) * 1000
