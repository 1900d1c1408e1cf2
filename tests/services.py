"""Fixtures for the real NATS, PostgreSQL, Redis, OpenSearch and S3 the tests use, started by `scripts/services.sh`.

`scripts/services.sh up` is idempotent, so a fixture just asks for the service; on a machine where it
cannot be started the test is skipped, and in CI (`CI` set) a skip fails the run (tests/conftest.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import secrets
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mintlog.adapters.logstore.opensearch_layout import name_groups

__all__ = [
    "UNREACHABLE_OPENSEARCH_URL",
    "UNREACHABLE_REDIS_URL",
    "UNREACHABLE_S3_ENDPOINT",
    "S3Service",
    "delete_opensearch_indices",
    "delete_redis_keys",
    "delete_s3_bucket",
    "nats_url",
    "opensearch_url",
    "opensearch_url_or_skip",
    "postgres_database_url",
    "postgres_server_url",
    "redis_url",
    "s3_bucket",
    "s3_endpoint",
    "s3_service",
    "service_ports",
]

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "services.sh"
# Nothing listens on port 1: connecting is refused at once, like a Redis that is down.
UNREACHABLE_REDIS_URL = "redis://127.0.0.1:1/0"
UNREACHABLE_OPENSEARCH_URL = "http://127.0.0.1:1"
UNREACHABLE_S3_ENDPOINT = "http://127.0.0.1:1"


# The ports scripts/services.sh listens on by default, and the variables that move them.
_DEFAULT_PORTS = {
    "NATS_PORT": 54222,
    "NATS_MONITOR_PORT": 58222,
    "POSTGRES_PORT": 55432,
    "REDIS_PORT": 56379,
    "OPENSEARCH_PORT": 59200,
    "OPENSEARCH_TRANSPORT_PORT": 59300,
    "S3_PORT": 58383,
}
_URL_VARIABLES = ("TEST_NATS_URL", "TEST_POSTGRES_URL", "TEST_REDIS_URL", "TEST_OPENSEARCH_URL", "TEST_S3_ENDPOINT")


def service_ports() -> frozenset[int]:
    """The loopback ports of the shared test services: scripts/services.sh's (as moved by its `*_PORT`
    variables) and those of any `TEST_*_URL` given instead. The unit tier refuses connections to them."""
    ports = {int(os.environ.get(name) or default) for name, default in _DEFAULT_PORTS.items()}
    for variable in _URL_VARIABLES:
        with contextlib.suppress(ValueError):
            port = urllib.parse.urlsplit(os.environ.get(variable, "")).port
            if port is not None:
                ports.add(port)
    return frozenset(ports)


def _service_env(name: str) -> dict[str, str]:
    result = subprocess.run(["bash", str(SCRIPT), "up", name], capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        pytest.skip(f"{name} could not be started by scripts/services.sh: {result.stderr.strip()[-500:]}")
    lines = subprocess.run(["bash", str(SCRIPT), "env"], capture_output=True, text=True, check=True).stdout
    return dict(line.split("=", 1) for line in lines.split())


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """The URL of the test PostgreSQL's `mintlog` database (shared: prefer `postgres_database_url`)."""
    return os.environ.get("TEST_POSTGRES_URL") or _service_env("postgres")["TEST_POSTGRES_URL"]


async def _execute(server_url: str, statement: str) -> None:
    import asyncpg  # pyright: ignore[reportMissingTypeStubs]

    connection = await asyncpg.connect(server_url.replace("postgresql+asyncpg://", "postgresql://"))  # pyright: ignore[reportUnknownMemberType]
    try:
        await connection.execute(statement)  # pyright: ignore[reportUnknownMemberType]
    finally:
        await connection.close()  # pyright: ignore[reportUnknownMemberType]


@pytest.fixture
def postgres_database_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty database for one test, dropped afterwards. A sync fixture, so any test may use it."""
    name = f"test_{secrets.token_hex(6)}"
    asyncio.run(_execute(postgres_server_url, f'CREATE DATABASE "{name}"'))
    yield postgres_server_url.rsplit("/", 1)[0] + f"/{name}"
    asyncio.run(_execute(postgres_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The URL of the test Redis (database 0; tests must use unique key prefixes or flush their own keys)."""
    return os.environ.get("TEST_REDIS_URL") or _service_env("redis")["TEST_REDIS_URL"]


async def delete_redis_keys(redis_url: str, prefix: str) -> None:
    """Delete the keys a test wrote under its own `prefix` in the shared test Redis."""
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


def _opensearch_request(url: str, method: str, path: str) -> Any:
    request = urllib.request.Request(url.rstrip("/") + path, method=method)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


@functools.cache
def _opensearch_url_or_reason() -> tuple[str, str]:
    url = os.environ.get("TEST_OPENSEARCH_URL") or ""
    if not url:
        result = subprocess.run(["bash", str(SCRIPT), "up", "opensearch"], capture_output=True, text=True, timeout=900)
        if result.returncode != 0:
            return "", f"opensearch could not be started by scripts/services.sh: {result.stderr.strip()[-500:]}"
        lines = subprocess.run(["bash", str(SCRIPT), "env"], capture_output=True, text=True, check=True).stdout
        url = dict(line.split("=", 1) for line in lines.split())["TEST_OPENSEARCH_URL"]
    try:
        _opensearch_request(url, "GET", "/_cluster/health")
    except (OSError, ValueError) as exc:
        return "", f"opensearch at {url} is unreachable: {exc}"
    return url, ""


