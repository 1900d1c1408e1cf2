"""AWS Signature Version 4 for S3 requests (header-based, signed payload), as the S3 adapter needs it.

Reference: the AWS "Signature Version 4 signing process" and "Authenticating Requests (AWS Signature
Version 4)" for S3. S3 canonical URIs are encoded once (not twice, unlike other services).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

__all__ = ["EMPTY_SHA256", "encode_path", "quote", "sign_headers"]

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")


def quote(text: str, *, keep_slash: bool = False) -> str:
    """URI-encode `text` the way SigV4 requires: every byte but A-Z a-z 0-9 - _ . ~ as %XX (uppercase hex)."""
    out: list[str] = []
    for byte in text.encode():
        if byte in _UNRESERVED or (keep_slash and byte == ord("/")):
            out.append(chr(byte))
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


def encode_path(path: str) -> str:
    """The canonical (and sent) form of a path such as `/bucket/some key`: each segment encoded, `/` kept."""
    return quote(path, keep_slash=True)


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    """The derived key of one day, region and service."""
    key = _hmac(("AWS4" + secret_key).encode(), date)
    key = _hmac(key, region)
    key = _hmac(key, service)
    return _hmac(key, "aws4_request")


def canonical_query(query: Sequence[tuple[str, str]]) -> str:
    """`k=v&…` with keys and values encoded and sorted by key (then value)."""
    return "&".join(f"{k}={v}" for k, v in sorted((quote(k), quote(v)) for k, v in query))


def sign_headers(
    *,
    method: str,
    path: str,
    query: Sequence[tuple[str, str]],
    headers: Mapping[str, str],
    payload_sha256: str,
    access_key: str,
    secret_key: str,
    region: str,
    service: str = "s3",
    now: datetime | None = None,
) -> dict[str, str]:
    """The headers to send: `headers` plus `x-amz-date`, `x-amz-content-sha256` and `Authorization`.

    `path` is the already-encoded path (see `encode_path`); `headers` must include `host`. Every header
    given is signed.
    """
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    amz_date = moment.strftime("%Y%m%dT%H%M%SZ")
    date = amz_date[:8]
    all_headers = {name.lower(): " ".join(value.strip().split()) for name, value in headers.items()}
    all_headers["x-amz-date"] = amz_date
    all_headers["x-amz-content-sha256"] = payload_sha256
    names = sorted(all_headers)
    signed = ";".join(names)
    canonical_request = "\n".join(
        [
            method.upper(),
            path,
            canonical_query(query),
            "".join(f"{name}:{all_headers[name]}\n" for name in names),
            signed,
            payload_sha256,
        ]
    )
    scope = f"{date}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()])
    signature = hmac.new(
        signing_key(secret_key, date, region, service), string_to_sign.encode(), hashlib.sha256
    ).hexdigest()
    result = dict(headers)
    result["x-amz-date"] = amz_date
    result["x-amz-content-sha256"] = payload_sha256
    credential = f"{access_key}/{scope}"
    result["Authorization"] = f"{ALGORITHM} Credential={credential}, SignedHeaders={signed}, Signature={signature}"
    return result
