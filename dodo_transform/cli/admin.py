"""The admin-API client: the commands that ask a running service (`deliveries`, `replay`,
`replays`, `backfill`, `erase`, `audit`, `status`, `transforms`, `events`, `show`), through
`admin_call`."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from dodo_transform.cli.options import (
    ConfigOption,
    ServerOption,
    base_url,
    settings_from,
    unreachable,
)
from dodo_transform.cli.output import fail, out, table_of
from dodo_transform.errors import PayloadError
from dodo_transform.outgoing import segment
from dodo_transform.store.records import DeliveryStatus
from dodo_transform.transforms.event import Event
from dodo_transform.transforms.quarantine import STRIKES


def admin_call(
    method: str,
    path: str,
    server: str | None,
    config: Path | None,
    **params: str | int | list[str] | None,
) -> object:
    """Ask the running service's admin API; its answer, or a one-line error and exit."""
    settings = settings_from(config)
    base = base_url(settings, server)
    headers = {}
    if settings.admin_token is not None:
        headers["Authorization"] = f"Bearer {settings.admin_token.get_secret_value()}"
    query = {name: value for name, value in params.items() if value is not None}
    try:
        response = httpx.request(method, base + path, params=query, headers=headers, timeout=60)
    except httpx.HTTPError as error:
        fail(unreachable(base, error, server))
    if response.status_code == 401:
        fail(
            f"{base} wants its admin token: set DODO_TRANSFORM_ADMIN_TOKEN to the service's, in "
            "the environment or in the settings file given with --config (e.g. "
            "--config /etc/dodo-transform/dodo-transform.env)",
            code=1,
        )
    try:
        answer = response.json() if response.content else None
    except ValueError:
        fail(
            f"{base} answered {path} with HTTP {response.status_code} and no JSON: is it "
            "dodo-transform? Give its base URL with --server, e.g. http://127.0.0.1:8000"
        )
    if not response.is_success:
        fail(f"{method} {path}: HTTP {response.status_code}: {_detail(answer)}", code=1)
    return answer


def _detail(answer: object) -> str:
    """An API error's `detail` as one line (FastAPI's 422 gives a list of problems)."""
    detail = answer.get("detail", answer) if isinstance(answer, dict) else answer
    if isinstance(detail, list):
        return "; ".join(
            f"{item.get('loc', ['?'])[-1]}: {item.get('msg', item)}"
            if isinstance(item, dict)
            else str(item)
            for item in detail
        )
    return str(detail)


def stored_event(event_id: int | None, server: str | None, config: Path | None) -> Event:
    """A stored event's body, from the running service."""
    stored = admin_call("GET", f"/api/events/{event_id}", server, config)
    assert isinstance(stored, dict)
    try:
        return Event.from_body(stored["body"], webhook_id=stored["webhook_id"])
    except PayloadError as error:
        fail(f"event {event_id}: {error}")


SearchOption = Annotated[
    str | None,
    typer.Option(
        "--search",
        help="Only events naming these words: a customer id, an email, a payment or "
        "subscription id, a webhook id (whole words, any case).",
    ),
]
TransformOption = Annotated[str | None, typer.Option(help="Only this transform's deliveries.")]
EventTypeOption = Annotated[
    str | None, typer.Option("--event-type", help="Only events of this type.")
]
SinceOption = Annotated[
    str | None, typer.Option(help="Only events received since, e.g. 2026-10-01 (UTC).")
]
UntilOption = Annotated[
    str | None, typer.Option(help="Only events received before, e.g. 2026-10-02 (UTC).")
]
DestinationOption = Annotated[
    str | None, typer.Option(help="Only deliveries to this host, e.g. api.segment.io.")
]


