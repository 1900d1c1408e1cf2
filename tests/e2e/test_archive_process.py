"""The raw-event archive through the running process: ingested events appear as gzip NDJSON objects under the
data directory, `GET /v1/archive` lists them with digests that match the files, and `verify` reports an object
whose bytes were changed or that was deleted."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from mintlog.adapters.blob.filesystem import FilesystemBlobStore
from mintlog.adapters.db.archive_sql import SqlArchiveManifest
from mintlog.adapters.db.sql import SqlMetadataStore
from mintlog.launch.bootstrap import build_blobs
from mintlog.ports.archive import ArchiveObject
from mintlog.roles.pipeline.archive import object_key, pack_lines
from mintlog.settings import load_settings
from tests.e2e.harness import MintlogProcess
from tests.services import S3Service


def archive(mintlog: MintlogProcess, key: str, path: str = "/v1/archive", **query: str) -> httpx.Response:
    return httpx.get(f"{mintlog.api_url}{path}", params=query, headers={"X-API-Key": key}, timeout=30)


def listed(mintlog: MintlogProcess, key: str, events: int, timeout_seconds: float = 20.0) -> list[dict[str, Any]]:
    """The archive's objects of the last day, once they hold `events` events."""
    deadline = time.monotonic() + timeout_seconds
    items: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        response = archive(mintlog, key, **{"from": "now-1d", "to": "now+1h"})
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        if sum(item["event_count"] for item in items) >= events:
            return items
        time.sleep(0.1)
    raise AssertionError(f"the archive holds {items} after {timeout_seconds}s:\n{mintlog.logs()}")


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines()]


