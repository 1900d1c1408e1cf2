"""The HTTP probe: one request (and, when the check asks, its redirects hop by hop) through the egress
connector the webhooks use (`egress_connector`): every URL is normalized and judged before it is requested, and
every connection judged again by the addresses it resolves to and connects to. A redirect to a refused address
is refused before any connection. Never raises for what the target or the network does.

The body is read (at most `max_body_bytes`) only when a keyword or JSON assertion needs it; a keyword is looked
for in that prefix. A JSON value is quoted in an error only when the answer came from a public address
(`shows_answer_body`), so a range allowed by `MINTLOG_EGRESS_ALLOW` cannot be read through the error field.
"""

from __future__ import annotations

import ipaddress
import ssl
import time
from typing import cast

import aiohttp
import msgspec
from aiohttp.abc import AbstractResolver
from yarl import URL

from mintlog.adapters.http.egress_aiohttp import egress_connector
from mintlog.adapters.probes.connect import describe_os_error
from mintlog.domain.egress import EgressPolicy, EgressRefused, IpAddress, checked_url, shows_answer_body
from mintlog.domain.uptime_checks import (
    CheckOutcome,
    DetailValue,
    HttpCheck,
    json_equal,
    json_path_lookup,
    parse_json_path,
    parse_status_ranges,
    status_allowed,
)

__all__ = ["HttpProbe"]

_USER_AGENT = "Mintlog-Uptime/1.0"
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
_SHOWN_VALUE_CHARS = 100


class _Answer(msgspec.Struct, frozen=True, kw_only=True):
    """The last answer of a request chain."""

    status: int
    body: bytes
    truncated: bool
    peer: IpAddress | None
    charset: str | None
    redirects: int
    location: str | None
    url: str


