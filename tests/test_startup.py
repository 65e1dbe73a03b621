"""The banner names what a person starting the service needs to check: the database it writes
to (never its password) and every host requests go to, not only Segment's."""

from __future__ import annotations

from pathlib import Path

from dodo_transform.settings import load_settings
from dodo_transform.startup import banner
from tests.conftest import shipped_transforms


def shown(**settings: object) -> str:
    return banner(load_settings(**settings), created_secret=False)


def test_the_banner_names_the_sqlite_file(tmp_path: Path) -> None:
    text = shown(transforms=shipped_transforms(tmp_path / "t"), data_dir=tmp_path / "data")
    assert f"  database:   SQLite {(tmp_path / 'data' / 'dodo-transform.db').resolve()}" in text


def test_the_banner_names_postgresql_without_its_password(tmp_path: Path) -> None:
    url = "postgresql://relay:pa55word@db.internal:5432/dodo_transform"
    text = shown(transforms=shipped_transforms(tmp_path / "t"), database_url=url)
    assert "  database:   PostgreSQL postgresql://relay:***@db.internal:5432/dodo_transform" in text
    assert "pa55word" not in text


def test_the_mode_line_names_every_destination_host_never_a_token(tmp_path: Path) -> None:
    folder = shipped_transforms(tmp_path / "t")
    (folder / "notify.js").write_text("export default function handler(webhook) {}\n")
    (folder / "old.js").write_text("export default function handler(webhook) {}\n")
    (folder / "transforms.toml").write_text(
        '[notify]\nurl = "https://hooks.slack.com/services/T0/B0/tok3n"\nsecret_url = true\n'
        '[old]\nurl = "https://api.resend.com/emails"\nenabled = false\n'
    )
    text = shown(
        transforms=folder,
        segment_write_key="wk_live",
        allowed_hosts="api.example.com",
    )
    mode = next(line for line in text.splitlines() if line.startswith("  mode:"))
    assert mode == (
        "  mode:       LIVE: delivering to Segment at https://api.segment.io;"
        " notify to https://hooks.slack.com; handlers to api.example.com"
    )
    assert "tok3n" not in text and "wk_live" not in text


def test_in_dry_run_the_mode_line_still_names_the_other_destinations(tmp_path: Path) -> None:
    folder = shipped_transforms(tmp_path / "t")
    (folder / "transforms.toml").write_text(
        '[segment_track_payments]\nurl = "https://api.resend.com/emails"\n'
    )
    text = shown(transforms=folder)
    assert "DRY RUN" in text
    assert "; segment_track_payments to https://api.resend.com" in text


def test_the_banner_says_test_mode_webhooks_are_taken_never_the_secret(tmp_path: Path) -> None:
    test_secret = "whsec_" + "dGVzdC1tb2RlLXNlY3JldC1ieXRlcy0xMjM0NTY3OA=="
    text = shown(transforms=shipped_transforms(tmp_path / "t"), webhook_test_secret=test_secret)
    assert "  test mode:  webhooks signed with DODO_WEBHOOK_TEST_SECRET" in text
    assert "dGVzdC1tb2Rl" not in text
    assert "test mode:" not in shown(transforms=tmp_path / "t")


def test_a_password_given_as_a_url_parameter_is_hidden_too(tmp_path: Path) -> None:
    url = "postgresql://relay@db.internal/dodo?sslmode=require&password=pa55word"
    text = shown(transforms=shipped_transforms(tmp_path / "t"), database_url=url)
    assert (
        "  database:   PostgreSQL postgresql://relay@db.internal/dodo?sslmode=require&password=***"
        in text
    )
    assert "pa55word" not in text


def test_a_worker_instance_names_only_what_it_serves(tmp_path: Path) -> None:
    """A worker takes no webhooks and serves no console: its banner offers neither, nor a
    `send` that it would answer 404."""
    text = shown(transforms=shipped_transforms(tmp_path / "t"), role="worker", port=8792)
    assert "as a worker: it takes no webhooks" in text
    assert "  health:     http://127.0.0.1:8792/healthz" in text
    assert "  database:   SQLite" in text
    assert "webhooks:" not in text and "console:" not in text and "try it:" not in text
