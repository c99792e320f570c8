"""The sending side's driver: the sender session machine
(peerbeam.transfer.sender_machine) decides; this module makes the aiortc peer connections
(the sender is the offerer: docs/protocol.md §1.0), checks and makes MACs, reads and hashes
chunks, sends them as pieces under the channel's backpressure, and reports to its listener.
It holds no protocol rule of its own.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCPeerConnection, RTCSessionDescription

from ..transfer import (
    CHANNEL_LABEL,
    DEFAULT_ITERATIONS,
    RECEIVER,
    SENDER,
    Handshake,
    derive_auth_key,
    sdp_fingerprints,
)
from ..transfer.frames import iter_pieces, piece_payload_limit, sdp_max_message_size
from ..transfer.machine import Action
from ..transfer.messages import encode_message, new_transfer_id
from ..transfer.sender_machine import SenderMachine
from . import faults
from .driver import MachineDriver
from .pacer import Pacer
from .rtc import (
    Channel,
    close_quietly,
    describe_path,
    lane_ice_servers,
    peer_connection,
    relay_only_sdp,
)
from .signaling import SignalingClient
from .source import SourceFile
from .timing import session_timing

# Connections one transfer may grow to (protocol v1.1 lanes; docs/benchmarks.md).
DEFAULT_LANES = 4

log = logging.getLogger(__name__)


@dataclass
class ReceiverReport:
    peer: str
    acked_bytes: int = 0
    total_bytes: int = 0
    state: str = "connecting"
    digests: list[str] = field(default_factory=list)
    error: str | None = None
    code: str | None = None
    path: str = ""  # how the current connection reaches the receiver
    lanes: int = 1  # connections the transfer uses (protocol v1.1)


Listener = Callable[[ReceiverReport], None]


class Offer:
    """What is being sent: the files, the link key, the optional password."""

    def __init__(self, files: list[SourceFile], room: str, link_key: bytes,
                 password: str | None = None, max_rate: float | None = None) -> None:
        self.files = files
        self.room = room
        self.transfer = new_transfer_id()
        self.password = password
        self.iterations = DEFAULT_ITERATIONS
        # Derived once: PBKDF2 takes a noticeable fraction of a second.
        self.auth_key = derive_auth_key(link_key, room, password, self.iterations)
        # One limit for the whole offer: it is the sender's uplink that it protects.
        self.pacer = Pacer(max_rate)

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


@dataclass
class _Link:
    """One peer connection to one receiver (`pc` once made: picking a relay takes a moment)."""

    peer: str
    lane: int = 0
    pc: RTCPeerConnection | None = None
    channel: Channel | None = None
    relay: str = "none"  # how the relay stood when it was made (rtc.peer_connection)
    closed: bool = False
    session: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    local_sdp: str = ""
    remote_sdp: str = ""
    nonce: bytes = b""  # ours, from hello
    reads: dict[tuple[int, int], bytes] = field(default_factory=dict)
    pieces: asyncio.Task[None] | None = None


class Sender(MachineDriver):
    """Serves an Offer to every receiver that joins the room, several at once."""

    def __init__(self, offer: Offer, signaling: SignalingClient, listener: Listener,
                 relay_only: bool = False, one_time: bool = False,
                 connections: int | None = None) -> None:
        """`connections`: use exactly that many per receiver (protocol v1.1 lanes) instead
        of adding them, up to DEFAULT_LANES, while they make the transfer faster."""
        super().__init__(SenderMachine(offer.transfer, [f.entry for f in offer.files],
                                       offer.password is not None, offer.iterations, one_time,
                                       session_timing(), connections or DEFAULT_LANES,
                                       fixed_lanes=connections is not None))
        self.offer = offer
        self.signaling = signaling
        self.listener = listener
        self.relay_only = relay_only
        self.links: dict[str, _Link] = {}
        self.reports: dict[str, ReceiverReport] = {}
        self.finished = asyncio.Event()  # a one-time transfer completed, or the room closed

    async def run(self) -> None:
        """Serve until the offer is over (one-time done, room gone, a source failed)."""
        self.spawn(self._signaling_loop())
        self.feed({"type": "peers", "peers": self.signaling.welcome.get("peers", [])})
        finished: asyncio.Future[Any] = asyncio.ensure_future(self.finished.wait())
        waiters: set[asyncio.Future[Any]] = {finished, self.stopped}
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            if self.stopped.done():
                self.stopped.result()
        finally:
            finished.cancel()
            await self.shut_down()
            for link in self.links.values():
                if link.pc is not None:
                    await close_quietly(link.pc)

    def stop(self) -> None:
        """The user stops sharing: every receiver is told (`cancelled`), then closed."""
        self.feed({"type": "stop"})

    async def _signaling_loop(self) -> None:
        while True:
            message = await self.signaling.messages.get()
            kind = message.get("type")
            if kind == "peer-joined":
                self.feed({"type": "peer_joined", "peer": message.get("peer"), "role": message.get("role")})
            elif kind == "reconnected":
                self.feed({"type": "peers", "peers": message["welcome"].get("peers", [])})
            elif kind == "signal":
                data = message.get("data") or {}
                if data.get("kind") == "answer":
                    self._answered(str(message.get("from")), data)
                elif data.get("kind") == "restart":
                    self.feed({"type": "restart", "peer": message.get("from")})
            elif kind == "room-closed":
                self.feed({"type": "room_gone", "reason": message.get("reason") or "the room is closed"})
            elif kind == "error":
                log.info("signaling: %s", message.get("message"))

    # -- connections --------------------------------------------------------------------

    def do_open_connection(self, action: Action) -> None:
        link = self.links[action["conn"]] = _Link(action["peer"], action.get("lane", 0))
        self.spawn(self._offer(action["conn"], link))

    async def _offer(self, conn: str, link: _Link) -> None:
        ice_servers = self.signaling.welcome.get("ice_servers", [])
        if link.lane:
            first = self.reports.get(link.peer)
            ice_servers = lane_ice_servers(ice_servers, first.path if first else "")
        pc, link.relay = await peer_connection(ice_servers, self.relay_only)
        link.pc = pc
        if link.closed:
            await close_quietly(pc)
            return
        raw = pc.createDataChannel(CHANNEL_LABEL, ordered=True)
        link.channel = Channel(raw, lambda data: self._on_data(conn, data),
                               lambda: self._lost(conn, "the receiver's connection closed"))

        @raw.on("open")
        def on_open() -> None:
            report = self.reports.setdefault(link.peer, ReceiverReport(link.peer))
            if not link.lane:
                report.path = describe_path(pc)
                report.lanes = 1  # a new transfer session: its lanes are counted afresh
            else:
                report.lanes += 1
            link.nonce = secrets.token_bytes(32)
            self.feed({"type": "channel_open", "conn": conn, "nonce": link.nonce})

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                self._lost(conn, f"the connection {pc.connectionState}")

        await pc.setLocalDescription(await pc.createOffer())
        link.local_sdp = pc.localDescription.sdp
        if self.relay_only:
            link.local_sdp = relay_only_sdp(link.local_sdp)
        offer: dict[str, Any] = {"kind": "offer", "session": link.session, "sdp": link.local_sdp}
        if link.lane:
            offer["lane"] = link.lane  # an extra connection for the running transfer
        await self.signaling.signal(link.peer, offer)

    def _answered(self, peer: str, data: dict[str, Any]) -> None:
        link = next((candidate for candidate in self.links.values()
                     if candidate.peer == peer and candidate.session == data.get("session")), None)
        sdp = data.get("sdp")
        if link is None or link.pc is None or link.remote_sdp or not isinstance(sdp, str):
            return  # an answer to an older offer, or a second one
        link.remote_sdp = sdp  # as received: its fingerprints go into the MAC

        pc = link.pc

        async def apply() -> None:
            try:
                await pc.setRemoteDescription(RTCSessionDescription(sdp, "answer"))
            except (ValueError, RuntimeError) as error:  # a malformed answer: that connection fails
                log.info("answer from %s refused: %s", peer, error)
                await close_quietly(pc)

        self.spawn(apply())

    def _on_data(self, conn: str, data: str | bytes) -> None:
        if isinstance(data, str):
            self.feed({"type": "message", "conn": conn, "text": data})
        else:
            self.feed({"type": "piece", "conn": conn})

    def _lost(self, conn: str, reason: str) -> None:
        self.feed({"type": "connection_lost", "conn": conn, "reason": reason,
                   "relay": self.links[conn].relay})

    def do_send(self, action: Action) -> None:
        channel = self.links[action["conn"]].channel
        if channel is not None:
            channel.send_text(encode_message(action["message"]))

    def do_close(self, action: Action) -> None:
        link = self.links[action["conn"]]
        link.closed = True
        if link.pieces is not None:
            link.pieces.cancel()

        async def close() -> None:
            if link.channel is not None:
                await link.channel.drain(1.0)
            if link.pc is not None:
                await close_quietly(link.pc)

        self.spawn(close())

    def do_lock_room(self, action: Action) -> None:
        self.spawn(self.signaling.send({"type": "lock"}))

    # -- authentication -----------------------------------------------------------------

    def do_check_proof(self, action: Action) -> None:
        link = self.links[action["conn"]]
        handshake = Handshake(self.offer.room, sdp_fingerprints(link.local_sdp),
                              sdp_fingerprints(link.remote_sdp), link.nonce, action["nonce"])
        ok = handshake.verify(self.offer.auth_key, RECEIVER, action["mac"])
        mac = handshake.mac(self.offer.auth_key, SENDER) if ok else None
        self.feed({"type": "proof_checked", "conn": action["conn"], "ok": ok, "mac": mac}, first=True)

    # -- data ---------------------------------------------------------------------------

    def do_read_chunk(self, action: Action) -> None:
        self.spawn(self._read(action["file"], action["chunk"], self.links[action["conn"]], action["conn"]))

    def do_hash_chunk(self, action: Action) -> None:
        self.spawn(self._read(action["file"], action["chunk"], None, None))

    async def _read(self, file: int, chunk: int, link: _Link | None, conn: str | None) -> None:
        try:
            data, digest = await self.offer.files[file].read(chunk)
        except OSError as error:
            self.feed({"type": "read_failed", "file": file, "chunk": chunk,
                       "message": f"cannot read {self.offer.files[file].path.name} any more: {error}"})
            return
        event: dict[str, Any] = {"type": "chunk_read", "file": file, "chunk": chunk, "size": len(data),
                                 "digest": digest}
        if link is not None:
            link.reads[(file, chunk)] = data
            event["conn"] = conn
        self.feed(event)

    def do_send_pieces(self, action: Action) -> None:
        link = self.links[action["conn"]]
        data = link.reads.pop((action["file"], action["chunk"]))
        link.pieces = self.spawn(self._pieces(link, action["conn"], action["file"], action["chunk"], data))

    async def _pieces(self, link: _Link, conn: str, file: int, chunk: int, data: bytes) -> None:
        limit = piece_payload_limit(sdp_max_message_size(link.remote_sdp))
        assert link.channel is not None
        wire = faults.corrupt_once(file, chunk, data)
        if wire is not data:
            log.warning("fault injection: corrupting file %d chunk %d", file, chunk)
        try:
            for piece in iter_pieces(file, chunk, wire, limit):
                await self.offer.pacer.take(len(piece))
                await link.channel.send_binary(piece)
        except ConnectionError:
            return  # the channel closed: connection_lost follows
        link.pieces = None
        self.feed({"type": "pieces_sent", "conn": conn, "file": file, "chunk": chunk})

    def do_stop_pieces(self, action: Action) -> None:
        link = self.links[action["conn"]]
        if link.pieces is not None:
            link.pieces.cancel()
            link.pieces = None

    # -- what the user sees ---------------------------------------------------------------

    def do_receiver(self, action: Action) -> None:
        report = self.reports.setdefault(action["peer"], ReceiverReport(action["peer"]))
        report.state = action["state"]
        report.acked_bytes = action["acked"]
        report.total_bytes = action["total"]
        report.digests = action.get("digests", report.digests)
        report.error = action.get("detail") if action["state"] in ("failed", "lost") else None
        report.code = action.get("code")
        if action["state"] == "lost":
            log.info("receiver %s: %s", action["peer"], report.error)
        self.listener(report)

    def do_progress(self, action: Action) -> None:
        report = self.reports.setdefault(action["peer"], ReceiverReport(action["peer"]))
        report.acked_bytes = action["acked"]
        self.listener(report)

    def do_finished(self, action: Action) -> None:
        log.info("the offer is over: %s", action["reason"])
        self.finished.set()
