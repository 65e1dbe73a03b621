"""Quarantine: three limit hits in a row and a version runs no more; one owner counts them,
and a sandbox process counts a batch's runs on from the owner's count."""

from __future__ import annotations

from dodo_transform.limits import Limits
from dodo_transform.transforms.engine import Transform
from dodo_transform.transforms.quarantine import QUARANTINED, STRIKES, Quarantine
from dodo_transform.transforms.sandbox_processes import Run, SandboxPool, TransformSpec
from tests.conftest import event_from, sample

LOOP = "function handler(w) { for (;;) {} }"


def test_limits_in_a_row_quarantine_and_a_good_run_clears_them() -> None:
    quarantine = Quarantine()
    version = ("t", "v1")
    assert not quarantine.record(version, True)
    assert not quarantine.record(version, False)  # not in a row: starts again
    assert [quarantine.record(version, True) for _ in range(STRIKES)] == [False, False, True]
    assert quarantine.holds(version) and quarantine.quarantined() == [version]
    assert quarantine.seeded([version, ("u", "v")]) == {version: STRIKES}


def test_a_sandbox_batch_counts_on_from_the_owners_strikes() -> None:
    """Two strikes before the batch: its first run is the third, and no other run spends
    its limit."""
    transform = Transform(
        name="loop", source=LOOP, filename="loop.js", limits=Limits(time_seconds=0.2)
    )
    owner = Quarantine()
    for _ in range(STRIKES - 1):
        owner.record((transform.name, transform.version), True)
    pool = SandboxPool(1, owner)
    try:
        event = event_from(sample("payment.succeeded"))
        outcomes = pool.run([Run(TransformSpec.of(transform), event) for _ in range(4)])
    finally:
        pool.close()
    assert outcomes[0].hit_limit and outcomes[0] is not QUARANTINED
    assert [o.error for o in outcomes[1:]] == [QUARANTINED.error] * 3