def deliveries(
    status: Annotated[
        DeliveryStatus | None, typer.Option(help="Only this status, e.g. failed, dead.")
    ] = None,
    search: SearchOption = None,
    transform: TransformOption = None,
    event_type: EventTypeOption = None,
    destination: DestinationOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    limit: Annotated[
        int, typer.Option(min=1, max=1000, help="At most this many, newest first.")
    ] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead.")] = False,
    server: ServerOption = None,
    config: ConfigOption = None,
) -> None:
    """List deliveries with their status, from the running service."""
    filters = {
        "q": search,
        "transform": transform,
        "event_type": event_type,
        "destination": destination,
        "since": since,
        "until": until,
    }
    rows = admin_call(
        "GET",
        "/api/deliveries",
        server,
        config,
        status=status.value if status else None,
        limit=limit,
        **filters,
    )
    assert isinstance(rows, list)
    if as_json:
        print(json.dumps(rows))
        return
    if not rows:
        if any(filters.values()):
            kind = f"{status.value} " if status else ""
            out.print(f"no {kind}deliveries match these filters", markup=False)
        elif status is not None:
            out.print(f"no {status.value} deliveries", markup=False)
        else:
            out.print("no deliveries yet: send one with `dodo-transform send FILE`")
        return
    table = table_of(
        "id", "updated", "webhook", "event", "transform", "message", "status", "tries", "error"
    )
    for row in rows:
        table.add_row(
            str(row["id"]),
            datetime.fromtimestamp(row["updated_at"]).strftime("%Y-%m-%d %H:%M:%S"),
            row["webhook_id"],
            row["event_type"],
            row["transform"],
            message_summary(row["request"]),
            row["status"],
            str(row["attempts"]),
            row["error"] or "",  # whole: the table wraps it
        )
    out.print(table, markup=False)


def message_summary(request: dict[str, Any] | None) -> str:
    """One delivery's message in a few words (see `segment.summary`)."""
    if request is None:
        return ""
    return segment.summary(request["method"], request["url"], request["payload"])


