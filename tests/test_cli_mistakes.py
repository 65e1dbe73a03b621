"""User mistakes at the command line: one line on stderr saying what to do, a non-zero exit,
no traceback, and nothing created before the mistake is found."""

from __future__ import annotations

import base64
import fcntl
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from dodo_transform import __version__
from tests.command_line import Ran
from tests.command_line import run as cli
from tests.conftest import EXAMPLES, ROOT, SHIPPED


def one_line_error(done: Ran, code: int, *words: str) -> None:
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr + done.stdout
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines and all(word in done.stderr for word in words), done.stderr


def test_serve_with_a_missing_transforms_folder_creates_nothing(tmp_path: Path) -> None:
    done = cli(
        "serve", "--transforms", tmp_path / "nowhere", "--data-dir", tmp_path / "data", cwd=tmp_path
    )
    one_line_error(done, 2, "transforms folder", "does not exist", "--transforms")
    assert "is running" not in done.stdout
    assert not (tmp_path / "data").exists()


def test_serve_with_a_data_dir_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("")
    done = cli("serve", "--transforms", SHIPPED, "--data-dir", tmp_path / "plain", cwd=tmp_path)
    one_line_error(done, 2, "is a file", "--data-dir")


def test_send_with_an_invalid_secret_in_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "dodo-transform.env").write_text("DODO_WEBHOOK_SECRET=whsec_%%%not-base64\n")
    done = cli("send", EXAMPLES / "events" / "payment.succeeded.json", cwd=tmp_path)
    one_line_error(done, 2, "DODO_WEBHOOK_SECRET")


def test_send_without_any_secret_says_where_the_services_is(tmp_path: Path) -> None:
    """No secret set and none made yet: the service's comes first (on PostgreSQL no instance
    makes one up, so "run serve once" alone would send a user the wrong way)."""
    done = cli("send", EXAMPLES / "events" / "payment.succeeded.json", cwd=tmp_path)
    one_line_error(done, 2, "set DODO_WEBHOOK_SECRET to the service's", "--config", "SQLite")


