"""`Periodic`: the loop that runs a role's sweeps, outboxes and flushes, and how it stops."""

from __future__ import annotations

import asyncio

from mintlog.roles.kit.base import Periodic


async def test_stop_lets_an_iteration_in_progress_finish_then_runs_once_more() -> None:
    """An iteration may hold a lease or a database transaction: stopping must not cut it in the middle."""
    started = asyncio.Event()
    release = asyncio.Event()
    finished: list[str] = []

    async def action() -> None:
        if not finished and not started.is_set():
            started.set()
            await release.wait()
            finished.append("in progress")
        else:
            finished.append("final")

    periodic = Periodic("test", 0.01, action)
    await periodic.start()
    await asyncio.wait_for(started.wait(), 5)
    stopping = asyncio.create_task(periodic.stop(grace_seconds=5))
    await asyncio.sleep(0.05)
    assert not stopping.done()  # waiting for the iteration, not cancelling it
    release.set()
    await asyncio.wait_for(stopping, 5)
    assert finished == ["in progress", "final"]


async def test_an_iteration_stuck_past_the_grace_is_cancelled_and_the_stop_returns() -> None:
    calls: list[str] = []
    stuck = asyncio.Event()

    async def action() -> None:
        calls.append("call")
        if len(calls) == 1:
            stuck.set()
            await asyncio.Event().wait()  # never returns unless cancelled

    periodic = Periodic("stuck", 0.01, action)
    await periodic.start()
    await asyncio.wait_for(stuck.wait(), 5)
    await asyncio.wait_for(periodic.stop(grace_seconds=0.1), 5)
    assert calls == ["call", "call"]  # the stuck one (cancelled), then the final run


async def test_a_stopped_loop_runs_no_more_iterations_and_can_start_again() -> None:
    calls: list[int] = []

    async def action() -> None:
        calls.append(1)

    periodic = Periodic("again", 0.01, action)
    await periodic.start()
    await asyncio.sleep(0.1)
    await periodic.stop()
    after_stop = len(calls)
    await asyncio.sleep(0.1)
    assert len(calls) == after_stop
    await periodic.start()
    await asyncio.sleep(0.1)
    await periodic.stop()
    assert len(calls) > after_stop
