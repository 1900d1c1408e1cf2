"""`FakeIdempotencyStore`: the idempotency port in a dict, for unit tests (its contract: tests/contract)."""

from __future__ import annotations

from datetime import datetime

import msgspec

from mintlog.errors import DatabaseUnavailable
from mintlog.ports.idempotency import IdempotencyRecord

__all__ = ["FakeIdempotencyStore"]


class FakeIdempotencyStore:
    """Records by (tenant, key digest). Set `unavailable` to make every call raise `DatabaseUnavailable`, as a
    database that is down would; `fail_complete` to make only `complete` fail."""

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
