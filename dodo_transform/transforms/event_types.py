"""Dodo's webhook events as types: what `dodo-transform types` writes as TypeScript declarations
(`.d.ts`), and what the console's editor completes after `webhook.payload.data.`.

The shapes come from the example bodies this install ships, one per event type
(`checks.examples_folder()`), merged per payload type (the 11 kinds of `data`: Payment,
Subscription, Refund ...) so that every field any of a kind's examples has is there, optional
where some example lacks it, nullable where some example has `null`. What an example cannot
show (a field that is `null` or `[]` in all of them, a free-form `metadata` map, the enumerated
intervals, money in minor units) is taken from Dodo's documented schemas (SDK 2.47): `DOCUMENTED`
and `NOTES` below.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from dodo_transform.transforms.checks import examples_folder

NAMESPACE = "Dodo"
INTERVAL = '"Day" | "Week" | "Month" | "Year"'
FREE_FORM = "Record<string, string>"
# Types of fields the examples cannot show, by payload type and path inside `data`.
_EVERY_KIND = {"customer.phone_number": "string | null", "metadata": FREE_FORM}
DOCUMENTED: Mapping[str, Mapping[str, str]] = {
    "Payment": {
        "discount_id": "string | null",
        "discounts": "string[] | null",
        "refund_status": '"partial" | "full" | null',
        "refunds": "unknown[]",
        "disputes": "unknown[]",
        "customer.metadata": FREE_FORM,
    },
    "Subscription": {
        "custom_field_responses": "Array<{ key: string; value: string }> | null",
        "discount_cycles_remaining": "number | null",
        "discount_id": "string | null",
        "discounts": "string[] | null",
        "scheduled_change": "Record<string, unknown> | null",
        "trial_amount": "number | null",
        "meters": "unknown[]",
        "credit_entitlement_cart": "unknown[]",
        "meter_credit_entitlement_cart": "unknown[]",
    },
    "Dispute": {"is_resolved_by_rdr": "boolean | null"},
    "EntitlementGrant": {"subscription_id": "string | null"},
    "LicenseKey": {"expires_at": "string | null", "subscription_id": "string | null"},
}
# What a field means, where its name alone does not say (shown on hover and in the .d.ts).
NOTES: Mapping[str, str] = {
    "total_amount": "an integer in the currency's minor unit (cents; JPY has none)",
    "tax": "an integer in the currency's minor unit",
    "settlement_amount": "an integer in the settlement currency's minor unit",
    "settlement_tax": "an integer in the settlement currency's minor unit",
    "recurring_pre_tax_amount": "an integer in the currency's minor unit",
    "currency": "ISO 4217",
    "settlement_currency": "ISO 4217",
    "country": "ISO 3166-1 alpha-2",
    "payload_type": "documented for every event, but dispatch on `type`",
    "metadata": "free-form strings set by the merchant",
}
_IDENTIFIER = re.compile(r"^[A-Za-z_$][\w$]*$")
_EXAMPLE_CHARS = 60


@dataclass
class Shape:
    """What the examples show of one value: its JSON kinds, and for objects and arrays, what
    they hold."""

    kinds: set[str] = field(default_factory=set)  # string number boolean null object array
    fields: dict[str, Shape] = field(default_factory=dict)
    required: set[str] | None = None  # fields every object seen had (None: no object yet)
    items: Shape | None = None
    example: Any = None  # the first value seen that is not null (None: none)

    def add(self, value: Any) -> Shape:
        """Merge one more value into what is known."""
        if value is not None and self.example is None:
            self.example = value
        if isinstance(value, dict):
            self._add_object(value)
        elif isinstance(value, list):
            self.kinds.add("array")
            for item in value:
                self.items = (self.items or Shape()).add(item)
        else:
            self.kinds.add(_kind_of(value))
        return self

    def _add_object(self, value: Mapping[str, Any]) -> None:
        self.kinds.add("object")
        for name, inner in value.items():
            self.fields.setdefault(name, Shape()).add(inner)
        seen = set(value)
        self.required = seen if self.required is None else self.required & seen


def _kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "string"


@dataclass(frozen=True)
class Member:
    """One field as the editor shows it: its TypeScript type, an example, what it holds."""

    name: str
    type: str
    example: str | None = None
    note: str | None = None
    optional: bool = False
    members: tuple[Member, ...] = ()

    @property
    def nullable(self) -> bool:
        return self.type.endswith(" | null")

    @property
    def shown_type(self) -> str:
        """The type in a line: an object's members are listed on their own."""
        return ("object" + " | null" * self.nullable) if self.members else self.type

    def to_json(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"name": self.name, "type": self.shown_type}
        if self.example is not None:
            shown["example"] = self.example
        if self.note:
            shown["note"] = self.note
        if self.members:
            shown["members"] = [member.to_json() for member in self.members]
        return shown


