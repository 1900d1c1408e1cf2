"""Fixtures of the contract suites: every adapter of a port, opened the same way.

Each adapter contributes a `StoreFactory`; the suite runs once per factory. A factory opens a store at a
`location` (a fresh `tmp_path` per test); opening it again at the same location must reach the same data, so
a factory for a server-backed store derives its names (e.g. an index prefix) from `location`.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from mintlog.ports.logstore import LogStore
from tests.services import delete_opensearch_indices, opensearch_url_or_skip

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class StoreFactory:
    """Opens one `LogStore` adapter (unstarted) at `location`.

    With `tight_limits`, the adapter runs with the smallest resource limits it supports (one open writer,
    one open reader, ...), so the suite can check that nothing is lost when resources are recycled.
    `cleanup` (server-backed stores) deletes what was stored for `location` once the test is over.
    """

    name: str
    open: Callable[[Path, bool], LogStore]
    cleanup: Callable[[Path], None] | None = None


def _open_tantivy(location: Path, tight_limits: bool) -> LogStore:
    from mintlog.adapters.logstore.tantivy import TantivyLogStore

    if tight_limits:
        return TantivyLogStore(location / "index", writer_heap_bytes=16 * MiB, max_open_writers=1, max_open_readers=1)
    return TantivyLogStore(location / "index", writer_heap_bytes=16 * MiB)


def _opensearch_prefix(location: Path) -> str:
    return "t" + hashlib.sha256(str(location).encode()).hexdigest()[:16]


def _open_opensearch(location: Path, tight_limits: bool) -> LogStore:
    from mintlog.adapters.logstore.opensearch import BulkPolicy, ClusterOptions, OpenSearchLogStore

    # Tight: one event per bulk request.
    bulk = BulkPolicy(max_bytes=1) if tight_limits else None
    return OpenSearchLogStore(
        ClusterOptions(urls=[opensearch_url_or_skip()]), index_prefix=_opensearch_prefix(location), bulk=bulk
    )


def _clean_opensearch(location: Path) -> None:
    delete_opensearch_indices(opensearch_url_or_skip(), _opensearch_prefix(location))


STORE_FACTORIES = [
    StoreFactory("tantivy", _open_tantivy),
    StoreFactory("opensearch", _open_opensearch, _clean_opensearch),
]

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
    if opened and store_factory.cleanup is not None:
        store_factory.cleanup(tmp_path)


@pytest.fixture
async def store(open_store: OpenStore) -> LogStore:
    """A started store with nothing in it."""
    return await open_store()
