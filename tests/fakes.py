"""The fakes several test modules share: ports and clocks in memory, no network, no process.

A fake used by one module only stays in that module; one used by two or more lives here. Each fake keeps
the semantics of the adapter it stands for (where a contract suite exists, the fake runs it too, as
`FakeIdempotencyStore` does in tests/contract/test_idempotency.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import msgspec

from mintlog.domain.egress import EgressPolicy, check_url_literal, judge_host
from mintlog.domain.keys import generate_api_key
from mintlog.domain.oncall_people import ContactMethod, NotificationRule, Person
from mintlog.domain.tenants import ApiKey, Tenant
from mintlog.errors import DatabaseUnavailable
from mintlog.ports.idempotency import IdempotencyRecord
from mintlog.ports.outbound import AttemptResult
from mintlog.ports.person_notify import PersonMessage, PersonNotice
from mintlog.ports.smtp import SmtpResult, SmtpServer

__all__ = [
    "NOW",
    "FakeClock",
    "FakeIdempotencyStore",
    "FakeKeyMetadata",
    "FakeOnCallDirectory",
    "FakeOutboundHttp",
    "FakePersonNotifier",
    "FakeSmtpSender",
    "FakeWallClock",
    "PersonNotification",
    "SentEmail",
    "SentRequest",
]

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
"""The instant most unit tests call now; `FakeWallClock` starts there."""


# --- clocks ------------------------------------------------------------------------------------------------


class FakeClock:
    """A monotonic clock in seconds that moves only when told (starts at 1000.0)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeWallClock:
    """A wall clock (aware UTC datetimes) that moves only when told (starts at `NOW`)."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


# --- metadata: API keys and their tenants ---------------------------------------------------------------------


class FakeKeyMetadata:
    """The key lookups of the metadata port (what `Authenticator` reads) in memory; tests change keys and
    tenants as the admin API would.

    `down` makes reads and touches raise `DatabaseUnavailable`, as an unreachable database does; `lookups`
    counts `find_api_key` calls; `touched` holds the last-used times written.
    """

    def __init__(self) -> None:
        self.keys: dict[str, ApiKey] = {}
        self.tenants: dict[str, Tenant] = {}
        self.down = False
        self.lookups = 0
        self.touched: dict[str, datetime] = {}

    def add(
        self,
        tenant_id: str = "acme",
        *,
        scopes: tuple[str, ...] = ("ingest:logs",),
        rate_limit: int | None = None,
        expires_at: datetime | None = None,
        revoked_at: datetime | None = None,
        suspended: bool = False,
    ) -> tuple[str, ApiKey]:
        """A new key of `tenant_id` (the tenant is created if missing; `suspended` suspends it): (secret, key)."""
        tenant = self.tenants.setdefault(tenant_id, Tenant(id=tenant_id, name=tenant_id, created_at=NOW))
        if suspended:
            self.tenants[tenant_id] = msgspec.structs.replace(tenant, suspended=True)
        generated = generate_api_key()
        key = ApiKey(
            id=f"key_{len(self.keys)}",
            tenant_id=tenant_id,
            name="k",
            key_hash=generated.key_hash,
            prefix=generated.prefix,
            scopes=scopes,
            rate_limit=rate_limit,
            expires_at=expires_at,
            revoked_at=revoked_at,
            created_at=NOW,
        )
        self.keys[key.key_hash] = key
        return generated.secret, key

    async def find_api_key(self, key_hash: str) -> tuple[ApiKey, Tenant] | None:
        self.lookups += 1
        if self.down:
            raise DatabaseUnavailable("database down")
        key = self.keys.get(key_hash)
        return None if key is None else (key, self.tenants[key.tenant_id])

    async def touch_api_keys(self, last_used: dict[str, datetime]) -> None:
        if self.down:
            raise DatabaseUnavailable("database down")
        self.touched.update(last_used)

    async def list_api_keys(self, tenant_id: str) -> Sequence[ApiKey]:
        return [key for key in self.keys.values() if key.tenant_id == tenant_id]


# --- idempotency ----------------------------------------------------------------------------------------------


class FakeIdempotencyStore:
    """The idempotency port in a dict: records by (tenant, key digest). Set `unavailable` to make every call
    raise `DatabaseUnavailable`, as a database that is down would; `fail_complete` to make only `complete`
    fail. Its contract: tests/contract/test_idempotency.py."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], IdempotencyRecord] = {}
        self.unavailable = False
        self.fail_complete = False

    def _check(self) -> None:
        if self.unavailable:
            raise DatabaseUnavailable("metadata database unreachable: fake outage")

    async def get(self, tenant_id: str, key_sha256: str, *, now: datetime) -> IdempotencyRecord | None:
        self._check()
        record = self.records.get((tenant_id, key_sha256))
        return record if record is not None and record.expires_at > now else None

    async def claim(self, record: IdempotencyRecord, *, now: datetime) -> IdempotencyRecord:
        self._check()
        holder = self.records.get((record.tenant_id, record.key_sha256))
        if holder is not None and holder.expires_at > now:
            return holder
        self.records[(record.tenant_id, record.key_sha256)] = record
        return record

    async def complete(self, tenant_id: str, key_sha256: str, batch_id: str) -> None:
        self._check()
        if self.fail_complete:
            raise DatabaseUnavailable("metadata database unreachable: fake outage")
        record = self.records.get((tenant_id, key_sha256))
        if record is not None and record.batch_id == batch_id:
            self.records[(tenant_id, key_sha256)] = msgspec.structs.replace(record, completed=True)

    async def forget_expired(self, *, now: datetime, limit: int) -> int:
        self._check()
        expired = sorted((r.expires_at, k) for k, r in self.records.items() if r.expires_at <= now)[:limit]
        for _, key in expired:
            del self.records[key]
        return len(expired)


