"""Whatever JSON an ingest body holds, what validation accepts can be put on the bus, and what it cannot carry is
refused per event (202 with the event's index and reason), never a 500.

The bus carries raw events as MessagePack, whose integers are 64 bits (-2**63 .. 2**64 - 1), while JSON's are
unbounded: an integer beyond that range must be refused wherever it sits in the event, as it is at the top of
`fields`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from mintlog.adapters.bus.memory import MemoryEventBus
from mintlog.adapters.ratelimit.memory import MemoryRateLimiter
from mintlog.domain.events import RawBatch
from mintlog.domain.streams import decode_raw_batch, encode_bus_message
from mintlog.domain.validation import validate_events
from mintlog.errors import UnprocessableEntity
from mintlog.metrics import Metrics
from mintlog.roles.ingest.decoders.native import IngestBody
from mintlog.roles.ingest.service import IngestService
from mintlog.settings import IngestSettings, RateLimitSettings
from tests.fakes import FakeIdempotencyStore

BEYOND_64_BITS = 18741065154739602647416832
SMALL_LIMITS = IngestSettings(
    max_message_bytes=64, max_fields_per_event=8, max_field_depth=4, max_key_length=24, max_value_bytes=256
)
_body_decoder = msgspec.json.Decoder(IngestBody)

# Strings with lone surrogates too (`\ud800` in JSON decodes to a str that is not valid UTF-8).
strings = st.text(st.characters(exclude_categories=()), max_size=12)
integers = st.one_of(
    st.integers(),
    st.integers(min_value=2**63 - 2, max_value=2**66),
    st.integers(min_value=-(2**65), max_value=-(2**63) + 2),
)
scalars = st.one_of(st.none(), st.booleans(), integers, st.floats(allow_nan=False, allow_infinity=False), strings)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(strings, children, max_size=4),
    max_leaves=24,
)
known_keys = st.sampled_from(["message", "msg", "level", "severity", "timestamp", "service", "host", "fields"])
events = st.one_of(
    st.dictionaries(known_keys | strings, json_values, max_size=6),
    st.fixed_dictionaries({"message": strings, "fields": st.dictionaries(strings, json_values, max_size=4)}),
    json_values,
)


def ingest_body(batch: list[Any]) -> bytes:
    """The JSON text a client would send; `json` writes integers of any size and escapes lone surrogates."""
    return json.dumps({"events": batch}).encode()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(events, min_size=1, max_size=4), small_limits=st.booleans())
@example(batch=[{"message": "x", "fields": {"a": [{"n": BEYOND_64_BITS}]}}], small_limits=False)
@example(batch=[{"message": "x", "extra": [1, [{"n": BEYOND_64_BITS}]]}], small_limits=False)
def test_every_accepted_event_goes_on_the_bus_unchanged(batch: list[Any], small_limits: bool) -> None:
    try:
        decoded = _body_decoder.decode(ingest_body(batch)).events
    except msgspec.DecodeError:  # e.g. a high surrogate escape without its low half: a 400 before validation
        assume(False)
        return
    accepted = validate_events(decoded, SMALL_LIMITS if small_limits else IngestSettings()).events

    payload = encode_bus_message(
        RawBatch(
            batch_id="b", tenant_id="acme", received_at=datetime(2026, 1, 1, tzinfo=UTC), source="http", events=accepted
        )
    )

    assert decode_raw_batch(payload).events == accepted


async def started_service() -> IngestService:
    bus = MemoryEventBus()
    await bus.start()
    return IngestService(
        bus=bus,
        idempotency=FakeIdempotencyStore(),
        limits=IngestSettings(),
        limiter=MemoryRateLimiter(),
        rate_limits=RateLimitSettings(enabled=False),
        metrics=Metrics(),
    )


WIDE_INTEGER_EVENTS = [
    pytest.param({"fields": {"a": [{"n": BEYOND_64_BITS}]}}, "field `a` holds", id="in an object in an array"),
    pytest.param({"extra": [1, [{"n": BEYOND_64_BITS}]]}, "field `extra` holds", id="top-level key, deeper"),
    pytest.param({"fields": {"a": [[-(2**63) - 1]]}}, "field `a` holds", id="in an array in an array"),
    pytest.param({"fields": {"a": [{"b": {"c": 2**64}}]}}, "field `a` holds", id="two objects down"),
    pytest.param({"fields": {"n": 2**70}}, "field `n` is", id="directly in fields (as before)"),
]


@pytest.mark.parametrize(("event", "reason"), WIDE_INTEGER_EVENTS)
async def test_an_integer_beyond_64_bits_anywhere_refuses_its_event_alone(event: dict[str, Any], reason: str) -> None:
    ingest = await started_service()
    body = ingest_body([{"message": "good"}, {"message": "x", **event}])

    answer, _replayed = await ingest.ingest("acme", body)

    result = json.loads(answer)
    assert (result["accepted"], result["rejected"]) == (1, 1)
    assert result["errors"] == [{"index": 1, "reason": f"{reason} an integer outside the 64-bit range"}]


async def test_a_batch_of_only_such_events_is_422_naming_each() -> None:
    ingest = await started_service()

    with pytest.raises(UnprocessableEntity) as refused:
        await ingest.ingest("acme", ingest_body([{"message": "x", "fields": {"a": [{"n": BEYOND_64_BITS}]}}]))

    assert refused.value.code == "all_events_rejected"
    assert refused.value.extra["errors"] == [
        {"index": 0, "reason": "field `a` holds an integer outside the 64-bit range"}
    ]
