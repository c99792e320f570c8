"""Process helpers for benchmarks: a local server, timed runs, RSS sampling."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
ENV = {**os.environ, "PEERBEAM_ICE_LOOPBACK": "1"}


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


@dataclass
class RssSampler:
    """Samples a process's resident memory every `interval` seconds in a thread."""

    pid: int
    interval: float = 0.25
    samples: list[tuple[float, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._start = time.monotonic()
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.monotonic() - self._start, rss_bytes(self.pid)))
            except OSError:
                return
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def peerbeam(*args: str, **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [PYTHON, "-m", "peerbeam.cli", *args], cwd=REPO, env=ENV, text=True, **kwargs  # type: ignore[arg-type]
    )
