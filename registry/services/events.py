"""Progress events the use cases report; the CLI renders them, a program may log them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    """One step or progress tick. `total` 0 means a step without a measurable size."""

    stage: str  # resolve, hash, sign, put, index, fetch-manifest, download, verify, seed, done
    message: str
    done: int = 0
    total: int = 0
    rate: float = 0.0
    peers: int = 0
    eta: float | None = None


Listener = Callable[[Event], None]


def ignore(event: Event) -> None:
    """The listener used when nobody listens."""
