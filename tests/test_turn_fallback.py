"""Every TURN URL is used by the Python peer, in order (peerbeam/peer/relays.py).

aiortc hands aioice only the first TURN URL; the picker tries them in order with a
real allocation on a real coturn and gives aiortc the first that answers. A "UDP
firewall" here is a bound UDP socket that never answers.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiortc.rtcicetransport import connection_kwargs

from chalicelib.ice import ice_servers as server_ice_servers
from chalicelib.ice import turn_credentials
from chalicelib.settings import Settings
from peerbeam.peer.relays import RelayPicker, TurnServer, allocate, split_ice_servers
from peerbeam.peer.rtc import close_quietly, ice_configuration, peer_connection
from tests.fixtures.cli import SendProcess, random_file, receive
from tests.fixtures.servers import LocalServer
from tests.fixtures.turn import TURN_SECRET, Coturn, wait_for_relayed

PROBE_TIMEOUT = 1.0


@pytest.fixture
def silent_udp_port() -> Iterator[int]:
    """A UDP port where datagrams vanish, as behind a firewall that drops UDP."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        yield int(sink.getsockname()[1])


def ice_servers(*urls: str, secret: str = TURN_SECRET) -> list[dict[str, object]]:
    username, credential = turn_credentials(secret, "peer-1", int(time.time()), 600)
    return [{"urls": ["stun:127.0.0.1:3478"]},
            {"urls": list(urls), "username": username, "credential": credential}]


