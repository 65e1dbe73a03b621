"""The transforms folder: loading, settings, and reloads that keep the last good version."""

from __future__ import annotations

from pathlib import Path

import pytest

from dodo_transform.errors import ConfigError
from dodo_transform.outgoing.destination import Allowlist, DeliveryPolicy
from dodo_transform.settings import SEGMENT_REGIONS
from dodo_transform.transforms import checks
from dodo_transform.transforms.registry import Registry
from dodo_transform.transforms.sandbox_processes import TransformSpec
from dodo_transform.transforms.settings import TransformSettings, read_settings

GOOD = "function handler(w) { return w; }"


def test_loads_every_js_file_by_stem(tmp_path: Path) -> None:
    (tmp_path / "a.js").write_text(GOOD)
    (tmp_path / "b.js").write_text(GOOD)
    (tmp_path / "notes.txt").write_text("ignored")
    registry = Registry(tmp_path)
    registry.reload()
    assert sorted(registry.current()) == ["a", "b"]
    assert registry.errors == {}


def test_a_broken_edit_keeps_the_last_good_version(tmp_path: Path) -> None:
    path = tmp_path / "a.js"
    path.write_text(GOOD)
    registry = Registry(tmp_path)
    registry.reload()
    good = registry.current()["a"]
    path.write_text("function handler(w) { return w +; }")
    registry.reload()
    assert registry.current()["a"] is good
    assert "SyntaxError" in registry.errors["a"]
    path.write_text(GOOD + "\n// fixed")
    registry.reload()
    assert registry.current()["a"].version != good.version
    assert registry.errors == {}


def test_unchanged_files_are_not_recompiled_and_deleted_ones_go(tmp_path: Path) -> None:
    (tmp_path / "a.js").write_text(GOOD)
    (tmp_path / "b.js").write_text(GOOD)
    registry = Registry(tmp_path)
    registry.reload()
    before = registry.current()
    (tmp_path / "b.js").unlink()
    registry.reload()
    assert registry.current()["a"] is before["a"]
    assert "b" not in registry.current()
    assert "b" in before  # a snapshot taken earlier is not changed under an event in flight


