"""The DNS probe: one query with dnspython, to the check's nameserver or the system resolver.

A nameserver is a connection target: its address is judged by the egress policy before any query, so a tenant
cannot aim queries at an internal resolver unless `MINTLOG_EGRESS_ALLOW` allows its range. The names and
addresses in the answer are data, never connected to. Never raises for what the nameserver does."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Sequence

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.rdata
import dns.rdtypes.ANY.TXT
import dns.resolver

from mintlog.domain.egress import EgressPolicy, EgressRefused
from mintlog.domain.uptime_checks import CheckOutcome, DetailValue, DnsCheck, missing_dns_values, parse_nameserver

__all__ = ["DnsProbe"]

_MAX_SHOWN_CHARS = 500


def _rdata_text(rdata: dns.rdata.Rdata) -> str:
    """A record's value as `expected` values are written: TXT strings concatenated and unquoted, every other
    type in its presentation form (`10 mail.example.com.`)."""
    if isinstance(rdata, dns.rdtypes.ANY.TXT.TXT):
        return b"".join(rdata.strings).decode("utf-8", errors="replace")
    return rdata.to_text()


class DnsProbe:
    """DNS queries under the egress policy. A check naming no nameserver asks the instance's `nameservers`
    (`MINTLOG_UPTIME__NAMESERVERS`, "ip", "ip:port" or "[ipv6]:port"; the operator's own, not judged by the
    egress policy), or the system resolver, configured at its first use, when there are none."""

    def __init__(self, policy: EgressPolicy, *, nameservers: Sequence[str] = ()) -> None:
        self._policy = policy
        self._system: dns.asyncresolver.Resolver | None = None
        self._instance = [parse_nameserver(text, 53) for text in nameservers]

    def _resolver(self, spec: DnsCheck) -> tuple[dns.asyncresolver.Resolver, str]:
        if spec.nameserver is None:
            if self._system is None:
                self._system = self._instance_resolver()
            return self._system, "system"
        address, port = parse_nameserver(spec.nameserver, spec.port)
        self._policy.check_address(ipaddress.ip_address(address))
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [address]
        resolver.port = port
        return resolver, f"{address}:{port}"

    def _instance_resolver(self) -> dns.asyncresolver.Resolver:
        if not self._instance:
            return dns.asyncresolver.Resolver()
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(address, port) for address, port in self._instance]
        return resolver

    async def run(self, spec: DnsCheck, *, timeout_seconds: float) -> CheckOutcome:
        """Up when the answer holds at least one record and every `spec.expected` value
        (`missing_dns_values`). `detail`: nameserver, answers (comma-separated)."""
        started = time.monotonic()
        try:
            resolver, nameserver = self._resolver(spec)
        except EgressRefused as exc:
            return CheckOutcome(ok=False, latency_ms=0.0, error=f"refused by egress policy: {exc.reason}")
        except (dns.exception.DNSException, OSError):
            return CheckOutcome(ok=False, latency_ms=0.0, error="no system resolver is configured")
        try:
            answer = await resolver.resolve(
                spec.name, spec.record_type, lifetime=timeout_seconds, raise_on_no_answer=False, search=False
            )
        except dns.resolver.NXDOMAIN:
            return self._failed(started, f"{spec.name} does not exist (NXDOMAIN)", nameserver)
        except dns.resolver.LifetimeTimeout:
            return self._failed(started, f"no answer within {timeout_seconds:g}s", nameserver)
        except dns.resolver.NoNameservers:
            return self._failed(started, "the nameserver failed to answer (SERVFAIL or refused)", nameserver)
        except (dns.exception.DNSException, OSError) as exc:
            return self._failed(started, f"query failed: {type(exc).__name__}", nameserver)
        latency_ms = (time.monotonic() - started) * 1000
        records: list[dns.rdata.Rdata] = list(answer.rrset) if answer.rrset is not None else []
        values = [_rdata_text(rdata) for rdata in records]
        detail: dict[str, DetailValue] = {"nameserver": nameserver, "answers": ", ".join(values)[:_MAX_SHOWN_CHARS]}
        if not values:
            error = f"no {spec.record_type} records for {spec.name}"
        else:
            missing = missing_dns_values(spec.record_type, spec.expected, values)
            error = f"expected {', '.join(missing)} not in the answer"[:_MAX_SHOWN_CHARS] if missing else None
        return CheckOutcome(ok=error is None, latency_ms=latency_ms, error=error, detail=detail)

    @staticmethod
    def _failed(started: float, error: str, nameserver: str) -> CheckOutcome:
        latency_ms = (time.monotonic() - started) * 1000
        return CheckOutcome(ok=False, latency_ms=latency_ms, error=error, detail={"nameserver": nameserver})
