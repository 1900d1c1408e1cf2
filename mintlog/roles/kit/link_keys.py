"""`LinkKeys`: the key that signs and checks one-click links, shared by the notify role (signing) and the API
role (checking): `MINTLOG_ESCALATION__LINK_SECRET` when set, else a random one stored once in the database."""

from __future__ import annotations

import secrets

from mintlog.ports.escalation import EscalationStore
from mintlog.settings import EscalationSettings

__all__ = ["LinkKeys"]


class LinkKeys:
    """The link key of this process, read once (a configured secret wins over the stored one)."""

    def __init__(self, settings: EscalationSettings, store: EscalationStore) -> None:
        self._settings = settings
        self._store = store
        self._key: bytes | None = None

    async def key(self) -> bytes:
        """The key (raises `DatabaseUnavailable` when it must be read and the database is down)."""
        if self._key is None:
            configured = self._settings.link_secret
            secret = configured or await self._store.link_secret(secrets.token_urlsafe(32))
            self._key = secret.encode()
        return self._key
