"""Search among a million stored events: how long finding one customer's deliveries takes.

    python benchmarks/bench_search.py [--events 1000000] [--store sqlite|postgres|both]

Bulk-loads `--events` payment events (each with one delivery, and its search terms as
`store/search.py` makes them) straight into a store's tables, not through HTTP: loading a
million through the intake would take most of an hour and measure the intake. Customers have
three events each. It then times, over many customers, the searches the API and the console
make (`/api/deliveries?q=...`, `/api/events?q=...`, and the count a bulk replay shows), in
the store and through the admin API of a server on the same data, and keeps medians.

The SQLite file is kept in `BENCH_DIR` and reused by the next run with the same count.
PostgreSQL loads into a database of its own (`dodo_bench_search`) on the local server,
kept for the next run the same way.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import psycopg

from dodo_transform.search_terms import event_terms
from dodo_transform.store import Filters, Store
from dodo_transform.store.postgres import PostgresStore
from dodo_transform.store.sqlite import SqliteStore
from dodo_transform.testing import SECRET, InProcessServer

BENCH_DIR = Path(tempfile.gettempdir()) / "dodo-bench-search"
POSTGRES_SERVER = "postgresql://root@127.0.0.1:5432/postgres"
POSTGRES_DB = "dodo_bench_search"
CHUNK = 20_000
PER_CUSTOMER = 3
SEARCHES = 41
TARGET_MS = 200.0


@dataclass(frozen=True)
class Result:
    store: str
    events: int
    load_seconds: float | None  # None: the data of an earlier run was reused
    deliveries_ms: float  # the store's list_deliveries(q=customer id), median
    events_ms: float
    count_ms: float
    email_ms: float
    common_ms: float  # the newest page of a term every event names (the business id)
    api_ms: float  # GET /api/deliveries?q=customer id through a server, median


def customer(n: int) -> str:
    return f"cus_{n:012d}"


def body(n: int) -> bytes:
    """A payment event of customer n // PER_CUSTOMER, about 800 bytes, as Dodo sends them."""
    who = n // PER_CUSTOMER
    event = {
        "business_id": "bus_P3SXLcppjXgagmHSVaH3N",
        "type": "payment.succeeded",
        "timestamp": "2026-08-14T09:21:07.481233Z",
        "data": {
            "payload_type": "Payment",
            "payment_id": f"pay_{n:016d}",
            "business_id": "bus_P3SXLcppjXgagmHSVaH3N",
            "status": "succeeded",
            "total_amount": 2499,
            "currency": "USD",
            "payment_method": "card",
            "card_holder_name": f"Holder {who}",
            "billing": {"country": "GB", "city": "London", "street": "12 Analytical Row"},
            "customer": {
                "customer_id": customer(who),
                "email": f"customer{who}@example.com",
                "name": f"Customer {who}",
            },
            "product_cart": [{"product_id": "pdt_e9mUw084cWnu0tzNpWw1C", "quantity": 1}],
            "subscription_id": f"sub_{who:012d}",
            "metadata": {"plan": "pro"},
            "created_at": "2026-08-14T09:20:51.152232Z",
        },
    }
    return json.dumps(event).encode()


REQUEST = json.dumps(
    {
        "method": "POST",
        "url": "https://api.segment.io/v1/track",
        "headers": {},
        "payload": {"event": "Payment Completed"},
    }
)


def rows(start: int, stop: int, now: float) -> Iterator[tuple[Any, ...]]:
    for n in range(start, stop):
        yield n + 1, f"msg_{n:012d}", "payment.succeeded", body(n), now - (stop - n)


# --- SQLite -----------------------------------------------------------------------------------


