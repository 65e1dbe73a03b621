"""`Limits`: the resources one handler run may use. Plain data, so settings can name them
without loading QuickJS."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """Per-event resource limits for a handler."""

    time_seconds: float = 1.0
    memory_bytes: int = 64 * 1024 * 1024
    stack_bytes: int = 512 * 1024
    log_bytes: int = 4096
