"""The command line, run as a user runs it: a real process, real files, exit codes and output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import EXAMPLES, ROOT, TRANSFORMS


def cli(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dodo_transform", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
    )


def test_test_json_prints_one_object_with_the_documented_keys() -> None:
    result = cli(
        "test",
        TRANSFORMS / "segment_track_payments.js",
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
        TRANSFORMS / "segment_track_payments.js",
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
        ("test", TRANSFORMS / "segment_track_payments.js", tmp_path / "missing.json"),
        ("test", TRANSFORMS / "segment_track_payments.js", bad),
    ]:
        result = cli(*args)
        assert result.returncode == 2, args
        assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_check_passes_on_the_shipped_examples() -> None:
    result = cli("check", "--transforms", EXAMPLES / "handlers")
    assert result.returncode == 0, result.stdout
    assert "376 runs, 0 failed" in result.stdout


def test_check_fails_on_a_golden_mismatch_and_update_rewrites(tmp_path: Path) -> None:
    transforms = tmp_path / "t"
    transforms.mkdir()
    (transforms / "segment_track_payments.js").write_text(
        (TRANSFORMS / "segment_track_payments.js").read_text().replace("Payment Completed", "Paid")
    )
    expected = tmp_path / "expected"
    result = cli("check", "--transforms", transforms, "--expected", expected)
    assert result.returncode == 0 and "new" in result.stdout
    cli("check", "--transforms", transforms, "--expected", expected, "--update")
    golden = expected / "segment_track_payments" / "payment.succeeded.json"
    assert json.loads(golden.read_text())["requests"][0]["payload"]["event"] == "Paid"
    (transforms / "segment_track_payments.js").write_text(
        (TRANSFORMS / "segment_track_payments.js").read_text()
    )
    result = cli("check", "--transforms", transforms, "--expected", expected)
    assert result.returncode == 1
    assert "changed" in result.stdout


def test_check_reports_a_broken_transform(tmp_path: Path) -> None:
    (tmp_path / "bad.js").write_text("function handler(w) { return w +; }")
    result = cli("check", "--transforms", tmp_path, "--expected", tmp_path / "expected")
    assert result.returncode == 1
    assert "SyntaxError" in result.stdout
