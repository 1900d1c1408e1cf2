"""What an uptime check asks for and what it found: the check specifications of a monitor (a tagged union on
`type`) and the outcome of one run.

Pure data and pure judgement, no I/O except `check_spec_egress` (which only resolves through the callable it is
given). The probes that run a check are `mintlog.adapters.probes`.

- `validate_check` raises `CheckSpecError` (a `ValueError`) naming the field (`check.expected_status[1]`) for
  anything a probe could not run: a malformed JSON path or status range, a port out of range, a URL that is not
  http(s), an empty or malformed host, a nameserver that is not an IP address.
- `check_spec_egress` is the create-time egress check of what the probe will connect to (the URL, the host, or
  the DNS nameserver); every run judges the addresses again at connect time.
- Matching rules (status ranges, JSON paths, DNS answers) are defined here once, so the probes and the API
  agree on them.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from collections.abc import Iterable, Sequence
from typing import Literal, cast

import msgspec

from mintlog.domain.egress import (
    EgressPolicy,
    EgressRefused,
    Resolve,
    check_url,
    judge_addresses,
    judge_host,
    normalize_url,
    parse_host_address,
)
from mintlog.domain.heartbeat_schedule import (
    MIN_PERIOD_SECONDS,
    HeartbeatSchedule,
    HeartbeatScheduleError,
    validate_schedule,
)

__all__ = [
    "CheckOutcome",
    "CheckSpec",
    "CheckSpecError",
    "DetailValue",
    "DnsCheck",
    "HeartbeatCheck",
    "HttpCheck",
    "JsonAssertion",
    "JsonScalar",
    "StatusRange",
    "TcpCheck",
    "TlsCheck",
    "canonical_dns_value",
    "check_spec_egress",
    "check_target_host",
    "json_equal",
    "json_path_lookup",
    "missing_dns_values",
    "normalize_host",
    "parse_json_path",
    "parse_nameserver",
    "parse_status_ranges",
    "status_allowed",
    "validate_check",
]

JsonScalar = str | int | float | bool | None
HttpMethod = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
DnsRecordType = Literal["A", "AAAA", "CNAME", "MX", "TXT", "NS", "SOA", "SRV", "PTR", "CAA"]
DetailValue = str | int | float | bool | None

MAX_BODY_CHARS = 65_536
MAX_REDIRECTS = 20
MAX_HEADERS = 50
_RESOLVE_TIMEOUT_SECONDS = 3.0
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}")
_STATUS_RANGE = re.compile(r"([1-5][0-9][0-9])(?:-([1-5][0-9][0-9]))?")
_JSON_PATH_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[([0-9]{1,9})\]|\[\"([^\"\\]*)\"\]")


class JsonAssertion(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One assertion on an HTTP answer's JSON body. `path` is a JSONPath subset: `$`, then any number of
    `.name`, `[index]` or `["any key"]` steps (`$.data.items[0].status`). Without `equals` the path must exist;
    with it the value there must equal `equals` (JSON equality: `1 == 1.0`, but `true != 1` and `"1" != 1`)."""

    path: str
    equals: JsonScalar | msgspec.UnsetType = msgspec.UNSET


class HttpCheck(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="http", tag_field="type"):
    """An HTTP(S) request whose answer must have an expected status and, optionally, a keyword present (or
    absent), JSON values and a maximum response time. Redirects are followed only when asked, each hop judged
    by the egress policy."""

    url: str
    method: HttpMethod = "GET"
    headers: dict[str, str] = {}
    body: str | None = None
    expected_status: list[str] = msgspec.field(default_factory=lambda: ["200-299"])
    keyword: str | None = None
    keyword_absent: bool = False
    json_assertions: list[JsonAssertion] = []
    max_response_ms: int | None = None
    follow_redirects: bool = False
    max_redirects: int = 5
    verify_tls: bool = True


class TcpCheck(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="tcp", tag_field="type"):
    """A TCP connection to `host:port`, with a TLS handshake when `tls` (verified unless `verify_tls` is off)."""

    host: str
    port: int
    tls: bool = False
    verify_tls: bool = True


class DnsCheck(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="dns", tag_field="type"):
    """A DNS query for `name`/`record_type`, to `nameserver` ("ip", "ip:port" or "[ipv6]:port"; `port` when the
    nameserver names none) or to the system resolver when None. Up when the answer is non-empty and holds every
    `expected` value (see `missing_dns_values`); extra answers are allowed."""

    name: str
    record_type: DnsRecordType = "A"
    expected: list[str] = []
    nameserver: str | None = None
    port: int = 53


