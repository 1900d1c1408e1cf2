"""What only the filesystem blob store promises beyond the contract: crash leftovers stay invisible, emptied
directories go, and a key cannot be both an object and a directory of others."""

from __future__ import annotations

from pathlib import Path

import pytest

from mintlog.adapters.blob.filesystem import FilesystemBlobStore
from mintlog.adapters.blob.keys import check_key
from mintlog.ports.blobstore import BlobInfo


@pytest.fixture
async def store(tmp_path: Path) -> FilesystemBlobStore:
    blob_store = FilesystemBlobStore(tmp_path / "objects")
    await blob_store.start()
    return blob_store


async def test_a_write_interrupted_by_a_crash_is_never_listed_nor_read(store: FilesystemBlobStore) -> None:
    await store.put("a/done", b"whole")
    (store.root / "a" / ".mintlog-tmp-0123456789abcdef-half").write_bytes(b"par")  # what a crash leaves
    assert await store.list("") == [BlobInfo("a/done", 5)]
    with pytest.raises(ValueError):
        await store.get("a/.mintlog-tmp-0123456789abcdef-half")


async def test_put_leaves_no_temp_file_and_writes_the_bytes_under_the_key_path(store: FilesystemBlobStore) -> None:
    await store.put("x/y/z.bin", b"\x00\x01")
    assert (store.root / "x" / "y" / "z.bin").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in store.root.rglob("*")) == ["x", "y", "z.bin"]


async def test_delete_removes_emptied_directories_but_not_the_root(store: FilesystemBlobStore) -> None:
    await store.put("x/y/z", b"1")
    await store.put("x/keep", b"2")
    await store.delete("x/y/z")
    assert not (store.root / "x" / "y").exists()
    assert (store.root / "x" / "keep").exists()
    await store.delete("x/keep")
    assert store.root.is_dir()
    assert list(store.root.iterdir()) == []


async def test_a_key_cannot_be_an_object_and_a_prefix_of_another(store: FilesystemBlobStore) -> None:
    await store.put("a/b", b"object")
    with pytest.raises(ValueError, match="conflicts"):
        await store.put("a/b/c", b"under an object")
    await store.put("d/e/f", b"deep")
    with pytest.raises(ValueError, match="conflicts"):
        await store.put("d/e", b"over a directory")
    assert await store.get("a/b") == b"object"
    assert not list(store.root.rglob(".mintlog-tmp-*"))  # the refused writes left nothing behind


def test_key_rules() -> None:
    assert check_key("archive/acme/2026-11-27/13/batch-0001.ndjson.gz")
    assert check_key("x" * 200 + "/" + "y" * 200)
    for bad in ("x" * 201, "a/.mintlog-tmp-x", "a\\..\\b/\x7f"):
        with pytest.raises(ValueError):
            check_key(bad)
