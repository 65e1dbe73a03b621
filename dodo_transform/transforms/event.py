"""`Event`: one received webhook body as the engine sees it.

Kept apart from the engine so that ingest can check a body without loading
QuickJS.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property

from dodo_transform import search_terms
from dodo_transform.errors import PayloadError

# Dodo's 47 event types (SDK 2.47): a name in `events` that matches none is a typo, or new.
_EVENTS_BY_KIND = {
    "payment": ("succeeded", "failed", "processing", "cancelled"),
    "refund": ("succeeded", "failed"),
    "dispute": ("opened", "expired", "accepted", "cancelled", "challenged", "won", "lost"),
    "subscription": (
        "active", "renewed", "on_hold", "paused", "unpaused", "cancelled", "failed", "expired",
        "plan_changed", "updated", "update_payment_method",
    ),
    "license_key": ("created",),
    "payout": ("created", "on_hold", "in_progress", "failed", "success"),
    "credit": (
        "added", "deducted", "expired", "rolled_over", "rollover_forfeited", "overage_charged",
        "overage_reset", "manual_adjustment", "balance_low",
    ),
    "abandoned_checkout": ("detected", "recovered"),
    "dunning": ("started", "recovered"),
    "entitlement_grant": ("created", "delivered", "failed", "revoked"),
}  # fmt: skip
EVENT_TYPES = frozenset(
    f"{kind}.{name}" for kind, names in _EVENTS_BY_KIND.items() for name in names
)


@dataclass(frozen=True)
class Event:
    """One webhook body, as received: the raw JSON text and its `type`."""

    event_type: str
    body: str
    webhook_id: str = ""
    # `live` or `test`: which of Dodo's endpoints sent it (None: not known, e.g. a sample file)
    mode: str | None = None

    @classmethod
    def from_body(cls, body: str | bytes, webhook_id: str = "") -> Event:
        """Parse enough of a body to know its type; `PayloadError` when it is unusable."""
        try:
            text = body.decode("utf-8") if isinstance(body, bytes) else body
            parsed = json.loads(text)
        except UnicodeDecodeError:
            raise PayloadError("body is not UTF-8 text") from None
        except RecursionError:
            raise PayloadError("body is nested too deeply") from None
        except ValueError as error:
            raise PayloadError(f"body is not valid JSON: {error}") from None
        if not isinstance(parsed, dict):
            raise PayloadError("body is not a JSON object")
        if not isinstance(parsed.get("type"), str):
            raise PayloadError("body has no string field `type`")
        return cls(event_type=parsed["type"], body=text, webhook_id=webhook_id)

    @cached_property
    def terms(self) -> list[str]:
        """The words a search finds this event by (`search_terms.event_terms`), worked out
        when first asked, or given by the sandbox process that ran its handlers (`knows`)."""
        return search_terms.event_terms(self.webhook_id, self.body)

    def knows(self, terms: list[str]) -> None:
        """Take `terms` as this event's search terms, worked out elsewhere from its body."""
        self.__dict__["terms"] = terms  # where `cached_property` keeps what it worked out
