"""The ingest seam: every protocol reaches the bus through `IngestService.accept` (directly, or via `ingest` with its
decoder) under the same rules as the native body, and its events carry the protocol's `source`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import msgspec
import pytest

from mintlog.adapters.bus.memory import MemoryEventBus
from mintlog.adapters.ratelimit.memory import MemoryRateLimiter
from mintlog.domain.events import RawBatch
from mintlog.domain.streams import decode_raw_batch
from mintlog.errors import BadRequest, PayloadTooLarge, UnprocessableEntity, UnsupportedMediaType
from mintlog.metrics import Metrics
from mintlog.roles.ingest.decoders import IngestDecoder
from mintlog.roles.ingest.service import IdempotentRequest, IngestService
from mintlog.settings import IngestSettings, RateLimitSettings
from tests.fakes import FakeIdempotencyStore


class NdjsonDecoder:
    """A protocol other than the native body: one JSON object per line."""

    source = "ndjson-test"

    def check_content_type(self, content_type: str | None) -> None:
        if content_type not in (None, "application/x-ndjson"):
            raise UnsupportedMediaType("send application/x-ndjson", code="unsupported_content_type")

    def decode(self, body: bytes, headers: Mapping[str, str]) -> list[Any]:
        try:
            return [msgspec.json.decode(line) for line in body.splitlines() if line.strip()]
        except msgspec.DecodeError as exc:
            raise BadRequest(f"a line is not JSON: {exc}", code="malformed_ndjson") from None


DECODER: IngestDecoder = NdjsonDecoder()


async def started(*, max_events_per_batch: int = 1000) -> tuple[IngestService, MemoryEventBus, FakeIdempotencyStore]:
    bus = MemoryEventBus()
    await bus.start()
    store = FakeIdempotencyStore()
    service = IngestService(
        bus=bus,
        idempotency=store,
        limits=IngestSettings(max_events_per_batch=max_events_per_batch),
        limiter=MemoryRateLimiter(),
        rate_limits=RateLimitSettings(enabled=False),
        metrics=Metrics(),
    )
    return service, bus, store


def raw_batches(bus: MemoryEventBus) -> list[RawBatch]:
    return [decode_raw_batch(message.data) for message in bus.broker.stream("LOGS_RAW").messages.values()]


async def test_accept_publishes_the_valid_events_with_the_protocol_s_source_and_names_the_others() -> None:
    service, bus, _ = await started()

    answer, replayed = await service.accept(
        "acme", [{"message": "one"}, 7, {"message": "two"}], source="syslog", idempotency=None
    )

    result = json.loads(answer)
    assert not replayed
    assert (result["accepted"], result["rejected"]) == (2, 1)
    assert [error["index"] for error in result["errors"]] == [1]
    [batch] = raw_batches(bus)
    assert (batch.tenant_id, batch.source, batch.batch_id) == ("acme", "syslog", result["batch_id"])
    assert [event["message"] for event in batch.events] == ["one", "two"]


async def test_another_protocol_s_body_is_decoded_by_its_decoder_and_held_to_the_same_limits() -> None:
    service, bus, _ = await started(max_events_per_batch=2)

    answer, _ = await service.ingest("acme", b'{"message": "a"}\n{"message": "b"}\n', decoder=DECODER)
    with pytest.raises(PayloadTooLarge) as too_many:
        await service.ingest("acme", b'{"message": "a"}\n{"message": "b"}\n{"message": "c"}\n', decoder=DECODER)
    with pytest.raises(UnprocessableEntity) as all_bad:
        await service.ingest("acme", b'{"message": 5}\n', decoder=DECODER)
    with pytest.raises(BadRequest) as undecodable:
        await service.ingest("acme", b"{oops\n", decoder=DECODER)

    assert json.loads(answer)["accepted"] == 2
    assert (too_many.value.code, all_bad.value.code, undecodable.value.code) == (
        "too_many_events",
        "all_events_rejected",
        "malformed_ndjson",
    )
    assert [(batch.source, len(batch.events)) for batch in raw_batches(bus)] == [("ndjson-test", 2)]


async def test_a_body_that_cannot_be_decoded_under_a_used_key_is_a_reused_key() -> None:
    service, bus, _ = await started()
    await service.ingest("acme", b'{"events": [{"message": "paid"}]}', idempotency_key="k-1")

    with pytest.raises(UnprocessableEntity) as reused:
        await service.ingest("acme", b'{"events": [', idempotency_key="k-1")

    assert reused.value.code == "idempotency_key_reused"
    assert len(raw_batches(bus)) == 1


async def test_a_body_that_cannot_be_decoded_under_a_new_key_records_nothing() -> None:
    service, bus, store = await started()

    with pytest.raises(BadRequest) as malformed:
        await service.ingest("acme", b'{"events": [', idempotency_key="k-2")
    answer, replayed = await service.ingest("acme", b'{"events": [{"message": "fixed"}]}', idempotency_key="k-2")

    assert malformed.value.code == "malformed_json"
    assert not replayed
    assert json.loads(answer)["accepted"] == 1
    assert len(store.records) == len(raw_batches(bus)) == 1


async def test_the_key_is_checked_before_the_body() -> None:
    service, _, _ = await started()

    with pytest.raises(BadRequest) as refused:
        await service.ingest("acme", b"{oops", idempotency_key="k" * 201)

    assert refused.value.code == "bad_idempotency_key"


def test_an_idempotent_request_is_keyed_on_the_key_and_the_whole_body() -> None:
    first = IdempotentRequest.of("k-1", b"body")
    assert first == IdempotentRequest.of("k-1", b"body")
    assert first != IdempotentRequest.of("k-1", b"body ")
    assert first != IdempotentRequest.of("k-2", b"body")
    assert IdempotentRequest.of(None, b"body") is None