class CountingProbe:
    """The real allocation, counted per URL."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def __call__(self, server: TurnServer) -> None:
        self.calls.append(server.url)
        await allocate(server)


def test_urls_are_read_in_order_and_unusable_ones_skipped() -> None:
    stun, relays = split_ice_servers([
        {"urls": "stun:stun.example:3478"},
        {"urls": ["turn:t.example:3478?transport=udp", "turn:t.example:3478?transport=tcp",
                  "turns:t.example:5349?transport=tcp", "turn:t.example?transport=sctp",
                  "turns:t.example:5349?transport=udp", "not-a-url"],
         "username": "u", "credential": "c"},
    ])
    assert stun == ["stun:stun.example:3478"]
    assert [(r.transport, r.tls, r.port) for r in relays] == [
        ("udp", False, 3478), ("tcp", False, 3478), ("tcp", True, 5349)
    ]
    assert {(r.username, r.credential) for r in relays} == {("u", "c")}


def test_welcome_keeps_the_configured_order() -> None:
    urls = ("turn:t.example:3478?transport=udp", "turn:t.example:3478?transport=tcp",
            "turns:t.example:5349?transport=tcp")
    settings = Settings(stun_urls=("stun:t.example:3478",), turn_urls=urls, turn_secret="s")
    stun, turn = server_ice_servers(settings, "peer-1", 1_000, room_expires_at=100_000)
    assert stun == {"urls": ["stun:t.example:3478"]} and turn["urls"] == list(urls)
    _, relays = split_ice_servers([stun, turn])
    assert [relay.url for relay in relays] == list(urls)


def test_aiortc_gets_exactly_the_chosen_url() -> None:
    stun, relays = split_ice_servers(ice_servers(
        "turn:127.0.0.1:1?transport=udp", "turn:127.0.0.1:2?transport=tcp"
    ))
    configuration = ice_configuration(stun, relays[1])
    kwargs = connection_kwargs(configuration.iceServers or [])
    assert kwargs["turn_server"] == ("127.0.0.1", 2) and kwargs["turn_transport"] == "tcp"
    assert kwargs["turn_username"] == relays[1].username
    assert kwargs["stun_server"] == ("127.0.0.1", 3478)
    assert "turn_server" not in connection_kwargs(ice_configuration(stun, None).iceServers or [])


async def test_udp_dropped_falls_back_to_tcp(coturn: Coturn, silent_udp_port: int) -> None:
    _, relays = split_ice_servers(ice_servers(
        f"turn:127.0.0.1:{silent_udp_port}?transport=udp",
        f"turn:127.0.0.1:{coturn.port}?transport=tcp",
        f"turn:127.0.0.1:{coturn.port}?transport=udp",
    ))
    started = time.monotonic()
    choice = await RelayPicker(timeout=PROBE_TIMEOUT).pick(relays)
    elapsed = time.monotonic() - started
    assert choice.chosen is not None and choice.chosen.url == relays[1].url
    assert choice.failures == [(relays[0].url, "no answer within 1 s")]
    assert PROBE_TIMEOUT <= elapsed < PROBE_TIMEOUT + 2
    assert "TCP" in coturn.log() and "ALLOCATE processed, success" in coturn.log()


async def test_udp_first_when_it_answers(coturn: Coturn) -> None:
    _, relays = split_ice_servers(ice_servers(
        f"turn:127.0.0.1:{coturn.port}?transport=udp",
        f"turn:127.0.0.1:{coturn.port}?transport=tcp",
    ))
    probe = CountingProbe()
    choice = await RelayPicker(timeout=PROBE_TIMEOUT, probe=probe).pick(relays)
    assert choice.chosen == relays[0] and choice.failures == []
    assert probe.calls == [relays[0].url]  # TCP was never tried


async def test_wrong_credentials_count_as_no_answer(coturn: Coturn) -> None:
    _, relays = split_ice_servers(ice_servers(
        f"turn:127.0.0.1:{coturn.port}?transport=udp", secret="not-the-secret"
    ))
    choice = await RelayPicker(timeout=PROBE_TIMEOUT).pick(relays)
    assert choice.chosen is None
    ((url, reason),) = choice.failures
    assert url == relays[0].url and "401" in reason


async def test_nothing_answers_within_the_bound(silent_udp_port: int) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        refused = closed.getsockname()[1]  # bound, never listening: TCP is refused
    _, relays = split_ice_servers(ice_servers(
        f"turn:127.0.0.1:{silent_udp_port}?transport=udp",
        f"turn:127.0.0.1:{refused}?transport=tcp",
    ))
    started = time.monotonic()
    choice = await RelayPicker(timeout=PROBE_TIMEOUT).pick(relays)
    assert time.monotonic() - started < 2 * PROBE_TIMEOUT + 1
    assert choice.chosen is None and [url for url, _ in choice.failures] == [
        relays[0].url, relays[1].url
    ]


async def test_choice_is_remembered_shared_and_credentials_refreshed(coturn: Coturn) -> None:
    url = f"turn:127.0.0.1:{coturn.port}?transport=udp"
    _, relays = split_ice_servers(ice_servers(url))
    probe = CountingProbe()
    picker = RelayPicker(timeout=PROBE_TIMEOUT, probe=probe)
    first, second = await asyncio.gather(picker.pick(relays), picker.pick(relays))
    assert first.chosen == second.chosen == relays[0] and probe.calls == [url]
    # A later welcome brings new credentials for the same URL: no new probe, new credentials.
    renewed = [{**relays[0].__dict__, "username": "9999999999:peer-2"}]
    _, relays_again = split_ice_servers([{"urls": [url], "username": renewed[0]["username"],
                                          "credential": relays[0].credential}])
    chosen = (await picker.pick(relays_again)).chosen
    assert chosen is not None and chosen.username == "9999999999:peer-2"
    assert probe.calls == [url]
    picker.forget(relays)
    await picker.pick(relays)
    assert probe.calls == [url, url]


async def test_a_connection_that_never_connected_makes_the_next_probe_again(
        coturn: Coturn) -> None:
    url = f"turn:127.0.0.1:{coturn.port}?transport=udp"
    servers = ice_servers(url)
    probe = CountingProbe()
    picker = RelayPicker(timeout=PROBE_TIMEOUT, probe=probe)
    pc, relay = await peer_connection(servers, picker=picker)
    second, _ = await peer_connection(servers, picker=picker)
    assert probe.calls == [url] and relay == "ok"  # remembered for the run
    await close_quietly(pc)  # closed before it ever connected: a failed attempt
    third, _ = await peer_connection(servers, picker=picker)
    assert probe.calls == [url, url]
    for other in (second, third):
        await close_quietly(other)


def test_cli_peers_behind_udp_firewall_relay_over_tcp(
        coturn: Coturn, silent_udp_port: int, tmp_path: Path) -> None:
    """The server lists TURN/UDP first (as docs/deploy.md recommends); UDP to it is dropped.

    aiortc alone would use the UDP URL and get no relay; both peers must pick TURN/TCP.
    """
    urls = (f"turn:127.0.0.1:{silent_udp_port}?transport=udp,"
            f"turn:127.0.0.1:{coturn.port}?transport=tcp")
    server = LocalServer(tmp_path / "srv", env={
        "PEERBEAM_TURN_URLS": urls, "PEERBEAM_TURN_SECRET": TURN_SECRET,
    })
    server.start()
    env = {"PEERBEAM_TURN_PROBE_TIMEOUT": str(PROBE_TIMEOUT)}
    source = random_file(tmp_path / "over-tcp.bin", 3 * 1024 * 1024 + 5, seed=21)
    sender = SendProcess(server.base, [source], "--relay-only", env=env)
    try:
        result = receive(sender.link, tmp_path / "out", "--relay-only", timeout=90, env=env)
        assert result.returncode == 0, result.stderr + sender.log() + coturn.log()[-3000:]
        received = (tmp_path / "out" / "over-tcp.bin").read_bytes()
        assert hashlib.sha256(received).digest() == hashlib.sha256(source.read_bytes()).digest()
    finally:
        sender.stop()
        server.stop()
    # The file left the sender over TCP and reached the receiver over TCP.
    size = source.stat().st_size
    wait_for_relayed(coturn.log, size, until=lambda carried: (
        any(s.transport == "tcp" and s.usage("rb") >= size for s in carried)
        and any(s.transport == "tcp" and s.usage("sb") >= size for s in carried)
    ))
