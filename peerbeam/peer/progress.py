"""Progress with speed and ETA, for the terminal (stderr)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def human_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError


def human_duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


class Progress:
    """Reports at most every `interval` seconds; a line each time when not on a terminal."""

    def __init__(self, label: str, total: int, stream: TextIO = sys.stderr,
                 interval: float = 0.5) -> None:
        self.label = label
        self.total = total
        self.stream = stream
        self.tty = stream.isatty()
        self.interval = interval if self.tty else max(interval, 2.0)
        self.start_done = 0
        self.done = 0
        self.started = time.monotonic()
        self._last = 0.0

    def resume_from(self, done: int) -> None:
        self.start_done = self.done = done
        self.started = time.monotonic()

    def update(self, done: int, force: bool = False) -> None:
        self.done = done
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        elapsed = max(now - self.started, 1e-6)
        speed = (done - self.start_done) / elapsed
        percent = 100.0 * done / self.total if self.total else 100.0
        eta = human_duration((self.total - done) / speed) if speed > 0 else "--"
        line = (f"{self.label} {percent:5.1f}%  {human_bytes(done)} / {human_bytes(self.total)}"
                f"  {human_bytes(speed)}/s  ETA {eta}")
        if self.tty:
            self.stream.write("\r" + line.ljust(78))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def finish(self) -> None:
        self.update(self.done, force=True)
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
