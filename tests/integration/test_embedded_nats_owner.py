"""The embedded nats-server has one owner per store: a second owner is refused and kills nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mintlog.adapters.bus.embedded_nats import EmbeddedNatsServer
from mintlog.errors import BusUnavailable

pytestmark = pytest.mark.integration

MAX_PAYLOAD = 1024 * 1024


async def test_a_second_owner_of_a_store_is_refused_and_the_running_server_is_left_alone(tmp_path: Path) -> None:
    async with EmbeddedNatsServer(tmp_path / "nats", max_payload_bytes=MAX_PAYLOAD) as first:
        running_pid = first.pid
        second = EmbeddedNatsServer(tmp_path / "nats", max_payload_bytes=MAX_PAYLOAD)
        with pytest.raises(BusUnavailable) as refused:
            await second.start()
        assert str(refused.value).startswith(
            f"the embedded nats-server store {(tmp_path / 'nats').resolve()} is in use by another Mintlog process "
            f"(pid {os.getpid()})"
        )
        assert second.pid is None
        assert first.pid == running_pid
        assert first.pid_file.read_text().strip() == str(running_pid)  # the refused start did not touch it
        await second.stop()  # stopping an owner that never started touches nothing of the first's
        assert first.pid == running_pid
        assert first.pid_file.read_text().strip() == str(running_pid)

    # Stopped, the store is free for the next owner.
    async with EmbeddedNatsServer(tmp_path / "nats", max_payload_bytes=MAX_PAYLOAD) as third:
        assert third.pid is not None
