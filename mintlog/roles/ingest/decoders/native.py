"""The native body: `POST /v1/ingest/logs` with `{"events": [...]}` (JSON, UTF-8), source `http`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from mintlog.errors import BadRequest, UnsupportedMediaType

__all__ = ["NATIVE", "IngestBody", "NativeDecoder", "check_content_type"]

_JSON_TYPES = ("application/json", "text/json")
# What clients send when not told otherwise: curl -d (form-urlencoded), plain-text and binary defaults. The
# body is read as JSON anyway, as every API endpoint reads its body.
_DEFAULT_TYPES = ("application/x-www-form-urlencoded", "text/plain", "application/octet-stream")


class IngestBody(msgspec.Struct, forbid_unknown_fields=True):
    """`{"events": [...]}`."""

    events: list[Any]


_body_decoder = msgspec.json.Decoder(IngestBody)


def check_content_type(content_type: str | None) -> None:
    """Accept a body sent with no type, a JSON type (`application/json`, `text/json`, `*/*+json`) or a client's
    default type (`application/x-www-form-urlencoded` as `curl -d` sends, `text/plain`,
    `application/octet-stream`): the body is read as JSON whatever it says. A type that names another format
    (`multipart/form-data`, `application/x-ndjson`, `application/x-protobuf`, ...) is a 415
    `unsupported_content_type` whose detail names the header to send."""
    if not content_type:
        return
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type in _JSON_TYPES or media_type.endswith("+json") or media_type in _DEFAULT_TYPES:
        return
    raise UnsupportedMediaType(
        f'Content-Type {media_type!r} is not accepted: the body must be JSON ({{"events": [...]}}); send the header '
        "`Content-Type: application/json`, or no Content-Type",
        code="unsupported_content_type",
    )


class NativeDecoder:
    """`{"events": [...]}`: the events are the members of `events`, as sent.

    400 `empty_body` for a blank body, `malformed_json` for invalid JSON or UTF-8 (lone surrogates included),
    `wrong_shape` for anything but an object with exactly the member `events` holding an array. JSON nested
    too deeply to be read raises `RecursionError` (answered 400 `too_deep` by `mintlog.http.problems`).
    """

    source = "http"

    def check_content_type(self, content_type: str | None) -> None:
        """See the module function `check_content_type`."""
        check_content_type(content_type)

    def decode(self, body: bytes, headers: Mapping[str, str]) -> list[Any]:
        """The members of `events`, decoded once by msgspec (no copy, no per-event work)."""
        if not body.strip():
            raise BadRequest('body is empty; send {"events": [...]}', code="empty_body")
        try:
            return _body_decoder.decode(body).events
        except msgspec.ValidationError as exc:
            raise BadRequest(
                f'body has the wrong shape: {exc}; expected {{"events": [...]}}', code="wrong_shape"
            ) from None
        except msgspec.DecodeError as exc:
            raise BadRequest(f"body is not valid JSON: {exc}", code="malformed_json") from None
        except UnicodeDecodeError as exc:
            raise BadRequest(
                f"body is not valid UTF-8: {exc.reason} at byte {exc.start}", code="malformed_json"
            ) from None


NATIVE = NativeDecoder()
"""The one native decoder (stateless)."""