# --- outbound HTTP --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SentRequest:
    """One request `FakeOutboundHttp` was asked to send, with the headers exactly as handed to it."""

    method: str
    url: str
    body: bytes | None
    headers: dict[str, str]
    timeout_seconds: float


class FakeOutboundHttp:
    """The outbound HTTP port without a network (the real adapter's tests: tests/unit/test_egress*.py,
    tests/integration/test_delivery_worker.py, tests/e2e/test_egress_ssrf.py).

    Records every request in `sent` and answers each with the next of `answers` (a 200 once they run out).
    `check_target` applies `policy` to the URL as written (no DNS: a name passes); `closed` counts `close`
    calls.
    """

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


@dataclass(frozen=True, slots=True)
class SentEmail:
    """One email `FakeSmtpSender` was asked to send."""

    server: SmtpServer
    message: EmailMessage
    guarded: bool


class FakeSmtpSender:
    """The SMTP port without a network (the real adapter's tests: tests/integration/test_smtp_*.py).

    Records every email in `sent` and answers each with the next of `answers` (accepted once they run out).
    `check_host` applies `policy` to an IP literal host (no DNS: a name passes)."""

    def __init__(self, answers: list[SmtpResult] | None = None, policy: EgressPolicy | None = None) -> None:
        self.answers = list(answers or [])
        self.policy = policy or EgressPolicy()
        self.sent: list[SentEmail] = []

    async def check_host(self, host: str) -> None:
        judge_host(host, self.policy)

    async def send(
        self, server: SmtpServer, message: EmailMessage, *, timeout_seconds: float, guarded: bool = True
    ) -> SmtpResult:
        self.sent.append(SentEmail(server, message, guarded))
        return self.answers.pop(0) if self.answers else SmtpResult(250, 0.01, None)


class FakeOnCallDirectory:
    """`OnCallDirectory` over dicts: `people[(tenant, id)]` and `on_call[(tenant, schedule)]` (who, whatever `at`)."""

    def __init__(self) -> None:
        self.people: dict[tuple[str, str], Person] = {}
        self.on_call: dict[tuple[str, str], list[str]] = {}
        self.asked_at: list[datetime] = []

    async def get_person(self, tenant_id: str, person_id: str) -> Person | None:
        return self.people.get((tenant_id, person_id))

    async def people_on_call(self, tenant_id: str, schedule_id: str, at: datetime) -> list[Person]:
        self.asked_at.append(at)
        return [self.people[(tenant_id, person_id)] for person_id in self.on_call.get((tenant_id, schedule_id), [])]

    async def has_schedule(self, tenant_id: str, schedule_id: str) -> bool:
        return (tenant_id, schedule_id) in self.on_call


@dataclass(frozen=True)
class PersonNotification:
    """One `PersonNotifier.notify` call as the fake saw it."""

    tenant_id: str
    person_id: str
    contact_method_id: str
    message: PersonMessage
    dedup_key: str


class FakePersonNotifier:
    """`PersonNotifier` that records every call (`calls`; `notify_many` counts in `batches` and records each
    notice as a call) and, like the real one, persists a dedup key once."""

    def __init__(self) -> None:
        self.calls: list[PersonNotification] = []
        self.batches = 0
        self._ids: dict[tuple[str, str], str] = {}

    async def notify(
        self, tenant_id: str, person: Person, contact_method: ContactMethod, message: PersonMessage, *, dedup_key: str
    ) -> str:
        self.calls.append(PersonNotification(tenant_id, person.id, contact_method.id, message, dedup_key))
        return self._ids.setdefault((tenant_id, dedup_key), f"pd_{len(self._ids) + 1}")

    async def notify_many(self, notices: Sequence[PersonNotice]) -> list[str]:
        self.batches += 1
        return [
            await self.notify(
                notice.tenant_id, notice.person, notice.contact_method, notice.message, dedup_key=notice.dedup_key
            )
            for notice in notices
        ]

    @property
    def sent(self) -> list[PersonNotification]:
        """One notification per dedup key: what people actually receive."""
        firsts: dict[str, PersonNotification] = {}
        for call in self.calls:
            firsts.setdefault(call.dedup_key, call)
        return list(firsts.values())


def escalation_person(person_id: str, *, tenant_id: str = "acme", time_zone: str = "UTC") -> Person:
    """A person reached by email at once and by a chat webhook one minute later (`<id>-email`, `<id>-chat`)."""
    return Person(
        id=person_id,
        tenant_id=tenant_id,
        name=person_id,
        email=f"{person_id}@example.com",
        time_zone=time_zone,
        contact_methods=[
            ContactMethod(id=f"{person_id}-email", type="email", address=f"{person_id}@example.com"),
            ContactMethod(id=f"{person_id}-chat", type="chat_webhook", address="https://chat.example.com/hook"),
        ],
        notification_rules=[
            NotificationRule(after_minutes=0, contact_method_id=f"{person_id}-email"),
            NotificationRule(after_minutes=1, contact_method_id=f"{person_id}-chat"),
        ],
        created_at=NOW,
        updated_at=NOW,
    )