def replay(
    delivery_id: Annotated[int | None, typer.Argument(help="The delivery to replay.")] = None,
    failed: Annotated[bool, typer.Option("--failed", help="Replay every failed delivery.")] = False,
    dead: Annotated[bool, typer.Option("--dead", help="Replay every dead delivery.")] = False,
    status: Annotated[
        str | None,
        typer.Option(
            help="Replay every delivery in this status: failed, dead, or a held one "
            "(invalid, blocked, dry_run) once its cause is fixed."
        ),
    ] = None,
    search: SearchOption = None,
    transform: TransformOption = None,
    event_type: EventTypeOption = None,
    destination: DestinationOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    original: Annotated[
        bool,
        typer.Option(
            "--original",
            help="Send the stored requests again exactly as first made, instead of running "
            "the transform's current version on the stored events.",
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count them and show a few; change nothing.")
    ] = False,
    cancel: Annotated[
        int | None, typer.Option(help="Stop bulk replay ID (see `dodo-transform replays`).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON.")] = False,
    server: ServerOption = None,
    config: ConfigOption = None,
) -> None:
    """Replay a failed, dead or held delivery, or every one the filters choose (a bulk
    replay, run by the worker at a bounded pace: follow it with `dodo-transform replays`)."""
    chosen = [name for name, on in (("failed", failed), ("dead", dead)) if on]
    if status is not None:
        chosen.append(status)
    filters = {
        "q": search,
        "transform": transform,
        "event_type": event_type,
        "destination": destination,
        "since": since,
        "until": until,
    }
    if len(chosen) > 1:
        fail("give one of --failed, --dead, --status STATUS")
    if cancel is not None:
        if delivery_id is not None or chosen or any(filters.values()):
            fail("--cancel ID stops a bulk replay; give it alone")
        _cancel(cancel, as_json, server, config)
        return
    if delivery_id is not None:
        if chosen or any(filters.values()) or original or dry_run:
            fail(
                "give a delivery id or filters (--failed, --dead, --status STATUS, --search,"
                " --transform, --since ...), not both"
            )
        _replay_one(delivery_id, as_json, server, config)
        return
    if not chosen and not any(filters.values()):
        fail(
            "give a delivery id, or filters: one of --failed, --dead, --status STATUS, and/or"
            " --search, --transform, --event-type, --destination, --since, --until"
        )
    scope = filters | {
        "status": chosen[0] if chosen else None,
        "mode": "original" if original else "transform",
    }
    if dry_run:
        _preview(scope, as_json, server, config)
        return
    started = admin_call("POST", "/api/replays", server, config, **scope)
    assert isinstance(started, dict)
    if as_json:
        print(json.dumps(started))
    elif not started["total"]:
        out.print("no deliveries to replay match", markup=False)
    else:
        out.print(
            f"bulk replay {started['id']} started: {_deliveries(started['total'])}"
            f" ({_mode(started['mode'])}), paced by the worker. Follow it with `dodo-transform"
            f" replays`; stop it with `dodo-transform replay --cancel {started['id']}`",
            markup=False,
        )


def _replay_one(delivery_id: int, as_json: bool, server: str | None, config: Path | None) -> None:
    one = admin_call("POST", f"/api/deliveries/{delivery_id}/replay", server, config)
    assert isinstance(one, dict)
    if as_json:
        print(json.dumps(one))
    elif one["queued"]:
        out.print(f"delivery {delivery_id}: replay queued; the worker runs it shortly")
    else:
        statuses = ", ".join(one["statuses"]) or "nothing to deliver"
        out.print(f"delivery {delivery_id} replayed: {statuses}", markup=False)


def _preview(scope: dict[str, Any], as_json: bool, server: str | None, config: Path | None) -> None:
    preview = admin_call("POST", "/api/replays", server, config, dry_run="true", **scope)
    assert isinstance(preview, dict)
    if as_json:
        print(json.dumps(preview))
        return
    out.print(
        f"{_deliveries(preview['count'])} would be replayed ({_mode(preview['mode'])});"
        " nothing was changed",
        markup=False,
    )
    if preview["sample"]:
        table = table_of("id", "webhook", "event", "transform", "status", "error")
        for row in preview["sample"]:
            table.add_row(
                str(row["id"]),
                row["webhook_id"],
                row["event_type"],
                row["transform"],
                row["status"],
                row["error"] or "",
            )
        out.print(table, markup=False)


def _cancel(bulk_id: int, as_json: bool, server: str | None, config: Path | None) -> None:
    cancelled = admin_call("POST", f"/api/replays/{bulk_id}/cancel", server, config)
    assert isinstance(cancelled, dict)
    if as_json:
        print(json.dumps(cancelled))
        return
    out.print(
        f"bulk replay {bulk_id} cancelled after {cancelled['done']} of"
        f" {_deliveries(cancelled['total'])}; the rest are left as they were",
        markup=False,
    )


def _shown(key: str, value: object) -> str:
    """A bulk replay's filter as given: times as dates (UTC), the rest as they are."""
    if key in ("since", "until") and isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def _deliveries(count: int) -> str:
    return f"{count} deliver{'y' if count == 1 else 'ies'}"


def _mode(mode: str) -> str:
    return "their stored requests sent again" if mode == "original" else "the current transform"


def replays(
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead.")] = False,
    server: ServerOption = None,
    config: ConfigOption = None,
) -> None:
    """Bulk replays, newest first, with how far each got."""
    rows = admin_call("GET", "/api/replays", server, config, limit=limit)
    assert isinstance(rows, list)
    if as_json:
        print(json.dumps(rows))
        return
    if not rows:
        out.print("no bulk replays yet: start one with `dodo-transform replay --dead` (say)")
        return
    table = table_of("id", "started", "mode", "state", "progress", "replayed", "filters")
    for row in rows:
        table.add_row(
            str(row["id"]),
            datetime.fromtimestamp(row["created_at"]).strftime("%Y-%m-%d %H:%M:%S"),
            row["mode"],
            row["state"] + (f": {row['error']}" if row["error"] else ""),
            f"{row['done']}/{row['total']}",
            str(row["replayed"]),
            " ".join(f"{key}={_shown(key, value)}" for key, value in row["filters"].items()),
        )
    out.print(table, markup=False)


def backfill(
    transform: Annotated[str, typer.Argument(help="The transform to run, e.g. segment.")],
    since: Annotated[
        str | None,
        typer.Option(help="Only events received since, e.g. 2026-10-01 (UTC) [all stored]."),
    ] = None,
    event_type: Annotated[
        list[str] | None,
        typer.Option("--type", help="Only this event type, e.g. payment.succeeded; repeatable."),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Start without asking.")] = False,
    server: ServerOption = None,
    config: ConfigOption = None,
) -> None:
    """Run TRANSFORM over the stored events it has no delivery for (a transform added later),
    paced by the rate limit and dated when each event happened. Counts them first."""
    scope = {"transform": transform, "since": since, "type": event_type or None}
    counted = admin_call("POST", "/api/backfills", server, config, dry_run="true", **scope)
    assert isinstance(counted, dict)
    total = counted["remaining_total"]
    if not total:
        out.print(
            f"nothing to backfill: every stored event in scope has a delivery from {transform}"
        )
        return
    by_type = ", ".join(f"{n} {kind}" for kind, n in counted["remaining"].items())
    events_ = "1 stored event has" if total == 1 else f"{total} stored events have"
    out.print(f"{events_} no delivery from {transform}: {by_type}", markup=False)
    if not yes:
        if not sys.stdin.isatty():
            out.print("run again with --yes to backfill them")
            return
        if not typer.confirm(f"Run {transform} on {'it' if total == 1 else 'them'} now?"):
            raise typer.Exit(1)
    started = admin_call("POST", "/api/backfills", server, config, **scope)
    assert isinstance(started, dict)
    out.print(
        f"backfill {started['id']} started; the worker paces it to the rate limit. Follow it "
        "with `dodo-transform status`",
        markup=False,
    )


def erase(
    customer: Annotated[
        str,
        typer.Option(
            "--customer",
            help="The customer: their id (cus_...) or their email.",
            show_default=False,
        ),
    ],
    yes: Annotated[bool, typer.Option("--yes", help="Erase without asking.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON.")] = False,
    server: ServerOption = None,
    config: ConfigOption = None,
) -> None:
    """Delete every stored event whose body names a customer, with its deliveries and
    attempts (a GDPR erasure request), leaving no copy in the database. Counts them first."""
    counted = admin_call("POST", "/api/erasures", server, config, customer=customer, dry_run="true")
    assert isinstance(counted, dict)
    if as_json and not yes:
        print(json.dumps(counted))
        return
    if not counted["events"]:
        if as_json:
            print(json.dumps(counted))
        else:
            out.print(f"no stored event names {customer}", markup=False)
        return
    events_ = "1 stored event names" if counted["events"] == 1 else f"{counted['events']} stored"
    if counted["events"] != 1:
        events_ += " events name"
    if not as_json:
        out.print(
            f"{events_} {customer}, with {counted['deliveries']} deliveries and their attempts",
            markup=False,
        )
    if not yes:
        if not sys.stdin.isatty():
            out.print("run again with --yes to erase them")
            return
        if not typer.confirm("Erase them for good?"):
            raise typer.Exit(1)
    erased = admin_call("POST", "/api/erasures", server, config, customer=customer)
    assert isinstance(erased, dict)
    if as_json:
        print(json.dumps(erased))
        return
    out.print(
        f"erased {erased['events']} events and {erased['deliveries']} deliveries of {customer}",
        markup=False,
    )
    if not erased["wal_cleared"]:
        out.print(
            "the database's write-ahead log was in use: its old pages are cleared at its next"
            " checkpoint (within minutes while the service runs)"
        )


def audit(
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead.")] = False,
    server: ServerOption = None,
    config: ConfigOption = None,
) -> None:
    """The audit trail, newest first: every save, restore, replay, bulk replay, backfill,
    erasure and login, with when and from which session or address."""
    rows = admin_call("GET", "/api/audit", server, config, limit=limit)
    assert isinstance(rows, list)
    if as_json:
        print(json.dumps(rows))
        return
    if not rows:
        out.print("nothing recorded yet")
        return
    table = table_of("when", "action", "subject", "detail", "who")
    for row in rows:
        table.add_row(
            datetime.fromtimestamp(row["at"]).strftime("%Y-%m-%d %H:%M:%S"),
            row["action"],
            row["subject"],
            row["detail"],
            row["actor"],
        )
    out.print(table, markup=False)


def status(server: ServerOption = None, config: ConfigOption = None) -> None:
    """The running service at a glance: ready or why not, live or dry run, work by status."""
    answer = admin_call("GET", "/api/status", server, config)
    assert isinstance(answer, dict)
    out.print("ready" if answer["ready"] else "NOT READY", markup=False)
    for problem in answer["problems"]:
        out.print(f"  problem: {problem}", markup=False)
    if answer.get("settings_error"):
        out.print(f"transforms.toml: {answer['settings_error']}", markup=False)
    out.print(
        "mode: "
        + (
            "DRY RUN (no SEGMENT_WRITE_KEY: Segment calls of transforms without a write_key of"
            " their own are recorded, not sent)"
            if answer["dry_run"]
            else "live"
        )
    )
    out.print(f"events waiting for transforms: {answer['pending_events']}")
    counts = answer["deliveries"] or {"none yet": 0}
    out.print("deliveries: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    for paused in answer.get("paused_destinations", []):
        out.print(paused_line(paused), markup=False)
    show_instances(answer.get("instances", []), answer.get("version_differences", []))
    backfills = admin_call("GET", "/api/backfills", server, config, limit=5)
    assert isinstance(backfills, list)
    for shown in backfills:
        out.print(backfill_line(shown), markup=False)
    show_transforms(admin_call("GET", "/api/transforms", server, config))


def show_instances(live: list[dict[str, Any]], differences: list[dict[str, Any]]) -> None:
    """The live instances (host, role, release, last heartbeat), then each transform they do
    not all run at one version."""
    now = time.time()
    table = table_of("host", "role", "release", "last heartbeat", "instance (host:data dir)")
    for shown in live:
        ago = max(0, round(now - shown["last_heartbeat"]))
        table.add_row(
            shown["host"], shown["role"], shown["release"], f"{ago} s ago", shown["instance"]
        )
    out.print(f"instances: {len(live)} live", markup=False)
    if live:
        out.print(table, markup=False)
    for difference in differences:
        out.print(f"WARNING: {difference['message']}", markup=False)


def paused_line(shown: dict[str, Any]) -> str:
    """A destination its circuit breaker holds paused, for `status`."""
    probe = datetime.fromtimestamp(shown["next_probe_at"]).strftime("%H:%M:%S")
    return (
        f"PAUSED {shown['destination']} (transform {shown['transform']}): {shown['waiting']}"
        f" deliveries wait; last error: {shown['last_error']}; next probe at {probe}, it"
        " resumes at its first answer"
    )


def backfill_line(shown: dict[str, Any]) -> str:
    started = datetime.fromtimestamp(shown["created_at"]).strftime("%Y-%m-%d %H:%M")
    head = f"backfill {shown['id']} of {shown['transform']} (started {started}): "
    if shown["error"]:
        return head + f"stopped after {shown['ran']} events: {shown['error']}"
    if shown["done_at"] is not None:
        return head + f"done, {shown['ran']} events"
    return head + f"{shown['ran']} events run, {shown['remaining_total']} to go"


def list_transforms(server: ServerOption = None, config: ConfigOption = None) -> None:
    """The loaded transforms and their state: live, broken, quarantined or disabled."""
    show_transforms(admin_call("GET", "/api/transforms", server, config))


def show_transforms(rows: object) -> None:
    assert isinstance(rows, list)
    table = table_of("transform", "state", "version", "detail")
    for row in rows:
        state, detail = transform_state(row)
        table.add_row(row["name"], state, row["version"] or "", detail)
    out.print(table, markup=False)


def transform_state(row: dict[str, Any]) -> tuple[str, str]:
    """(state, detail) as a person reads them; the order says which state wins."""
    if row.get("load_error") and row.get("version") is None:
        return "broken", str(row["load_error"])
    if row.get("quarantined"):
        return "quarantined", (
            f"hit its limits on {STRIKES} events in a row: fix the file, then replay"
        )
    notes = [str(warning) for warning in row.get("warnings") or ()]
    if row.get("load_error"):
        notes.insert(0, f"the file does not load: {row['load_error']}")
    if not row.get("enabled", True):
        return "disabled", "; ".join(["enabled = false in transforms.toml", *notes])
    if row.get("load_error"):
        notes[0] = "the last good version runs; " + notes[0]
    return "live", "; ".join(notes)


def events(
    search: SearchOption = None,
    transform: Annotated[
        str | None, typer.Option(help="Only events with a delivery from this transform.")
    ] = None,
    event_type: EventTypeOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 20,
    server: ServerOption = None,
    config: ConfigOption = None,
) -> None:
    """Recent events, newest first, with what became of each."""
    filters = {
        "q": search,
        "transform": transform,
        "event_type": event_type,
        "since": since,
        "until": until,
    }
    rows = admin_call("GET", "/api/events", server, config, limit=limit, **filters)
    assert isinstance(rows, list)
    if not rows:
        if any(filters.values()):
            out.print("no events match these filters")
        else:
            out.print("no events yet: send one with `dodo-transform send FILE`")
        return
    table = table_of("id", "received", "webhook", "event", "deliveries")
    for row in rows:
        outcomes = ", ".join(f"{d['transform']}: {d['status']}" for d in row["deliveries"])
        table.add_row(
            str(row["id"]),
            datetime.fromtimestamp(row["received_at"]).strftime("%Y-%m-%d %H:%M:%S"),
            row["webhook_id"],
            row["event_type"],
            outcomes or "(not transformed yet)",
        )
    out.print(table, markup=False)


def show(
    event_id: Annotated[int, typer.Argument(help="The event's id (see `events`).")],
    server: ServerOption = None,
    config: ConfigOption = None,
) -> None:
    """One event: its body, and every delivery made from it with its attempts."""
    event = admin_call("GET", f"/api/events/{event_id}", server, config)
    assert isinstance(event, dict)
    mode = f", {event['mode']} mode" if event.get("mode") else ""
    out.print(
        f"event {event['id']}: {event['event_type']} ({event['webhook_id']}{mode})", markup=False
    )
    out.print(event["body"], markup=False)
    for delivery in event["deliveries"]:
        out.print(
            f"\ndelivery {delivery['id']}: {delivery['transform']} -> {delivery['status']}"
            + (f" ({delivery['error']})" if delivery["error"] else ""),
            markup=False,
        )
        request = delivery["request"]
        if request:
            out.print(f"  {request['method']} {request['url']}", markup=False)
            out.print(json.dumps(request["payload"], indent=2, ensure_ascii=False), markup=False)
        if delivery.get("sent_headers"):
            sent = ", ".join(f"{k}: {v}" for k, v in sorted(delivery["sent_headers"].items()))
            out.print(f"  sent with headers {sent}", markup=False)
        for attempt in delivery["attempt_log"]:
            when = datetime.fromtimestamp(attempt["at"]).strftime("%H:%M:%S")
            result = attempt["error"] or f"HTTP {attempt['status_code']}"
            out.print(f"  attempt at {when}: {result} ({attempt['duration_ms']:.0f} ms)")