def load_sqlite(path: Path, events: int) -> float:
    started = time.perf_counter()
    SqliteStore(path).close()  # the schema, by the migrations
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous=OFF")
    now = time.time()
    for start in range(0, events, CHUNK):
        batch = list(rows(start, min(events, start + CHUNK), now))
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO events (id, webhook_id, event_type, body, received_at, state)"
            " VALUES (?, ?, ?, ?, ?, 'done')",
            batch,
        )
        db.executemany(
            "INSERT INTO deliveries (event_id, transform, version, idx, status, request,"
            " created_at, updated_at, destination) VALUES (?, 'segment', 'v1', 0, ?, ?, ?, ?,"
            " 'https://api.segment.io')",
            [(r[0], "dead" if r[0] % 10 == 0 else "delivered", REQUEST, r[4], r[4]) for r in batch],
        )
        db.executemany(
            "INSERT INTO event_terms (term, event_id) VALUES (?, ?)",
            [(term, r[0]) for r in batch for term in event_terms(r[1], r[3])],
        )
        db.execute("COMMIT")
        print(f"  sqlite: {start + len(batch):,} events", end="\r", flush=True)
    db.execute("ANALYZE")
    db.close()
    print()
    return time.perf_counter() - started


def sqlite_store(events: int) -> tuple[SqliteStore, float | None, Path]:
    folder = BENCH_DIR / f"sqlite-{events}"
    path = folder / "data" / "dodo-transform.db"
    load_seconds = None
    if not (folder / "loaded").exists():
        if path.exists():
            for leftover in path.parent.glob("dodo-transform.db*"):
                leftover.unlink()
        path.parent.mkdir(parents=True, exist_ok=True)
        load_seconds = load_sqlite(path, events)
        (folder / "loaded").touch()
    return SqliteStore(path, claims_work=False), load_seconds, folder


# --- PostgreSQL -------------------------------------------------------------------------------


def postgres_url(events: int) -> str:
    return POSTGRES_SERVER.rsplit("/", 1)[0] + f"/{POSTGRES_DB}_{events}"


def load_postgres(url: str, events: int) -> float:
    started = time.perf_counter()
    PostgresStore(url, owner="bench").close()  # the schema, by the migrations
    now = time.time()
    with psycopg.connect(url) as db:
        for start in range(0, events, CHUNK):
            batch = list(rows(start, min(events, start + CHUNK), now))
            with db.cursor() as cursor:
                with cursor.copy(
                    "COPY events (id, webhook_id, event_type, body, received_at, state) FROM STDIN"
                ) as copy:
                    for r in batch:
                        copy.write_row((*r, "done"))
                with cursor.copy(
                    "COPY deliveries (event_id, transform, version, idx, status, request,"
                    " created_at, updated_at, destination) FROM STDIN"
                ) as copy:
                    for r in batch:
                        status = "dead" if r[0] % 10 == 0 else "delivered"
                        copy.write_row(
                            (
                                r[0],
                                "segment",
                                "v1",
                                0,
                                status,
                                REQUEST,
                                r[4],
                                r[4],
                                "https://api.segment.io",
                            )
                        )
                with cursor.copy("COPY event_terms (term, event_id) FROM STDIN") as copy:
                    for r in batch:
                        for term in event_terms(r[1], r[3]):
                            copy.write_row((term, r[0]))
            db.commit()
            print(f"  postgres: {start + len(batch):,} events", end="\r", flush=True)
        db.execute("SELECT setval(pg_get_serial_sequence('events', 'id'), %s)", (events,))
        db.commit()
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("VACUUM ANALYZE")
    print()
    return time.perf_counter() - started


