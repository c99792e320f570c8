"""Process helpers for benchmarks: a local server, timed runs, RSS sampling."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.fixtures.servers import LocalServer

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


def peerbeam(*args: str, stdout: int | None = None, stderr: int | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [PYTHON, "-m", "peerbeam.cli", *args], cwd=REPO, env=ENV, text=True, stdout=stdout, stderr=stderr
    )


RESULTS = REPO / "benchmarks" / "results"


@contextmanager
def serving(prefix: str, env: dict[str, str] | None = None) -> Iterator[tuple[LocalServer, Path]]:
    """A `peerbeam serve` on a free port with a scratch directory, for one benchmark."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        work = Path(tmp)
        server = LocalServer(work / "server", env=env)
        server.start()
        try:
            yield server, work
        finally:
            server.stop()


def save_result(name: str, result: dict[str, Any]) -> None:
    """Stamp and store a benchmark's figures for benchmarks.report."""
    result.setdefault("when", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1))
