"""The BlobStore contract, run against every adapter: the filesystem and S3 on the real SeaweedFS service.

Each test gets a fresh store: a new directory, or a new bucket that the store creates at start and the
`s3_bucket` fixture deletes afterwards.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from mintlog.adapters.blob.filesystem import FilesystemBlobStore
from mintlog.adapters.blob.s3 import S3BlobStore, S3Options
from mintlog.errors import StoreUnavailable
from mintlog.ports.blobstore import BlobInfo, BlobNotFound, BlobStore
from tests.services import UNREACHABLE_S3_ENDPOINT, S3Service

MakeStore = Callable[[], BlobStore]


def _s3_options(service: S3Service, bucket: str, **overrides: Any) -> S3Options:
    options = S3Options(
        endpoint=service.endpoint,
        bucket=bucket,
        region=service.region,
        access_key=service.access_key,
        secret_key=service.secret_key,
        timeout_seconds=10.0,
        max_retries=2,
        retry_initial_seconds=0.05,
        retry_max_seconds=0.2,
    )
    return dataclasses.replace(options, **overrides)


@pytest.fixture(params=["filesystem", "s3"])
async def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MakeStore]:
    """Builds (unstarted) clients of one fresh store; every one is closed after the test."""
    stores: list[BlobStore] = []
    if request.param == "filesystem":

        def build() -> BlobStore:
            return FilesystemBlobStore(tmp_path / "objects")

    else:
        service: S3Service = request.getfixturevalue("s3_service")
        bucket: str = request.getfixturevalue("s3_bucket")

        def build() -> BlobStore:
            return S3BlobStore(_s3_options(service, bucket))

    def make() -> BlobStore:
        store = build()
        stores.append(store)
        return store

    try:
        yield make
    finally:
        for store in stores:
            await store.close()


@pytest.fixture
async def store(make_store: MakeStore) -> BlobStore:
    blob_store = make_store()
    await blob_store.start()
    return blob_store


async def test_put_get_round_trip_of_text_binary_and_empty_objects(store: BlobStore) -> None:
    binary = bytes(range(256)) * 4096 + os.urandom(1000)  # ~1 MiB, every byte value
    await store.put("a/text.txt", "héllo wörld\n".encode(), content_type="text/plain")
    await store.put("a/binary.bin", binary)
    await store.put("a/empty", b"")
    assert await store.get("a/text.txt") == "héllo wörld\n".encode()
    assert await store.get("a/binary.bin") == binary
    assert await store.get("a/empty") == b""
    assert await store.list("a/") == [
        BlobInfo("a/binary.bin", len(binary)),
        BlobInfo("a/empty", 0),
        BlobInfo("a/text.txt", len("héllo wörld\n".encode())),
    ]


async def test_put_replaces_the_whole_object(store: BlobStore) -> None:
    await store.put("k", b"a much longer first version")
    await store.put("k", b"short")
    assert await store.get("k") == b"short"
    assert await store.list("") == [BlobInfo("k", 5)]


async def test_keys_with_special_characters_round_trip(store: BlobStore) -> None:
    keys = ["sp ace/x", "plus+and%25percent", "q?mark#hash", "tilde~!$&'()*,;=@", "dots.and-dashes_under"]
    for key in keys:
        await store.put(key, key.encode())
    for key in keys:
        assert await store.get(key) == key.encode()
    assert [info.key for info in await store.list("")] == sorted(keys)


async def test_list_is_in_key_order_even_where_a_name_prefixes_a_sibling(store: BlobStore) -> None:
    # "acme-eu/…" and "acme.x" sort before "acme/…" ('-' and '.' are below '/'): a directory-by-directory
    # listing would put them after, and pagination by `after` would skip them.
    keys = ["t/acme/1", "t/acme/2/deep", "t/acme-eu/1", "t/acme.x", "t/acmf", "t/acme/10", "u"]
    for key in reversed(keys):
        await store.put(key, b"x")
    assert [info.key for info in await store.list("")] == sorted(keys)
    assert [info.key for info in await store.list("t/")] == sorted(keys[:-1])
    paged: list[str] = []
    after: str | None = None
    while page := await store.list("t/", after=after, limit=2):
        assert len(page) <= 2
        paged.extend(info.key for info in page)
        after = page[-1].key
    assert paged == sorted(keys[:-1])


async def test_list_with_prefix_after_and_limit(store: BlobStore) -> None:
    for tenant in ("acme", "beta"):
        for hour in range(5):
            await store.put(f"archive/{tenant}/2026-11-27/{hour:02d}/batch-0001.ndjson.gz", b"z" * hour)
    acme = await store.list("archive/acme/")
    assert [info.key for info in acme] == [f"archive/acme/2026-11-27/{h:02d}/batch-0001.ndjson.gz" for h in range(5)]
    assert [info.size for info in acme] == [0, 1, 2, 3, 4]
    assert [info.key for info in await store.list("archive/acme/", limit=2)] == [info.key for info in acme[:2]]
    after = await store.list("archive/acme/", after=acme[1].key, limit=2)
    assert [info.key for info in after] == [info.key for info in acme[2:4]]
    # a partial segment is a prefix too; `after` outside the prefix bounds nothing
    assert [info.key for info in await store.list("archive/ac")] == [info.key for info in acme]
    assert await store.list("archive/acme/", after="archive/b") == []
    assert len(await store.list("archive/", after="archive/acme/zzz")) == 5
    assert await store.list("archive/nobody/") == []
    assert await store.list("nothing-here") == []


async def test_delete_is_idempotent_and_hides_the_object(store: BlobStore) -> None:
    await store.put("d/one", b"1")
    await store.put("d/two", b"2")
    await store.delete("d/one")
    await store.delete("d/one")
    await store.delete("never/existed")
    with pytest.raises(BlobNotFound):
        await store.get("d/one")
    assert await store.list("") == [BlobInfo("d/two", 1)]
    await store.delete("d/two")
    assert await store.list("") == []
    await store.put("d/one", b"again")  # the emptied "directory" can be written again
    assert await store.get("d/one") == b"again"


async def test_missing_object_raises_blob_not_found(store: BlobStore) -> None:
    with pytest.raises(BlobNotFound):
        await store.get("missing")
    await store.put("dir/object", b"x")
    with pytest.raises(BlobNotFound):
        await store.get("dir")  # a key prefix is not an object


@pytest.mark.parametrize(
    "key",
    ["", "/abs", "a//b", "a/", "a/../b", "..", "./a", "a/./b", "tab\there", "new\nline", "ünïcode", "x" * 1025],
)
async def test_invalid_keys_are_refused(store: BlobStore, key: str) -> None:
    with pytest.raises(ValueError):
        await store.put(key, b"x")
    with pytest.raises(ValueError):
        await store.get(key)
    with pytest.raises(ValueError):
        await store.delete(key)
    assert await store.list("") == []


async def test_invalid_list_arguments_are_refused(store: BlobStore) -> None:
    with pytest.raises(ValueError):
        await store.list("/abs")
    with pytest.raises(ValueError):
        await store.list("../up")
    with pytest.raises(ValueError):
        await store.list("", limit=0)


async def test_a_second_client_sees_the_same_objects(make_store: MakeStore) -> None:
    first, second = make_store(), make_store()
    await first.start()
    await first.put("shared/key", b"value")
    await second.start()  # the bucket or directory exists already: start is idempotent
    assert await second.get("shared/key") == b"value"
    await second.ping()


async def test_concurrent_puts_of_one_key_leave_one_whole_version(store: BlobStore) -> None:
    versions = [bytes([n]) * 200_000 for n in range(8)]
    await asyncio.gather(*(store.put("race", data) for data in versions))
    assert await store.get("race") in versions
    assert await store.list("") == [BlobInfo("race", 200_000)]


async def test_ping_answers_when_reachable(store: BlobStore) -> None:
    await store.ping()


async def test_unreachable_s3_endpoint_is_store_unavailable(s3_service: S3Service) -> None:
    store = S3BlobStore(_s3_options(s3_service, "unreachable", endpoint=UNREACHABLE_S3_ENDPOINT, max_retries=1))
    try:
        for call in (store.start, store.ping):
            with pytest.raises(StoreUnavailable):
                await call()
        with pytest.raises(StoreUnavailable):
            await store.put("k", b"v")
        with pytest.raises(StoreUnavailable):
            await store.get("k")
        with pytest.raises(StoreUnavailable):
            await store.list("")
        with pytest.raises(StoreUnavailable):
            await store.delete("k")
    finally:
        await store.close()


async def test_wrong_s3_secret_is_store_unavailable_and_never_shown(s3_service: S3Service, s3_bucket: str) -> None:
    secret = "wrong-secret-0123456789"
    store = S3BlobStore(_s3_options(s3_service, s3_bucket, secret_key=secret))
    try:
        with pytest.raises(StoreUnavailable) as raised:
            await store.start()
        assert "403" in str(raised.value)
        assert secret not in str(raised.value)
        assert secret not in repr(store)
        assert secret not in repr(store.options)
    finally:
        await store.close()


def test_unwritable_directory_is_store_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"not a directory")
    store = FilesystemBlobStore(blocker / "objects")
    with pytest.raises(StoreUnavailable):
        asyncio.run(store.start())
    with pytest.raises(StoreUnavailable):
        asyncio.run(store.ping())
