"""Transfers that last long in clock time, not in bytes (issue: `receive` ended every
transfer that outlived the first signaling heartbeat).

The timers are parameters (PEERBEAM_TIMING), so a transfer of a few MiB paced with
`--max-rate` runs through dozens of heartbeats, keepalive pings, a signaling outage with
reconnects, and another receiver joining and leaving, while its session keeps running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fixtures.cli import PEERBEAM, SendProcess, network_bytes, random_file, receive, start_receive
from tests.fixtures.servers import REPO, LocalServer
from tests.test_transfer_cli import assert_same, sha256

MiB = 1024 * 1024
SENDER_WAIT = 2.0
# Heartbeats every half second; the receiver waits only 2 s for an absent sender.
LONG_CLOCK = {
    "PEERBEAM_TIMING": f"heartbeat=0.5,sender_wait={SENDER_WAIT},ping_after=0.5,dead_after=15",
    "PEERBEAM_LOG": "INFO",
}


# The local server closes every signaling socket after this long, as API Gateway does after
# 2 hours: the peers reconnect again and again in every order while the transfer runs.
SOCKET_LIFE = {"PEERBEAM_WS_MAX_LIFE": "2.5"}


@pytest.fixture
def short_lived_sockets(tmp_path: Path) -> Iterator[LocalServer]:
    server = LocalServer(tmp_path / "server", env=SOCKET_LIFE)
    server.start()
    yield server
    server.stop()


def wait_for_bytes(part: Path, size: int, process: subprocess.Popen[str], timeout: float = 60) -> None:
    """Until `part` holds `size` bytes; fails at once, with its stderr, if `process` ended."""
    deadline = time.monotonic() + timeout
    while not (part.exists() and part.stat().st_size >= size):
        if process.poll() is not None:
            raise AssertionError(f"the receiver ended ({process.returncode}):\n{process.communicate()[1]}")
        assert time.monotonic() < deadline, f"{part} never reached {size} bytes"
        time.sleep(0.05)


class LoggedReceive:
    """`peerbeam receive` whose stderr goes to a file, readable while it runs."""

    def __init__(self, link: str, out: Path, *args: str, env: dict[str, str]) -> None:
        self.log_path = out.parent / f"receive-{out.name}.log"
        with open(self.log_path, "w") as stderr:
            self.process = subprocess.Popen(
                [*PEERBEAM, "receive", link, "-o", str(out), *args], cwd=REPO,
                env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=stderr, text=True,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log():
            assert self.process.poll() is None, f"receive ended before {text!r}:\n{self.log()}"
            assert time.monotonic() < deadline, f"no {text!r} in:\n{self.log()}"
            time.sleep(0.1)


def interrupt(server: LocalServer, link: str, tmp_path: Path, reconnected: Callable[[], None]) -> None:
    """Signaling goes away and comes back (the running peers reconnect to it); then another
    receiver joins, takes some bytes and vanishes without a word."""
    server.restart()
    reconnected()
    other = start_receive(link, tmp_path / "other", env=LONG_CLOCK)
    deadline = time.monotonic() + 60
    while not list((tmp_path / "other").glob("*.peerbeam-part")):
        assert other.poll() is None, other.communicate()[1]
        assert time.monotonic() < deadline, "the other receiver never started"
        time.sleep(0.05)
    part = next((tmp_path / "other").glob("*.peerbeam-part"))
    wait_for_bytes(part, MiB, other)
    other.send_signal(signal.SIGKILL)
    other.wait()


def test_transfer_runs_through_heartbeats_reconnects_and_other_receivers(
    short_lived_sockets: LocalServer, tmp_path: Path
) -> None:
    local_server = short_lived_sockets
    source = random_file(tmp_path / "slow.bin", 14 * MiB + 3, seed=21)
    sender = SendProcess(local_server.base, [source], "--max-rate", "600K", env=LONG_CLOCK)
    try:
        started = time.monotonic()
        first = LoggedReceive(sender.link, tmp_path / "a", env=LONG_CLOCK)
        wait_for_bytes(tmp_path / "a" / "slow.bin.peerbeam-part", MiB, first.process)

        def reconnected() -> None:
            first.wait_for_log("signaling reconnected")
            sender.wait_for_log("signaling reconnected")

        interrupt(local_server, sender.link, tmp_path, reconnected)
        assert first.process.poll() is None, "the transfer ended before the interruptions did"
        assert first.process.wait(120) == 0, first.log()
        elapsed = time.monotonic() - started
        assert_same([source], tmp_path / "a")
        assert elapsed > 4 * SENDER_WAIT, elapsed  # the clock, not the size, was long
        assert first.log().count("signaling heartbeat sent") >= 8, first.log()
        assert first.log().count("signaling reconnected") >= 3, first.log()
        assert sender.log().count("signaling reconnected") >= 3, sender.log()
        # One session from start to end: nothing dropped it, no reconnect replaced it.
        assert "connection lost" not in first.log()
        assert "replaces the running session" not in first.log()
    finally:
        sender.stop()


def test_sender_hashing_a_long_resumed_prefix_is_not_taken_for_dead(
    local_server: LocalServer, tmp_path: Path
) -> None:
    """A new sender process checks the receiver's held prefix by reading and hashing it,
    which takes longer than the keepalive's dead-after here; pings must still be answered."""
    size = 24 * MiB
    source = random_file(tmp_path / "resume.bin", size, seed=22)
    out = tmp_path / "out"
    # One connection: chunks land in order, so the part file's size is what is held.
    first_sender = SendProcess(local_server.base, [source], "--max-rate", "4M", "--connections", "1")
    try:
        first = start_receive(first_sender.link, out)
        wait_for_bytes(out / "resume.bin.peerbeam-part", 12 * MiB, first)
        first.send_signal(signal.SIGKILL)
        first.wait()
    finally:
        first_sender.stop()
    held = (out / "resume.bin.peerbeam-part").stat().st_size
    # 12+ chunks at 0.25 s each: about 3 s of hashing before `start`, dead-after is 1.5 s.
    keepalive = {"PEERBEAM_TIMING": "ping_after=0.3,dead_after=1.5", "PEERBEAM_LOG": "INFO"}
    sender = SendProcess(local_server.base, [source],
                         env={**keepalive, "PEERBEAM_FAULTS": "slow_read=0.25"})
    try:
        result = receive(sender.link, out, env=keepalive, timeout=120)
        assert result.returncode == 0, result.stderr
        assert sha256(out / "resume.bin") == sha256(source)
        assert "connection lost" not in result.stderr
        assert network_bytes(result.stderr) <= size - held + MiB
    finally:
        sender.stop()
