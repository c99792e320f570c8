"""The receiving side's driver: the receiver session machine
(peerbeam.transfer.receiver_machine) decides; this module joins the room, answers the
sender's offers with aiortc peer connections, derives keys and MACs, assembles and hashes
chunks, writes them, and reports. It holds no protocol rule of its own."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiortc import RTCPeerConnection, RTCSessionDescription

from ..transfer import (
    CHANNEL_LABEL,
    HEADER_SIZE,
    RECEIVER,
    SENDER,
    Handshake,
    decode_piece,
    derive_auth_key,
    new_nonce,
    sdp_fingerprints,
)
from ..transfer.constants import MAX_LANES
from ..transfer.errors import FrameError
from ..transfer.machine import Action, Event
from ..transfer.messages import Accept, Manifest, encode_message
from ..transfer.receiver_machine import ReceiverMachine
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
from .storage import PartialFile, ReceiveDirectory, StorageError
from .timing import session_timing
from .wording import receive_ended

log = logging.getLogger(__name__)


class TransferRefused(Exception):
    """A final failure: wrong link or password, tampering, a vanished sender. `code` is
    the session machine's (protocol.md §12, §14.2)."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


@dataclass
class ReceiveResult:
    files: list[Path] = field(default_factory=list)
    digests: list[str] = field(default_factory=list)
    bytes_transferred: int = 0  # received over the network in this run
    accept_to_first_byte: float | None = None  # seconds, first connection of this run


@dataclass
class _Link:
    """One peer connection to the sender (`pc` once made: picking a relay takes a moment)."""

    offer_sdp: str
    lane: int = 0  # protocol v1.1: an extra connection of the running transfer when > 0
    pc: RTCPeerConnection | None = None
    relay: str = "none"  # how the relay stood when it was made (rtc.peer_connection)
    closed: bool = False
    local_sdp: str = ""
    channel: Channel | None = None
    sender_nonce: bytes = b""
    receiver_nonce: bytes = b""
    key: bytes = b""
    buffer: bytearray = field(default_factory=bytearray)  # the chunk being assembled
    hasher: Any = field(default_factory=hashlib.sha256)
    hashed: bytearray | None = None  # a chunk hashed, waiting for write_chunk / drop_chunk

    def handshake(self, room: str) -> Handshake:
        return Handshake(room, sdp_fingerprints(self.offer_sdp), sdp_fingerprints(self.local_sdp),
                         self.sender_nonce, self.receiver_nonce)


