"""WebRTC plumbing on aiortc: peer connections from ICE servers, and a data channel
that can be awaited (incoming messages, buffered-amount backpressure, closing)."""

from __future__ import annotations

import asyncio
import logging
import os
import weakref
from collections.abc import Callable
from typing import Any

import aioice.ice
from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
)

from ..transfer import BUFFERED_HIGH_WATER, BUFFERED_LOW_WATER
from . import transport_tuning
from .relays import PICKER, RelayPicker, TurnServer, split_ice_servers

log = logging.getLogger(__name__)

CLOSED = object()


def _loopback_host_candidates() -> None:
    """PEERBEAM_ICE_LOOPBACK=1: offer only 127.0.0.1 as host candidate.

    aioice skips loopback when it gathers; tests (and two peers on one machine)
    want exactly loopback, so that no packet goes to another address.
    """
    if os.environ.get("PEERBEAM_ICE_LOOPBACK") == "1":
        aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]


_loopback_host_candidates()


def ice_configuration(stun_urls: list[str], relay: TurnServer | None,
                      relay_only: bool = False) -> RTCConfiguration:
    """STUN as given, and the one TURN URL aiortc is able to use (see relays.py).

    ``relay_only`` (tests that force the TURN path): only relayed candidates are gathered.
    """
    servers = [RTCIceServer(urls=list(stun_urls))] if stun_urls and not relay_only else []
    if relay is not None:
        servers.append(RTCIceServer(
            urls=relay.url, username=relay.username, credential=relay.credential
        ))
    policy = RTCIceTransportPolicy.RELAY if relay_only else RTCIceTransportPolicy.ALL
    return RTCConfiguration(iceServers=servers, iceTransportPolicy=policy)


async def peer_connection(ice_servers: list[dict[str, Any]], relay_only: bool = False,
                          picker: RelayPicker = PICKER) -> tuple[RTCPeerConnection, str]:
    """A new RTCPeerConnection for the welcome's ``ice_servers``, and how the relay
    stands: "none" (the server offers none), "failed" (none answered), "ok".

    Of the TURN URLs, aiortc gets the first that answers a real allocation
    (relays.RelayPicker); a connection that never connects makes the next one probe again.
    """
    transport_tuning.apply()  # every peerbeam connection; benchmarks/blast.py measures aiortc as shipped
    stun_urls, relays = split_ice_servers(ice_servers)
    choice = await picker.pick(relays)
    pc = RTCPeerConnection(ice_configuration(stun_urls, choice.chosen, relay_only))
    picker.watch(pc, relays)
    relay = "none" if not relays else "ok" if choice.chosen is not None else "failed"
    return pc, relay


def relay_only_sdp(sdp: str) -> str:
    """Drop every ICE candidate but relayed ones: forces the TURN path."""
    lines = [
        line for line in sdp.splitlines()
        if not line.startswith("a=candidate:") or " typ relay" in line
    ]
    return "\r\n".join(lines) + "\r\n"


class Channel:
    """An RTCDataChannel with send backpressure. Incoming messages go to `on_message`
    and the end to `on_close` when given (the session drivers), else to recv()."""

    def __init__(self, channel: RTCDataChannel,
                 on_message: Callable[[str | bytes], None] | None = None,
                 on_close: Callable[[], None] | None = None) -> None:
        self.channel = channel
        self.incoming: asyncio.Queue[Any] = asyncio.Queue()
        self._low = asyncio.Event()
        self._low.set()
        self.opened = asyncio.Event()
        channel.bufferedAmountLowThreshold = BUFFERED_LOW_WATER
        channel.on("message", on_message or self.incoming.put_nowait)
        channel.on("bufferedamountlow", self._low.set)
        channel.on("open", self.opened.set)
        channel.on("close", on_close or (lambda: self.incoming.put_nowait(CLOSED)))
        if channel.readyState == "open":
            self.opened.set()

    @property
    def is_open(self) -> bool:
        return self.channel.readyState == "open"

    async def recv(self) -> Any:
        """The next message (str or bytes), or CLOSED."""
        return await self.incoming.get()

    def send_text(self, text: str) -> None:
        if self.is_open:
            self.channel.send(text)

    async def send_binary(self, data: bytes) -> None:
        """Send, first waiting while the send queue is above the high-water mark."""
        while self.channel.bufferedAmount > BUFFERED_HIGH_WATER:
            self._low.clear()
            if self.channel.bufferedAmount <= BUFFERED_LOW_WATER:
                break
            await self._low.wait()
            if not self.is_open:
                raise ConnectionError("data channel closed")
        if not self.is_open:
            raise ConnectionError("data channel closed")
        self.channel.send(data)

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait until everything queued is handed to the network (before closing)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.is_open and self.channel.bufferedAmount > 0 and loop.time() < deadline:
            await asyncio.sleep(0.02)


_closing: weakref.WeakKeyDictionary[RTCPeerConnection, asyncio.Future[None]] = (
    weakref.WeakKeyDictionary()
)


async def close_quietly(pc: RTCPeerConnection) -> None:
    """Close a peer connection once, however many parts of the peer ask for it.

    aiortc's close() is not safe to run twice at the same time (the second run fails
    with InvalidStateError, and a close racing one can surface a CancelledError in the
    caller), so all callers share one closing task.
    """
    closing = _closing.get(pc)
    if closing is None:
        closing = _closing[pc] = asyncio.ensure_future(pc.close())
    try:
        await asyncio.shield(closing)
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise  # we are being cancelled ourselves: let it through
        log.debug("closing a peer connection was cancelled inside aiortc")
    except Exception:  # noqa: BLE001 - closing a broken connection must not fail the caller
        log.debug("closing peer connection failed", exc_info=True)


DIRECT_LOCAL = "direct, on the local network"
DIRECT_INTERNET = "direct, over the internet"


def describe_path(pc: RTCPeerConnection) -> str:
    """What the user should know about the path the data takes, from the selected ICE
    pair: through a relay, directly between two host candidates (the same network), or
    directly through the NATs (a server-reflexive or peer-reflexive candidate)."""
    try:
        assert pc.sctp is not None
        connection = pc.sctp.transport.transport._connection  # aiortc keeps aioice's here
        pair = next(iter(connection._nominated.values()))
        types = {pair.local_candidate.type, pair.remote_candidate.type}
    except (AssertionError, AttributeError, StopIteration):
        return "path unknown"
    if "relay" in types:
        return "relayed through a TURN server"
    if types == {"host"}:
        return DIRECT_LOCAL
    return DIRECT_INTERNET


def lane_ice_servers(ice_servers: list[dict[str, Any]], first_path: str
                     ) -> list[dict[str, Any]]:
    """The ``ice_servers`` for an extra connection (lane) of a transfer whose first
    connection took ``first_path`` (describe_path; the pages' rule, webclient/js/rtc.js
    laneIceServers). When the first one went direct, the two networks reach each other
    without a relay, so the extra ones gather no relay candidates: every TURN allocation
    counts against the relay's per-user and total quotas (docs/deploy.md). Relayed or not
    known: every server. An extra connection that finds no path anyway costs only its
    chunks in flight."""
    if first_path not in (DIRECT_LOCAL, DIRECT_INTERNET):
        return ice_servers
    servers: list[dict[str, Any]] = []
    for entry in ice_servers:
        urls = entry.get("urls", [])
        stun = [url for url in ([urls] if isinstance(urls, str) else urls)
                if isinstance(url, str) and url.lower().startswith(("stun:", "stuns:"))]
        if stun:
            servers.append({"urls": stun})
    return servers
