from __future__ import annotations

from pathlib import Path

import pytest

from mintlog.errors import ConfigError
from mintlog.settings import ALL_ROLES, env_example, iter_setting_specs, load_settings, masked_settings

REPO = Path(__file__).resolve().parents[2]


def test_defaults_need_no_configuration() -> None:
    settings = load_settings({}, env_file=None)
    assert settings.roles == ALL_ROLES
    assert settings.data_dir == "./data"
    assert settings.http.ingest_port == 8080
    assert settings.http.api_port == 8081
    assert settings.nats.url == ""
    assert settings.nats.sync_interval == "always"
    assert settings.database_url.endswith("/data/mintlog.db")


def test_nested_names_use_a_double_underscore_and_values_are_converted() -> None:
    settings = load_settings(
        {
            "MINTLOG_HTTP__API_PORT": "9001",
            "MINTLOG_ROLES": "api, ingest",
            "MINTLOG_DATABASE__MIGRATE_ON_START": "false",
            "MINTLOG_NATS__SYNC_INTERVAL": "2m",
        },
        env_file=None,
    )
    assert settings.http.api_port == 9001
    assert settings.roles == ("api", "ingest")
    assert settings.database.migrate_on_start is False
    assert settings.nats.sync_interval == "2m"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("MINTLOG_HTTP__API_PORT", "abc", "MINTLOG_HTTP__API_PORT='abc'"),
        ("MINTLOG_HTTP__API_PORT", "70000", "<= 65535"),
        ("MINTLOG_ROLES", "api,foo", "choose from alert, api, ingest, notify, pipeline"),
        ("MINTLOG_NATS__SYNC_INTERVAL", "sometimes", "MINTLOG_NATS__SYNC_INTERVAL='sometimes'"),
        ("MINTLOG_SEARCH__MAX_SIZE", "0", "MINTLOG_SEARCH__MAX_SIZE='0'"),
        ("MINTLOG_LOG_LEVEL", "loud", "MINTLOG_LOG_LEVEL='loud'"),
        ("MINTLOG_NOT_A_SETTING", "1", "unknown setting MINTLOG_NOT_A_SETTING='1'"),
        ("MINTLOG_PIPELINE__STAGES", "normalize,enrich", "MINTLOG_PIPELINE__STAGES='normalize,enrich'"),
        ("MINTLOG_PIPELINE__OWN_PROCESS", "sometimes", "MINTLOG_PIPELINE__OWN_PROCESS='sometimes'"),
        ("MINTLOG_ARCHIVE__GZIP_LEVEL", "0", "MINTLOG_ARCHIVE__GZIP_LEVEL='0'"),
        ("MINTLOG_INDEXER__CONCURRENT_WRITES", "65", "MINTLOG_INDEXER__CONCURRENT_WRITES='65'"),
        ("MINTLOG_STORE__RELEASE_FREED_MEMORY_SECONDS", "-1", "MINTLOG_STORE__RELEASE_FREED_MEMORY_SECONDS='-1'"),
        ("MINTLOG_UPTIME__NAMESERVERS", "dns.google", "MINTLOG_UPTIME__NAMESERVERS='dns.google'"),
        ("MINTLOG_UPTIME__LOCATION", "eu west", "MINTLOG_UPTIME__LOCATION='eu west'"),
    ],
)
def test_a_bad_value_names_the_variable_and_the_value(variable: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings({variable: value}, env_file=None)
    assert expected in str(error.value)


def test_env_file_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("MINTLOG_HTTP__API_PORT=9100\nMINTLOG_HTTP__INGEST_PORT=9101\n")
    settings = load_settings({"MINTLOG_HTTP__API_PORT": "9200"}, env_file=env_file)
    assert settings.http.api_port == 9200
    assert settings.http.ingest_port == 9101


def test_overrides_win_over_the_environment() -> None:
    settings = load_settings({"MINTLOG_ROLES": "api"}, env_file=None, overrides={"MINTLOG_ROLES": "ingest"})
    assert settings.roles == ("ingest",)


def test_show_masks_passwords_in_urls() -> None:
    settings = load_settings(
        {"MINTLOG_DATABASE__URL": "postgresql+asyncpg://mintlog:hunter2@db:5432/mintlog"}, env_file=None
    )
    shown = masked_settings(settings)
    assert shown["MINTLOG_DATABASE__URL"] == "postgresql+asyncpg://mintlog:****@db:5432/mintlog"
    assert "hunter2" not in "".join(shown.values())


def test_every_setting_has_a_meaning() -> None:
    missing = [spec.env for spec in iter_setting_specs() if not spec.description]
    assert missing == []


def test_env_example_is_generated_from_the_settings_tree() -> None:
    committed = (REPO / ".env.example").read_text()
    assert committed == env_example(), "run `make env-example` to regenerate .env.example"
    for spec in iter_setting_specs():
        assert f"# {spec.env}=" in committed


def test_uptime_nameservers_are_a_comma_separated_list() -> None:
    settings = load_settings({"MINTLOG_UPTIME__NAMESERVERS": "127.0.0.1:5353, [::1]:53"}, env_file=None)
    assert settings.uptime.nameservers == ("127.0.0.1:5353", "[::1]:53")
    assert load_settings({}, env_file=None).uptime.nameservers == ()