@dataclass(frozen=True)
class Catalogue:
    """The event types, the payload type of each, and each payload type's members."""

    kinds: Mapping[str, str]  # event type -> payload type
    data: Mapping[str, tuple[Member, ...]]  # payload type -> the members of `data`
    examples: Mapping[str, Mapping[str, Any]]  # event type -> its example body

    @property
    def event_types(self) -> list[str]:
        return sorted(self.kinds)


def catalogue_of(bodies: Iterable[Mapping[str, Any]]) -> Catalogue:
    """The types of these example bodies (one or more per event type)."""
    shapes: dict[str, Shape] = {}
    kinds: dict[str, str] = {}
    examples: dict[str, Mapping[str, Any]] = {}
    for body in bodies:
        data = body["data"]
        kind = str(data.get("payload_type") or _kind_from_type(body["type"]))
        kinds[body["type"]] = kind
        examples.setdefault(body["type"], body)
        shapes.setdefault(kind, Shape()).add(data)
    members = {kind: _members(shape, DOCUMENTED.get(kind, {})) for kind, shape in shapes.items()}
    return Catalogue(kinds, members, examples)


@cache
def shipped() -> Catalogue:
    """The types of the example events this install ships."""
    folder = examples_folder()
    if folder is None:
        raise FileNotFoundError("this install ships no example events (examples/events/)")
    paths = sorted(folder.glob("*.json"))
    return catalogue_of(json.loads(path.read_text("utf-8")) for path in paths)


def _kind_from_type(event_type: str) -> str:
    """`license_key.created` -> `LicenseKey`: for a body without `payload_type`."""
    return "".join(part.title() for part in event_type.split(".")[0].split("_"))


def _members(shape: Shape, documented: Mapping[str, str], path: str = "") -> tuple[Member, ...]:
    found = []
    for name, inner in shape.fields.items():
        where = f"{path}{name}"
        if where == "payload_type":  # documented for every kind, yet best treated as optional
            kind = json.dumps(inner.example)
            found.append(Member(name, kind, kind, NOTES.get(name), optional=True))
            continue
        typed = documented.get(where) or _EVERY_KIND.get(where) or _EVERY_KIND.get(name)
        nested: tuple[Member, ...] = ()
        if typed is None and inner.kinds - {"null"} == {"object"} and inner.fields:
            nested = _members(inner, documented, f"{where}.")
        found.append(
            Member(
                name=name,
                type=typed or _ts_type(inner, name, nested),
                example=_example(inner.example),
                note=NOTES.get(name),
                optional=shape.required is not None and name not in shape.required,
                members=nested,
            )
        )
    return tuple(found)


def _ts_type(shape: Shape, name: str, nested: tuple[Member, ...] = ()) -> str:
    """The TypeScript type of what the examples show (`nested`: an object's members)."""
    parts = []
    if "object" in shape.kinds:
        parts.append(_object_type(nested) if nested else "Record<string, unknown>")
    if "array" in shape.kinds:
        parts.append(_array_type(shape.items, name))
    if "string" in shape.kinds:
        parts.append(INTERVAL if name.endswith("_interval") else "string")
    parts += [kind for kind in ("number", "boolean") if kind in shape.kinds]
    if not parts:
        return "unknown"  # only ever null: a field for DOCUMENTED
    return " | ".join(parts + (["null"] if "null" in shape.kinds else []))