def test_settings_reach_the_transform(tmp_path: Path) -> None:
    (tmp_path / "a.js").write_text(GOOD)
    (tmp_path / "transforms.toml").write_text(
        '[a]\nurl = "https://hooks.example.com/in"\nenv = { K = "v" }\nenabled = false\n'
    )
    registry = Registry(tmp_path)
    registry.reload()
    transform = registry.current()["a"]
    assert (transform.default_url, dict(transform.env)) == (
        "https://hooks.example.com/in",
        {"K": "v"},
    )
    assert registry.settings("a").enabled is False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[a]\nbogus = 1\n",
            "[a] bogus: unknown key (known: concurrency, enabled, env, events, headers,"
            " max_attempts, max_requests, rate, retry_schedule, secret_url, timeout, url,"
            " write_key)",
        ),
        ('[a]\ntimeout = "10"\n', "[a] timeout must be a number, not '10' (a string)"),
        ("[a]\ntimeout = 0\n", "[a] timeout must be greater than 0, not 0 (an integer)"),
        ("[a]\ntimeout = 3600\n", "[a] timeout must be at most 300, not 3600"),
        ("[a]\nmax_attempts = 1.5\n", "[a] max_attempts must be a whole number, not 1.5"),
        ("[a]\nmax_attempts = 0\n", "[a] max_attempts must be at least 1, not 0"),
        ("[a]\nconcurrency = 1000\n", "[a] concurrency must be at most 256, not 1000"),
        ("[a]\nrate = -1\n", "[a] rate must be greater than 0, not -1"),
        ("[a]\nmax_requests = 0\n", "[a] max_requests must be at least 1, not 0"),
        ('[a]\nretry_schedule = "10s"\n', "[a] retry_schedule must be an array of strings"),
        ('[a]\nretry_schedule = ["10x"]\n', "[a] retry_schedule: '10x' is not a delay"),
        ("[a]\nretry_schedule = []\n", "[a] retry_schedule = [] has no delay"),
        (
            '[a]\nurl = "${NOT_SET_ANYWHERE}"\n',
            "[a] url: NOT_SET_ANYWHERE is not set in the environment",
        ),
        (
            '[a]\nenv = { K = "${NOT_SET_ANYWHERE}" }\n',
            "[a] env.K: NOT_SET_ANYWHERE is not set in the environment",
        ),
        ("[a]\nenv = { K = 1 }\n", "[a] env.K must be a string, not 1 (an integer)"),
        ('[a]\nenv = "K=v"\n', "[a] env must be a table of strings, not 'K=v' (a string)"),
        ('[a]\nenabled = "false"\n', "[a] enabled must be true or false, not 'false' (a string)"),
        ("[a]\nenabled = 0\n", "[a] enabled must be true or false, not 0 (an integer)"),
        ("[a]\nwrite_key = 123\n", "[a] write_key must be a string, not 123 (an integer)"),
        ('[a]\nurl = ["https://x"]\n', "[a] url must be a string, not ['https://x'] (an array)"),
        ("a = 1\n", "[a] must be a table, not 1 (an integer)"),
        (
            "enabled = false\n",
            "[enabled] must be a table, not False (a boolean); enabled is a setting: put it "
            "under the [name] of its transform",
        ),
        (
            'write-key = "k"\n',
            "[write-key] must be a table, not 'k' (a string); did you mean write_key? Settings "
            "go under the [name] of their transform",
        ),
        ('[a]\nevents = "payment.succeeded"\n', "[a] events must be an array of strings"),
        ("[a]\nevents = [1]\n", "[a] events.0 must be a string, not 1 (an integer)"),
        ("[a]\nevents = []\n", "[a] events = [] receives no event: use enabled = false"),
        ('[a]\nevents = ["pay*ment"]\n', "[a] events: 'pay*ment' is not an event type"),
        ('[a]\nevents = ["Payment.Succeeded"]\n', "'Payment.Succeeded' is not an event type"),
        ("[a]\nheaders = { X-Id = 1 }\n", "[a] headers.X-Id must be a string, not 1"),
        (
            '[a]\nheaders = { Authorization = "Bearer ${NOT_SET_ANYWHERE}" }\n',
            "[a] headers.Authorization: NOT_SET_ANYWHERE is not set in the environment",
        ),
        (
            '[a]\nheaders = { Authorization = "Bearer ${not a name}" }\n',
            "[a] headers.Authorization: ${not a name} is not a variable reference",
        ),
        (
            '[a]\nheaders = { X-Customer = "${HOME}" }\n',
            "[a] headers.X-Customer: a value from the environment is a credential",
        ),
        ('[a]\nheaders = { "Bad Name" = "x" }\n', "[a] headers.Bad Name: header name 'Bad Name'"),
        ('[a]\nheaders = { Host = "x" }\n', "[a] headers.Host: header 'Host' is set by the HTTP"),
        ('[a]\nheaders = { X-A = "a\\nb" }\n', "[a] headers.X-A: header 'X-A' holds the char"),
        ("not toml [", "transforms.toml"),
    ],
)
def test_bad_settings_are_reported_naming_the_file_table_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    (tmp_path / "transforms.toml").write_text(text)
    with pytest.raises(ConfigError) as raised:
        read_settings(tmp_path)
    assert message in str(raised.value)
    assert str(tmp_path / "transforms.toml") in str(raised.value)
    registry = Registry(tmp_path)
    registry.reload()
    assert registry.settings_error is not None and message in registry.settings_error
    assert "transforms.toml" not in registry.errors  # it is no transform


