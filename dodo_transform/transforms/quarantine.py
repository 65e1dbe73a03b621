"""Quarantine: a transform version that hits its resource limit on `STRIKES` events in a row
is not run again until its file changes.

Each such run costs its whole limit (a second of CPU, 64 MB) and holds up the healthy
transforms, so after three the version's events are stored as `failed` ("quarantined ...")
for a replay once it is fixed. One rule, one owner: the pipeline's `Quarantine` counts every
outcome; a sandbox process and the backstop that stops a stuck one count the runs of one
batch on a copy seeded with the owner's counts (`seeded`), so that a version does not run its
limit out on the rest of a batch before the owner hears of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from dodo_transform.transforms.engine import Outcome, OutcomeKind

STRIKES = 3
QUARANTINED = Outcome(
    OutcomeKind.ERROR,
    error=f"quarantined: this version hit its resource limit on {STRIKES} events in a row; "
    "fix the file (it reloads by itself) and replay the failed deliveries",
    hit_limit=True,
)

Version = tuple[str, str]  # (transform name, version)


class Quarantine:
    def __init__(self, strikes: Mapping[Version, int] | None = None) -> None:
        self._strikes: dict[Version, int] = dict(strikes or {})

    def holds(self, version: Version) -> bool:
        """Whether this version is quarantined: not to be run."""
        return self._strikes.get(version, 0) >= STRIKES

    def record(self, version: Version, hit_limit: bool) -> bool:
        """Count one run of `version`; True when this run puts it in quarantine. A run within
        the limits clears its strikes (only limits in a row count)."""
        if not hit_limit:
            self._strikes.pop(version, None)
            return False
        strikes = self._strikes[version] = self._strikes.get(version, 0) + 1
        return strikes == STRIKES

    def seeded(self, versions: Iterable[Version]) -> dict[Version, int]:
        """The strikes of `versions` so far: what a copy counting one batch starts from."""
        return {v: self._strikes[v] for v in versions if v in self._strikes}

    def quarantined(self) -> list[Version]:
        return [version for version, strikes in self._strikes.items() if strikes >= STRIKES]