def _array_type(items: Shape | None, name: str) -> str:
    if items is None:
        return "unknown[]"  # only ever empty: a field for DOCUMENTED
    nested = _members(items, {}) if items.kinds == {"object"} else ()
    inner = _ts_type(items, name, nested)
    return f"{inner}[]" if _IDENTIFIER.match(inner) else f"Array<{inner}>"


def _object_type(members: tuple[Member, ...]) -> str:
    fields = "; ".join(f"{_key(m.name)}{'?' if m.optional else ''}: {m.type}" for m in members)
    return f"{{ {fields} }}"


def _key(name: str) -> str:
    return name if _IDENTIFIER.match(name) else json.dumps(name)


def _example(value: Any) -> str | None:
    if value is None:
        return None
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= _EXAMPLE_CHARS else text[: _EXAMPLE_CHARS - 1] + "…"


# --- what the handler gets, around `data` ------------------------------------------------------

WEBHOOK_MEMBERS = (
    Member("method", '"POST" | "PUT" | "PATCH"', '"POST"', "the request's method"),
    Member("url", "string", '""', "where the request goes; left empty, the event is skipped"),
    Member("eventType", "EventType", '"payment.succeeded"', "read-only (changes are ignored)"),
    Member(
        "mode",
        '"live" | "test" | null',
        '"live"',
        "read-only: which of Dodo's endpoints sent it (null: not known, e.g. a sample)",
    ),
    Member("payload", "Events[T]", None, "the webhook body; set it to what is sent"),
    Member("cancel", "boolean", "false", "true: send nothing for this event"),
    Member("headers", "Record<string, string | number>", "{}", "extra request headers"),
    Member("env", "Readonly<Record<string, string>>", "{}", "env of transforms.toml; read-only"),
)


def envelope_members(event_type: str, catalogue: Catalogue) -> tuple[Member, ...]:
    """The members of `webhook.payload` for one event type (`data`'s members are the payload
    type's, `Catalogue.data`)."""
    body = catalogue.examples[event_type]
    kind = catalogue.kinds[event_type]
    return (
        Member("business_id", "string", _example(body.get("business_id"))),
        Member("type", json.dumps(event_type), json.dumps(event_type), "the event type"),
        Member("timestamp", "string", _example(body.get("timestamp")), "ISO-8601, event time"),
        Member("data", kind, None, f"the {kind}"),
    )


def editor_fields(catalogue: Catalogue | None = None) -> dict[str, Any]:
    """What the console's editor completes and shows on hover: the webhook's members, each
    event type's payload members and payload type, and the members of each payload type's
    `data` (nested objects inside)."""
    catalogue = catalogue or shipped()
    return {
        "webhook": [member.to_json() for member in WEBHOOK_MEMBERS],
        "payloads": {
            event_type: [member.to_json() for member in envelope_members(event_type, catalogue)]
            for event_type in catalogue.event_types
        },
        "kinds": dict(catalogue.kinds),
        "data": {
            kind: [member.to_json() for member in members]
            for kind, members in catalogue.data.items()
        },
    }


# --- the .d.ts ---------------------------------------------------------------------------------

HEADER = """\
// Types of the object a dodo-transform handler receives, for Dodo Payments' {count} webhook
// event types. Written by `dodo-transform types` from Dodo's documented schemas and the
// example bodies it ships; write it again rather than editing it.
//
// At the top of a handler file beside it (comments only: the file still runs unchanged), with
// the event types the handler receives (its `events` in transforms.toml), or none for all:
//   // @ts-check
//   /// <reference path="./{filename}" />
//   /** @param {{Dodo.Webhook<"payment.succeeded">}} webhook */
//   function handler(webhook) {{
//     webhook.payload.data.customer.customer_id; // a string
// VS Code then completes the fields and checks them. A handler for several types reaches the
// fields of one after `if (webhook.eventType === "payment.succeeded")` or a `switch`.
"""