@pytest.mark.parametrize(
    ("key", "nearest"),
    [("wrte_key", "write_key"), ("URL", "url"), ("event", "events"), ("enviroment", "env")],
)
def test_an_unknown_key_names_the_nearest_known_one(tmp_path: Path, key: str, nearest: str) -> None:
    (tmp_path / "transforms.toml").write_text(f'[segment]\n{key} = "x"\n')
    with pytest.raises(ConfigError) as raised:
        read_settings(tmp_path)
    assert (
        f"[segment] {key}: unknown key; did you mean {nearest}? (known: concurrency, enabled, env,"
        " events, headers, max_attempts, max_requests, rate, retry_schedule, secret_url, timeout,"
        " url, write_key)"
    ) in str(raised.value)


def test_check_warns_of_a_table_that_names_no_file_but_comes_close(tmp_path: Path) -> None:
    """A misspelt table name is valid TOML for no transform: its settings would apply to
    nothing (here: the transform meant to be off would run), so `check` names it."""
    (tmp_path / "segment_track_payments.js").write_text(GOOD)
    (tmp_path / "transforms.toml").write_text("[segment_track_paymnets]\nenabled = false\n")
    events = tmp_path / "events"
    events.mkdir()
    (events / "payment.succeeded.json").write_text(
        '{"type": "payment.succeeded", "business_id": "b", "timestamp": "t", "data": {}}'
    )
    trier = checks.Trier(Allowlist(SEGMENT_REGIONS["us"]), {})
    (row,) = checks.check(tmp_path, events, tmp_path / "expected", trier)
    assert row.warnings == (
        "[segment_track_paymnets] in transforms.toml names no transform file; did you mean "
        "[segment_track_payments]? Its settings apply to no transform",
    )


