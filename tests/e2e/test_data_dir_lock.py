"""One `mintlog run` per data directory: a second one exits 1 naming the directory and the holder's pid, and
leaves the first (and its nats-server) alone; the lock dies with its holder, `kill -9` included."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest

from tests.e2e.harness import MintlogProcess, nats_server_pids

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(240)  # two all-in-one starts and a refused one
def test_a_second_run_on_a_data_dir_in_use_exits_1_and_the_first_keeps_serving(
    mintlog_factory: Callable[..., MintlogProcess],
) -> None:
    first = mintlog_factory()
    first.start()
    assert first.process is not None
    # The documented flow: admin bootstrap (and migrations) against the SQLite of a running server.
    key = first.bootstrap("locked")
    assert first.cli("db", "upgrade").returncode == 0
    assert first.ingest(key, {"events": [{"message": "before the second run", "service": "lock"}]}).status_code == 202
    nats_before = nats_server_pids(first.data_dir / "nats")
    assert len(nats_before) == 1

    second = MintlogProcess(data_dir=first.data_dir)  # same data dir, its own ports
    refused = subprocess.run(
        [sys.executable, "-m", "mintlog", "run"],
        env=second.env(),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=first.data_dir.parent,
    )
    assert refused.returncode == 1, refused.stderr
    assert f"data directory {first.data_dir.resolve()} is in use" in refused.stderr
    assert f"(pid {first.process.pid})" in refused.stderr

    # The first is untouched: same nats-server, ingest and search (its pipeline children share its lock).
    assert nats_server_pids(first.data_dir / "nats") == nats_before
    assert first.ingest(key, {"events": [{"message": "after the second run", "service": "lock"}]}).status_code == 202
    assert first.wait_for_total(key, {"service": "lock"}, 2, timeout_seconds=20)["total"] == 2
    assert first.process.poll() is None

    # kill -9 releases the lock: the next run starts on the same directory at once (its nats-server may still
    # be shutting down: with the lock free, it is known to be stale) and finds the earlier data.
    first.kill9()
    after = mintlog_factory(data_dir=first.data_dir)
    after.start()
    answer = after.wait_for_total(key, {"service": "lock"}, 2, timeout_seconds=30)
    assert sorted(event["message"] for event in answer["events"]) == ["after the second run", "before the second run"]
    assert after.stop() == 0
