"""`MINTLOG_STORE__URL` selects OpenSearch for opensearch://, http:// and https:// URLs; bad values fail at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from mintlog.adapters.logstore.opensearch import OpenSearchLogStore
from mintlog.adapters.logstore.opensearch_client import cluster_urls
from mintlog.errors import ConfigError
from mintlog.launch.bootstrap import build_store
from mintlog.settings import load_settings


@pytest.mark.parametrize(
    ("url", "nodes"),
    [
        ("opensearch://127.0.0.1:9200", ["http://127.0.0.1:9200"]),
        ("http://os-1:9200, http://os-2:9200", ["http://os-1:9200", "http://os-2:9200"]),
        ("https://admin:s3cret@os.example:9200/search", ["https://admin:s3cret@os.example:9200/search"]),
    ],
)
def test_an_opensearch_url_selects_the_opensearch_store(url: str, nodes: list[str]) -> None:
    settings = load_settings(
        {"MINTLOG_STORE__URL": url, "MINTLOG_STORE__OPENSEARCH__INDEX_PREFIX": "logs"}, env_file=None
    )

    store = build_store(settings)

    assert isinstance(store, OpenSearchLogStore)
    assert store.index_prefix == "logs"
    assert cluster_urls(url) == nodes


@pytest.mark.parametrize(
    "url",
    [
        "opensearch://",
        "https://:hunter2@",
        "http://user:hunter2@host:port",
        "elasticsearch://host:9200",
        "http://a:1,ftp://b",
    ],
)
def test_a_bad_store_url_fails_at_start_naming_the_setting_but_not_the_password(url: str) -> None:
    settings = load_settings({"MINTLOG_STORE__URL": url}, env_file=None)

    with pytest.raises(ConfigError, match="MINTLOG_STORE__URL") as failure:
        build_store(settings)

    assert "hunter2" not in str(failure.value)


def test_a_missing_ca_file_fails_at_start(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "MINTLOG_STORE__URL": "https://os.example:9200",
            "MINTLOG_STORE__OPENSEARCH__CA_FILE": str(tmp_path / "missing.pem"),
        },
        env_file=None,
    )

    with pytest.raises(ConfigError, match="MINTLOG_STORE__OPENSEARCH__CA_FILE"):
        build_store(settings)
