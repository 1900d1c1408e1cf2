"""API keys and scopes: generation, checksums and hashing. Pure code, no I/O.

A key reads `mlk_<32 base62 characters><6 base62 checksum characters>`. The checksum (CRC-32 of the random
part) lets Mintlog refuse a mistyped or truncated key without touching the database, and lets secret
scanners recognize leaked keys. Only the SHA-256 of a key is stored, plus a display prefix (`mlk_` and the
first 8 random characters) that is safe to log and show.
"""

from __future__ import annotations

import hashlib
import secrets
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "DEFAULT_SCOPES",
    "KEY_PREFIX",
    "SCOPES",
    "GeneratedKey",
    "Scope",
    "display_prefix",
    "generate_api_key",
    "hash_api_key",
    "is_well_formed_key",
    "missing_scopes",
    "new_key_id",
]

Scope = Literal[
    "ingest:logs",
    "search:logs",
    "alerts:read",
    "alerts:write",
    "incidents:read",
    "incidents:write",
    "notifications:read",
    "notifications:write",
    "keys:write",
    "audit:read",
    "archive:read",
    "parsing:write",
    "uptime:read",
    "uptime:write",
    "oncall:read",
    "oncall:write",
    "admin",
]
SCOPES: tuple[Scope, ...] = (
    "ingest:logs",
    "search:logs",
    "alerts:read",
    "alerts:write",
    "incidents:read",
    "incidents:write",
    "notifications:read",
    "notifications:write",
    "keys:write",
    "audit:read",
    "archive:read",
    "parsing:write",
    "uptime:read",
    "uptime:write",
    "oncall:read",
    "oncall:write",
    "admin",
)

# What an operator's `POST /v1/admin/tenants/{id}/keys` grants when it names no scopes: everything the tenant
# can do with its own data, but never platform administration, which must always be asked for by name.
DEFAULT_SCOPES: tuple[Scope, ...] = tuple(scope for scope in SCOPES if scope != "admin")

KEY_PREFIX = "mlk_"
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_RANDOM_LENGTH = 32
_CHECKSUM_LENGTH = 6
_KEY_LENGTH = len(KEY_PREFIX) + _RANDOM_LENGTH + _CHECKSUM_LENGTH
_DISPLAY_LENGTH = len(KEY_PREFIX) + 8


@dataclass(frozen=True, slots=True)
class GeneratedKey:
    """A new key: `secret` is shown to the user once; only `key_hash` and `prefix` are stored."""

    secret: str
    key_hash: str
    prefix: str


def _base62(number: int, width: int) -> str:
    digits: list[str] = []
    for _ in range(width):
        number, remainder = divmod(number, 62)
        digits.append(_ALPHABET[remainder])
    return "".join(reversed(digits))


def _checksum(random_part: str) -> str:
    return _base62(zlib.crc32(random_part.encode()), _CHECKSUM_LENGTH)


def generate_api_key() -> GeneratedKey:
    """A fresh key with 190 bits of randomness."""
    random_part = "".join(secrets.choice(_ALPHABET) for _ in range(_RANDOM_LENGTH))
    secret = KEY_PREFIX + random_part + _checksum(random_part)
    return GeneratedKey(secret=secret, key_hash=hash_api_key(secret), prefix=display_prefix(secret))


def is_well_formed_key(secret: str) -> bool:
    """True when `secret` has the key format and a matching checksum (says nothing about validity)."""
    if len(secret) != _KEY_LENGTH or not secret.startswith(KEY_PREFIX):
        return False
    random_part = secret[len(KEY_PREFIX) : len(KEY_PREFIX) + _RANDOM_LENGTH]
    if any(char not in _ALPHABET for char in random_part):
        return False
    return secrets.compare_digest(secret[-_CHECKSUM_LENGTH:], _checksum(random_part))


def hash_api_key(secret: str) -> str:
    """The hex SHA-256 of a key: what the database and the cache store."""
    return hashlib.sha256(secret.encode()).hexdigest()


def display_prefix(secret: str) -> str:
    """The part of a key that is safe to log and show (never enough to use the key)."""
    return secret[:_DISPLAY_LENGTH]


def new_key_id() -> str:
    """A fresh, unguessable key id (`key_` and 16 hex digits): public, unlike the secret."""
    return f"key_{secrets.token_hex(8)}"


def missing_scopes(requested: Iterable[str], held: Iterable[str]) -> tuple[str, ...]:
    """The requested scopes that are not held, in the order of `SCOPES`: what a key may not grant."""
    lacking = set(requested) - set(held)
    return tuple(scope for scope in SCOPES if scope in lacking) + tuple(sorted(lacking - set(SCOPES)))
