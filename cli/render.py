"""Everything the command line prints goes through here: data on stdout, progress on stderr.

No other module of the command line writes to stdout or stderr.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

from hubless.services.events import Event


def human_size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def human_time(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(seconds)
    return (
        f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        if seconds >= 3600
        else f"{seconds // 60:02d}:{seconds % 60:02d}"
    )


class Renderer:
    """Prints results as text or JSON, and progress events as lines or a live bar."""

    def __init__(
        self,
        *,
        as_json: bool,
        quiet: bool = False,
        out: TextIO | None = None,
        err: TextIO | None = None,
    ) -> None:
        self.as_json = as_json
        self.quiet = quiet
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self._live = self.err.isatty()
        self._bar_open = False
        self._last_line = 0.0
        self._last_draw = 0.0

    # --- progress (stderr) --------------------------------------------------------------------

    def event(self, event: Event) -> None:
        if self.quiet:
            return
        if event.total and not (event.done >= event.total and event.stage == "download"):
            self._progress(event)
            return
        self._end_bar()
        if self.as_json:
            self.err.write(json.dumps({"event": event.stage, "message": event.message}) + "\n")
        else:
            self.err.write(f"{event.message}\n")
        self.err.flush()

    def event_text(self, message: str) -> None:
        """A plain progress line (not data): goes where events go."""
        self.event(Event("info", message))

    def _progress(self, e: Event) -> None:
        fraction = min(e.done / e.total, 1.0) if e.total else 0.0
        text = (
            f"{e.message}: {fraction * 100:5.1f}% {human_size(e.done)}/{human_size(e.total)}"
            + (f" {human_size(e.rate)}/s" if e.rate else "")
            + (f" {e.peers} peers" if e.stage == "download" else "")
            + (f" ETA {human_time(e.eta)}" if e.stage in ("download", "hash") else "")
        )
        now = time.monotonic()
        if self._live and (now - self._last_draw >= 0.1 or fraction >= 1.0):
            self._last_draw = now
            width = 24
            filled = int(fraction * width)
            self.err.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {text}\x1b[K")
            self._bar_open = True
        elif not self._live and (now - self._last_line >= 2.0 or fraction >= 1.0):
            if self.as_json:
                self.err.write(
                    json.dumps(
                        {
                            "event": e.stage,
                            "done": e.done,
                            "total": e.total,
                            "rate": round(e.rate),
                            "peers": e.peers,
                        }
                    )
                    + "\n"
                )
            else:
                self.err.write(text + "\n")
            self._last_line = time.monotonic()
        self.err.flush()

    def _end_bar(self) -> None:
        if self._bar_open:
            self.err.write("\n")
            self._bar_open = False

    # --- results (stdout) ---------------------------------------------------------------------

    def result(self, data: Any, text: str, *, value: str | None = None, note: str = "") -> None:
        """Print `data` as JSON with --json, else `text`.

        With -q (and no --json), stdout gets only `value`, the command's main value (a
        path, a key, a reference; one per line), so `P=$(hubless -q pull REF)` is a path;
        the one-line `note`, if any, goes to stderr. Commands without a main value pass
        `value=None` and print `text` as usual.
        """
        self._end_bar()
        if self.as_json:
            self.out.write(json.dumps(data, indent=None, sort_keys=True) + "\n")
        elif self.quiet and value is not None:
            if note:
                self.err.write(note.rstrip("\n") + "\n")
                self.err.flush()
            if value:
                self.out.write(value.rstrip("\n") + "\n")
        elif text:
            self.out.write(text.rstrip("\n") + "\n")
        self.out.flush()

    def notice(self, message: str) -> None:
        """A line for the user on stderr that is neither progress nor an error."""
        self._end_bar()
        self.err.write(message + "\n")
        self.err.flush()

    def error(self, message: str, hint: str, *, detail: str = "") -> None:
        """One line for the error and one for the hint; `detail` (a traceback) comes first."""
        self._end_bar()
        if detail:
            self.err.write(detail.rstrip("\n") + "\n")
        if self.as_json:
            self.err.write(json.dumps({"error": message, "hint": hint or None}) + "\n")
        else:
            self.err.write(f"error: {message}\n" + (f"hint: {hint}\n" if hint else ""))
        self.err.flush()
