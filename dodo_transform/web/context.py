"""`WebContext`: everything the web edge may use, and nothing more.

The web package never imports the service: the composition root
(`service.build_service`) fills one of these, and routes reach the store, the
intake and the registry only through it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from pydantic import SecretStr

from dodo_transform.metrics import IngestMetrics
from dodo_transform.outgoing.destination import PausedDestination
from dodo_transform.signing import Verifier
from dodo_transform.store import Store
from dodo_transform.store.intake import Intake
from dodo_transform.tracing import NO_TRACING, Tracing
from dodo_transform.transforms.engine import Outcome
from dodo_transform.transforms.registry import Registry
from dodo_transform.transforms.sandbox_processes import Run


async def _nothing() -> None:
    return None


@dataclass
class WebContext:
    store: Store
    intake: Intake
    verifier: Verifier
    registry: Registry
    metrics: IngestMetrics
    max_body_bytes: int
    admin_token: SecretStr | None
    # New work was stored (an event, a replay request): wake an in-process pipeline.
    notify: Callable[[], None] = lambda: None
    # New events were stored, nothing else (ingest's wake): only the transform loop is woken.
    notify_events: Callable[[], None] = lambda: None
    # Why the service is not ready, besides the store (checked by the health route itself).
    problems: Callable[[], list[str]] = list
    # The pipeline's metrics, wherever it runs, in Prometheus' text format.
    pipeline_metrics: Callable[[], bytes] = bytes
    # The service's own start and stop, run by the app's lifespan.
    start: Callable[[], Awaitable[None]] = _nothing
    stop: Callable[[], Awaitable[None]] = _nothing
    loaded: Callable[[], bool] = field(default=lambda: True)
    # (name, version) of every transform version the pipeline has quarantined.
    quarantined: Callable[[], list[tuple[str, str]]] = list
    # Every secret the service knows (settings, transforms.toml): never in what the edge shows.
    secrets: Callable[[], Collection[str]] = frozenset
    # The destinations the pipeline's circuit breakers hold paused (they keep failing).
    paused: Callable[[], list[PausedDestination]] = list
    # The console: run unsaved handlers on events in a sandbox process of its own
    # (blocking; None: no test runs here), and whether deliveries are only recorded.
    run_trials: Callable[[Sequence[Run]], list[Outcome]] | None = None
    dry_run: bool = False
    # Where Segment calls go (SEGMENT_ENDPOINT, else the region's API): a delivery's page
    # shows its message as sent there, inside a /v1/batch call.
    segment_base_url: str = "https://api.segment.io"
    # False on a worker-only instance: it answers health, readiness and metrics, nothing else.
    serves_webhooks: bool = True
    # Each stored webhook's root span, when traces are exported (tracing.py).
    tracing: Tracing = NO_TRACING


def context_of(request: Request) -> WebContext:
    """The `WebContext` the app was made with (see `web.app.create_app`)."""
    context: WebContext = request.app.state.context
    return context


# A route parameter of this type receives the context.
Context = Annotated[WebContext, Depends(context_of)]
