"""The sending side: one room, one offer of files, a session per receiver.

The sender is the offerer (docs/protocol.md §1.0). Each receiver gets its own
RTCPeerConnection and SendSession; all sessions share the SourceFiles, so chunk
digests computed for one receiver serve every other one and every resume.
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
    CHUNK_SIZE,
    DEFAULT_ITERATIONS,
    MAX_AUTH_ATTEMPTS,
    RECEIVER,
    SENDER,
    FrameError,
    IntegrityError,
    ProtocolError,
    SendWindow,
    compute_mac,
    derive_auth_key,
    new_nonce,
    sdp_fingerprints,
    verify_mac,
)
from ..transfer.frames import iter_pieces, piece_payload_limit, sdp_max_message_size
from ..transfer.messages import (
    Accept,
    Ack,
    Auth,
    AuthFailed,
    AuthOk,
    ChunkEnd,
    Complete,
    Decline,
    Done,
    ErrorMessage,
    FileDone,
    Hello,
    Manifest,
    Nack,
    Start,
    new_transfer_id,
)
from . import faults
from .rtc import Channel, close_quietly, peer_connection, relay_only_sdp
from .session import ConnectionLost, PeerError, ProtocolSession
from .signaling import SignalingClient
from .source import SourceFile

log = logging.getLogger(__name__)

OPEN_TIMEOUT = 30.0
# Failed receiver proofs across all connections of a link before the sender stops
# taking receivers: bounds online password guessing (protocol.md §6).
MAX_FAILED_PROOFS = 20


@dataclass
class ReceiverReport:
    peer: str
    acked_bytes: int = 0
    total_bytes: int = 0
    state: str = "connecting"
    digests: list[str] = field(default_factory=list)
    error: str | None = None


Listener = Callable[[ReceiverReport], None]


class Offer:
    """What is being sent: the files, the link key, the optional password."""

    def __init__(self, files: list[SourceFile], room: str, link_key: bytes,
                 password: str | None = None) -> None:
        self.files = files
        self.room = room
        self.transfer = new_transfer_id()
        self.manifest = Manifest(self.transfer, tuple(f.entry for f in files))
        self.password = password
        self.iterations = DEFAULT_ITERATIONS
        # Derived once: PBKDF2 takes a noticeable fraction of a second.
        self.auth_key = derive_auth_key(link_key, room, password, self.iterations)
        self.failed_proofs = 0

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


class SendSession(ProtocolSession):
    """The protocol with one receiver over one data channel (protocol.md §14.1)."""

    peer_role = "receiver"

    def __init__(self, offer: Offer, channel: Channel, local_sdp: str, remote_sdp: str,
                 report: ReceiverReport, listener: Listener) -> None:
        super().__init__(channel)
        self.offer = offer
        self.sender_fps = sdp_fingerprints(local_sdp)
        self.receiver_fps = sdp_fingerprints(remote_sdp)
        self.payload_limit = piece_payload_limit(sdp_max_message_size(remote_sdp))
        self.report = report
        self.listener = listener
        self.window = SendWindow()
        self.progress = asyncio.Event()
        self.rewind: tuple[int, int] | None = None
        self.complete: asyncio.Future[Complete] = asyncio.get_running_loop().create_future()
        self.chunk_bytes: dict[tuple[int, int], int] = {}
        self._done_sent = False

    async def run(self) -> None:
        try:
            await asyncio.wait_for(self.channel.opened.wait(), OPEN_TIMEOUT)
            await self._authenticate()
            accept = await self._offer_files()
            if accept is None:
                self._set_state("declined")
                return
            await self._transfer(accept)
        except ProtocolError as error:
            self.send(ErrorMessage.of(error))
            await self.channel.drain(1.0)
            self._fail(str(error))
            raise
        except (TimeoutError, PeerError, ConnectionLost) as error:
            self._fail(str(error) or "the connection timed out")
            raise

    def _fail(self, reason: str) -> None:
        self.report.error = reason
        self._set_state("failed")

    def _set_state(self, state: str) -> None:
        self.report.state = state
        self.listener(self.report)

    async def _authenticate(self) -> None:
        offer = self.offer
        nonce = new_nonce()
        self.send(Hello(nonce, offer.password is not None,
                        offer.iterations if offer.password is not None else None))
        self._set_state("authenticating")
        for attempt in range(1, MAX_AUTH_ATTEMPTS + 1):
            message = await self.recv()
            if not isinstance(message, Auth):
                raise FrameError(f"expected auth, got {type(message).__name__}")
            if verify_mac(offer.auth_key, message.mac, RECEIVER, offer.room, self.sender_fps,
                          self.receiver_fps, nonce, message.nonce):
                mac = compute_mac(offer.auth_key, SENDER, offer.room, self.sender_fps,
                                  self.receiver_fps, nonce, message.nonce)
                self.send(AuthOk(mac))
                self._set_state("authenticated")
                return
            offer.failed_proofs += 1
            remaining = MAX_AUTH_ATTEMPTS - attempt if offer.password is not None else 0
            self.send(AuthFailed(remaining > 0, remaining))
            if remaining == 0:
                await self.channel.drain(1.0)
                raise PeerError("the receiver could not prove it has the link (wrong link or password)")
        raise AssertionError("unreachable")

    async def _offer_files(self) -> Accept | None:
        self.send(self.offer.manifest)
        self._set_state("offered")
        message = await self.recv()
        if isinstance(message, Decline):
            return None
        if not isinstance(message, Accept):
            raise FrameError(f"expected accept, got {type(message).__name__}")
        message.check(self.offer.manifest)
        return message

    async def _transfer(self, accept: Accept) -> None:
        offsets = []
        for source, answer in zip(self.offer.files, accept.files, strict=True):
            offset = answer.offset
            if offset:
                held = -(-offset // CHUNK_SIZE)
                if await source.prefix_digest(held) != answer.prefix:
                    offset = 0  # not our bytes: start this file over
            offsets.append(offset)
        start = Start(tuple(offsets))
        start.check(accept)
        self.send(start)
        self.report.total_bytes = self.offer.total_bytes
        self.report.acked_bytes = sum(offsets)
        self._set_state("sending")
        pump = asyncio.create_task(self._pump(offsets))
        reader = asyncio.create_task(self._read_answers())
        try:
            done, _ = await asyncio.wait({pump, reader}, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()  # raise the first failure
            if not reader.done():
                await reader
        finally:
            pump.cancel()
            reader.cancel()
        complete = self.complete.result()
        mine = [await source.digest() for source in self.offer.files]
        if list(complete.digests) != mine:
            raise IntegrityError("the receiver's file digests differ from ours")
        self.report.digests = [digest.hex() for digest in mine]
        self._set_state("done")
        await self.channel.drain()

    async def _read_answers(self) -> None:
        """Acks and nacks while sending; returns once `complete` arrived."""
        while not self.complete.done():
            self._on_message(await self.recv())

    def _on_message(self, message: Any) -> None:
        if isinstance(message, Ack):
            self.window.acked(message.file, message.chunk)
            self.report.acked_bytes += self.chunk_bytes.pop((message.file, message.chunk), 0)
            self.listener(self.report)
        elif isinstance(message, Nack):
            self.rewind = self.window.nacked(message.file, message.chunk)
            log.warning("receiver rejected file %d chunk %d; re-sending", message.file, message.chunk)
        elif isinstance(message, Complete):
            if len(self.window) or not self._done_sent:
                raise FrameError("complete before done")
            self.complete.set_result(message)
        else:
            raise FrameError(f"unexpected {type(message).__name__} while sending")
        self.progress.set()

    async def _wait_progress(self) -> None:
        self.progress.clear()
        await self.progress.wait()

    async def _pump(self, offsets: list[int]) -> None:
        """Send every chunk from the start offsets, within the window (go-back-N on nack)."""
        files = self.offer.files
        position = self._first_position(offsets, 0)
        next_read: asyncio.Task[tuple[bytes, bytes]] | None = None
        while True:
            if self.rewind is not None:
                position, self.rewind = self.rewind, None
                self.chunk_bytes.clear()
                if next_read is not None:
                    next_read.cancel()
                    next_read = None
            file_index, chunk = position
            if file_index == len(files):
                if len(self.window):
                    await self._wait_progress()
                    continue
                self.send(Done())
                self._done_sent = True
                return
            source = files[file_index]
            if chunk >= source.chunks:
                self.send(FileDone(file_index, await source.digest()))
                position = self._first_position(offsets, file_index + 1)
                continue
            if self.window.full:
                await self._wait_progress()
                continue
            read = next_read or asyncio.create_task(source.read(chunk))
            data, digest = await read
            following = (file_index, chunk + 1)
            next_read = (asyncio.create_task(source.read(chunk + 1))
                         if chunk + 1 < source.chunks else None)
            wire = faults.corrupt_once(file_index, chunk, data)
            for piece in iter_pieces(file_index, chunk, wire, self.payload_limit):
                await self.channel.send_binary(piece)
                if self.rewind is not None:
                    break
            else:
                self.send(ChunkEnd(file_index, chunk, len(data), digest))
                self.window.sent(file_index, chunk)
                self.chunk_bytes[(file_index, chunk)] = len(data)
                position = following

    @staticmethod
    def _first_position(offsets: list[int], file_index: int) -> tuple[int, int]:
        if file_index >= len(offsets):
            return (len(offsets), 0)
        return (file_index, -(-offsets[file_index] // CHUNK_SIZE))


class Sender:
    """Serves an Offer to every receiver that joins the room, several at once."""

    def __init__(self, offer: Offer, signaling: SignalingClient, listener: Listener,
                 relay_only: bool = False) -> None:
        self.offer = offer
        self.signaling = signaling
        self.listener = listener
        self.relay_only = relay_only
        self.connections: dict[str, _Connection] = {}
        self.reports: dict[str, ReceiverReport] = {}
        self.finished = asyncio.Event()  # a one-time transfer completed, or the room closed
        self.one_time = False
        self._locked = False

    async def run(self, one_time: bool = False) -> None:
        """Serve until the room closes or, for a one-time link, one receiver is done."""
        self.one_time = one_time
        for peer in self.signaling.welcome.get("peers", []):
            if peer["role"] == RECEIVER:
                await self._offer_to(peer["peer"])
        while not self.finished.is_set():
            getter = asyncio.create_task(self.signaling.messages.get())
            stopper = asyncio.create_task(self.finished.wait())
            done, _ = await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if getter not in done:
                getter.cancel()
                break
            try:
                await self._on_signaling(getter.result())
            except Exception:  # noqa: BLE001 - one bad moment with one receiver must not stop the offer
                log.exception("handling a signaling message failed")
        for connection in list(self.connections.values()):
            await connection.close()

    async def _on_signaling(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "peer-joined" and message.get("role") == RECEIVER:
            await self._offer_to(message["peer"])
        elif kind == "reconnected":
            for peer in message["welcome"].get("peers", []):
                connection = self.connections.get(peer["peer"])
                if connection is None or connection.failed:
                    await self._offer_to(peer["peer"])
        elif kind == "signal":
            data = message.get("data") or {}
            connection = self.connections.get(message.get("from", ""))
            if data.get("kind") == "answer" and connection is not None:
                await connection.answered(data)
            elif data.get("kind") == "restart":
                await self._offer_to(message["from"])
        elif kind == "room-closed":
            self.finished.set()
        elif kind == "error":
            log.info("signaling: %s", message.get("message"))

    async def _offer_to(self, peer: str) -> None:
        if self.offer.failed_proofs >= MAX_FAILED_PROOFS:
            log.warning("too many failed proofs; not serving %s", peer)
            return
        old = self.connections.pop(peer, None)
        if old is not None:
            await old.close()
        report = self.reports.setdefault(peer, ReceiverReport(peer))
        pc = await peer_connection(self.signaling.welcome.get("ice_servers", []), self.relay_only)
        connection = _Connection(self, peer, report, pc)
        self.connections[peer] = connection
        await connection.start()

    def on_report(self, report: ReceiverReport) -> None:
        if report.state == "authenticated" and self.one_time and not self._locked:
            # The one receiver of a one-time link proved the key: no one else may join.
            self._locked = True
            asyncio.create_task(self.signaling.send({"type": "lock"}))
        self.listener(report)

    def session_ended(self, connection: _Connection) -> None:
        if connection.report.state == "done" and self.one_time:
            self.finished.set()


class _Connection:
    """One RTCPeerConnection to one receiver, from offer to the end of its session."""

    def __init__(self, sender: Sender, peer: str, report: ReceiverReport,
                 pc: RTCPeerConnection) -> None:
        self.sender = sender
        self.peer = peer
        self.report = report
        self.session_id = secrets.token_urlsafe(12)
        self.pc = pc
        self.channel = Channel(self.pc.createDataChannel(CHANNEL_LABEL, ordered=True))
        self.local_sdp = ""
        self.task: asyncio.Task[None] | None = None
        self.failed = False

    async def start(self) -> None:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self.local_sdp = self.pc.localDescription.sdp
        if self.sender.relay_only:
            self.local_sdp = relay_only_sdp(self.local_sdp)
        await self.sender.signaling.signal(
            self.peer, {"kind": "offer", "session": self.session_id, "sdp": self.local_sdp}
        )

    async def answered(self, data: dict[str, Any]) -> None:
        if data.get("session") != self.session_id or self.task is not None:
            return  # an answer to an older offer
        sdp = data.get("sdp")
        if not isinstance(sdp, str):
            return
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp, "answer"))
        session = SendSession(self.sender.offer, self.channel, self.local_sdp, sdp,
                              self.report, self.sender.on_report)
        self.task = asyncio.create_task(self._run(session))

    async def _run(self, session: SendSession) -> None:
        try:
            await session.run()
        except Exception as error:  # noqa: BLE001 - one receiver's failure must not stop the others
            self.failed = True
            log.info("session with %s ended: %s", self.peer, error)
        finally:
            await close_quietly(self.pc)
            self.sender.session_ended(self)

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        await close_quietly(self.pc)