def test_bad_settings_are_logged_once_until_they_change(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The service's log names the key (the worker's registry is the one that logs)."""
    (tmp_path / "a.js").write_text(GOOD)
    (tmp_path / "transforms.toml").write_text("[a]\nenabeld = false\n")
    registry = Registry(tmp_path)
    with caplog.at_level("ERROR", logger="dodo_transform.transforms.registry"):
        registry.reload()
        registry.reload()
        (tmp_path / "transforms.toml").write_text("[a]\nurls = 1\n")
        registry.reload()
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2
    assert "[a] enabeld: unknown key; did you mean enabled?" in messages[0]
    assert "[a] urls: unknown key; did you mean url?" in messages[1]


def test_every_problem_in_the_file_is_reported_at_once(tmp_path: Path) -> None:
    (tmp_path / "transforms.toml").write_text(
        '[a]\nenabled = "no"\nwrte_key = "k"\n[b]\nwrite_key = 1\n[c]\nenabled = false\n'
    )
    with pytest.raises(ConfigError) as raised:
        read_settings(tmp_path)
    text = str(raised.value)
    assert "[a] enabled" in text and "[a] wrte_key: unknown key" in text
    assert "[b] write_key" in text and "[c]" not in text


def test_a_transform_whose_settings_are_broken_at_startup_is_not_loaded(tmp_path: Path) -> None:
    """A typo must not run a transform that was meant to be off: with no good settings to fall
    back on, the transform stays out of service and says why; the others load."""
    (tmp_path / "off.js").write_text(GOOD)
    (tmp_path / "other.js").write_text(GOOD)
    (tmp_path / "transforms.toml").write_text('[off]\nenabled = "false"\n[other]\nenabled = true\n')
    registry = Registry(tmp_path)
    registry.reload()
    assert sorted(registry.current()) == ["other"]
    assert "[off] enabled must be true or false" in registry.errors["off"]
    assert "other" not in registry.errors
    (tmp_path / "transforms.toml").write_text("[off]\nenabled = false\n")
    registry.reload()
    assert sorted(registry.current()) == ["off", "other"]
    assert registry.settings("off").enabled is False
    assert registry.errors == {}


def test_broken_settings_on_reload_keep_the_last_good_ones(tmp_path: Path) -> None:
    (tmp_path / "a.js").write_text(GOOD)
    (tmp_path / "b.js").write_text(GOOD)
    toml = tmp_path / "transforms.toml"
    toml.write_text('[a]\nenabled = false\nwrite_key = "wk_a"\n[b]\nurl = "https://one.example"\n')
    registry = Registry(tmp_path)
    registry.reload()
    a = registry.current()["a"]
    toml.write_text('[a]\nenabled = "true"\n[b]\nurl = "https://two.example"\n')
    registry.reload()
    assert registry.current()["a"] is a
    assert (registry.settings("a").enabled, registry.settings("a").write_key) == (False, "wk_a")
    assert "the settings in force stay in service" in registry.errors["a"]
    assert registry.current()["b"].default_url == "https://two.example"  # its table is fine


def test_a_broken_table_never_puts_a_transform_in_service(tmp_path: Path) -> None:
    """Not even one added while the service runs: it waits for its table to be fixed."""
    (tmp_path / "a.js").write_text(GOOD)
    registry = Registry(tmp_path)
    registry.reload()
    (tmp_path / "transforms.toml").write_text('[late]\nenabled = "false"\n')
    (tmp_path / "late.js").write_text(GOOD)
    registry.reload()
    assert sorted(registry.current()) == ["a"]
    assert registry.errors["late"].startswith("not loaded: ")


def test_a_broken_file_at_startup_loads_nothing_and_on_reload_changes_nothing(
    tmp_path: Path,
) -> None:
    """When the file cannot be read at all, which transforms are meant to be off is unknown."""
    (tmp_path / "a.js").write_text(GOOD)
    toml = tmp_path / "transforms.toml"
    toml.write_text("[a]\nenabled = flase\n")  # not TOML
    registry = Registry(tmp_path)
    registry.reload()
    assert dict(registry.current()) == {}
    assert "transforms.toml" in registry.errors["a"]
    toml.write_text("[a]\nenabled = false\n")
    registry.reload()
    assert registry.settings("a").enabled is False
    toml.write_text("[a]\nenabled = tru\n")
    registry.reload()
    assert "a" in registry.current() and registry.settings("a").enabled is False
    assert registry.settings_error is not None and "line 2, column 11" in registry.settings_error


def test_settings_keep_their_public_shape(tmp_path: Path) -> None:
    (tmp_path / "transforms.toml").write_text(
        '[a]\nurl = "https://x.example"\nwrite_key = "wk"\nenabled = true\nenv = { K = "v" }\n'
    )
    settings = read_settings(tmp_path)["a"]
    assert (settings.url, settings.write_key, settings.enabled, dict(settings.env)) == (
        "https://x.example",
        "wk",
        True,
        {"K": "v"},
    )
    default = Registry(tmp_path).settings("unknown")
    assert (default.url, default.write_key, default.enabled, dict(default.env)) == (
        "",
        None,
        True,
        {},
    )


ENVIRON = {"RESEND_API_KEY": "re_secret_123", "REGION": "eu"}


def settings_of(text: str, tmp_path: Path, environ: dict[str, str] = ENVIRON) -> TransformSettings:
    (tmp_path / "transforms.toml").write_text(text)
    return read_settings(tmp_path, environ)["a"]


@pytest.mark.parametrize(
    ("events", "received", "not_received"),
    [
        (None, ["payment.succeeded", "credit.added"], []),
        (["payment.succeeded"], ["payment.succeeded"], ["payment.failed", "payment.succeeded.x"]),
        (["subscription.*"], ["subscription.active", "subscription.on_hold"], ["payment.failed"]),
        (["payment.succeeded", "refund.*"], ["refund.failed"], ["dispute.opened"]),
        (["*"], ["dispute.won"], []),
    ],
)
def test_events_names_the_types_a_transform_receives(
    events: list[str] | None, received: list[str], not_received: list[str]
) -> None:
    settings = TransformSettings(events=events)
    assert all(settings.receives(kind) for kind in received)
    assert not any(settings.receives(kind) for kind in not_received)


def test_header_references_are_filled_in_from_the_environment_at_load(tmp_path: Path) -> None:
    settings = settings_of(
        '[a]\nheaders = { Authorization = "Bearer ${RESEND_API_KEY}", '
        'X-Region-Key = "${REGION}", X-Source = "dodo" }\n',
        tmp_path,
    )
    assert dict(settings.header_values()) == {
        "Authorization": "Bearer re_secret_123",
        "X-Region-Key": "eu",
        "X-Source": "dodo",
    }
    # What is shown or logged of the settings holds the references, never the values.
    assert "re_secret_123" not in repr(settings) + str(settings.model_dump())
    assert settings.headers["Authorization"] == "Bearer ${RESEND_API_KEY}"


def test_the_registry_reads_the_environment_it_is_given_at_each_reload(tmp_path: Path) -> None:
    (tmp_path / "a.js").write_text(GOOD)
    (tmp_path / "transforms.toml").write_text(
        '[a]\nheaders = { Authorization = "Bearer ${KEY}" }\nevents = ["payment.*"]\n'
    )
    environ = {"KEY": "one"}
    registry = Registry(tmp_path, environ=environ)
    registry.reload()
    assert registry.settings("a").header_values()["Authorization"] == "Bearer one"
    environ["KEY"] = "two"
    registry.reload()
    assert registry.settings("a").header_values()["Authorization"] == "Bearer two"
    del environ["KEY"]
    registry.reload()  # a credential gone missing keeps the settings in force, and says so
    assert registry.settings("a").header_values()["Authorization"] == "Bearer two"
    assert "KEY is not set in the environment" in registry.errors["a"]


def test_a_transform_whose_credential_is_missing_at_startup_is_not_loaded(tmp_path: Path) -> None:
    (tmp_path / "a.js").write_text(GOOD)
    (tmp_path / "transforms.toml").write_text('[a]\nheaders = { Authorization = "${KEY}" }\n')
    registry = Registry(tmp_path, environ={})
    registry.reload()
    assert "a" not in registry.current()
    assert "KEY is not set in the environment" in registry.errors["a"]


def test_unset_variables_can_be_noted_instead_of_refused(tmp_path: Path) -> None:
    """`test` and `check` send nothing: they warn of a missing credential and go on."""
    (tmp_path / "transforms.toml").write_text(
        '[a]\nheaders = { Authorization = "Bearer ${KEY}", X-Api-Key = "${KEY}${OTHER}" }\n'
    )
    settings = read_settings(tmp_path, {}, unset_ok=True)["a"]
    assert settings.unset_variables() == ("KEY", "OTHER")
    assert settings.header_values()["Authorization"] == "Bearer "
    with pytest.raises(ConfigError, match="KEY, OTHER is not set"):
        read_settings(tmp_path, {})


def test_a_registry_that_does_not_log_changes_stays_silent(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "good.js").write_text("function handler(w) { return w; }")
    (tmp_path / "broken.js").write_text("function handler(w) {")
    with caplog.at_level("INFO", logger="dodo_transform.transforms.registry"):
        quiet = Registry(tmp_path, log_changes=False)
        quiet.reload()
        assert caplog.records == [] and "broken" in quiet.errors
        Registry(tmp_path).reload()
    messages = [record.getMessage() for record in caplog.records]
    assert any("transform good loaded" in m for m in messages)
    assert any("transform broken failed to load" in m for m in messages)


def test_an_events_typo_is_a_warning_of_the_transform_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "a.js").write_text(GOOD)
    (tmp_path / "transforms.toml").write_text('[a]\nevents = ["payment.succeded", "refund.*"]\n')
    registry = Registry(tmp_path)
    with caplog.at_level("WARNING", logger="dodo_transform.registry"):
        registry.reload()
        registry.reload()
    (warning,) = registry.warnings("a")
    assert "payment.succeded matches none of Dodo's event types" in warning
    assert "refund.*" not in warning
    assert [r.getMessage() for r in caplog.records] == [warning]
    assert registry.warnings("b") == []


def test_a_table_declared_twice_is_named_as_written(tmp_path: Path) -> None:
    (tmp_path / "transforms.toml").write_text('[my_hook]\nurl = "x"\n[my_hook]\nurl = "y"\n')
    with pytest.raises(ConfigError, match=r"not TOML: Cannot declare \[my_hook\] twice"):
        read_settings(tmp_path)


def test_a_load_error_is_logged_once_until_it_changes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "broken.js").write_text("function handler(w) {")
    registry = Registry(tmp_path)
    with caplog.at_level("ERROR", logger="dodo_transform.transforms.registry"):
        registry.reload()
        (tmp_path / "other.js").write_text(GOOD)  # another file's change reloads the folder
        registry.reload()
        (tmp_path / "broken.js").write_text("function handler(w) { return w +; }")
        registry.reload()
    failed = [r.getMessage() for r in caplog.records if "failed to load" in r.getMessage()]
    assert len(failed) == 2 and failed[0] != failed[1]


# --- settings that take effect, and the secrets among them --------------------------------------


def test_a_settings_change_alone_is_a_new_version_that_runs_with_them(tmp_path: Path) -> None:
    """A rotated webhook URL reaches the next event: the version names source and settings."""
    (tmp_path / "a.js").write_text(GOOD)
    toml = tmp_path / "transforms.toml"
    registry = Registry(tmp_path, environ={"HOOK": "https://hooks.example.com/old"})
    registry.reload()
    plain = registry.current()["a"].version
    toml.write_text('[a]\nurl = "${HOOK}"\n')
    registry.reload()
    old = registry.current()["a"]
    assert old.version != plain and old.default_url == "https://hooks.example.com/old"
    for changed in (
        '[a]\nurl = "https://hooks.example.com/new"\n',
        '[a]\nurl = "${HOOK}"\ntimeout = 5\n',
    ):
        toml.write_text(changed)
        registry.reload()
        assert registry.current()["a"].version != old.version
    toml.write_text('[a]\nurl = "${HOOK}"\n')
    registry.reload()
    assert registry.current()["a"].version == old.version  # the same file and table again
    toml.write_text("")
    registry.reload()
    assert registry.current()["a"].version == plain  # no table: the source's hash alone


def test_references_are_filled_in_in_url_env_and_headers_alike(tmp_path: Path) -> None:
    (tmp_path / "transforms.toml").write_text(
        '[a]\nurl = "${SLACK_WEBHOOK_URL}"\nenv = { CHANNEL = "#${ROOM}", PLAIN = "x" }\n'
        'headers = { Authorization = "Bearer ${TOKEN}" }\n'
    )
    environ = {
        "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/s3cretpath",
        "ROOM": "payments",
        "TOKEN": "tok_123456",
    }
    settings = read_settings(tmp_path, environ)["a"]
    assert settings.target_url == environ["SLACK_WEBHOOK_URL"]
    assert dict(settings.env_values()) == {"CHANNEL": "#payments", "PLAIN": "x"}
    assert settings.url == "${SLACK_WEBHOOK_URL}"  # as written, for showing
    assert settings.secret_values() >= {
        "services/T0/B0/s3cretpath",
        "#payments",
        "Bearer tok_123456",
        "tok_123456",
    }
    assert "x" not in settings.secret_values()


def test_a_url_marked_secret_is_shown_without_its_path(tmp_path: Path) -> None:
    (tmp_path / "transforms.toml").write_text(
        '[a]\nurl = "https://discord.com/api/webhooks/1/tok3n_abc"\nsecret_url = true\n'
        'headers = { X-Api-Key = "inline_key_1", X-Team = "shop" }\nwrite_key = "wk_inline"\n'
    )
    settings = read_settings(tmp_path)["a"]
    assert "api/webhooks/1/tok3n_abc" in settings.secret_values()
    shown = settings.shown()
    assert shown["url"] == "https://discord.com/[redacted]"
    assert shown["headers"] == {"X-Api-Key": "[redacted]", "X-Team": "shop"}
    assert shown["write_key"] == "[redacted]"
    assert "tok3n" not in str(shown) and "inline_key_1" not in str(shown)


def test_the_delivery_settings_make_the_transforms_policy(tmp_path: Path) -> None:
    (tmp_path / "transforms.toml").write_text(
        '[a]\ntimeout = 5\nmax_attempts = 4\nretry_schedule = ["10s", "1m", "1.5h"]\n'
        "rate = 2.5\nconcurrency = 3\n[b]\n"
    )
    tables = read_settings(tmp_path)
    defaults = DeliveryPolicy(timeout=15, max_attempts=12, concurrency=16)
    assert tables["a"].policy(defaults) == DeliveryPolicy(
        timeout=5, max_attempts=4, retry_schedule=(10, 60, 5400), rate=2.5, concurrency=3
    )
    assert tables["b"].policy(defaults) == defaults


def test_each_variables_value_is_a_secret_wherever_it_is_used(tmp_path: Path) -> None:
    (tmp_path / "transforms.toml").write_text(
        '[a]\nurl = "https://mail.example.com/emails?token=${MAIL_TOKEN}"\n'
        'env = { DSN = "postgres://u:${DB_PASSWORD}@db/x" }\n'
        '[b]\nurl = "https://svc:inline_Pass99@hooks.example.com/x"\n'
    )
    environ = {"MAIL_TOKEN": "tok_mail_2233", "DB_PASSWORD": "pw_db_44556677"}
    tables = read_settings(tmp_path, environ)
    assert {"tok_mail_2233", "pw_db_44556677"} <= tables["a"].secret_values()
    assert "inline_Pass99" in tables["b"].secret_values()  # a URL's password, always


def test_a_secret_values_change_reaches_the_handler_without_a_new_shown_version(
    tmp_path: Path,
) -> None:
    """The version is shown everywhere, so it hashes the table as shown (secrets redacted):
    rotating an inline secret URL keeps it, yet the next event goes to the new URL."""
    (tmp_path / "a.js").write_text(GOOD)
    toml = tmp_path / "transforms.toml"
    toml.write_text(
        '[a]\nurl = "https://hooks.slack.com/services/T0/B0/old_Token1"\nsecret_url = true\n'
    )
    registry = Registry(tmp_path)
    registry.reload()
    old = registry.current()["a"]
    toml.write_text(
        '[a]\nurl = "https://hooks.slack.com/services/T0/B0/new_Token2"\nsecret_url = true\n'
    )
    registry.reload()
    new = registry.current()["a"]
    assert new.version == old.version and new is not old
    assert new.default_url.endswith("new_Token2")
    assert TransformSpec.of(new).key != TransformSpec.of(old).key  # compiled afresh in a child


def test_a_retry_schedule_waits_a_little_at_least(tmp_path: Path) -> None:
    (tmp_path / "transforms.toml").write_text('[a]\nretry_schedule = ["0s"]\n')
    with pytest.raises(ConfigError, match=r"retry_schedule: '0s' is too soon: wait at least 0.1 s"):
        read_settings(tmp_path)


@pytest.mark.parametrize("fix", [GOOD, GOOD + "\n// fixed otherwise"], ids=["undone", "new"])
def test_a_fixed_file_logs_that_it_loads_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, fix: str
) -> None:
    """Its failure was logged; so is its end, even when the fix is the version that kept
    running meanwhile (a broken edit undone)."""
    path = tmp_path / "a.js"
    path.write_text(GOOD)
    registry = Registry(tmp_path)
    registry.reload()
    path.write_text("function handler(w) { return w +; }")
    with caplog.at_level("INFO", logger="dodo_transform.transforms.registry"):
        caplog.clear()  # an earlier test may have set INFO for the whole run: the first load
        registry.reload()
        path.write_text(fix)
        registry.reload()
        registry.reload()  # nothing changed since: nothing more to say
    messages = [record.getMessage() for record in caplog.records]
    version = registry.current()["a"].version
    assert messages[1:] == [f"transform a loads again (version {version})"], messages
    assert "failed to load" in messages[0]