class Receiver(MachineDriver):
    """Joins a room and receives its files into a directory, resuming as needed."""

    def __init__(self, signaling: SignalingClient, room: str, link_key: bytes,
                 directory: Path, password: str | None = None,
                 on_manifest: Callable[[Manifest], None] | None = None,
                 on_progress: Callable[[int, int], None] | None = None,
                 relay_only: bool = False, max_rate: float | None = None,
                 rejoined: bool = False, expect_password: bool = False,
                 on_connected: Callable[[str], None] | None = None,
                 give_up_after: float | None = None) -> None:
        # A password on the command line, or a link that says one is set: a sender that
        # asks for none is refused (protocol.md §3).
        expect = True if expect_password or password is not None else None
        timing = session_timing(give_up_after)
        super().__init__(ReceiverMachine(expect, password, auto_accept=True,
                                         timing=timing, lanes=MAX_LANES))
        self.close_after_complete = timing.close_after_complete
        self.signaling = signaling
        self.room = room
        self.link_key = link_key
        self.storage = ReceiveDirectory(directory)
        self.on_manifest = on_manifest
        self.on_progress = on_progress
        self.on_connected = on_connected
        self.path = ""  # how the last connection reached the sender
        self.relay_only = relay_only
        self.rejoined = rejoined
        self.pacer = Pacer(max_rate)  # acks wait for it, and the sender's window for acks
        self.links: dict[str, _Link] = {}
        self.offers: dict[str, tuple[str, str, int]] = {}  # session -> (sender, offer SDP, lane)
        self.files: list[PartialFile] = []
        self.manifest: Manifest | None = None
        self.network_bytes = 0
        self.timeline: dict[str, float] = {}
        self._keys: dict[tuple[str | None, int | None], bytes] = {}
        self._writes: asyncio.Queue[Callable[[], Awaitable[None]]] = asyncio.Queue()
        self._result: asyncio.Future[ReceiveResult] = self.loop.create_future()
        self._refusal: str | None = None

    # -- running ------------------------------------------------------------------------

    async def run(self) -> ReceiveResult:
        """Receive everything; reconnect and resume until done or refused for good."""
        self.spawn(self._write_loop())
        self.spawn(self._signaling_loop())
        self.feed({"type": "peers", "peers": self.signaling.welcome.get("peers", []),
                   "rejoin": self.rejoined})
        try:
            waiters: set[asyncio.Future[Any]] = {self._result, self.stopped}
            done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            if self.stopped in done:
                self.stopped.result()  # raises what broke the driver
            return self._result.result()
        finally:
            await self.shut_down()
            for link in self.links.values():
                if link.pc is not None:
                    await close_quietly(link.pc)
            for partial in self.files:
                partial.close()

    async def _signaling_loop(self) -> None:
        while True:
            message = await self.signaling.messages.get()
            kind = message.get("type")
            if kind == "peer-joined":
                self.feed({"type": "peer_joined", "peer": message.get("peer"), "role": message.get("role")})
            elif kind == "signal":
                data = message.get("data") or {}
                if data.get("kind") == "offer" and isinstance(data.get("sdp"), str) \
                        and isinstance(data.get("session"), str):
                    lane = data.get("lane")
                    lane = lane if isinstance(lane, int) and not isinstance(lane, bool) else 0
                    self.offers[data["session"]] = (str(message.get("from")), data["sdp"], lane)
                    self.feed({"type": "offer", "from": message.get("from"), "session": data["session"],
                               "lane": lane})
            elif kind == "reconnected":
                self.feed({"type": "peers", "peers": message["welcome"].get("peers", []), "rejoin": True})
            elif kind == "room-closed":
                self.feed({"type": "room_gone", "reason": message.get("reason") or ""})

    def carry_out(self, event: Event, payload: Any, actions: list[Action]) -> None:
        if event["type"] == "piece":
            link = self.links.get(event["conn"])
            if link is not None and not any(a["type"] == "drop_piece" for a in actions):
                link.buffer += payload
                link.hasher.update(payload)
                if "first_byte" not in self.timeline:
                    self.timeline["first_byte"] = time.monotonic()
        super().carry_out(event, payload, actions)

    # -- connections --------------------------------------------------------------------

    def do_answer(self, action: Action) -> None:
        sender, sdp, lane = self.offers.pop(action["session"])
        link = self.links[action["conn"]] = _Link(sdp, lane=lane)
        self.spawn(self._answer(action["conn"], link, sender, action["session"]))

    async def _answer(self, conn: str, link: _Link, sender: str, session: str) -> None:
        ice_servers = self.signaling.welcome.get("ice_servers", [])
        if link.lane:
            ice_servers = lane_ice_servers(ice_servers, self.path)
        pc, link.relay = await peer_connection(ice_servers, self.relay_only)
        link.pc = pc
        if link.closed:
            await close_quietly(pc)
            return

        @pc.on("datachannel")
        def on_datachannel(raw: Any) -> None:
            if raw.label != CHANNEL_LABEL or link.channel is not None:
                return
            link.channel = Channel(raw, lambda data: self._on_data(conn, data),
                                   lambda: self._lost(conn, "the sender's connection closed"))
            def opened() -> None:
                if not link.lane:
                    self.path = describe_path(pc)
                    if self.on_connected is not None:
                        self.on_connected(self.path)
                self.feed({"type": "channel_open", "conn": conn})

            if raw.readyState == "open":
                opened()
            else:
                raw.on("open", opened)

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                self._lost(conn, f"the connection {pc.connectionState}")

        await pc.setRemoteDescription(RTCSessionDescription(link.offer_sdp, "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        link.local_sdp = pc.localDescription.sdp
        if self.relay_only:
            link.local_sdp = relay_only_sdp(link.local_sdp)
        await self.signaling.signal(sender, {"kind": "answer", "session": session, "sdp": link.local_sdp})

    def _on_data(self, conn: str, data: str | bytes) -> None:
        if isinstance(data, str):
            self.feed({"type": "message", "conn": conn, "text": data})
            return
        try:
            piece = decode_piece(data)
        except FrameError as error:  # the machine ends the receive with bad_frame
            self.feed({"type": "bad_piece", "conn": conn, "detail": str(error)})
            return
        self.network_bytes += len(data) - HEADER_SIZE
        self.feed({"type": "piece", "conn": conn, "file": piece.file, "chunk": piece.chunk,
                   "offset": piece.offset, "size": len(piece.payload)}, payload=piece.payload)
        link = self.links[conn]
        if link.pc is not None and (faults.drop_now(self.network_bytes) or (
                link.lane and faults.drop_now(self.network_bytes, "drop_lane"))):
            self.spawn(close_quietly(link.pc))

    def _lost(self, conn: str, reason: str) -> None:
        self.feed({"type": "connection_lost", "conn": conn, "reason": reason,
                   "relay": self.links[conn].relay})

    def do_restart(self, action: Action) -> None:
        self.spawn(self.signaling.signal(action["to"], {"kind": "restart"}))

    def do_send(self, action: Action) -> None:
        link = self.links[action["conn"]]
        if isinstance(action["message"], Accept) and "accepted" not in self.timeline:
            self.timeline["accepted"] = time.monotonic()
        if link.channel is not None:
            link.channel.send_text(encode_message(action["message"]))

    def do_close(self, action: Action) -> None:
        link = self.links[action["conn"]]
        self.spawn(self._close(link))

    @staticmethod
    async def _close(link: _Link) -> None:
        link.closed = True
        if link.channel is not None:
            await link.channel.drain(1.0)
        if link.pc is not None:
            await close_quietly(link.pc)

    # -- authentication -----------------------------------------------------------------

    def do_ask_password(self, action: Action) -> None:
        # The CLI asks nothing: its password, if any, was given up front.
        self._refusal = ("This transfer needs a password: use --password." if action["remaining"] is None
                         else "Wrong password.")
        self.feed({"type": "user_cancelled"})

    def do_make_proof(self, action: Action) -> None:
        self.spawn(self._make_proof(action))

    async def _make_proof(self, action: Action) -> None:
        link = self.links[action["conn"]]
        password, iterations = action["password"], action["iterations"]
        key = self._keys.get((password, iterations))
        if key is None:
            # PBKDF2 takes a noticeable moment: keep the event loop (and ICE) alive.
            key = await asyncio.to_thread(derive_auth_key, self.link_key, self.room, password,
                                          *([iterations] if iterations else []))
            self._keys[(password, iterations)] = key
        link.key = key
        link.sender_nonce = action["sender_nonce"]
        link.receiver_nonce = new_nonce()
        mac = link.handshake(self.room).mac(key, RECEIVER)
        self.feed({"type": "proof_made", "conn": action["conn"], "nonce": link.receiver_nonce, "mac": mac})

    def do_check_sender_proof(self, action: Action) -> None:
        link = self.links[action["conn"]]
        ok = link.handshake(self.room).verify(link.key, SENDER, action["mac"])
        self.feed({"type": "sender_proof_checked", "conn": action["conn"], "ok": ok}, first=True)

    # -- storage ------------------------------------------------------------------------

    def do_load_records(self, action: Action) -> None:
        manifest: Manifest = action["manifest"]
        if self.manifest is None and self.on_manifest is not None:
            self.on_manifest(manifest)
        self.manifest = manifest
        self.spawn(self._load_records(manifest))

    async def _load_records(self, manifest: Manifest) -> None:
        await self._after_writes()  # what an older connection was writing belongs to the record
        for partial in self.files:
            partial.close()
        records = await asyncio.to_thread(self.storage.held, manifest)
        # A reconnect continues from what the disk holds now, in the files it was writing.
        self.files = [self.storage.loaded.get(partial.key, partial) for partial in self.files]
        self.feed({"type": "records_loaded", "records": records})

    def do_prepare_storage(self, action: Action) -> None:
        self.spawn(self._prepare(action["manifest"], action["records"]))

    async def _prepare(self, manifest: Manifest, chosen: list[str | None]) -> None:
        try:
            self.files = await asyncio.to_thread(self.storage.prepare, manifest, chosen)
        except StorageError as error:
            self.feed({"type": "storage_failed", "code": error.code, "message": str(error)})
            return
        self.feed({"type": "storage_ready"})

    def do_reset_file(self, action: Action) -> None:
        partial = self.files[action["file"]]
        taken = {p.record.saved_name for p in self.files}
        free = self.storage.free_name(partial.record.name, taken)
        self._writes.put_nowait(lambda: asyncio.to_thread(partial.reset, free))

    # -- data ---------------------------------------------------------------------------

    def do_drop_piece(self, action: Action) -> None:
        """Handled in carry_out: the payload is simply not kept."""

    def do_hash_chunk(self, action: Action) -> None:
        link = self.links[action["conn"]]
        digest = link.hasher.digest()
        link.hashed, link.buffer, link.hasher = link.buffer, bytearray(), hashlib.sha256()
        self.feed({"type": "chunk_hashed", "conn": action["conn"], "file": action["file"],
                   "chunk": action["chunk"], "digest": digest}, first=True)

    def do_drop_chunk(self, action: Action) -> None:
        self.links[action["conn"]].hashed = None

    def do_write_chunk(self, action: Action) -> None:
        link = self.links[action["conn"]]
        data, link.hashed = link.hashed, None
        assert data is not None
        partial = self.files[action["file"]]

        async def write() -> None:
            await self.pacer.take(len(data))
            try:
                await asyncio.to_thread(partial.write_chunk, action["chunk"], data, action["digest"])
            except StorageError as error:
                self.feed({"type": "storage_failed", "code": error.code, "message": str(error)})
                return
            self.feed({"type": "chunk_written", "conn": action["conn"], "file": action["file"],
                       "chunk": action["chunk"]})

        self._writes.put_nowait(write)

    def do_finish_file(self, action: Action) -> None:
        partial = self.files[action["file"]]

        async def finish() -> None:
            try:
                await asyncio.to_thread(partial.finish)
            except StorageError as error:
                self.feed({"type": "storage_failed", "code": error.code, "message": str(error)})
                return
            self.feed({"type": "file_finished", "file": action["file"]})

        self._writes.put_nowait(finish)

    async def _write_loop(self) -> None:
        """The disk, one operation at a time, in the order the machine asked for them."""
        while True:
            operation = await self._writes.get()
            try:
                await operation()
            finally:
                self._writes.task_done()

    async def _after_writes(self) -> None:
        await self._writes.join()

    # -- what the user sees ---------------------------------------------------------------

    def do_status(self, action: Action) -> None:
        if action["state"] == "reconnecting":
            log.info("connection lost; asking the sender to reconnect")

    def do_progress(self, action: Action) -> None:
        if self.on_progress is not None:
            self.on_progress(action["held"], action["total"])

    def do_end(self, action: Action) -> None:
        if self._result.done():
            return
        if action["outcome"] != "done":
            self._result.set_exception(TransferRefused(
                self._refusal or receive_ended(action["code"], action.get("detail", ""),
                                               action.get("remote", False)), action["code"]))
            return
        self.spawn(self._finished(action["digests"]))

    async def _finished(self, digests: list[str]) -> None:
        await self._after_writes()
        result = ReceiveResult([partial.final_path for partial in self.files], digests, self.network_bytes)
        if "accepted" in self.timeline and "first_byte" in self.timeline:
            result.accept_to_first_byte = self.timeline["first_byte"] - self.timeline["accepted"]
        await asyncio.to_thread(self.storage.clean_journal, self.files)
        # Let `complete` reach the sender before the caller closes everything (protocol.md
        # §8.6): a message handed to SCTP may still wait in its queue, and closing drops it.
        # The sender closes its connections once it has checked `complete`; one that does
        # not is waited for `close_after_complete`, as the machine would.
        for link in self.links.values():
            if link.channel is not None:
                await link.channel.drain(1.0)
        deadline = self.loop.time() + self.close_after_complete
        while self.loop.time() < deadline and any(
                link.channel is not None and link.channel.is_open for link in self.links.values()):
            await asyncio.sleep(0.02)
        self._result.set_result(result)
