"""What a transform's settings say about how its requests go out: the write key and the
credentials they carry, and how they are delivered (`DeliveryPolicy`), over the service's
defaults. The dispatcher and the lanes ask for them per transform, as they send, so a
changed `transforms.toml` applies to the next request."""

from __future__ import annotations

from dataclasses import dataclass

from dodo_transform.outgoing.destination import Configured, DeliveryPolicy
from dodo_transform.transforms.registry import Registry
from dodo_transform.transforms.settings import TransformSettings


@dataclass(frozen=True)
class _Derived:
    """What one table gives, worked out once: the senders ask for it per group they send."""

    table: TransformSettings
    write_key: str | None
    configured: Configured
    policy: DeliveryPolicy


class DeliverySettings:
    """Each transform's delivery settings as the registry holds them now, over the
    service's defaults: `SEGMENT_WRITE_KEY`, the default policy and the service's own
    secrets (kept out of what an answer echoes, whichever transform sends)."""

    def __init__(
        self,
        registry: Registry,
        *,
        default_write_key: str | None = None,
        default_policy: DeliveryPolicy | None = None,
        service_secrets: frozenset[str] = frozenset(),
    ) -> None:
        self._registry = registry
        self._default_write_key = default_write_key
        self._default_policy = default_policy or DeliveryPolicy()
        self._service_secrets = service_secrets
        self._derived: dict[str, _Derived] = {}

    def write_key_for(self, transform: str) -> str | None:
        """The transform's own write key from transforms.toml, else the default."""
        return self._of(transform).write_key

    def configured_for(self, transform: str) -> Configured:
        """The transform's headers and url from transforms.toml, as the sender applies them,
        and every secret its requests may carry: its table's and the service's."""
        return self._of(transform).configured

    def policy_for(self, transform: str) -> DeliveryPolicy:
        """How the transform's requests are delivered: its table over the default policy."""
        return self._of(transform).policy

    def _of(self, transform: str) -> _Derived:
        # A reload gives a changed table a new object: its identity says the cache is stale.
        table = self._registry.settings(transform)
        derived = self._derived.get(transform)
        if derived is None or derived.table is not table:
            derived = self._derived[transform] = _Derived(
                table,
                table.write_key or self._default_write_key,
                Configured(
                    table.header_values(),
                    table.target_url,
                    table.secret_values() | self._service_secrets,
                ),
                table.policy(self._default_policy),
            )
        return derived