WEBHOOK_DECLARATION = """\
  /** What a handler receives for events of the types `T` (all, by default), told apart by
   * `eventType`: `if (webhook.eventType === "payment.succeeded")` reaches that type's fields. */
  type Webhook<T extends EventType = EventType> = {{ [K in T]: WebhookOf<K> }}[T];

  /** The webhook object for one event type: return it, changed (or an array of them). */
  interface WebhookOf<T extends EventType> {{
{members}
    /** The webhook body ({{@link Events}}); set it to whatever the destination should get. */
    get payload(): Events[T];
    set payload(value: unknown);
  }}

  /** A webhook body: the envelope around one `data`. */
  interface Event<T extends EventType, D> {{
    /** The business the event belongs to. */
    business_id: string;
    /** The event type. */
    type: T;
    /** When the event happened (ISO-8601). */
    timestamp: string;
    data: D;
  }}
"""


def declarations(catalogue: Catalogue | None = None, filename: str = "dodo-transform.d.ts") -> str:
    """The `.d.ts` text (`filename`: its name, for the usage it shows): a global `Dodo`
    namespace, so that a handler's JSDoc can name its types."""
    catalogue = catalogue or shipped()
    members = "\n".join(
        _declared(member, "    ") for member in WEBHOOK_MEMBERS if member.name != "payload"
    )
    lines = [
        HEADER.format(count=len(catalogue.event_types), filename=filename),
        f"declare namespace {NAMESPACE} {{",
        "  /** Every event type Dodo sends. */",
        "  type EventType =",
        *(f"    | {json.dumps(t)}" for t in catalogue.event_types[:-1]),
        f"    | {json.dumps(catalogue.event_types[-1])};",
        "",
        "  /** The body of each event type. */",
        "  interface Events {",
        *(
            f"    {json.dumps(t)}: Event<{json.dumps(t)}, {catalogue.kinds[t]}>;"
            for t in catalogue.event_types
        ),
        "  }",
        "",
        WEBHOOK_DECLARATION.format(members=members),
    ]
    for kind in sorted(catalogue.data):
        users = [t for t in catalogue.event_types if catalogue.kinds[t] == kind]
        lines.append(f"  /** `data` of {', '.join(users)}. */")
        lines.append(f"  interface {kind} {{")
        lines += [_declared(member, "    ") for member in catalogue.data[kind]]
        lines += ["  }", ""]
    lines[-1] = "}"
    return "\n".join(lines) + "\n"


def _declared(member: Member, indent: str) -> str:
    readonly = "readonly " if member.name in ("eventType", "mode", "env") else ""
    optional = "?" if member.optional else ""
    typed = "T" if member.name == "eventType" else member.type  # in WebhookOf<T>
    if member.members:  # an object: its members on lines of their own, each with its comment
        inner = "\n".join(_declared(nested, indent + "  ") for nested in member.members)
        typed = f"{{\n{inner}\n{indent}}}" + " | null" * member.nullable
    doc = "; ".join(part for part in (member.note, _shown_example(member)) if part)
    comment = f"{indent}/** {doc} */\n" if doc else ""
    return f"{comment}{indent}{readonly}{_key(member.name)}{optional}: {typed};"


def _shown_example(member: Member) -> str | None:
    if member.example is None or member.members:
        return None
    return "e.g. " + member.example.replace("*/", "*\\/")  # a comment must not end early


def usage(filename: str, event_type: str = "payment.succeeded") -> list[str]:
    """The lines that put a handler file beside the declarations under them."""
    return [
        "// @ts-check",
        f'/// <reference path="./{filename}" />',
        f'/** @param {{{NAMESPACE}.Webhook<"{event_type}">}} webhook */',
    ]


def write_declarations(path: Path, catalogue: Catalogue | None = None) -> int:
    """Write the `.d.ts` to `path`; how many event types it declares."""
    catalogue = catalogue or shipped()
    path.write_text(declarations(catalogue, path.name), "utf-8")
    return len(catalogue.event_types)
