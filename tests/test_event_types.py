"""Dodo's event types as types: `dodo-transform types` writes declarations that name every field
of every example body with its type, and the console serves the same fields to its editor."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from dodo_transform.cli import app
from dodo_transform.settings import load_settings
from dodo_transform.testing import SECRET, in_process
from dodo_transform.transforms import event_types
from dodo_transform.transforms.event_types import Member
from tests.conftest import EXAMPLES, ROOT, SHIPPED

EVENTS = sorted(EXAMPLES.glob("events/*.json"))
# The TypeScript compiler, where a developer has it: on PATH, or installed for the editor's
# bundle (`npm ci` in scripts/editor).
TSC = shutil.which("tsc") or next(iter(ROOT.glob("scripts/editor/node_modules/.bin/tsc")), None)


def members_by_name(members: tuple[Member, ...]) -> dict[str, Member]:
    return {member.name: member for member in members}


def test_types_writes_the_declarations_and_says_how_to_use_them(tmp_path: Path) -> None:
    out = tmp_path / "dodo-transform.d.ts"
    result = CliRunner().invoke(app, ["types", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}: the webhook object and 47 event types" in result.output
    assert '/// <reference path="./dodo-transform.d.ts" />' in result.output
    written = out.read_text()
    assert written.count('": Event<"') == 47 and "declare namespace Dodo {" in written
    refused = CliRunner().invoke(app, ["types", "--out", str(tmp_path / "nope" / "x.d.ts")])
    assert refused.exit_code == 2 and "is not a folder" in refused.output


def test_every_event_type_has_its_payload_type() -> None:
    catalogue = event_types.shipped()
    assert len(catalogue.event_types) == 47
    for path in EVENTS:
        body = json.loads(path.read_text())
        assert catalogue.kinds[body["type"]] == body["data"]["payload_type"]


def kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "[]" if isinstance(value, list) else "object"


def assert_typed(members: tuple[Member, ...], value: dict[str, Any], where: str) -> None:
    named = members_by_name(members)
    for name, inner in value.items():
        assert name in named, f"{where}.{name} is not declared"
        member = named[name]
        shown = member.type if not member.members else member.shown_type
        if name == "payload_type":
            assert member.type == json.dumps(inner) and member.optional
        elif kind_of(inner) == "object" and member.members:
            assert_typed(member.members, inner, f"{where}.{name}")
        elif kind_of(inner) == "object":
            assert shown.startswith("Record<string,"), (where, name, shown)
        elif kind_of(inner) == "[]":
            assert "[]" in shown or shown.startswith("Array<"), (where, name, shown)
        elif kind_of(inner) == "string" and name.endswith("_interval"):
            assert shown.startswith(event_types.INTERVAL), (where, name, shown)
        else:
            assert kind_of(inner) in shown, (where, name, inner, shown)
            assert shown != "unknown", f"{where}.{name}: no type (document it in DOCUMENTED)"


@pytest.mark.parametrize("path", EVENTS, ids=[path.stem for path in EVENTS])
def test_every_field_of_every_example_is_declared_with_its_type(path: Path) -> None:
    body = json.loads(path.read_text())
    catalogue = event_types.shipped()
    assert_typed(catalogue.data[catalogue.kinds[body["type"]]], body["data"], body["type"])


def test_what_the_examples_cannot_show_comes_from_the_documented_schemas() -> None:
    catalogue = event_types.shipped()
    payment = members_by_name(catalogue.data["Payment"])
    subscription = members_by_name(catalogue.data["Subscription"])
    assert payment["discount_id"].type == "string | null"  # null in every example
    assert payment["metadata"].type == "Record<string, string>"  # free-form, not the example's
    assert payment["total_amount"].note and "minor unit" in payment["total_amount"].note
    assert subscription["payment_frequency_interval"].type == event_types.INTERVAL
    assert subscription["trial_amount"].type == "number | null"
    customer = members_by_name(payment["customer"].members)
    assert customer["customer_id"].example == '"cus_8VbC6JDZzPEqfBPUdpj0K"'
    assert customer["phone_number"].type == "string | null"


def test_a_field_some_examples_lack_is_optional_and_one_some_have_null_is_nullable() -> None:
    catalogue = event_types.catalogue_of(
        [
            {"type": "a.b", "data": {"payload_type": "A", "x": 1, "y": "s"}},
            {"type": "a.c", "data": {"payload_type": "A", "x": None}},
        ]
    )
    x, y = catalogue.data["A"][1:]
    assert (x.type, x.optional) == ("number | null", False)
    assert (y.type, y.optional) == ("string", True)


# As VS Code checks a file with `// @ts-check` (its default libraries), and strict besides.
TSC_OPTIONS = ["--noEmit", "--allowJs", "--checkJs", "--strict", "--target", "es2022"]
TSC_OPTIONS += ["--lib", "es2022,dom"]


def tsc_check(tmp_path: Path, sources: dict[str, str]) -> str:
    """tsc's complaints about these handler files beside the declarations."""
    assert TSC is not None
    event_types.write_declarations(tmp_path / "dodo-transform.d.ts")
    for name, source in sources.items():
        (tmp_path / name).write_text(source)
    done = subprocess.run(
        [str(TSC), *TSC_OPTIONS, *sorted(sources)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.stdout


DOCS_TYPES = {
    "segment_track_payments": '"payment.succeeded"',
    "segment_identify_customer": '"payment.succeeded"',
    "segment_subscription_lifecycle": '"subscription.active" | "subscription.cancelled"',
}


@pytest.mark.skipif(TSC is None, reason="no TypeScript compiler (npm ci in scripts/editor)")
def test_the_docs_handlers_check_clean_and_a_slip_is_reported(tmp_path: Path) -> None:
    sources = {}
    for name, received in DOCS_TYPES.items():
        lines = event_types.usage("dodo-transform.d.ts", "X")
        lines[-1] = lines[-1].replace('"X"', received)
        sources[f"{name}.js"] = "\n".join(lines) + "\n" + (SHIPPED / f"{name}.js").read_text()
    assert tsc_check(tmp_path, sources) == ""
    slip = sources["segment_track_payments.js"].replace("p.total_amount", "p.total_amout")
    slip = slip.replace(
        'webhook.url = "https', 'webhook.eventType = "x";\n    webhook.url = "https'
    )
    complaints = tsc_check(tmp_path, {"slip.js": slip})
    assert "Property 'total_amout' does not exist on type 'Payment'" in complaints
    assert "Cannot assign to 'eventType' because it is a read-only property" in complaints


def test_the_console_serves_the_fields_and_each_sample_names_its_type(tmp_path: Path) -> None:
    folder = tmp_path / "transforms"
    shutil.copytree(SHIPPED, folder)
    settings = load_settings(
        transforms=folder, data_dir=tmp_path / "data", webhook_secret=SECRET, worker_process=False
    )

    async def main() -> None:
        async with in_process(settings, transport=httpx.MockTransport(lambda r: None)) as (
            _,
            client,
        ):
            answer = await client.get("/console/event-fields.json")
            assert answer.status_code == 200
            assert answer.headers["content-type"] == "application/json"
            fields = answer.json()
            assert len(fields["kinds"]) == 47 and fields["kinds"]["refund.succeeded"] == "Refund"
            data = {member["name"]: member for member in fields["data"]["Payment"]}
            customer = {member["name"]: member for member in data["customer"]["members"]}
            assert customer["customer_id"] == {
                "name": "customer_id",
                "type": "string",
                "example": '"cus_8VbC6JDZzPEqfBPUdpj0K"',
            }
            assert [m["name"] for m in fields["webhook"]][:3] == ["method", "url", "eventType"]
            page = await client.get(
                "/transforms/segment_track_payments", headers={"Accept": "text/html"}
            )
            assert 'data-event-type="payment.succeeded"' in page.text

    asyncio.run(main())
