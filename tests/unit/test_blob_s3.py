"""The S3 adapter's own logic: SigV4 against AWS's published examples, retries and error mapping against a
scripted local HTTP server, and how `MINTLOG_BLOB__*` picks and configures the blob store."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web

from mintlog.adapters.blob.filesystem import FilesystemBlobStore
from mintlog.adapters.blob.s3 import S3BlobStore, S3Options
from mintlog.adapters.blob.sigv4 import EMPTY_SHA256, encode_path, quote, sign_headers
from mintlog.errors import ConfigError, StoreUnavailable
from mintlog.launch.bootstrap import build_blobs
from mintlog.ports.blobstore import BlobNotFound
from mintlog.settings import load_settings, masked_settings

# The example credentials and requests of AWS's "Signature Calculations for the Authorization Header" (S3).
AWS_ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AWS_NOW = datetime(2013, 5, 24, tzinfo=UTC)
AWS_HOST = "examplebucket.s3.amazonaws.com"


def _signature(headers: dict[str, str]) -> str:
    return headers["Authorization"].rsplit("Signature=", 1)[1]


def test_sigv4_get_object_example() -> None:
    headers = sign_headers(
        method="GET",
        path="/test.txt",
        query=[],
        headers={"host": AWS_HOST, "range": "bytes=0-9"},
        payload_sha256=EMPTY_SHA256,
        access_key=AWS_ACCESS_KEY,
        secret_key=AWS_SECRET_KEY,
        region="us-east-1",
        now=AWS_NOW,
    )
    assert headers["Authorization"].startswith(
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
    )
    assert _signature(headers) == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    assert headers["x-amz-date"] == "20130524T000000Z"


def test_sigv4_put_object_example() -> None:
    payload = b"Welcome to Amazon S3."
    digest = hashlib.sha256(payload).hexdigest()
    assert digest == "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
    headers = sign_headers(
        method="PUT",
        path=encode_path("/test$file.text"),
        query=[],
        headers={
            "host": AWS_HOST,
            "date": "Fri, 24 May 2013 00:00:00 GMT",
            "x-amz-storage-class": "REDUCED_REDUNDANCY",
        },
        payload_sha256=digest,
        access_key=AWS_ACCESS_KEY,
        secret_key=AWS_SECRET_KEY,
        region="us-east-1",
        now=AWS_NOW,
    )
    assert _signature(headers) == "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"


def test_sigv4_list_objects_example() -> None:
    headers = sign_headers(
        method="GET",
        path="/",
        query=[("prefix", "J"), ("max-keys", "2")],
        headers={"host": AWS_HOST},
        payload_sha256=EMPTY_SHA256,
        access_key=AWS_ACCESS_KEY,
        secret_key=AWS_SECRET_KEY,
        region="us-east-1",
        now=AWS_NOW,
    )
    assert _signature(headers) == "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"


def test_uri_encoding_keeps_only_unreserved_characters() -> None:
    assert quote("AZaz09-_.~") == "AZaz09-_.~"
    assert quote("a b+c/d%e=f") == "a%20b%2Bc%2Fd%25e%3Df"
    assert encode_path("/bucket/sp ace/x+y") == "/bucket/sp%20ace/x%2By"


@dataclass
class Script:
    """What the fake S3 answers, in order (the last answer repeats), and what it received."""

    answers: list[tuple[int, bytes]] = field(default_factory=lambda: [(200, b"")])
    delay_seconds: float = 0.0
    received: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=lambda: [])


FakeS3 = tuple[Script, Callable[..., S3BlobStore]]


@pytest.fixture
async def fake_s3() -> AsyncIterator[FakeS3]:
    script = Script()

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        script.received.append((request.method, request.raw_path, dict(request.headers), body))
        if script.delay_seconds:
            await asyncio.sleep(script.delay_seconds)
        status, answer = script.answers.pop(0) if len(script.answers) > 1 else script.answers[0]
        return web.Response(status=status, body=answer)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    stores: list[S3BlobStore] = []

    def make(**overrides: float | int) -> S3BlobStore:
        options = S3Options(
            endpoint=f"http://127.0.0.1:{port}",
            bucket="bucket",
            region="eu-west-1",
            access_key="AKID",
            secret_key="top-secret",
            timeout_seconds=float(overrides.get("timeout_seconds", 5.0)),
            max_retries=int(overrides.get("max_retries", 3)),
            retry_initial_seconds=0.01,
            retry_max_seconds=0.02,
        )
        store = S3BlobStore(options)
        stores.append(store)
        return store

    try:
        yield script, make
    finally:
        for store in stores:
            await store.close()
        await runner.cleanup()


async def test_put_sends_a_signed_path_style_request_with_the_payload_digest(fake_s3: FakeS3) -> None:
    script, make = fake_s3
    await make().put("a b/c+d", b"payload", content_type="application/gzip")
    method, path, headers, body = script.received[0]
    assert (method, path, body) == ("PUT", "/bucket/a%20b/c%2Bd", b"payload")
    assert headers["x-amz-content-sha256"] == hashlib.sha256(b"payload").hexdigest()
    assert headers["Content-Type"] == "application/gzip"
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKID/")
    assert "/eu-west-1/s3/aws4_request" in headers["Authorization"]
    assert "top-secret" not in str(headers)


async def test_5xx_answers_are_retried_until_success(fake_s3: FakeS3) -> None:
    script, make = fake_s3
    script.answers = [(503, b"<Error><Code>SlowDown</Code></Error>"), (500, b""), (200, b"")]
    await make(max_retries=3).put("k", b"v")
    assert len(script.received) == 3


async def test_retries_run_out_as_store_unavailable(fake_s3: FakeS3) -> None:
    script, make = fake_s3
    script.answers = [(503, b"<Error><Code>SlowDown</Code></Error>")]
    with pytest.raises(StoreUnavailable, match="3 attempt"):
        await make(max_retries=2).get("k")
    assert len(script.received) == 3


async def test_a_timeout_is_retried_then_store_unavailable(fake_s3: FakeS3) -> None:
    script, make = fake_s3
    script.delay_seconds = 1.0
    with pytest.raises(StoreUnavailable, match="Timeout"):
        await make(timeout_seconds=0.2, max_retries=1).get("k")
    assert len(script.received) == 2


async def test_4xx_answers_are_not_retried_and_map_to_port_errors(fake_s3: FakeS3) -> None:
    script, make = fake_s3
    store = make()
    script.answers = [(404, b"<Error><Code>NoSuchKey</Code></Error>")]
    with pytest.raises(BlobNotFound):
        await store.get("k")
    await store.delete("k")  # a missing object: nothing to do
    script.answers = [(404, b"<Error><Code>NoSuchBucket</Code></Error>")]
    with pytest.raises(StoreUnavailable, match="NoSuchBucket"):
        await store.get("k")
    script.answers = [(403, b"<Error><Code>AccessDenied</Code></Error>")]
    with pytest.raises(StoreUnavailable, match="403 AccessDenied"):
        await store.put("k", b"v")
    assert len(script.received) == 4


async def test_start_creates_a_missing_bucket_with_its_region(fake_s3: FakeS3) -> None:
    script, make = fake_s3
    script.answers = [(404, b""), (200, b"")]
    await make().start()
    (head, _, _, _), (put, path, _, body) = script.received
    assert (head, put, path) == ("HEAD", "PUT", "/bucket")
    assert b"<LocationConstraint>eu-west-1</LocationConstraint>" in body


async def test_list_follows_continuation_tokens_and_skips_directory_markers(fake_s3: FakeS3) -> None:
    script, make = fake_s3
    ns = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'
    script.answers = [
        (
            200,
            f"<ListBucketResult {ns}><Contents><Key>p/b</Key><Size>2</Size></Contents>"
            "<Contents><Key>p/</Key><Size>0</Size></Contents>"
            "<IsTruncated>true</IsTruncated><NextContinuationToken>tok+/=</NextContinuationToken>"
            "</ListBucketResult>".encode(),
        ),
        (
            200,
            f"<ListBucketResult {ns}><Contents><Key>p/a</Key><Size>1</Size></Contents>"
            "<IsTruncated>false</IsTruncated></ListBucketResult>".encode(),
        ),
    ]
    listed = await make().list("p/")
    assert [(info.key, info.size) for info in listed] == [("p/a", 1), ("p/b", 2)]
    assert "continuation-token=tok%2B%2F%3D" in script.received[1][1]


def test_blob_url_selects_the_adapter(tmp_path: Path) -> None:
    data = {"MINTLOG_DATA_DIR": str(tmp_path)}
    default = build_blobs(load_settings(data, env_file=None))
    assert isinstance(default, FilesystemBlobStore)
    assert default.root == tmp_path / "objects"
    there = build_blobs(load_settings({**data, "MINTLOG_BLOB__URL": f"file://{tmp_path}/else"}, env_file=None))
    assert isinstance(there, FilesystemBlobStore)
    assert there.root == tmp_path / "else"
    s3 = build_blobs(
        load_settings(
            {
                "MINTLOG_BLOB__URL": "s3://mintlog-archive",
                "MINTLOG_BLOB__S3__ENDPOINT": "http://127.0.0.1:9000/",
                "MINTLOG_BLOB__S3__ACCESS_KEY": "AKID",
                "MINTLOG_BLOB__S3__SECRET_KEY": "top-secret",
            },
            env_file=None,
        )
    )
    assert isinstance(s3, S3BlobStore)
    assert (s3.options.endpoint, s3.options.bucket, s3.options.region) == (
        "http://127.0.0.1:9000",
        "mintlog-archive",
        "us-east-1",
    )
    aws = build_blobs(
        load_settings(
            {
                "MINTLOG_BLOB__URL": "s3://bucket",
                "MINTLOG_BLOB__S3__REGION": "eu-central-1",
                "MINTLOG_BLOB__S3__ACCESS_KEY": "AKID",
                "MINTLOG_BLOB__S3__SECRET_KEY": "top-secret",
            },
            env_file=None,
        )
    )
    assert isinstance(aws, S3BlobStore)
    assert aws.options.endpoint == "https://s3.eu-central-1.amazonaws.com"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"MINTLOG_BLOB__URL": "ftp://host/x"}, "MINTLOG_BLOB__URL"),
        ({"MINTLOG_BLOB__URL": "file://relative/path"}, "MINTLOG_BLOB__URL"),
        ({"MINTLOG_BLOB__URL": "s3://Bad_Bucket"}, "MINTLOG_BLOB__URL"),
        ({"MINTLOG_BLOB__URL": "s3://bucket/with/path"}, "MINTLOG_BLOB__URL"),
        ({"MINTLOG_BLOB__URL": "s3://bucket"}, "MINTLOG_BLOB__S3__ACCESS_KEY"),
        (
            {
                "MINTLOG_BLOB__URL": "s3://bucket",
                "MINTLOG_BLOB__S3__ENDPOINT": "127.0.0.1:9000",
                "MINTLOG_BLOB__S3__ACCESS_KEY": "a",
                "MINTLOG_BLOB__S3__SECRET_KEY": "b",
            },
            "MINTLOG_BLOB__S3__ENDPOINT",
        ),
    ],
)
def test_invalid_blob_settings_fail_at_start(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        build_blobs(load_settings(env, env_file=None))


def test_the_secret_key_is_masked_in_the_shown_settings() -> None:
    shown = masked_settings(load_settings({"MINTLOG_BLOB__S3__SECRET_KEY": "top-secret"}, env_file=None))
    assert shown["MINTLOG_BLOB__S3__SECRET_KEY"] == "****"
