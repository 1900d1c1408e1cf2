"""`TenantParsingCache`: each tenant's text parsing (time zone, compiled extraction rules) for the normalizer,
read from the metadata database and kept for `MINTLOG_PARSING__TENANT_CONFIG_TTL_SECONDS`.

Guarantees:
- a change to a tenant's time zone or rules reaches every normalizer within the TTL (10 s by default): an
  entry older than that is read again before it is used;
- one read per tenant at a time, however many batches of that tenant wait for it;
- while the database cannot be reached, an entry already read is used as it is, however old; a tenant never
  read raises `DatabaseUnavailable` (the normalizer naks its batch, which is retried: events are never
  parsed with a guessed zone or without the tenant's rules);
- a rule that no longer compiles (it did when it was stored) is left out and logged; a time zone unknown to
  this process's zone database is UTC, logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, tzinfo

from mintlog.domain.tenants import zone_named
from mintlog.errors import DependencyUnavailable
from mintlog.parsing.rules import CompiledRule, RuleError, compile_rule
from mintlog.parsing.text import TextParsing
from mintlog.ports.metadata import MetadataStore
from mintlog.ports.parsing import ExtractionRuleStore
from mintlog.settings import ParsingSettings

__all__ = ["TenantParsingCache", "zone_of"]

logger = logging.getLogger(__name__)

_MAX_TENANTS = 10_000


def zone_of(name: str) -> tzinfo:
    """The zone named `name` (IANA); UTC for `UTC` and for a name this process does not know (`zone_named`)."""
    return zone_named(name)


class TenantParsingCache:
    """The `TextParsing` of each tenant, cached with a bounded staleness (see the module docstring)."""

    def __init__(
        self,
        metadata: MetadataStore,
        rules: ExtractionRuleStore,
        settings: ParsingSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._metadata = metadata
        self._rules = rules
        self._settings = settings
        self._clock = clock
        self._entries: dict[str, tuple[TextParsing, float]] = {}
        self._reads: dict[str, asyncio.Future[TextParsing]] = {}

    async def get(self, tenant_id: str) -> TextParsing:
        """The tenant's text parsing; raises `DatabaseUnavailable` only for a tenant never read before."""
        entry = self._entries.get(tenant_id)
        if entry is not None and self._clock() < entry[1]:
            return entry[0]
        pending = self._reads.get(tenant_id)
        if pending is None:
            pending = asyncio.ensure_future(self._refresh(tenant_id, entry))
            self._reads[tenant_id] = pending
            pending.add_done_callback(lambda _: self._reads.pop(tenant_id, None))
        return await asyncio.shield(pending)

    async def _refresh(self, tenant_id: str, entry: tuple[TextParsing, float] | None) -> TextParsing:
        try:
            parsing = await self._read(tenant_id)
        except DependencyUnavailable as exc:
            if entry is None:
                raise
            logger.warning("cannot refresh the text parsing of tenant %s (%s); using the previous one", tenant_id, exc)
            parsing = entry[0]
        if len(self._entries) >= _MAX_TENANTS and tenant_id not in self._entries:
            self._entries.clear()
        self._entries[tenant_id] = (parsing, self._clock() + self._settings.tenant_config_ttl_seconds)
        return parsing

    async def _read(self, tenant_id: str) -> TextParsing:
        tenant = await self._metadata.get_tenant(tenant_id)
        stored = await self._rules.list_rules(tenant_id)
        compiled: list[CompiledRule] = []
        for rule in stored:
            if not rule.spec.enabled:
                continue
            try:
                compiled.append(compile_rule(rule.spec, probe=False))
            except RuleError as exc:
                logger.warning("extraction rule %s of tenant %s is left out: %s", rule.id, tenant_id, exc.detail)
        return TextParsing(
            zone=UTC if tenant is None else zone_of(tenant.time_zone),
            rules=tuple(compiled),
            detect=self._settings.detect,
            rule_timeout_seconds=self._settings.rule_timeout_ms / 1000,
        )