@contextmanager
def not_our_service(
    status: int = 200, body: bytes = b"<html>a different site</html>"
) -> Iterator[str]:
    """A web server answering every GET with `status` and `body`."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_GET

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_deliveries_from_a_server_that_is_not_this_service(tmp_path: Path) -> None:
    with not_our_service() as url:
        done = cli("deliveries", "--server", url, cwd=tmp_path)
    one_line_error(done, 2, "no JSON", "is it dodo-transform", "--server")


def test_deliveries_with_bad_options_say_what_is_allowed(tmp_path: Path) -> None:
    one_line_error(cli("deliveries", "--limit", "0", cwd=tmp_path), 2, "--limit")
    one_line_error(cli("deliveries", "--status", "bogus", cwd=tmp_path), 2, "'bogus' is not one of")


def test_an_unreachable_server_is_one_line(tmp_path: Path) -> None:
    done = cli("deliveries", "--server", "http://127.0.0.1:9", cwd=tmp_path)
    one_line_error(done, 2, "cannot reach http://127.0.0.1:9: ", "is it running there?")
    bare = cli("deliveries", "--server", "127.0.0.1:9", cwd=tmp_path)  # no scheme: http
    one_line_error(bare, 2, "cannot reach http://127.0.0.1:9: ")
    assert ".." not in bare.stderr
    default = cli("deliveries", cwd=tmp_path, env={"DODO_TRANSFORM_PORT": "9"})
    one_line_error(default, 2, "cannot reach http://127.0.0.1:9", "give --server URL", "--config")


def test_a_client_without_the_admin_token_is_told_where_to_put_it(tmp_path: Path) -> None:
    with not_our_service(status=401, body=b'{"detail": "admin API: send Authorization"}') as url:
        done = cli("status", "--server", url, cwd=tmp_path)
    one_line_error(done, 1, "wants its admin token", "DODO_TRANSFORM_ADMIN_TOKEN", "--config")


def test_client_commands_read_the_services_settings_file(tmp_path: Path) -> None:
    settings = tmp_path / "service.env"
    settings.write_text("DODO_TRANSFORM_PORT=9\n")
    for command in (["status"], ["deliveries"], ["events"], ["transforms"], ["show", "1"]):
        done = cli(*command, "--config", settings, cwd=tmp_path)
        one_line_error(done, 2, "cannot reach http://127.0.0.1:9")


def test_version_and_plain_help(tmp_path: Path) -> None:
    done = cli("--version", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == f"dodo-transform {__version__}"
    help_text = cli("send", "--help", cwd=tmp_path).stdout
    assert "[a new one]" in help_text  # defaults in brackets are shown, not eaten as markup
    assert "<bool>" not in cli("test", "--help", cwd=tmp_path).stdout


def test_the_console_script_runs_the_command_line(tmp_path: Path) -> None:
    """`python -m dodo_transform`, as the installed `dodo-transform` script runs it."""
    done = subprocess.run(
        [sys.executable, "-m", "dodo_transform", "--version"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 0 and done.stdout.strip() == f"dodo-transform {__version__}"


def test_a_misspelt_setting_is_named_with_the_nearest_real_one(tmp_path: Path) -> None:
    (tmp_path / "dodo-transform.env").write_text("DODO_TRANSFOM_HOST=0.0.0.0\n")
    done = cli(
        "deliveries", "--server", "http://127.0.0.1:9", cwd=tmp_path, env={"SEGMENT_WRITEKEY": "k"}
    )
    assert (
        "DODO_TRANSFOM_HOST in dodo-transform.env is not a dodo-transform setting; did you mean DODO_TRANSFORM_HOST?"
        in done.stderr
    )
    assert (
        "SEGMENT_WRITEKEY in the environment is not a dodo-transform setting; did you mean SEGMENT_WRITE_KEY?"
        in done.stderr
    )


def test_test_wants_an_event_file_or_a_stored_event_not_both(tmp_path: Path) -> None:
    handler = SHIPPED / "segment_track_payments.js"
    neither = cli("test", handler, cwd=tmp_path)
    one_line_error(neither, 2, "give an EVENT file or --event-id N")
    both = cli(
        "test",
        handler,
        EXAMPLES / "events" / "payment.succeeded.json",
        "--event-id",
        "1",
        cwd=tmp_path,
    )
    one_line_error(both, 2, "give an EVENT file or --event-id N")


def test_a_replay_of_one_delivery_takes_no_filters(tmp_path: Path) -> None:
    done = cli("replay", "7", "--transform", "segment", cwd=tmp_path)
    one_line_error(done, 2, "give a delivery id or filters", "not both")


def test_a_backfill_without_a_service_says_how_to_find_one(tmp_path: Path) -> None:
    done = cli("backfill", "segment", "--config", tmp_path / "nowhere.env", cwd=tmp_path)
    one_line_error(done, 2, "config file", "nowhere.env does not exist")
    done = cli("backfill", "segment", cwd=tmp_path, env={"DODO_TRANSFORM_PORT": "9"})
    one_line_error(done, 2, "cannot reach http://127.0.0.1:9", "dodo-transform serve")


def test_a_refused_send_names_the_secret_it_signed_with(tmp_path: Path) -> None:
    event = EXAMPLES / "events" / "payment.succeeded.json"
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "webhook-secret").write_text("whsec_" + "A" * 32 + "\n")
    with not_our_service(status=401, body=b'{"error": "signature not verified"}') as url:
        from_file = cli(
            "send", event, "--server", url, "--data-dir", tmp_path / "data", cwd=tmp_path
        )
        from_env = cli(
            "send",
            event,
            "--server",
            url,
            cwd=tmp_path,
            env={"DODO_WEBHOOK_SECRET": "whsec_" + "B" * 32},
        )
    assert from_file.returncode == 1 and from_file.stdout.startswith("401")
    assert f"signed with the secret in {tmp_path / 'data' / 'webhook-secret'}" in from_file.stderr
    assert "signed with DODO_WEBHOOK_SECRET; the service checks its own" in from_env.stderr


def test_serve_on_a_busy_port_says_so_before_anything_is_created(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = cli(
            "serve",
            "--port",
            str(port),
            "--transforms",
            SHIPPED,
            "--data-dir",
            tmp_path / "data",
            cwd=tmp_path,
        )
    one_line_error(done, 2, f"port {port} on 127.0.0.1 is in use", "--port")
    assert "is running" not in done.stdout
    assert not (tmp_path / "data").exists()


def test_a_second_serve_on_the_same_data_dir_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with (data / "serve.lock").open("w") as held:  # as a running serve holds it
        fcntl.flock(held, fcntl.LOCK_EX)
        held.write("4242\n")
        held.flush()
        done = cli(
            "serve", "--port", "0", "--transforms", SHIPPED, "--data-dir", data, cwd=tmp_path
        )
    one_line_error(done, 2, f"data dir {data} is in use by another dodo-transform serve (pid 4242)")
    assert "is running" not in done.stdout
    assert not (data / "dodo-transform.db").exists()


def test_the_banner_warns_of_a_mangled_secret_and_an_empty_folder(tmp_path: Path) -> None:
    from dodo_transform.settings import load_settings
    from dodo_transform.startup import banner

    def shown(**settings: object) -> str:
        return banner(load_settings(**settings), created_secret=False)

    good = "whsec_" + base64.b64encode(b"k" * 32).decode()
    assert "WARNING" not in shown(transforms=SHIPPED, webhook_secret=good)
    mangled = shown(transforms=SHIPPED, webhook_secret="whsec_copied with spaces!")
    assert "DODO_WEBHOOK_SECRET is not a whsec_... secret" in mangled
    assert "copied with spaces" not in mangled  # never the secret itself
    assert f"no .js handlers in {tmp_path}" in shown(transforms=tmp_path, webhook_secret=good)


def test_the_banner_warns_of_secrets_other_users_can_read_or_git_would_commit(
    tmp_path: Path,
) -> None:
    from dodo_transform.settings import load_settings
    from dodo_transform.startup import banner, settings_file_warnings

    project = tmp_path / "project"
    subprocess.run(["git", "init", "--quiet", str(project)], check=True)
    file = project / "dodo-transform.env"
    file.write_text("SEGMENT_WRITE_KEY=wk_never_shown\nDODO_TRANSFORM_PORT=8123\n")
    file.chmod(0o644)
    data = project / ".dodo-transform"
    data.mkdir()
    settings = load_settings(file, transforms=SHIPPED, data_dir=data)
    shown = banner(settings, created_secret=False)
    assert f"{file} holds secrets (SEGMENT_WRITE_KEY) that other users can read: chmod 600" in shown
    assert f"is not ignored by the git work tree {project.resolve()}" in shown
    assert f"the data dir {data} (customers' emails, the signing secret) is not ignored" in shown
    assert "wk_never_shown" not in shown
    assert shown.count("WARNING") == 3
    file.chmod(0o600)
    (project / ".gitignore").write_text("dodo-transform.env\n.dodo-transform/\n")
    assert settings_file_warnings(settings) == []
    file.write_text("DODO_TRANSFORM_PORT=8123\n")  # no secret in it: no matter where it is
    (project / ".gitignore").unlink()
    file.chmod(0o644)
    assert settings_file_warnings(load_settings(file, transforms=SHIPPED, data_dir=data)) == [
        f"the data dir {data} (customers' emails, the signing secret) is not ignored by the git"
        f" work tree {project.resolve()}: add it to .gitignore"
    ]


def test_this_checkouts_gitignore_keeps_the_settings_file_and_the_data_dir_out() -> None:
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "dodo-transform.env" in ignored and ".dodo-transform/" in ignored


def test_serve_with_a_mistake_in_transforms_toml_names_it_and_creates_nothing(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "transforms"
    folder.mkdir()
    (folder / "segment.js").write_text((SHIPPED / "segment_track_payments.js").read_text())
    (folder / "transforms.toml").write_text("[segment]\nenabeld = false\n")
    done = cli("serve", "--transforms", folder, "--data-dir", tmp_path / "data", cwd=tmp_path)
    one_line_error(done, 2, "[segment] enabeld: unknown key; did you mean enabled?")
    assert not (tmp_path / "data").exists()


def test_the_banners_send_names_what_the_service_was_started_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dodo_transform.settings import load_settings
    from dodo_transform.startup import try_it

    # Started from a checkout (here, a copy of what it needs): the example is named from there.
    example = tmp_path / "examples" / "events" / "payment.succeeded.json"
    example.parent.mkdir(parents=True)
    example.write_bytes((EXAMPLES / "events" / "payment.succeeded.json").read_bytes())
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "live.env"
    config.write_text("DODO_TRANSFORM_PORT=8123\n")
    command = try_it(load_settings(config, data_dir=tmp_path / "d", transforms=SHIPPED))
    command = command[command.index("send") :]
    assert command[:2] == ["send", "examples/events/payment.succeeded.json"]
    assert command[2:] == [
        "--server",
        "http://127.0.0.1:8123",
        "--config",
        str(config),
        "--data-dir",
        str(tmp_path / "d"),
    ]
    # A configured secret is in the settings file: no data dir needed; defaults need nothing.
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    assert "--data-dir" not in try_it(load_settings(webhook_secret=secret, data_dir=tmp_path))
    default = try_it(load_settings())
    assert default[default.index("send") :] == ["send", "examples/events/payment.succeeded.json"]


def test_an_empty_filtered_list_says_what_it_was_filtered_by(tmp_path: Path) -> None:
    with not_our_service(body=b"[]") as url:
        dead = cli("deliveries", "--status", "dead", "--server", url, cwd=tmp_path)
        every = cli("deliveries", "--server", url, cwd=tmp_path)
    assert dead.returncode == 0 and dead.stdout.strip() == "no dead deliveries"
    assert every.stdout.startswith("no deliveries yet: send one")


@pytest.mark.parametrize(
    "command", [("send", EXAMPLES / "events" / "payment.succeeded.json"), ("status",)]
)
def test_the_banners_webhook_url_given_as_server_says_what_to_give(
    tmp_path: Path, command: tuple[str | Path, ...]
) -> None:
    pasted = "http://127.0.0.1:8000/webhooks/dodo"
    done = cli(*command, "--server", pasted, cwd=tmp_path)
    one_line_error(
        done, 2, f"--server {pasted} is the webhook URL", "--server http://127.0.0.1:8000"
    )


def test_a_send_answered_404_says_where_webhooks_go(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "webhook-secret").write_text("whsec_" + "A" * 32 + "\n")
    event = EXAMPLES / "events" / "payment.succeeded.json"
    with not_our_service(status=404, body=b'{"detail": "Not Found"}') as url:
        done = cli("send", event, "--server", f"{url}/relay", "--data-dir", tmp_path / "data")
    assert done.returncode == 1 and done.stdout.startswith("404")
    assert f"hint: nothing takes webhooks at {url}/relay/webhooks/dodo" in done.stderr
    assert "give --server the service's base URL" in done.stderr
