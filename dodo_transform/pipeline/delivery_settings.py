"""What a transform's settings say about how its requests go out: the write key and the
credentials they carry, and how they are delivered (`DeliveryPolicy`), over the service's
defaults. The dispatcher and the lanes ask for them per transform, as they send."""

from __future__ import annotations

from dodo_transform.outbound.retry import MAX_ATTEMPTS
from dodo_transform.outgoing.destination import Configured, DeliveryPolicy
from dodo_transform.outgoing.redaction import secret_parts
from dodo_transform.settings import Settings
from dodo_transform.transforms.registry import Registry


def write_key_for(settings: Settings, registry: Registry, transform: str) -> str | None:
    """The transform's own write key from transforms.toml, else SEGMENT_WRITE_KEY."""
    own = registry.settings(transform).write_key
    if own:
        return own
    key = settings.segment_write_key
    return key.get_secret_value() if key is not None else None


def configured_for(
    registry: Registry, transform: str, service_secrets: frozenset[str] = frozenset()
) -> Configured:
    """The transform's headers and url from transforms.toml, as the sender applies them, and
    every secret its requests may carry (to keep out of what an answer echoes): its table's
    and the service's (`service_secrets`)."""
    table = registry.settings(transform)
    return Configured(
        table.header_values(), table.target_url, table.secret_values() | service_secrets
    )


def service_secrets(settings: Settings) -> frozenset[str]:
    """The service's own secrets that requests carry: SEGMENT_WRITE_KEY."""
    key = settings.segment_write_key
    return frozenset(secret_parts(key.get_secret_value())) if key is not None else frozenset()


def default_policy(settings: Settings) -> DeliveryPolicy:
    """How requests are delivered where transforms.toml says nothing: the service's settings."""
    return DeliveryPolicy(
        timeout=settings.delivery_timeout,
        max_attempts=MAX_ATTEMPTS,
        concurrency=settings.delivery_concurrency,
    )


def policy_for(settings: Settings, registry: Registry, transform: str) -> DeliveryPolicy:
    """How the transform's requests are delivered: its table over the service's defaults."""
    return registry.settings(transform).policy(default_policy(settings))
