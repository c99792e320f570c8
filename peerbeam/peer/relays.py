"""Which TURN URL the Python peer hands to aiortc.

aiortc gives aioice one TURN server only: the first usable ``turn:``/``turns:`` URL of
its configuration (``aiortc.rtcicetransport.connection_kwargs``). The signaling server
lists its TURN URLs in order of preference (UDP, then TCP, then TLS) and a browser tries
them all; handed the list as is, a peer behind a firewall that drops UDP would get no
relay at all. So before a peer connection is made, the URLs are tried in the order
given with a real TURN allocation (aioice's TURN client), each under a short timeout
(``PEERBEAM_TURN_PROBE_TIMEOUT`` seconds, default 3), and aiortc gets the first that
answers. The allocation is deleted at once.

The choice is remembered for the run (one probe serves every receiver of a sender)
and forgotten when a peer connection made with it fails, or closes without ever having
connected: the next connection (the reconnect) probes again, so a peer that moved to
another network picks the transport that works there.

A successful allocation is the right test: the client-to-relay leg is the only part of
the relayed path that the transport choice changes (relay to peer is UDP from the TURN
server either way).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aioice import turn
from aiortc import RTCPeerConnection
from aiortc.rtcicetransport import parse_stun_turn_uri

log = logging.getLogger(__name__)

DEFAULT_PROBE_TIMEOUT = 3.0
# The lifetime a probe asks for, in case its deletion is lost (coturn may keep it longer:
# it does not go below its default lifetime).
PROBE_LIFETIME = 60


def probe_timeout_from_env() -> float:
    raw = os.environ.get("PEERBEAM_TURN_PROBE_TIMEOUT", "")
    try:
        value = float(raw) if raw else DEFAULT_PROBE_TIMEOUT
    except ValueError:
        log.warning("PEERBEAM_TURN_PROBE_TIMEOUT=%r is not a number; using %s s",
                    raw, DEFAULT_PROBE_TIMEOUT)
        return DEFAULT_PROBE_TIMEOUT
    return value if value > 0 else DEFAULT_PROBE_TIMEOUT


@dataclass(frozen=True)
class TurnServer:
    """One TURN URL with the credentials of its ``ice_servers`` entry."""

    url: str
    username: str | None
    credential: str | None
    host: str
    port: int
    transport: str  # "udp" or "tcp"
    tls: bool


@dataclass
class RelayChoice:
    """What a pick found: the TURN server to use (or none) and why the others failed."""

    chosen: TurnServer | None
    failures: list[tuple[str, str]] = field(default_factory=list)  # (url, reason)


def split_ice_servers(ice_servers: Sequence[dict[str, Any]]
                      ) -> tuple[list[str], list[TurnServer]]:
    """The STUN URLs, and the TURN URLs aiortc can use, both in the order given."""
    stun: list[str] = []
    relays: list[TurnServer] = []
    for entry in ice_servers:
        urls = entry.get("urls", [])
        for url in [urls] if isinstance(urls, str) else urls:
            if not isinstance(url, str):
                continue
            try:
                parsed = parse_stun_turn_uri(url)
            except ValueError:
                log.info("ignoring ICE server URL %r", url)
                continue
            if parsed["scheme"] in ("stun", "stuns"):
                stun.append(url)
                continue
            tls = parsed["scheme"] == "turns"
            # What aioice can do: TURN over UDP or TCP, TLS over TCP.
            if parsed["transport"] not in (("tcp",) if tls else ("udp", "tcp")):
                log.info("ignoring TURN URL %r: aiortc cannot use its transport", url)
                continue
            relays.append(TurnServer(
                url=url, username=entry.get("username"), credential=entry.get("credential"),
                host=parsed["host"], port=parsed["port"], transport=parsed["transport"], tls=tls,
            ))
    return stun, relays


class _Ignore(asyncio.DatagramProtocol):
    """Nothing is relayed during a probe; its protocol only has to exist."""


async def allocate(server: TurnServer) -> None:
    """Make a TURN allocation on ``server`` and delete it. Raises when there is none."""
    loop = asyncio.get_running_loop()
    client: Any
    transport: asyncio.BaseTransport
    address = (server.host, server.port)
    if server.transport == "tcp":
        transport, client = await loop.create_connection(
            lambda: turn.TurnClientTcpProtocol(
                address, username=server.username, password=server.credential,
                lifetime=PROBE_LIFETIME, channel_refresh_time=turn.DEFAULT_CHANNEL_REFRESH_TIME),
            host=server.host, port=server.port, ssl=server.tls or None,
        )
    else:
        transport, client = await loop.create_datagram_endpoint(
            lambda: turn.TurnClientUdpProtocol(
                address, username=server.username, password=server.credential,
                lifetime=PROBE_LIFETIME, channel_refresh_time=turn.DEFAULT_CHANNEL_REFRESH_TIME),
            remote_addr=address,
        )
    try:
        await client.connect()
        # A lost deletion only costs the server PROBE_LIFETIME seconds of a dead allocation.
        await asyncio.wait_for(client.delete(), 1.0)
    except TimeoutError:
        pass
    finally:
        if client.refresh_task is not None:
            client.refresh_task.cancel()
        transport.close()


Probe = Callable[[TurnServer], Awaitable[None]]


def _reason(error: BaseException, timeout: float) -> str:
    if isinstance(error, TimeoutError):
        return f"no answer within {timeout:g} s"
    return str(error) or type(error).__name__


class RelayPicker:
    """Probes TURN URLs in order and remembers the first that answers (or that none did)."""

    def __init__(self, timeout: float | None = None, probe: Probe = allocate) -> None:
        self.timeout = probe_timeout_from_env() if timeout is None else timeout
        self._probe = probe
        self._choices: dict[tuple[str, ...], RelayChoice] = {}
        self._probing: dict[tuple[str, ...], asyncio.Future[RelayChoice]] = {}

    async def pick(self, relays: Sequence[TurnServer]) -> RelayChoice:
        """The first of ``relays`` (in order) that answers, probing only when needed.

        Concurrent callers with the same URLs share one probe.
        """
        key = _key(relays)
        if not key:
            return RelayChoice(None)
        choice = self._choices.get(key)
        if choice is None:
            probing = self._probing.get(key)
            if probing is None or probing.get_loop() is not asyncio.get_running_loop():
                probing = asyncio.ensure_future(self._probe_in_order(relays))
                self._probing[key] = probing
                probing.add_done_callback(lambda done: self._settle(key, done))
            choice = await asyncio.shield(probing)
        # Credentials change with every welcome: use the caller's for the chosen URL.
        chosen = next((s for s in relays if choice.chosen and s.url == choice.chosen.url), None)
        return RelayChoice(chosen, list(choice.failures))

    def _settle(self, key: tuple[str, ...], done: asyncio.Future[RelayChoice]) -> None:
        if self._probing.get(key) is done:
            del self._probing[key]
        if not done.cancelled() and done.exception() is None:
            self._choices[key] = done.result()

    def forget(self, relays: Sequence[TurnServer]) -> None:
        """Probe ``relays`` again the next time a peer connection needs them."""
        self._choices.pop(_key(relays), None)

    async def _probe_in_order(self, relays: Sequence[TurnServer]) -> RelayChoice:
        failures: list[tuple[str, str]] = []
        for server in relays:
            try:
                await asyncio.wait_for(self._probe(server), self.timeout)
            except Exception as error:  # noqa: BLE001 - any failure: try the next URL
                failures.append((server.url, _reason(error, self.timeout)))
                log.info("TURN %s did not answer: %s", server.url, failures[-1][1])
                continue
            log.info("TURN %s answered; using it", server.url)
            return RelayChoice(server, failures)
        log.warning("no TURN server answered (%s)",
                    "; ".join(f"{url}: {reason}" for url, reason in failures))
        return RelayChoice(None, failures)

    def watch(self, pc: RTCPeerConnection, relays: Sequence[TurnServer]) -> None:
        """Probe again after ``pc`` fails, or closes without ever having connected."""
        if not relays:
            return
        connected = False

        @pc.on("connectionstatechange")
        def on_state() -> None:
            nonlocal connected
            state = pc.connectionState
            if state == "connected":
                connected = True
            elif state == "failed" or (state == "closed" and not connected):
                log.info("peer connection %s: probing the TURN URLs again next time", state)
                self.forget(relays)


def _key(relays: Sequence[TurnServer]) -> tuple[str, ...]:
    return tuple(server.url for server in relays)


# One picker per process: a run remembers its choice across all its peer connections.
PICKER = RelayPicker()
