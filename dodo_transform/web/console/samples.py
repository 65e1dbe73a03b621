"""The sample chooser: an example body for each of Dodo's event types, recent stored events,
or a JSON body typed in.

A choice travels as one string: `example:<event type>`, `event:<stored id>` or
`custom`. The examples are the repository's `examples/events/` (the wheel ships
a copy inside the package, see pyproject.toml; `checks.examples_folder` finds either).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from dodo_transform.errors import PayloadError
from dodo_transform.store import Store, StoredEvent
from dodo_transform.transforms.checks import examples_folder
from dodo_transform.transforms.event import Event

CUSTOM = "custom"
DEFAULT_TYPE = "payment.succeeded"
RECENT_EVENTS = 20


@dataclass(frozen=True)
class Choice:
    value: str
    label: str
    event_type: str = ""  # what the editor completes `webhook.payload.data.` for


@cache
def example_types() -> tuple[str, ...]:
    folder = examples_folder()
    return tuple(sorted(path.stem for path in folder.glob("*.json"))) if folder else ()


def example_choices() -> list[Choice]:
    """One choice per event type, labelled with the type alone."""
    return [Choice(f"example:{kind}", kind, kind) for kind in example_types()]


def stored_choices(events: list[StoredEvent]) -> list[Choice]:
    return [
        Choice(
            f"event:{event.id}",
            f"{event.event_type} · {event.webhook_id} (#{event.id})",
            event.event_type,
        )
        for event in events
    ]


class SampleError(ValueError):
    """The chosen sample cannot be used (named in the message)."""


def resolve(choice: str, custom: str, store: Store) -> Event:
    """The event a choice names (blocking: reads a file or the store)."""
    kind, _, key = choice.partition(":")
    if kind == "example" and key in example_types():
        folder = examples_folder()
        assert folder is not None
        return _event((folder / f"{key}.json").read_bytes(), f"example {key}")
    if kind == "event" and key.isdigit() and int(key) < 2**63:
        stored = store.get_event(int(key))
        if stored is None:
            raise SampleError(f"stored event {key} is gone (pruned?)")
        return _event(stored.body, f"stored event {key}", stored.webhook_id)
    if choice == CUSTOM:
        return _event(custom.encode("utf-8", errors="surrogatepass"), "the custom body")
    raise SampleError(f"unknown sample {choice!r}")


def _event(body: bytes, what: str, webhook_id: str = "msg_console_test") -> Event:
    try:
        return Event.from_body(body, webhook_id=webhook_id)
    except PayloadError as error:
        raise SampleError(f"{what}: {error}") from None