def postgres_store(events: int) -> tuple[PostgresStore, float | None, str]:
    url = postgres_url(events)
    name = url.rsplit("/", 1)[1]
    load_seconds = None
    with psycopg.connect(POSTGRES_SERVER, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        loaded = exists and _loaded(url, events)
        if not loaded:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{name}"')
    if not loaded:
        load_seconds = load_postgres(url, events)
    return PostgresStore(url, owner="bench", claims_work=False), load_seconds, url


def _loaded(url: str, events: int) -> bool:
    try:
        with psycopg.connect(url) as db:
            row = db.execute("SELECT COUNT(*) FROM deliveries").fetchone()
            return row is not None and row[0] == events
    except psycopg.Error:
        return False


# --- timing -----------------------------------------------------------------------------------


def median_ms(call: Callable[[str], object], picks: list[str]) -> float:
    times = []
    for pick in picks:
        started = time.perf_counter()
        call(pick)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def time_searches(store: Store, events: int) -> tuple[float, float, float, float, float]:
    rng = random.Random(7)
    who = [rng.randrange(events // PER_CUSTOMER) for _ in range(SEARCHES)]
    found = store.list_deliveries(filters=Filters(q=customer(who[0])))
    assert len(found) == PER_CUSTOMER, f"expected {PER_CUSTOMER} deliveries, found {len(found)}"
    ids = [customer(n) for n in who]
    return (
        median_ms(lambda q: store.list_deliveries(None, 100, filters=Filters(q=q)), ids),
        median_ms(lambda q: store.list_events(100, filters=Filters(q=q)), ids),
        median_ms(lambda q: store.count_deliveries(Filters(q=q)), ids),
        median_ms(
            lambda q: store.list_deliveries(None, 100, filters=Filters(q=q)),
            [f"customer{n}@example.com" for n in who],
        ),
        median_ms(
            lambda q: store.list_deliveries(None, 100, filters=Filters(q=q)),
            ["bus_P3SXLcppjXgagmHSVaH3N"] * 11,
        ),
    )


def time_api(workdir: Path, events: int, **settings: Any) -> float:
    (workdir / "transforms").mkdir(parents=True, exist_ok=True)
    rng = random.Random(11)
    picks = [customer(rng.randrange(events // PER_CUSTOMER)) for _ in range(SEARCHES)]
    server = InProcessServer(workdir, webhook_secret=SECRET, **settings)
    with server, httpx.Client(base_url=server.url, timeout=30) as client:

        def search(q: str) -> None:
            answer = client.get("/api/deliveries", params={"q": q})
            assert answer.status_code == 200 and len(answer.json()) == PER_CUSTOMER

        return median_ms(search, picks)


def measure(events: int, which: str) -> Result:
    if which == "sqlite":
        store, load_seconds, folder = sqlite_store(events)
        api_settings: dict[str, Any] = {}
        workdir = folder
    else:
        store, load_seconds, url = postgres_store(events)
        api_settings = {"database_url": url}
        workdir = BENCH_DIR / f"postgres-{events}"
    try:
        deliveries_ms, events_ms, count_ms, email_ms, common_ms = time_searches(store, events)
    finally:
        store.close()
    api_ms = time_api(workdir, events, **api_settings)
    return Result(
        which, events, load_seconds, deliveries_ms, events_ms, count_ms, email_ms, common_ms, api_ms
    )


def report(results: list[Result]) -> list[str]:
    lines = [
        "| store | events | load (s) | deliveries of a customer id | events | count | by email"
        " | a term every event names | `/api/deliveries?q=` |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        loaded = "reused" if r.load_seconds is None else f"{r.load_seconds:,.0f}"
        lines.append(
            f"| {r.store} | {r.events:,} | {loaded} | {r.deliveries_ms:.1f} ms | {r.events_ms:.1f} ms"
            f" | {r.count_ms:.1f} ms | {r.email_ms:.1f} ms | {r.common_ms:.1f} ms"
            f" | {r.api_ms:.1f} ms |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    arguments = parser.parse_args()
    stores = ["sqlite", "postgres"] if arguments.store == "both" else [arguments.store]
    results = [measure(arguments.events, which) for which in stores]
    print("\n".join(report(results)))
    slowest = max(max(r.deliveries_ms, r.api_ms) for r in results)
    verdict = "under" if slowest < TARGET_MS else "OVER"
    print(f"slowest median {slowest:.1f} ms: {verdict} the {TARGET_MS:.0f} ms target")


if __name__ == "__main__":
    main()