class TlsCheck(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="tls", tag_field="type"):
    """A TLS handshake with `host:port` (SNI `server_name`, default the host) whose leaf certificate must be
    valid for at least `min_days_left` more days, and, when `verify`, chain to a trusted CA and match the name."""

    host: str
    port: int = 443
    server_name: str | None = None
    min_days_left: int = 14
    verify: bool = True


class HeartbeatCheck(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="heartbeat", tag_field="type"
):
    """No probe: the monitored job pings Mintlog (`/ping/{token}` on the ingest port) on `schedule`, and the
    monitor fails when a ping is late or reports a failure (`mintlog.domain.heartbeats`)."""

    schedule: HeartbeatSchedule


CheckSpec = HttpCheck | TcpCheck | DnsCheck | TlsCheck | HeartbeatCheck


class CheckOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What one run of a check found. `error` is a short reason a user can read, set exactly when not `ok`;
    `status_code` is the HTTP status of the last answer; `detail` holds facts such as resolved addresses,
    `days_left`, `not_after` or a redirect `location`."""

    ok: bool
    latency_ms: float
    error: str | None = None
    status_code: int | None = None
    detail: dict[str, DetailValue] = {}


class CheckSpecError(ValueError):
    """A check specification a probe cannot run; `field` names it (`check.port`), `message` says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class StatusRange(msgspec.Struct, frozen=True):
    """Inclusive HTTP status range."""

    low: int
    high: int


def parse_status_ranges(texts: Sequence[str]) -> list[StatusRange]:
    """`["200-299", "301"]` as ranges; raises `ValueError` for a code outside 100-599 or a reversed range."""
    ranges: list[StatusRange] = []
    for text in texts:
        match = _STATUS_RANGE.fullmatch(text.strip())
        if match is None:
            raise ValueError(f"{text!r} is not a status code (100-599) or a range like 200-299")
        low = int(match.group(1))
        high = int(match.group(2) or low)
        if high < low:
            raise ValueError(f"{text!r} is a reversed range")
        ranges.append(StatusRange(low, high))
    return ranges


def status_allowed(status: int, ranges: Iterable[StatusRange]) -> bool:
    """Whether `status` is in any of `ranges`."""
    return any(status_range.low <= status <= status_range.high for status_range in ranges)


def parse_json_path(path: str) -> tuple[str | int, ...]:
    """The steps of a JSON path (`$.a[0]["b c"]` → `("a", 0, "b c")`); raises `ValueError` when malformed."""
    if not path.startswith("$"):
        raise ValueError("a JSON path starts with $")
    steps: list[str | int] = []
    position = 1
    while position < len(path):
        match = _JSON_PATH_STEP.match(path, position)
        if match is None:
            raise ValueError(f'unexpected {path[position:][:20]!r} at offset {position}: use .name, [0] or ["key"]')
        name, index, quoted = match.groups()
        steps.append(int(index) if index is not None else (name if name is not None else quoted or ""))
        position = match.end()
    return tuple(steps)


def json_path_lookup(document: object, steps: Sequence[str | int]) -> tuple[bool, object]:
    """`(True, value)` at `steps` in a decoded JSON `document`, `(False, None)` when the path does not exist."""
    current: object = document
    for step in steps:
        if isinstance(step, int):
            if not isinstance(current, list):
                return False, None
            items = cast("list[object]", current)
            if step >= len(items):
                return False, None
            current = items[step]
        else:
            if not isinstance(current, dict):
                return False, None
            members = cast("dict[str, object]", current)
            if step not in members:
                return False, None
            current = members[step]
    return True, current


