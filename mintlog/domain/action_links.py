"""One-click acknowledge/resolve links: signed, expiring tokens. Pure code, no I/O.

A token is `<base64url(JSON claims)>.<base64url(HMAC-SHA256(secret, that first part))>`. The claims name the
tenant, the incident, who the link was sent to (`person:<id>` or `channel:<id>`), the action, when it expires
and a random nonce. Nothing is stored when a link is made; using one stores the SHA-256 of its token once (the
store refuses a second use), so each link works once per action.

Why HMAC and not stored random tokens: links are made by the notify role for every notification (many), and
checked by the API role (rarely); signing needs no write per notification and no clean-up, and a link can be
checked before any database read. The secret is `MINTLOG_ESCALATION__LINK_SECRET`, or a random one Mintlog
generates and keeps in the metadata database so that every instance shares it.

Guarantees: `read_token` answers `None` for anything not signed with the secret (tampered, truncated, another
deployment's); it never trusts the claims before the signature is checked (in constant time).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import Literal

import msgspec

__all__ = ["LinkAction", "LinkClaims", "make_token", "read_token", "token_digest"]

LinkAction = Literal["acknowledge", "resolve"]

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


class LinkClaims(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a link says: `subject` is `person:<id>` or `channel:<id>`; `expires` is Unix seconds."""

    tenant_id: str
    incident_id: str
    subject: str
    action: LinkAction
    expires: int
    nonce: str

    def expired(self, now: datetime) -> bool:
        """True once `now` reached the expiry."""
        return now.timestamp() >= self.expires


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, body: str) -> bytes:
    return hmac.new(secret, body.encode(), hashlib.sha256).digest()


def make_token(
    secret: bytes,
    *,
    tenant_id: str,
    incident_id: str,
    subject: str,
    action: LinkAction,
    now: datetime,
    ttl: timedelta,
) -> str:
    """A new signed token for one action on one incident by `subject`, expiring `ttl` after `now`."""
    claims = LinkClaims(
        tenant_id=tenant_id,
        incident_id=incident_id,
        subject=subject,
        action=action,
        expires=int((now + ttl).timestamp()),
        nonce=secrets.token_hex(8),
    )
    body = _b64(_encoder.encode(claims))
    return f"{body}.{_b64(_mac(secret, body))}"


def read_token(secret: bytes, token: str) -> LinkClaims | None:
    """The claims of a token signed with `secret`; None when it is malformed or its signature does not match."""
    body, dot, signature = token.partition(".")
    if not dot or not body or not signature or len(token) > 2000:
        return None
    try:
        given = _unb64(signature)
        if not hmac.compare_digest(given, _mac(secret, body)):
            return None
        return msgspec.convert(_decoder.decode(_unb64(body)), LinkClaims)
    except (binascii.Error, ValueError, msgspec.DecodeError, msgspec.ValidationError):
        return None


def token_digest(token: str) -> str:
    """What is stored of a used token: its SHA-256 in hex (the token itself is never stored)."""
    return hashlib.sha256(token.encode()).hexdigest()
