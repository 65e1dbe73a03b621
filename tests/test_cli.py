"""The command line as a user runs it: real files, exit codes and output, through the app the
console script runs (`CliRunner`); one test runs the console script itself."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.command_line import run as cli
from tests.conftest import EXAMPLES, SHIPPED

# `check` reads examples/ relative to where it runs by default; the tests run elsewhere.
EXAMPLE_EVENTS = ("--events", EXAMPLES / "events", "--expected", EXAMPLES / "expected")


def test_test_json_prints_one_object_with_the_documented_keys() -> None:
    result = cli(
        "test",
        SHIPPED / "segment_track_payments.js",
        EXAMPLES / "events" / "payment.succeeded.json",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert set(shown) == {"outcome", "requests", "logs", "warnings", "error"}
    assert shown["outcome"] == "deliver"
    assert shown["requests"][0]["payload"]["properties"]["amount"] == "24.99"


def test_test_human_output_shows_request_payload_and_console() -> None:
    result = cli(
        "test",
        EXAMPLES / "handlers" / "headers_custom.js",
        EXAMPLES / "events" / "refund.succeeded.json",
    )
    assert result.returncode == 0
    assert "outcome: deliver" in result.stdout
    assert "POST https://hooks.example.com/refunds" in result.stdout
    assert "X-Source: dodo-transform" in result.stdout
    assert "[log] refund ref_nUV0DuvmVgeKJVbS04L0y" in result.stdout


def test_test_skipped_exits_zero() -> None:
    result = cli(
        "test",
        SHIPPED / "segment_track_payments.js",
        EXAMPLES / "events" / "dispute.opened.json",
        "--json",
    )
    assert (result.returncode, json.loads(result.stdout)["outcome"]) == (0, "skipped")


def test_handler_error_exits_one_with_location(tmp_path: Path) -> None:
    handler = tmp_path / "broken.js"
    handler.write_text("function handler(webhook) {\n  return webhook.payload.data.nope.x;\n}\n")
    result = cli("test", handler, EXAMPLES / "events" / "payment.succeeded.json", "--json")
    assert result.returncode == 1
    shown = json.loads(result.stdout)
    assert shown["outcome"] == "error"
    assert shown["error"].startswith(f"{handler}:2:")


def test_syntax_error_exits_one(tmp_path: Path) -> None:
    handler = tmp_path / "syntax.js"
    handler.write_text("function handler(webhook) {\n  return webhook +;\n}\n")
    result = cli("test", handler, EXAMPLES / "events" / "payment.succeeded.json")
    assert result.returncode == 1
    assert f"{handler}:2:" in result.stdout and "SyntaxError" in result.stdout


def test_unusable_input_exits_two_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    for args in [
        ("test", tmp_path / "missing.js", EXAMPLES / "events" / "payment.succeeded.json"),
        ("test", SHIPPED / "segment_track_payments.js", tmp_path / "missing.json"),
        ("test", SHIPPED / "segment_track_payments.js", bad),
    ]:
        result = cli(*args)
        assert result.returncode == 2, args
        assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_the_console_script_ends_a_mistake_in_one_line_with_exit_code_two(tmp_path: Path) -> None:
    """The real process: what reaches a user's terminal is the one line, never a traceback."""
    done = subprocess.run(
        [sys.executable, "-m", "dodo_transform", "test", tmp_path / "missing.js", tmp_path],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_check_passes_on_the_shipped_examples() -> None:
    result = cli("check", "--transforms", EXAMPLES / "handlers", *EXAMPLE_EVENTS)
    assert result.returncode == 0, result.stdout
    assert "376 runs: 376 ok; " in result.stdout
    # Problems only: no table of 376 `ok` rows, a count and how to see them.
    assert " ok " not in result.stdout.replace("376 ok", "")
    assert "--verbose shows every run" in result.stdout


def test_check_verbose_shows_every_run() -> None:
    result = cli(
        "check", "--transforms", EXAMPLES / "handlers", *EXAMPLE_EVENTS, "--verbose",
        env={"COLUMNS": "200"},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout
    rows = [line for line in result.stdout.splitlines() if re.search(r"│ ok\s+│", line)]
    assert len(rows) == 376
    assert "--verbose shows" not in result.stdout


def test_check_fails_on_a_golden_mismatch_and_update_rewrites(tmp_path: Path) -> None:
    transforms = tmp_path / "t"
    transforms.mkdir()
    (transforms / "segment_track_payments.js").write_text(
        (SHIPPED / "segment_track_payments.js").read_text().replace("Payment Completed", "Paid")
    )
    expected = tmp_path / "expected"
    result = cli(
        "check", "--transforms", transforms, "--events", EXAMPLES / "events", "--expected", expected
    )
    assert result.returncode == 0 and "new" in result.stdout
    assert f"note: {expected} holds no golden files yet" in result.stdout
    assert "with --update" in result.stdout
    assert "skipped their event (" in result.stdout and "runs not shown" in result.stdout
    cli(
        "check",
        "--transforms",
        transforms,
        "--events",
        EXAMPLES / "events",
        "--expected",
        expected,
        "--update",
    )
    golden = expected / "segment_track_payments" / "payment.succeeded.json"
    assert json.loads(golden.read_text())["requests"][0]["payload"]["event"] == "Paid"
    (transforms / "segment_track_payments.js").write_text(
        (SHIPPED / "segment_track_payments.js").read_text()
    )
    result = cli(
        "check", "--transforms", transforms, "--events", EXAMPLES / "events", "--expected", expected
    )
    assert result.returncode == 1
    assert "changed" in result.stdout


def test_check_reports_a_broken_transform(tmp_path: Path) -> None:
    (tmp_path / "bad.js").write_text("function handler(w) { return w +; }")
    result = cli(
        "check",
        "--transforms",
        tmp_path,
        "--events",
        EXAMPLES / "events",
        "--expected",
        tmp_path / "expected",
    )
    assert result.returncode == 1
    assert "SyntaxError" in result.stdout


RESEND = EXAMPLES / "connectors" / "resend_receipts.js"
SUCCEEDED = EXAMPLES / "events" / "payment.succeeded.json"


def connector(tmp_path: Path, name: str, table: str) -> Path:
    (tmp_path / f"{name}.js").write_text((EXAMPLES / "connectors" / f"{name}.js").read_text())
    (tmp_path / "transforms.toml").write_text(table)
    return tmp_path / f"{name}.js"


def test_test_shows_the_configured_headers_redacted_never_their_values() -> None:
    result = cli("test", RESEND, SUCCEEDED, env={"RESEND_API_KEY": "re_live_secret"})
    assert result.returncode == 0, result.stderr
    assert "POST https://api.resend.com/emails" in result.stdout
    assert "Authorization: [redacted]" in result.stdout
    assert "re_live_secret" not in result.stdout + result.stderr
    assert "warning" not in result.stdout
    shown = json.loads(
        cli("test", RESEND, SUCCEEDED, "--json", env={"RESEND_API_KEY": "re_live_secret"}).stdout
    )
    assert shown["requests"][0]["headers"] == {"Authorization": "[redacted]"}
    assert shown["warnings"] == []


def test_test_warns_when_the_service_would_block_the_destination(tmp_path: Path) -> None:
    handler = connector(tmp_path, "resend_receipts", '[resend_receipts]\nevents = ["payment.*"]\n')
    result = cli("test", handler, SUCCEEDED, "--json")
    assert result.returncode == 0, result.stderr
    (warning,) = json.loads(result.stdout)["warnings"]
    assert warning.startswith("api.resend.com is not an allowed destination")
    listed = cli(
        "test", handler, SUCCEEDED, "--json", env={"DODO_TRANSFORM_ALLOWED_HOSTS": "api.resend.com"}
    )
    assert json.loads(listed.stdout)["warnings"] == []


def test_test_warns_when_the_url_the_connector_page_expects_is_missing(tmp_path: Path) -> None:
    handler = connector(tmp_path, "slack_payment_alerts", "")
    result = cli("test", handler, SUCCEEDED)
    assert result.returncode == 0, result.stderr
    assert "outcome: skipped" in result.stdout
    assert "warning: the handler sets no url and transforms.toml gives none" in result.stdout


def test_test_warns_of_a_raw_dodo_body_going_out_and_of_a_missing_variable(
    tmp_path: Path,
) -> None:
    handler = connector(
        tmp_path,
        "resend_receipts",
        '[resend_receipts]\nurl = "https://api.resend.com/emails"\n'
        'headers = { Authorization = "Bearer ${NOT_SET_HERE}" }\n',
    )
    result = cli("test", handler, EXAMPLES / "events" / "refund.succeeded.json", "--json")
    assert result.returncode == 0, result.stderr
    warnings = json.loads(result.stdout)["warnings"]
    assert [w.split(":")[0] for w in warnings] == [
        "NOT_SET_HERE is not set in the environment",
        "the Dodo event goes out unchanged",
    ]
    # The service's settings file may hold it (systemd passes it with --config).
    settings = tmp_path / "service.env"
    settings.write_text("NOT_SET_HERE=re_from_the_file\n")
    event = EXAMPLES / "events" / "refund.succeeded.json"
    found = cli("test", handler, event, "--json", "--config", settings)
    assert [w.split(":")[0] for w in json.loads(found.stdout)["warnings"]] == [
        "the Dodo event goes out unchanged"
    ]
    (request,) = json.loads(found.stdout)["requests"]
    assert request["headers"]["Authorization"] == "[redacted]"


def test_test_skips_an_event_type_the_transform_does_not_receive(tmp_path: Path) -> None:
    handler = connector(tmp_path, "resend_receipts", '[resend_receipts]\nevents = ["refund.*"]\n')
    result = cli("test", handler, SUCCEEDED)
    assert result.returncode == 0, result.stderr
    assert "outcome: skipped" in result.stdout
    assert "note: [resend_receipts] does not receive payment.succeeded" in result.stdout


def test_check_runs_the_connector_examples_and_lists_each_warning_once() -> None:
    environ = {"RESEND_API_KEY": "k", "HUBSPOT_ACCESS_TOKEN": "k", "COLUMNS": "400"}
    result = cli(
        "check",
        "--transforms",
        EXAMPLES / "connectors",
        "--events",
        EXAMPLES / "events",
        "--expected",
        EXAMPLES / "connectors" / "expected",
        env=environ,
    )
    assert result.returncode == 0, result.stdout
    assert "846 runs: 846 ok; " in result.stdout
    warnings = [line for line in result.stdout.splitlines() if line.startswith("warning: ")]
    assert (
        "warning: loops_events: LOOPS_API_KEY is not set in the environment: the service will"
        " not load [loops_events] until it is (headers in transforms.toml)"
    ) in warnings
    assert len(warnings) == 10  # one per variable still unset, each once
    assert not any("RESEND_API_KEY" in line for line in warnings)


def test_a_delivery_is_summed_up_by_its_own_message_and_a_url_by_its_host_only() -> None:
    from dodo_transform.cli.admin import message_summary

    one = {"type": "track", "event": "Payment Completed", "userId": "cus_1"}
    batch = {"method": "POST", "url": "https://api.segment.io/v1/batch"}
    assert message_summary(batch | {"payload": {"batch": [one]}}) == (
        'track "Payment Completed" cus_1'
    )
    single = {"method": "POST", "url": "https://api.segment.io/v1/identify"}
    assert message_summary(single | {"payload": {"anonymousId": "a_1"}}) == "identify a_1"
    slack = {"method": "POST", "url": "https://hooks.slack.com/services/T0/B0/s3cr3t"}
    assert message_summary(slack | {"payload": {"text": "hi"}}) == "POST hooks.slack.com"
    assert message_summary(None) == ""


def test_a_transforms_state_shows_what_is_wrong_even_when_disabled() -> None:
    from dodo_transform.cli.admin import transform_state

    row = {"version": "v1", "enabled": False, "load_error": "t.js:1:2 SyntaxError", "warnings": []}
    assert transform_state(row) == (
        "disabled",
        "enabled = false in transforms.toml; the file does not load: t.js:1:2 SyntaxError",
    )
    typo = {"version": "v1", "enabled": True, "load_error": None, "warnings": ["events: typo"]}
    assert transform_state(typo) == ("live", "events: typo")
    assert transform_state(row | {"enabled": True})[1].startswith("the last good version runs")


def test_test_never_prints_a_secret_the_handler_logs(tmp_path: Path) -> None:
    (tmp_path / "leaky.js").write_text(
        "function handler(webhook) { console.log(webhook.env.HOOK, webhook.url);"
        " throw new Error('bad ' + webhook.env.HOOK); }"
    )
    (tmp_path / "transforms.toml").write_text(
        '[leaky]\nurl = "${SLACK_URL}"\nenv = { HOOK = "${HOOK_TOKEN}" }\n'
    )
    env = {
        "SLACK_URL": "https://hooks.slack.com/services/T0/B0/slack_Tok3n",
        "HOOK_TOKEN": "hook_env_Secret77",
    }
    result = cli("test", tmp_path / "leaky.js", SUCCEEDED, env=env)
    assert result.returncode == 1
    assert "[redacted]" in result.stdout
    for secret in ("hook_env_Secret77", "slack_Tok3n"):
        assert secret not in result.stdout + result.stderr


def test_the_top_level_help_shows_each_commands_help_whole() -> None:
    from dodo_transform.cli import COMMANDS

    result = cli("--help", env={"COLUMNS": "100"})
    assert result.returncode == 0
    shown = " ".join(result.stdout.split("Commands:")[1].split())
    assert "..." not in shown  # click's mark of a cut line
    for name, command in COMMANDS:
        first = " ".join((command.__doc__ or "").split("\n\n")[0].split())
        assert f"{name} {first}" in shown, name