class _Failure(Exception):
    """A request chain that ended without an answer to judge; `reason` is the outcome's error."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def _peer_address(response: aiohttp.ClientResponse) -> IpAddress | None:
    connection = response.connection
    transport = None if connection is None else connection.transport
    peer: object = None if transport is None else transport.get_extra_info("peername")
    fields = cast("tuple[object, ...]", peer) if isinstance(peer, tuple) else ()
    if not fields:
        return None
    try:
        return ipaddress.ip_address(str(fields[0]).split("%", 1)[0])
    except ValueError:
        return None


def _client_error(exc: BaseException) -> str:
    """The short reason of an aiohttp or socket failure."""
    current: BaseException | None = exc
    while current is not None:
        os_error = getattr(current, "os_error", None)
        if isinstance(current, EgressRefused) or isinstance(os_error, EgressRefused):
            return describe_os_error(current if isinstance(current, EgressRefused) else cast("OSError", os_error))
        current = current.__cause__
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return describe_os_error(exc.certificate_error)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return describe_os_error(exc.os_error)
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection without answering"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "the response body was cut off"
    if isinstance(exc, OSError):
        return describe_os_error(exc)
    return f"request failed: {type(exc).__name__}"


def _next_method(method: str, status: int) -> str:
    """The method of the next hop, as browsers do: 303 turns everything but HEAD into GET, 301/302 turn POST
    into GET, 307/308 keep the method (and the body)."""
    if status == 303 and method != "HEAD":
        return "GET"
    if status in (301, 302) and method == "POST":
        return "GET"
    return method


class HttpProbe:
    """HTTP checks under the egress policy. One session per probe (fresh connection per request, no cookies
    kept between checks); `close` releases it."""

    def __init__(
        self,
        policy: EgressPolicy,
        *,
        verifying: ssl.SSLContext,
        insecure: ssl.SSLContext,
        inner_resolver: AbstractResolver | None = None,
        max_body_bytes: int = 1 << 20,
    ) -> None:
        self._policy = policy
        self._verifying = verifying
        self._insecure = insecure
        self._inner_resolver = inner_resolver
        self._max_body_bytes = max_body_bytes
        self._session: aiohttp.ClientSession | None = None

    def _opened(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = egress_connector(self._policy, inner_resolver=self._inner_resolver, force_close=True)
            self._session = aiohttp.ClientSession(
                connector=connector, trust_env=False, cookie_jar=aiohttp.DummyCookieJar()
            )
        return self._session

    async def close(self) -> None:
        """Release the session. Idempotent; a later check opens a new one."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def run(self, spec: HttpCheck) -> CheckOutcome:
        """Up when the last answer's status is expected, it came within `max_response_ms` (the whole chain,
        body included), and the keyword and JSON assertions hold. The first failing condition is the error."""
        started = time.monotonic()
        needs_body = spec.keyword is not None or bool(spec.json_assertions)
        try:
            answer = await self._fetch(spec, needs_body=needs_body)
        except _Failure as failure:
            latency_ms = (time.monotonic() - started) * 1000
            return CheckOutcome(ok=False, latency_ms=latency_ms, error=failure.reason, status_code=failure.status)
        latency_ms = (time.monotonic() - started) * 1000
        detail: dict[str, DetailValue] = {"url": answer.url, "redirects": answer.redirects}
        if answer.peer is not None:
            detail["address"] = str(answer.peer)
        if answer.location is not None:
            detail["location"] = answer.location[:500]
        error = self._judge(spec, answer, latency_ms)
        return CheckOutcome(
            ok=error is None, latency_ms=latency_ms, error=error, status_code=answer.status, detail=detail
        )

    async def _fetch(self, spec: HttpCheck, *, needs_body: bool) -> _Answer:
        session = self._opened()
        method, url = spec.method, spec.url
        body = spec.body.encode() if spec.body is not None else None
        headers = {"User-Agent": _USER_AGENT, **spec.headers}
        tls = self._verifying if spec.verify_tls else self._insecure
        redirects = 0
        while True:
            try:
                target = checked_url(url, self._policy)
            except EgressRefused as exc:
                raise _Failure(describe_os_error(exc)) from None
            try:
                async with session.request(
                    method, target, data=body, headers=headers, allow_redirects=False, ssl=tls
                ) as response:
                    status = response.status
                    location = response.headers.get("Location")
                    if spec.follow_redirects and status in _REDIRECT_STATUSES and location:
                        pass
                    else:
                        content, truncated = await self._read(response) if needs_body else (b"", False)
                        return _Answer(
                            status=status,
                            body=content,
                            truncated=truncated,
                            peer=_peer_address(response),
                            charset=response.charset,
                            redirects=redirects,
                            location=location,
                            url=str(target),
                        )
            except (aiohttp.ClientError, OSError) as exc:
                raise _Failure(_client_error(exc)) from None
            redirects += 1
            if redirects > spec.max_redirects:
                raise _Failure(f"more than {spec.max_redirects} redirects", status)
            try:
                next_target = target.join(URL(location))
            except ValueError:
                raise _Failure(f"redirect to an invalid location {location[:200]!r}", status) from None
            if next_target.origin() != target.origin():
                headers = {name: value for name, value in headers.items() if name.lower() not in _CREDENTIAL_HEADERS}
            next_method = _next_method(method, status)
            if next_method != method:
                body = None
            method, url = next_method, str(next_target)

    async def _read(self, response: aiohttp.ClientResponse) -> tuple[bytes, bool]:
        """At most `max_body_bytes` of the body, and whether more was left unread."""
        chunks: list[bytes] = []
        size = 0
        while size <= self._max_body_bytes:
            chunk = await response.content.read(self._max_body_bytes + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        content = b"".join(chunks)
        return content[: self._max_body_bytes], size > self._max_body_bytes

    def _judge(self, spec: HttpCheck, answer: _Answer, latency_ms: float) -> str | None:
        if not status_allowed(answer.status, parse_status_ranges(spec.expected_status)):
            return f"status {answer.status} not in {', '.join(spec.expected_status)}"
        if spec.max_response_ms is not None and latency_ms > spec.max_response_ms:
            return f"response took {latency_ms:.0f} ms (> {spec.max_response_ms} ms)"
        if spec.keyword is not None:
            text = answer.body.decode(answer.charset or "utf-8", errors="replace")
            if spec.keyword_absent and spec.keyword in text:
                return f"keyword {spec.keyword!r} found"
            if not spec.keyword_absent and spec.keyword not in text:
                return f"keyword {spec.keyword!r} not found"
        if spec.json_assertions:
            return self._judge_json(spec, answer)
        return None

    def _judge_json(self, spec: HttpCheck, answer: _Answer) -> str | None:
        if answer.truncated:
            return f"the body is larger than {self._max_body_bytes} bytes: JSON assertions not checked"
        try:
            document: object = msgspec.json.decode(answer.body)
        except msgspec.DecodeError:
            return "the body is not valid JSON"
        shown = shows_answer_body(answer.peer)
        for assertion in spec.json_assertions:
            found, value = json_path_lookup(document, parse_json_path(assertion.path))
            if not found:
                return f"JSON path {assertion.path} not found"
            if assertion.equals is msgspec.UNSET:
                continue
            if not json_equal(value, assertion.equals):
                expected = msgspec.json.encode(assertion.equals).decode()[:_SHOWN_VALUE_CHARS]
                if not shown:
                    return f"JSON path {assertion.path} is not {expected}"
                actual = msgspec.json.encode(value).decode()[:_SHOWN_VALUE_CHARS]
                return f"JSON path {assertion.path} is {actual}, expected {expected}"
        return None
