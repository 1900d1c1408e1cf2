"""The composition root builds one outbound HTTP client per process, under `MINTLOG_EGRESS_ALLOW`, and the
runtime closes it; tests hand it a fake instead."""

from __future__ import annotations

from pathlib import Path

import pytest

from mintlog.adapters.bus.memory import MemoryEventBus
from mintlog.domain.egress import EgressRefused
from mintlog.launch.bootstrap import bootstrap
from mintlog.settings import load_settings
from tests.fakes import FakeOutboundHttp


async def test_the_runtimes_client_follows_the_egress_allow_list(tmp_path: Path) -> None:
    refusing = bootstrap(load_settings({"MINTLOG_DATA_DIR": str(tmp_path)}, env_file=None), bus=MemoryEventBus())
    allowing = bootstrap(
        load_settings({"MINTLOG_DATA_DIR": str(tmp_path), "MINTLOG_EGRESS_ALLOW": "127.0.0.0/8"}, env_file=None),
        bus=MemoryEventBus(),
    )
    try:
        with pytest.raises(EgressRefused, match="loopback"):
            await refusing.outbound.check_target("http://127.0.0.1:9000/hook")
        await allowing.outbound.check_target("http://127.0.0.1:9000/hook")
        with pytest.raises(EgressRefused, match="private"):
            await allowing.outbound.check_target("http://10.0.0.7/hook")
    finally:
        await refusing.close()
        await allowing.close()


async def test_a_given_client_is_the_one_every_role_gets_and_the_runtime_closes_it(tmp_path: Path) -> None:
    outbound = FakeOutboundHttp()
    runtime = bootstrap(
        load_settings({"MINTLOG_DATA_DIR": str(tmp_path)}, env_file=None), bus=MemoryEventBus(), outbound=outbound
    )
    assert runtime.outbound is outbound
    await runtime.close()
    assert outbound.closed == 1