def test_ingested_events_are_archived_listed_and_verified(
    mintlog_factory: Callable[..., MintlogProcess], tmp_path: Path
) -> None:
    mintlog = mintlog_factory(MINTLOG_ARCHIVE__MAX_AGE_SECONDS="0.3")
    mintlog.start()
    key = mintlog.bootstrap("acme")
    objects_dir = mintlog.data_dir / "objects"

    first = [{"message": f"payment {n} failed", "level": "error", "service": "billing", "amount": n} for n in range(3)]
    assert mintlog.ingest(key, {"events": first}).status_code == 202
    [one] = listed(mintlog, key, 3)
    second = [{"message": "disk almost full", "level": "warn", "host": "db-1"}, {"message": "ok"}]
    assert mintlog.ingest(key, {"events": second}).status_code == 202
    items = listed(mintlog, key, 5)
    assert len(items) == 2
    assert items[0] == one

    archived: list[dict[str, Any]] = []
    for item in items:
        assert item["key"].startswith("archive/acme/")
        assert item["key"].endswith(".ndjson.gz")
        path = objects_dir / item["key"]
        data = path.read_bytes()
        assert (hashlib.sha256(data).hexdigest(), len(data)) == (item["sha256"], item["bytes"])
        found = lines(path)
        assert len(found) == item["event_count"]
        archived.extend(found)
    # The raw events exactly as sent, under the ids search knows them by.
    assert [line["event"] for line in archived] == first + second
    searched = mintlog.wait_for_total(key, {"size": 10}, 5)
    assert sorted(event["id"] for event in searched["events"]) == sorted(line["id"] for line in archived)

    report = archive(mintlog, key, "/v1/archive/verify", **{"from": "now-1d"})
    assert report.status_code == 200, report.text
    body = report.json()
    assert (body["checked"], body["ok"], body["problems"], body["events_found"]) == (2, 2, [], 5)

    # Tamper with the first object, delete the second: verify names both.
    tampered, deleted = (objects_dir / item["key"] for item in items)
    data = bytearray(tampered.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tampered.write_bytes(bytes(data))
    deleted.unlink()
    body = archive(mintlog, key, "/v1/archive/verify", **{"from": "now-1d"}).json()
    assert (body["checked"], body["ok"], body["missing"], body["digest_mismatch"]) == (2, 0, 1, 1)
    problems = {problem["key"]: problem for problem in body["problems"]}
    assert problems[items[0]["key"]]["problem"] == "digest_mismatch"
    assert problems[items[0]["key"]]["actual_sha256"] == hashlib.sha256(bytes(data)).hexdigest()
    assert problems[items[1]["key"]]["problem"] == "missing"
    assert body["events_expected"] == 5

    # Pages: one object per page, the cursor leads to the next.
    page = archive(mintlog, key, "/v1/archive/verify", **{"from": "now-1d", "limit": "1"}).json()
    assert (page["checked"], page["next_cursor"] is not None) == (1, True)
    rest = archive(
        mintlog, key, "/v1/archive/verify", **{"from": "now-1d", "limit": "1", "cursor": page["next_cursor"]}
    ).json()
    assert (rest["checked"], rest["next_cursor"]) == (1, None)
    assert {page["problems"][0]["key"], rest["problems"][0]["key"]} == {item["key"] for item in items}

    # Another tenant sees none of it; bad ranges are refused.
    other = mintlog.bootstrap("globex")
    assert archive(mintlog, other, **{"from": "now-1d"}).json() == {"items": [], "next_cursor": None}
    refused = archive(mintlog, key, **{"from": "now", "to": "now-1h"})
    assert (refused.status_code, refused.json()["code"]) == (400, "invalid_time")
    assert mintlog.stop() == 0


def test_a_stopping_pipeline_flushes_its_archive_buffers_before_it_exits(
    mintlog_factory: Callable[..., MintlogProcess],
) -> None:
    mintlog = mintlog_factory(MINTLOG_ARCHIVE__MAX_AGE_SECONDS="600", MINTLOG_PIPELINE__ACK_WAIT_SECONDS="1200")
    mintlog.start()
    key = mintlog.bootstrap("acme")
    events = [{"message": f"event {n}"} for n in range(20)]
    assert mintlog.ingest(key, {"events": events}).status_code == 202
    mintlog.wait_for_total(key, {"size": 1}, 20)  # indexed at once; the archive waits for its age limit
    assert list((mintlog.data_dir / "objects").rglob("*.ndjson.gz")) == []
    assert mintlog.stop() == 0
    [path] = list((mintlog.data_dir / "objects").rglob("*.ndjson.gz"))
    assert [line["event"] for line in lines(path)] == events
    mintlog.start()
    [item] = listed(mintlog, key, 20)
    assert item["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert mintlog.stop() == 0


def test_the_archive_goes_to_s3_and_tampering_there_is_detected(
    mintlog_factory: Callable[..., MintlogProcess], s3_service: S3Service, s3_bucket: str, postgres_database_url: str
) -> None:
    """The production layout: objects in S3 (SeaweedFS here), the manifest in PostgreSQL."""
    mintlog = mintlog_factory(
        MINTLOG_ARCHIVE__MAX_AGE_SECONDS="0.3",
        MINTLOG_DATABASE__URL=postgres_database_url,
        **s3_service.env(s3_bucket),
    )
    mintlog.start()
    key = mintlog.bootstrap("acme")
    events = [{"message": f"order {n} shipped", "service": "shop"} for n in range(4)]
    assert mintlog.ingest(key, {"events": events}).status_code == 202
    [item] = listed(mintlog, key, 4)
    assert not (mintlog.data_dir / "objects").exists()

    settings = load_settings({"MINTLOG_DATA_DIR": str(mintlog.data_dir), **s3_service.env(s3_bucket)}, env_file=None)

    async def tamper() -> bytes:
        blobs = build_blobs(settings)
        await blobs.start()
        try:
            data = await blobs.get(item["key"])
            assert hashlib.sha256(data).hexdigest() == item["sha256"]
            assert [line["event"] for line in (json.loads(raw) for raw in gzip.decompress(data).splitlines())] == events
            await blobs.put(item["key"], data + b"\0")
            return data
        finally:
            await blobs.close()

    asyncio.run(tamper())
    body = archive(mintlog, key, "/v1/archive/verify", **{"from": "now-1d"}).json()
    assert (body["checked"], body["digest_mismatch"], body["problems"][0]["key"]) == (1, 1, item["key"])
    assert mintlog.stop() == 0


def test_archive_retention_set_through_the_admin_api_deletes_old_objects(
    mintlog_factory: Callable[..., MintlogProcess],
) -> None:
    mintlog = mintlog_factory(MINTLOG_ARCHIVE__RETENTION_INTERVAL_SECONDS="1")
    key = mintlog.bootstrap("acme")  # creates the database; the key has every scope, `admin` included
    now = datetime.now(UTC)
    old_hour, young_hour = now - timedelta(days=40), now - timedelta(days=2)

    async def write_objects() -> list[str]:
        metadata = SqlMetadataStore(f"sqlite+aiosqlite:///{mintlog.data_dir / 'mintlog.db'}")
        blobs = FilesystemBlobStore(mintlog.data_dir / "objects")
        await metadata.start()
        await blobs.start()
        keys: list[str] = []
        try:
            for hour in (old_hour, young_hour):
                packed = pack_lines([b'{"id":"x","event":{}}\n'])
                object_name = object_key("acme", hour, f"{hour:%d}-00000")
                await blobs.put(object_name, packed.data)
                await SqlArchiveManifest(metadata).record(
                    ArchiveObject(
                        tenant_id="acme",
                        key=object_name,
                        day=hour.date(),
                        hour=hour.hour,
                        event_count=1,
                        bytes=len(packed.data),
                        sha256=packed.sha256,
                        first_event_at=hour,
                        last_event_at=hour,
                        created_at=hour,
                    )
                )
                keys.append(object_name)
        finally:
            await metadata.close()
        return keys

    old, young = asyncio.run(write_objects())
    mintlog.start()

    def keys_listed() -> list[str]:
        response = archive(mintlog, key, **{"from": "now-60d"})
        assert response.status_code == 200, response.text
        return [item["key"] for item in response.json()["items"]]

    time.sleep(2.5)  # two retention runs: without an archive retention (the default) nothing goes
    assert keys_listed() == [old, young]
    patched = httpx.patch(
        f"{mintlog.api_url}/v1/admin/tenants/acme",
        json={"retention_days": 1, "archive_retention_days": 30},
        headers={"X-API-Key": key},
        timeout=30,
    )
    assert patched.status_code == 200, patched.text
    deadline = time.monotonic() + 15
    while keys_listed() != [young] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert keys_listed() == [young]
    assert not (mintlog.data_dir / "objects" / old).exists()
    assert (mintlog.data_dir / "objects" / young).exists()
    report = archive(mintlog, key, "/v1/archive/verify", **{"from": "now-60d"}).json()
    assert (report["checked"], report["ok"]) == (1, 1)
    assert mintlog.stop() == 0