def json_equal(actual: object, expected: JsonScalar) -> bool:
    """JSON equality of a scalar: numbers compare by value, but a boolean is never a number."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(actual) is type(expected) and actual == expected
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return actual == expected
    return type(actual) is type(expected) and actual == expected


def normalize_host(host: str) -> str:
    """`host` (a name or an IP address, IPv6 with or without brackets) as a connection would use it: IDNA-mapped
    and lowercased, an address in its standard form. Raises `EgressRefused` for an empty or malformed host."""
    text = host.strip()
    if not text:
        raise EgressRefused("the host is empty")
    if ":" in text.removeprefix("[").removesuffix("]"):
        text = f"[{text.removeprefix('[').removesuffix(']')}]"
    target = normalize_url(f"http://{text}/")
    if target.path != "/" or target.query_string or target.user or target.explicit_port is not None:
        raise EgressRefused(f"{host!r} is not a host name or an IP address")
    raw = target.raw_host or ""
    address = parse_host_address(raw)
    return str(address) if address is not None else raw


def parse_nameserver(text: str, default_port: int) -> tuple[str, int]:
    """A nameserver ("ip", "ip:port", "[ipv6]:port" or a bare IPv6 address) as (address, port); raises
    `ValueError` when it is not an IP address (a name would need a resolver to find the resolver)."""
    candidate, port = text.strip(), default_port
    if candidate.startswith("["):
        inside, _, rest = candidate[1:].partition("]")
        candidate = inside
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                raise ValueError(f"{text!r} is not ip, ip:port or [ipv6]:port")
            port = int(rest[1:])
    elif candidate.count(":") == 1:
        candidate, _, port_text = candidate.partition(":")
        if not port_text.isdigit():
            raise ValueError(f"{text!r} has a port that is not a number")
        port = int(port_text)
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        raise ValueError(f"{text!r} is not an IP address (ip, ip:port or [ipv6]:port)") from None
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} is outside 1-65535")
    return str(address), port


def canonical_dns_value(record_type: str, value: str) -> str:
    """The form DNS values are compared in: A/AAAA as the standard address text (`::0001` → `::1`); TXT exactly
    as given (the strings of one record concatenated, unquoted); every other type lowercased, whitespace
    collapsed and the trailing dot of each name removed (`10 Mail.Example.com.` → `10 mail.example.com`)."""
    text = value.strip()
    if record_type in ("A", "AAAA"):
        try:
            return str(ipaddress.ip_address(text))
        except ValueError:
            return text
    if record_type == "TXT":
        return value
    return " ".join(part.removesuffix(".") if part != "." else part for part in text.lower().split())


def missing_dns_values(record_type: str, expected: Iterable[str], answers: Iterable[str]) -> list[str]:
    """The `expected` values not in `answers`, both compared in `canonical_dns_value` form."""
    present = {canonical_dns_value(record_type, answer) for answer in answers}
    return [value for value in expected if canonical_dns_value(record_type, value) not in present]


def _check_port(field: str, port: int) -> None:
    if not 1 <= port <= 65535:
        raise CheckSpecError(field, f"port {port} is outside 1-65535")


def _check_host(field: str, host: str) -> None:
    try:
        normalize_host(host)
    except EgressRefused as exc:
        raise CheckSpecError(field, exc.reason) from None


def _validate_http(spec: HttpCheck, prefix: str) -> None:
    try:
        normalize_url(spec.url)
    except EgressRefused as exc:
        raise CheckSpecError(f"{prefix}.url", exc.reason) from None
    if len(spec.headers) > MAX_HEADERS:
        raise CheckSpecError(f"{prefix}.headers", f"at most {MAX_HEADERS} headers")
    for name, value in spec.headers.items():
        if not _HEADER_NAME.fullmatch(name):
            raise CheckSpecError(f"{prefix}.headers", f"{name[:40]!r} is not a valid header name")
        if any(char in value for char in "\r\n\0") or len(value) > 8192:
            raise CheckSpecError(f"{prefix}.headers.{name}", "a header value has no CR, LF or NUL, at most 8192 chars")
    if spec.body is not None and len(spec.body) > MAX_BODY_CHARS:
        raise CheckSpecError(f"{prefix}.body", f"at most {MAX_BODY_CHARS} characters")
    if not spec.expected_status:
        raise CheckSpecError(f"{prefix}.expected_status", "name at least one status code or range")
    for index, text in enumerate(spec.expected_status):
        try:
            parse_status_ranges([text])
        except ValueError as exc:
            raise CheckSpecError(f"{prefix}.expected_status[{index}]", str(exc)) from None
    if spec.keyword is not None and not spec.keyword:
        raise CheckSpecError(f"{prefix}.keyword", "the keyword is empty: leave it out instead")
    if spec.keyword is None and spec.keyword_absent:
        raise CheckSpecError(f"{prefix}.keyword_absent", "needs a keyword")
    for index, assertion in enumerate(spec.json_assertions):
        try:
            parse_json_path(assertion.path)
        except ValueError as exc:
            raise CheckSpecError(f"{prefix}.json_assertions[{index}].path", str(exc)) from None
    if spec.max_response_ms is not None and spec.max_response_ms <= 0:
        raise CheckSpecError(f"{prefix}.max_response_ms", "must be positive")
    if not 0 <= spec.max_redirects <= MAX_REDIRECTS:
        raise CheckSpecError(f"{prefix}.max_redirects", f"must be within 0-{MAX_REDIRECTS}")


def _validate_dns(spec: DnsCheck, prefix: str) -> None:
    _check_port(f"{prefix}.port", spec.port)
    name = spec.name.strip().removesuffix(".")
    if not name or len(name) > 253 or any(not label or len(label) > 63 for label in name.split(".")):
        raise CheckSpecError(f"{prefix}.name", f"{spec.name[:60]!r} is not a domain name")
    if spec.nameserver is not None:
        try:
            parse_nameserver(spec.nameserver, spec.port)
        except ValueError as exc:
            raise CheckSpecError(f"{prefix}.nameserver", str(exc)) from None
    for index, value in enumerate(spec.expected):
        if not value.strip():
            raise CheckSpecError(f"{prefix}.expected[{index}]", "an expected value is empty")
        if spec.record_type in ("A", "AAAA"):
            version = 4 if spec.record_type == "A" else 6
            try:
                valid = ipaddress.ip_address(value.strip()).version == version
            except ValueError:
                valid = False
            if not valid:
                raise CheckSpecError(f"{prefix}.expected[{index}]", f"{value!r} is not an IPv{version} address")


def validate_check(spec: CheckSpec, *, field: str = "check", min_period_seconds: int = MIN_PERIOD_SECONDS) -> None:
    """Raise `CheckSpecError` naming the first field (under `field`) that a probe could not run (or, for a
    heartbeat, a schedule that cannot be kept: a period below `min_period_seconds`, a malformed cron
    expression, an unknown time zone); return None when the whole specification is valid. Egress is not
    judged here (`check_spec_egress`)."""
    if isinstance(spec, HeartbeatCheck):
        try:
            validate_schedule(spec.schedule, min_period_seconds=min_period_seconds)
        except HeartbeatScheduleError as exc:
            raise CheckSpecError(f"{field}.schedule.{exc.field}", exc.message) from None
    elif isinstance(spec, HttpCheck):
        _validate_http(spec, field)
    elif isinstance(spec, TcpCheck):
        _check_host(f"{field}.host", spec.host)
        _check_port(f"{field}.port", spec.port)
    elif isinstance(spec, DnsCheck):
        _validate_dns(spec, field)
    else:
        _check_host(f"{field}.host", spec.host)
        _check_port(f"{field}.port", spec.port)
        if spec.server_name is not None:
            _check_host(f"{field}.server_name", spec.server_name)
        if not 0 <= spec.min_days_left <= 3650:
            raise CheckSpecError(f"{field}.min_days_left", "must be within 0-3650")


def check_target_host(spec: CheckSpec) -> str | tuple[str, int] | None:
    """What the egress policy must judge for a (valid) check: the URL of an HTTP check, `(host, port)` of a TCP
    or TLS check (the host normalized), `(address, port)` of a DNS check's nameserver, and None for a DNS check
    on the system resolver (the operator's own resolver; the answers are data, not connections) or a heartbeat
    (nothing to connect to)."""
    if isinstance(spec, HeartbeatCheck):
        return None
    if isinstance(spec, HttpCheck):
        return spec.url
    if isinstance(spec, DnsCheck):
        return None if spec.nameserver is None else parse_nameserver(spec.nameserver, spec.port)
    return normalize_host(spec.host), spec.port


async def check_spec_egress(spec: CheckSpec, policy: EgressPolicy, *, resolve: Resolve) -> None:
    """The create-time egress check of a (valid) check: raises `EgressRefused` (its `reason` safe to show) when
    the URL, host or nameserver is refused, or a host name resolves now to a refused address. A name that does
    not resolve yet passes: every run judges the addresses again before connecting."""
    target = check_target_host(spec)
    if target is None:
        return
    if isinstance(target, str):
        await check_url(target, policy, resolve=resolve)
        return
    host, _ = target
    judge_host(host, policy)
    if parse_host_address(host) is not None:
        return
    try:
        async with asyncio.timeout(_RESOLVE_TIMEOUT_SECONDS):
            addresses = await resolve(host)
    except (OSError, TimeoutError):
        return
    judge_addresses(host, addresses, policy)
