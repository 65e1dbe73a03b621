"""What a transform's settings say about how its requests go out: the write key and the
credentials they carry, and how they are delivered (`DeliveryPolicy`), over the service's
defaults. The dispatcher and the lanes ask for them per transform, as they send, so a
changed `transforms.toml` applies to the next request."""

from __future__ import annotations

from dodo_transform.outgoing.destination import Configured, DeliveryPolicy
from dodo_transform.transforms.registry import Registry


def write_key_for(default: str | None, registry: Registry, transform: str) -> str | None:
    """The transform's own write key from transforms.toml, else `default` (SEGMENT_WRITE_KEY)."""
    return registry.settings(transform).write_key or default


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


def policy_for(default: DeliveryPolicy, registry: Registry, transform: str) -> DeliveryPolicy:
    """How the transform's requests are delivered: its table over the service's `default`."""
    return registry.settings(transform).policy(default)
