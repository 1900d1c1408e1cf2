"""`scripts/services.sh`: the NATS and S3 it starts are what the tests and the README say they are."""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.request

import pytest

from tests.services import SCRIPT, S3Service


async def test_nats_url_is_a_jetstream_server(nats_url: str) -> None:
    import nats

    connection = await nats.connect(nats_url, connect_timeout=5)
    try:
        info = await connection.jetstream().account_info()
        assert info.limits is not None  # JetStream answers for the account
        assert connection.connected_url is not None
        assert connection.connected_url.hostname == "127.0.0.1"
    finally:
        await connection.close()


def test_s3_refuses_anonymous_requests(s3_service: S3Service) -> None:
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(s3_service.endpoint + "/", timeout=10)
    refused.value.close()
    assert refused.value.code == 403


def test_status_and_env_name_every_service(nats_url: str, s3_service: S3Service) -> None:
    status = subprocess.run(["bash", str(SCRIPT), "status"], capture_output=True, text=True, check=True).stdout
    rows = {line.split()[0]: line.split()[1] for line in status.splitlines() if line.strip()}
    assert rows["nats"] == "up"
    assert rows["s3"] == "up"
    assert set(rows) == {"nats", "postgres", "redis", "opensearch", "s3"}
    env = subprocess.run(["bash", str(SCRIPT), "env"], capture_output=True, text=True, check=True).stdout
    names = {line.split("=", 1)[0] for line in env.splitlines()}
    assert {"TEST_NATS_URL", "TEST_S3_ENDPOINT", "TEST_S3_ACCESS_KEY", "TEST_S3_SECRET_KEY"} <= names
    assert f"TEST_NATS_URL={nats_url}" in env.splitlines()
