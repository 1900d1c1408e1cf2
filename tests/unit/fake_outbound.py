"""`FakeOutboundHttp`: the outbound HTTP port without a network, for unit tests (the real adapter's tests:
tests/unit/test_egress*.py, tests/integration/test_delivery_worker.py, tests/e2e/test_egress_ssrf.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mintlog.domain.egress import EgressPolicy, check_url_literal
from mintlog.ports.outbound import AttemptResult

__all__ = ["FakeOutboundHttp", "SentRequest"]


@dataclass(frozen=True, slots=True)
class SentRequest:
    """One request the fake was asked to send, with the headers exactly as handed to it."""

    method: str
    url: str
    body: bytes | None
    headers: dict[str, str]
    timeout_seconds: float


class FakeOutboundHttp:
    """Records every request in `sent` and answers each with the next of `answers` (a 200 once they run
    out). `check_target` applies `policy` to the URL as written (no DNS: a name passes); `closed` counts
    `close` calls."""

    def __init__(self, answers: list[AttemptResult] | None = None, policy: EgressPolicy | None = None) -> None:
        self.answers = list(answers or [])
        self.policy = policy or EgressPolicy()
        self.sent: list[SentRequest] = []
        self.closed = 0

    async def check_target(self, url: str) -> None:
        check_url_literal(url, self.policy)

    async def request(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout_seconds: float,
    ) -> AttemptResult:
        self.sent.append(SentRequest(method, url, body, dict(headers or {}), timeout_seconds))
        return self.answers.pop(0) if self.answers else AttemptResult(200, 0.01, None)

    async def post(self, url: str, body: bytes, headers: Mapping[str, str], *, timeout_seconds: float) -> AttemptResult:
        json_headers = {**headers, "Content-Type": "application/json"}
        return await self.request("POST", url, body=body, headers=json_headers, timeout_seconds=timeout_seconds)

    async def close(self) -> None:
        self.closed += 1
