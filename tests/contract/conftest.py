"""Fixtures of the contract suites: every adapter of a port, opened the same way.

Each adapter contributes a `StoreFactory`; the suite runs once per factory. A factory opens a store at a
`location` (a fresh `tmp_path` per test); opening it again at the same location must reach the same data, so
a factory for a server-backed store derives its names (e.g. an index prefix) from `location`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from mintlog.ports.logstore import LogStore

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class StoreFactory:
    """Opens one `LogStore` adapter (unstarted) at `location`.

    With `tight_limits`, the adapter runs with the smallest resource limits it supports (one open writer,
    one open reader, ...), so the suite can check that nothing is lost when resources are recycled.
    """

    name: str
    open: Callable[[Path, bool], LogStore]


def _open_tantivy(location: Path, tight_limits: bool) -> LogStore:
    from mintlog.adapters.logstore.tantivy import TantivyLogStore

    if tight_limits:
        return TantivyLogStore(location / "index", writer_heap_bytes=16 * MiB, max_open_writers=1, max_open_readers=1)
    return TantivyLogStore(location / "index", writer_heap_bytes=16 * MiB)


STORE_FACTORIES = [StoreFactory("tantivy", _open_tantivy)]

OpenStore = Callable[..., Awaitable[LogStore]]


@pytest.fixture(params=STORE_FACTORIES, ids=lambda factory: factory.name)
def store_factory(request: pytest.FixtureRequest) -> StoreFactory:
    factory: StoreFactory = request.param
    return factory


@pytest.fixture
async def open_store(store_factory: StoreFactory, tmp_path: Path) -> AsyncIterator[OpenStore]:
    """Opens and starts a store at this test's location; every store opened is closed at teardown."""
    opened: list[LogStore] = []

    async def open_started(*, tight_limits: bool = False) -> LogStore:
        store = store_factory.open(tmp_path, tight_limits)
        await store.start()
        opened.append(store)
        return store

    yield open_started
    for store in reversed(opened):
        await store.close()


@pytest.fixture
async def store(open_store: OpenStore) -> LogStore:
    """A started store with nothing in it."""
    return await open_store()
