"""Settings: flags, environment and config file are three spellings of the same settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from dodo_transform.errors import ConfigError
from dodo_transform.settings import load_settings, secrets_in


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "DODO_WEBHOOK_SECRET",
        "SEGMENT_WRITE_KEY",
        "SEGMENT_ENDPOINT",
        "SEGMENT_REGION",
        "DODO_TRANSFORM_PORT",
        "DODO_TRANSFORM_ADMIN_TOKEN",
        "DODO_TRANSFORM_HEADER_TIMEOUT",
        "DODO_TRANSFORM_BODY_TIMEOUT",
        "DODO_TRANSFORM_MAX_CONNECTIONS",
        "DODO_TRANSFORM_FORWARDED_ALLOW_IPS",
        "DODO_TRANSFORM_LOG_FORMAT",
        "DODO_TRANSFORM_LOG_LEVEL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults_run_in_dry_run_on_loopback() -> None:
    settings = load_settings()
    assert (settings.host, settings.port, settings.dry_run) == ("127.0.0.1", 8000, True)
    assert settings.segment_base_url == "https://api.segment.io"
    assert settings.secrets == []


def test_documented_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DODO_WEBHOOK_SECRET", "whsec_old, whsec_new")
    monkeypatch.setenv("SEGMENT_WRITE_KEY", "wk")
    monkeypatch.setenv("SEGMENT_REGION", "eu")
    monkeypatch.setenv("DODO_TRANSFORM_PORT", "9001")
    monkeypatch.setenv("DODO_TRANSFORM_ADMIN_TOKEN", "tok-9f3a")
    settings = load_settings()
    assert settings.secrets == ["whsec_old", "whsec_new"]
    assert not settings.dry_run
    assert settings.segment_base_url == "https://events.eu1.segmentapis.com"
    assert settings.port == 9001
    assert "tok-9f3a" not in repr(settings) and "wk" not in repr(settings.segment_write_key)


def test_endpoint_overrides_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGMENT_ENDPOINT", "http://127.0.0.1:9999/")
    assert load_settings().segment_base_url == "http://127.0.0.1:9999"


def test_flags_beat_environment_which_beats_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "custom.env"
    config.write_text("DODO_TRANSFORM_PORT=7000\nDODO_TRANSFORM_RETENTION_DAYS=3\n")
    assert load_settings(config).port == 7000
    monkeypatch.setenv("DODO_TRANSFORM_PORT", "7100")
    assert load_settings(config).port == 7100
    assert load_settings(config, port=7200).port == 7200
    assert load_settings(config).retention_days == 3


def test_the_default_config_file_is_read_when_present(tmp_path: Path) -> None:
    (tmp_path / "dodo-transform.env").write_text("DODO_TRANSFORM_HOST=0.0.0.0\n")
    assert load_settings().host == "0.0.0.0"


def test_bad_settings_are_config_errors_without_values(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="port"):
        load_settings(port=70000)
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.env")


def test_http_edge_defaults_believe_no_proxy_and_time_out_slow_clients() -> None:
    settings = load_settings()
    assert (settings.header_timeout, settings.body_timeout) == (10.0, 10.0)
    assert settings.max_connections is None  # derived from the file limit at startup
    assert settings.trusted_proxies == []


def test_http_edge_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DODO_TRANSFORM_HEADER_TIMEOUT", "2.5")
    monkeypatch.setenv("DODO_TRANSFORM_BODY_TIMEOUT", "4")
    monkeypatch.setenv("DODO_TRANSFORM_MAX_CONNECTIONS", "100")
    monkeypatch.setenv("DODO_TRANSFORM_FORWARDED_ALLOW_IPS", "10.0.0.2, 10.0.0.0/24,")
    settings = load_settings()
    assert (settings.header_timeout, settings.body_timeout) == (2.5, 4.0)
    assert settings.max_connections == 100
    assert settings.trusted_proxies == ["10.0.0.2", "10.0.0.0/24"]


@pytest.mark.parametrize(
    "flag", [{"header_timeout": 0}, {"body_timeout": -1}, {"max_connections": 0}]
)
def test_http_edge_limits_must_be_positive(flag: dict[str, float]) -> None:
    with pytest.raises(ConfigError, match="--" + next(iter(flag)).replace("_", "-")):
        load_settings(**flag)


def test_logs_default_to_info_laid_out_for_where_they_go() -> None:
    settings = load_settings()
    assert (settings.log_format, settings.log_level) == ("auto", "info")


def test_log_settings_come_from_flags_environment_or_file_in_any_case(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "custom.env"
    config.write_text("DODO_TRANSFORM_LOG_FORMAT=JSON\nDODO_TRANSFORM_LOG_LEVEL=Error\n")
    assert (load_settings(config).log_format, load_settings(config).log_level) == ("json", "error")
    monkeypatch.setenv("DODO_TRANSFORM_LOG_LEVEL", "WARNING")
    assert load_settings(config).log_level == "warning"
    flagged = load_settings(config, log_format="text", log_level="debug")
    assert (flagged.log_format, flagged.log_level) == ("text", "debug")


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ({"log_format": "yaml"}, "--log-format: Input should be 'auto', 'text' or 'json'"),
        (
            {"log_level": "verbose"},
            "--log-level: Input should be 'debug', 'info', 'warning' or 'error'",
        ),
    ],
)
def test_a_bad_log_setting_is_one_line_naming_the_choices(
    flag: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(**flag)
    assert str(error.value) == f"invalid settings: {message}"


def test_a_bad_value_names_the_variable_it_came_from_and_choices_take_any_case(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SEGMENT_REGION", "EU")
    monkeypatch.setenv("DODO_TRANSFORM_ROLE", "All")
    assert (load_settings().segment_region, load_settings().role) == ("eu", "all")
    monkeypatch.setenv("DODO_TRANSFORM_PORT", "eighty")
    with pytest.raises(ConfigError, match=r"^invalid settings: DODO_TRANSFORM_PORT: Input should"):
        load_settings()
    monkeypatch.setenv("SEGMENT_REGION", "mars")
    monkeypatch.delenv("DODO_TRANSFORM_PORT")
    with pytest.raises(ConfigError, match=r"^invalid settings: SEGMENT_REGION: Input should be"):
        load_settings()


def test_transforms_toml_variables_come_from_the_settings_file_and_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "service.env"
    config.write_text("RESEND_API_KEY=re_file\nHUBSPOT_ACCESS_TOKEN=hs_file\n")
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "hs_env")
    variables = load_settings(config).variables()
    assert variables["RESEND_API_KEY"] == "re_file"
    assert variables["HUBSPOT_ACCESS_TOKEN"] == "hs_env"  # the environment wins, as for settings
    assert "RESEND_API_KEY" not in load_settings().variables()


def test_a_settings_file_holds_secrets_when_it_sets_a_secret_or_a_header_variable(
    tmp_path: Path,
) -> None:
    file = tmp_path / "dodo-transform.env"
    file.write_text(
        "DODO_TRANSFORM_PORT=8123\nSEGMENT_REGION=eu\nDODO_TRANSFORM_ADMIN_TOKEN=\n"
        "segment_write_key=wk_1\nRESEND_API_KEY=re_1\n"
        "DODO_TRANSFORM_DATABASE_URL=postgresql://relay:pw@db/relay\n"
    )
    assert secrets_in(file) == [
        "segment_write_key",
        "RESEND_API_KEY",
        "DODO_TRANSFORM_DATABASE_URL",
    ]
    file.write_text("DODO_TRANSFORM_DATABASE_URL=postgresql://relay@db/relay\n")
    assert secrets_in(file) == []
