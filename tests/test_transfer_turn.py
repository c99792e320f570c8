"""A real coturn on 127.0.0.1: both peers forced through it (relay-only), and a direct
transfer with several connections that allocates on it only for its first one."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import pytest

from peerbeam.peer.rtc import DIRECT_INTERNET, DIRECT_LOCAL, lane_ice_servers
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


def test_extra_connections_of_a_direct_transfer_allocate_no_relay(
        coturn: Coturn, tmp_path: Path) -> None:
    """Each peer allocates on the relay for its probe (relays.py) and its first connection;
    once that one went direct, its extra connections (lanes) gather no relay candidates
    (rtc.py lane_ice_servers), where each would otherwise take one more allocation."""
    server = LocalServer(
        tmp_path / "srv",
        env={"PEERBEAM_TURN_URLS": coturn.url, "PEERBEAM_TURN_SECRET": TURN_SECRET},
    )
    server.start()
    source = random_file(tmp_path / "lanes.bin", 12 * 1024 * 1024 + 5, seed=13)
    sender = SendProcess(server.base, [source], "--connections", "3")
    try:
        result = receive(sender.link, tmp_path / "out", timeout=120)
        assert result.returncode == 0, result.stderr + coturn.log()[-3000:]
        received = (tmp_path / "out" / "lanes.bin").read_bytes()
        assert hashlib.sha256(received).digest() == hashlib.sha256(source.read_bytes()).digest()
    finally:
        sender.stop()
        server.stop()
    assert "direct, on the local network" in result.stderr, result.stderr
    assert "3 connections" in sender.log(), sender.log()
    allocations = re.findall(r"ALLOCATE processed, success", coturn.log())
    assert len(allocations) == 2 * 2, coturn.log()[-3000:]  # 2 peers × (probe + first connection)


SERVERS: list[dict[str, Any]] = [
    {"urls": ["stun:stun.example.org:3478", "turn:relay.example.org:3478?transport=udp"],
     "username": "u", "credential": "c"},
    {"urls": "turns:relay.example.org:443?transport=tcp", "username": "u", "credential": "c"},
    {"urls": "STUNS:stun.example.net:5349"},
]


@pytest.mark.parametrize("first_path", [DIRECT_LOCAL, DIRECT_INTERNET])
def test_lane_ice_servers_after_a_direct_first_connection_are_stun_only(first_path: str) -> None:
    assert lane_ice_servers(SERVERS, first_path) == [
        {"urls": ["stun:stun.example.org:3478"]}, {"urls": ["STUNS:stun.example.net:5349"]}]


@pytest.mark.parametrize("first_path", ["relayed through a TURN server", "path unknown", ""])
def test_lane_ice_servers_otherwise_are_all_of_them(first_path: str) -> None:
    assert lane_ice_servers(SERVERS, first_path) is SERVERS
