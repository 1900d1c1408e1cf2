"""`Idempotency-Key` on `POST :8080/v1/ingest/logs` across restarts of a real `mintlog run` (embedded NATS,
in-process cache, SQLite): a retried batch is stored exactly once, also after a `503` that hid a stored
publish, and a key reused with another body is refused."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import pytest

from tests.e2e.harness import MintlogProcess, nats_server_pids

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def restart(mintlog: MintlogProcess, how: str) -> None:
    if how == "sigterm":
        assert mintlog.stop() == 0
    else:
        mintlog.kill9()
        deadline = time.monotonic() + 10  # the nats-server child follows its parent
        while nats_server_pids(mintlog.data_dir / "nats") and time.monotonic() < deadline:
            time.sleep(0.1)
    mintlog.start()


def settled_total(mintlog: MintlogProcess, key: str, service: str, expected: int) -> int:
    """The search total of `service` once `expected` events are searchable and a redelivery had time to land."""
    mintlog.wait_for_total(key, {"service": service}, expected, timeout_seconds=30)
    time.sleep(2)
    return int(mintlog.search(key, {"service": service}).json()["total"])


@pytest.mark.parametrize("how", ["sigterm", "kill9"])
def test_a_retry_after_a_restart_is_stored_once_and_a_reused_key_is_refused(
    mintlog_factory: Callable[..., MintlogProcess], how: str
) -> None:
    mintlog = mintlog_factory()
    mintlog.start()
    key = mintlog.bootstrap("demo")
    batch = {"events": [{"message": "charged once", "service": "idem"}, {"message": "shipped", "service": "idem"}]}
    first = mintlog.ingest(key, batch, **{"Idempotency-Key": "order-42"})
    assert first.status_code == 202, first.text
    assert "idempotent-replayed" not in first.headers
    assert settled_total(mintlog, key, "idem", 2) == 2

    restart(mintlog, how)

    other = mintlog.ingest(
        key, {"events": [{"message": "another", "service": "idem"}]}, **{"Idempotency-Key": "order-42"}
    )
    assert other.status_code == 422, other.text
    assert other.headers["content-type"].startswith("application/problem+json")
    assert other.json()["code"] == "idempotency_key_reused"

    retry = mintlog.ingest(key, batch, **{"Idempotency-Key": "order-42"})
    assert retry.status_code == 202, retry.text
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json() == first.json()
    assert settled_total(mintlog, key, "idem", 2) == 2
    assert mintlog.stop() == 0


def test_a_503_may_hide_a_stored_batch_and_a_retry_with_the_key_stores_it_once(
    mintlog_factory: Callable[..., MintlogProcess],
) -> None:
    mintlog = mintlog_factory(MINTLOG_NATS__PUBLISH_TIMEOUT_SECONDS="1")
    mintlog.start()
    key = mintlog.bootstrap("demo")
    assert mintlog.ingest(key, {"events": [{"message": "warm up", "service": "warm"}]}).status_code == 202
    (nats_pid,) = nats_server_pids(mintlog.data_dir / "nats")
    batch = {"events": [{"message": "paid", "service": "pubacks"}]}

    # The publish reaches the frozen server's socket; its PubAck cannot come back in time.
    os.kill(nats_pid, signal.SIGSTOP)
    try:
        unavailable = mintlog.ingest(key, batch, **{"Idempotency-Key": "invoice-7"})
    finally:
        os.kill(nats_pid, signal.SIGCONT)
    assert unavailable.status_code == 503, unavailable.text
    assert unavailable.json()["code"] == "service_unavailable"
    # Answered 503, yet stored once the bus resumed: "may or may not have been stored".
    assert settled_total(mintlog, key, "pubacks", 1) == 1

    # A graceful restart also empties the bus's duplicate window of the consumed message.
    restart(mintlog, "sigterm")
    retry = mintlog.ingest(key, batch, **{"Idempotency-Key": "invoice-7"})
    assert retry.status_code == 202, retry.text
    assert retry.json()["accepted"] == 1
    assert settled_total(mintlog, key, "pubacks", 1) == 1
    replay = mintlog.ingest(key, batch, **{"Idempotency-Key": "invoice-7"})
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == retry.json()
    assert mintlog.stop() == 0
