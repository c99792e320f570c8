"""Timer parameters (PEERBEAM_TIMING) and `--max-rate` parsing and pacing."""

from __future__ import annotations

import asyncio
import subprocess
import time

import pytest

from peerbeam.peer.pacer import Pacer, parse_rate
from peerbeam.peer.timing import Timing, parse_timing
from tests.fixtures.cli import PEERBEAM
from tests.fixtures.servers import REPO


def test_timing_overrides_only_what_it_names() -> None:
    timing = parse_timing("heartbeat=1.5, sender_wait=3")
    assert timing.heartbeat == 1.5 and timing.sender_wait == 3
    assert timing.dead_after == Timing().dead_after


@pytest.mark.parametrize("spec, problem", [
    ("heartbeet=1", "unknown timer 'heartbeet'"),
    ("heartbeat=soon", "needs a number"),
    ("heartbeat=0", "must be positive"),
    ("heartbeat=-2", "must be positive"),
    ("heartbeat=nan", "must be positive"),
])
def test_bad_timing_is_refused(spec: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_timing(spec)


def test_cli_refuses_bad_timing_with_a_usage_error() -> None:
    result = subprocess.run([*PEERBEAM, "receive", "http://127.0.0.1:9/#room.AAAAAAAAAAAAAAAAAAAAAA"],
                            cwd=REPO, capture_output=True, text=True, timeout=60,
                            env={"PEERBEAM_TIMING": "heartbeat=never", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 2
    assert "heartbeat needs a number" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("text, rate", [("2M", 2 * 1024**2), ("800K", 800 * 1024), ("1.5g", 1.5 * 1024**3),
                                        ("65536", 65536)])
def test_rates(text: str, rate: float) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["fast", "2MB", "-1M", "10", ""])
def test_bad_rates(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rate(text)


def test_cli_refuses_a_bad_rate() -> None:
    result = subprocess.run([*PEERBEAM, "send", "x", "--max-rate", "fast"], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "not a rate" in result.stderr


def test_pacer_holds_a_flow_under_its_rate() -> None:
    async def run() -> float:
        pacer = Pacer(1024 * 1024)
        started = time.monotonic()
        for _ in range(16):
            await pacer.take(64 * 1024)  # 1 MiB in all, a quarter second of it may burst
        return time.monotonic() - started

    assert asyncio.run(run()) >= 0.7


def test_unlimited_pacer_never_waits() -> None:
    async def run() -> float:
        pacer = Pacer(None)
        started = time.monotonic()
        for _ in range(1000):
            await pacer.take(1024 * 1024)
        return time.monotonic() - started

    assert asyncio.run(run()) < 0.5
