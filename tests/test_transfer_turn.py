"""Relay-only: both peers forced through a real coturn on 127.0.0.1."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from tests.fixtures.cli import SendProcess, random_file, receive
from tests.fixtures.servers import LocalServer
from tests.fixtures.turn import TURN_SECRET, Coturn


def test_transfer_through_turn_relay(coturn: Coturn, tmp_path: Path) -> None:
    server = LocalServer(
        tmp_path / "srv",
        env={"PEERBEAM_TURN_URLS": coturn.url, "PEERBEAM_TURN_SECRET": TURN_SECRET},
    )
    server.start()
    source = random_file(tmp_path / "relayed.bin", 6 * 1024 * 1024 + 3, seed=12)
    sender = SendProcess(server.base, [source], "--relay-only")
    try:
        result = receive(sender.link, tmp_path / "out", "--relay-only", timeout=120)
        assert result.returncode == 0, result.stderr + coturn.log()[-3000:]
        received = (tmp_path / "out" / "relayed.bin").read_bytes()
        assert hashlib.sha256(received).digest() == hashlib.sha256(source.read_bytes()).digest()
    finally:
        sender.stop()
        server.stop()
    log = coturn.log()
    # Both peers allocated a relay with the ephemeral REST-API credentials, and data flowed.
    assert len(re.findall(r"ALLOCATE processed, success", log)) >= 2, log[-3000:]
    assert "realm <peerbeam.test>" in log or "peerbeam.test" in log
    assert re.search(r"peer 127\.0\.0\.1", log), log[-3000:]
    relayed = sum(int(n) for n in re.findall(r": usage: .*?, rb=(\d+),", log))
    assert relayed >= 6 * 1024 * 1024, f"only {relayed} bytes went through the relay"
    assert TURN_SECRET not in server.log()
