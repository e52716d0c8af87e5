"""A progress bar for programs that use the library on a terminal (tqdm draws it).

`hubless.pull()` shows one when stderr is a terminal and the program passed no `progress`
callback of its own; otherwise the library prints nothing. tqdm is what huggingface_hub and
most of the ecosystem draw their bars with, so a user's terminal shows the bar it expects.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from .services.events import Event, Listener


class TerminalBar:
    """A `Listener` drawing one tqdm bar per stage with a size (download, verify, hash)."""

    def __init__(self, stream: Any = None) -> None:
        self._stream = stream or sys.stderr
        self._bar: Any = None
        self._stage = ""
        self._lock = threading.Lock()  # events arrive on libtorrent's thread too

    def __call__(self, event: Event) -> None:
        if not event.total:
            return
        from tqdm.auto import tqdm

        with self._lock:
            if self._bar is None or event.stage != self._stage:
                self.close()
                self._stage = event.stage
                self._bar = tqdm(
                    total=event.total,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=event.stage,
                    file=self._stream,
                    leave=False,
                )
            self._bar.n = min(event.done, event.total)
            self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def default_progress(stream: Any = None) -> Listener | None:
    """A `TerminalBar` when `stream` (stderr) is a terminal, else None (silent)."""
    stream = stream or sys.stderr
    isatty = getattr(stream, "isatty", None)
    return TerminalBar(stream) if isatty is not None and isatty() else None
