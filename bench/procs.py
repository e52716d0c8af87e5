"""Child processes for the benchmarks: each bench runs parts of itself in other processes."""

from __future__ import annotations

import signal
import subprocess
import sys


def spawn_self(script: str, *args: str) -> subprocess.Popen[str]:
    """Run `script` again in a new interpreter, talking over stdin/stdout lines."""
    return subprocess.Popen(
        [sys.executable, script, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )


def read_line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"{proc.args!r} exited with {proc.wait()}")
    return line.strip()


def stop(proc: subprocess.Popen[str]) -> None:
    """SIGTERM, then SIGKILL after 10 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