def opensearch_url_or_skip() -> str:
    """The URL of the test OpenSearch (`TEST_OPENSEARCH_URL`, else started by the script); skips if unreachable.

    For code that cannot request a fixture (e.g. a contract `StoreFactory`); asked once per session.
    """
    url, reason = _opensearch_url_or_reason()
    if not url:
        pytest.skip(reason)
    return url


@pytest.fixture(scope="session")
def opensearch_url() -> str:
    """The URL of the test OpenSearch; tests must use their own index prefix and delete their indices."""
    return opensearch_url_or_skip()


def delete_opensearch_indices(url: str, prefix: str) -> None:
    """Delete the indices `{prefix}-*` and the index template `{prefix}` a test created (by exact name)."""
    pattern = urllib.parse.quote(f"{prefix}-*")
    resolved = _opensearch_request(url, "GET", f"/_resolve/index/{pattern}?expand_wildcards=open,closed")
    names = [str(index["name"]) for index in resolved.get("indices", [])]
    for group in name_groups(names):
        _opensearch_request(url, "DELETE", f"/{urllib.parse.quote(group, safe=',*')}?ignore_unavailable=true")
    try:
        _opensearch_request(url, "DELETE", f"/_index_template/{urllib.parse.quote(prefix)}")
    except urllib.error.HTTPError as exc:
        if exc.code != 404:
            raise


SHARED_STREAMS_ENV = {"MINTLOG_INGEST__MAX_BACKLOG_SECONDS": "0"}
"""Settings of a process on the shared NATS server that does not test the ingest backlog gate: the shared streams
hold what earlier tests' ingest-only processes left (no pipeline consumed it), and the age of those batches
would close the gate (docs/ingest.md) for a test that has nothing to do with it."""


@pytest.fixture(scope="session")
def nats_url() -> str:
    """The URL of the test NATS server (JetStream on). Shared by every test: its streams are the fixed
    `mintlog.domain.streams.STREAMS`, so a test using it must not expect them empty or delete them."""
    return os.environ.get("TEST_NATS_URL") or _service_env("nats")["TEST_NATS_URL"]


@dataclass(frozen=True, slots=True)
class S3Service:
    """The test S3 service (SeaweedFS) and the identity every request must be signed with."""

    endpoint: str
    access_key: str
    secret_key: str = field(repr=False)
    region: str = "us-east-1"

    def env(self, bucket: str) -> dict[str, str]:
        """The `MINTLOG_BLOB__*` settings of a Mintlog process storing its blobs in `bucket` here."""
        return {
            "MINTLOG_BLOB__URL": f"s3://{bucket}",
            "MINTLOG_BLOB__S3__ENDPOINT": self.endpoint,
            "MINTLOG_BLOB__S3__REGION": self.region,
            "MINTLOG_BLOB__S3__ACCESS_KEY": self.access_key,
            "MINTLOG_BLOB__S3__SECRET_KEY": self.secret_key,
        }


@pytest.fixture(scope="session")
def s3_service() -> S3Service:
    """The test S3 service (`TEST_S3_*`, else started by the script)."""
    names = ("TEST_S3_ENDPOINT", "TEST_S3_ACCESS_KEY", "TEST_S3_SECRET_KEY")
    env = {name: os.environ.get(name, "") for name in (*names, "TEST_S3_REGION")}
    if not all(env[name] for name in names):
        env = _service_env("s3")
    return S3Service(
        endpoint=env["TEST_S3_ENDPOINT"],
        access_key=env["TEST_S3_ACCESS_KEY"],
        secret_key=env["TEST_S3_SECRET_KEY"],
        region=env.get("TEST_S3_REGION") or "us-east-1",
    )


@pytest.fixture(scope="session")
def s3_endpoint(s3_service: S3Service) -> str:
    """The URL of the test S3 service (credentials: `s3_service`)."""
    return s3_service.endpoint


def _s3_request(service: S3Service, method: str, bucket: str, query: list[tuple[str, str]] | None = None) -> bytes:
    from mintlog.adapters.blob.sigv4 import EMPTY_SHA256, encode_path, quote, sign_headers

    host = urllib.parse.urlsplit(service.endpoint).netloc
    path = encode_path(f"/{bucket}")
    headers = sign_headers(
        method=method,
        path=path,
        query=query or [],
        headers={"host": host},
        payload_sha256=EMPTY_SHA256,
        access_key=service.access_key,
        secret_key=service.secret_key,
        region=service.region,
    )
    query_text = "&".join(f"{quote(k)}={quote(v)}" for k, v in query or [])
    url = service.endpoint.rstrip("/") + path + (f"?{query_text}" if query_text else "")
    request = urllib.request.Request(url, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read()


def delete_s3_bucket(service: S3Service, bucket: str) -> None:
    """Delete every object of `bucket` and the bucket itself (nothing when it does not exist)."""
    import xml.etree.ElementTree as ElementTree

    try:
        while True:
            listing = ElementTree.fromstring(_s3_request(service, "GET", bucket, [("list-type", "2")]))
            keys = [element.text or "" for element in listing.iter() if element.tag.rsplit("}", 1)[-1] == "Key"]
            if not keys:
                break
            for key in keys:
                _s3_request(service, "DELETE", f"{bucket}/{key}")
        _s3_request(service, "DELETE", bucket)
    except urllib.error.HTTPError as exc:
        if exc.code != 404:
            raise


@pytest.fixture
def s3_bucket(s3_service: S3Service) -> Iterator[str]:
    """A fresh bucket name for one test (created by whoever starts a store on it), deleted afterwards."""
    bucket = f"test-{secrets.token_hex(6)}"
    yield bucket
    delete_s3_bucket(s3_service, bucket)
