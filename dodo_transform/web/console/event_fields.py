"""What the editor completes after `webhook.payload.data.` and shows on hover: the fields of
Dodo's event types (`transforms/event_types.py`), as one JSON document the page's script
loads once and reads for the chosen sample's event type."""

from __future__ import annotations

import json
from functools import cache

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from dodo_transform.transforms import event_types
from dodo_transform.web.console.rendering import SECURITY_HEADERS
from dodo_transform.web.console.session import console_guard

PATH = "/console/event-fields.json"

routes = APIRouter(dependencies=[Depends(console_guard)], include_in_schema=False)


@cache
def _document() -> bytes:
    return json.dumps(event_types.editor_fields(), separators=(",", ":")).encode()


@routes.get(PATH)
async def event_fields() -> Response:
    return Response(
        _document(),
        media_type="application/json",
        headers=SECURITY_HEADERS | {"Cache-Control": "private, max-age=3600"},
    )
