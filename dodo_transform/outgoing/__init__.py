"""What may go out: the leaf every stage agrees on, importing none of them.

`request.py`: `OutgoingRequest`, one type from the handler's outcome to the wire (the engine
makes it, the store keeps it, the sender sends it). `wire.py`: what a request may hold to be
sent at all. `segment.py`: Segment's API, what it accepts and what it silently drops.
`destination.py`: what a destination is, which are allowed, which credentials go there, and
how requests are delivered to it. `redaction.py`: what of a request, a setting or an error is
never shown, and taking it out of what is.
"""

from __future__ import annotations

from dodo_transform.outgoing.request import (
    OutgoingRequest,
    encode_json,
    well_formed,
    well_formed_json,
    with_headers,
)

__all__ = ["OutgoingRequest", "encode_json", "well_formed", "well_formed_json", "with_headers"]
