"""The receiving side: join the room, answer the sender's offer, authenticate,
save every file in bounded memory, verify, and resume after any interruption."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiortc import RTCPeerConnection, RTCSessionDescription

from ..transfer import (
    CHANNEL_LABEL,
    CHUNK_SIZE,
    HEADER_SIZE,
    RECEIVER,
    SENDER,
    ChunkAssembler,
    FrameError,
    ProtocolError,
    compute_mac,
    decode_piece,
    derive_auth_key,
    new_nonce,
    sdp_fingerprints,
    verify_mac,
)
from ..transfer.messages import (
    Accept,
    AcceptedFile,
    Ack,
    Auth,
    AuthFailed,
    AuthOk,
    ChunkEnd,
    Complete,
    Done,
    ErrorMessage,
    FileDone,
    Hello,
    Manifest,
    Nack,
    Start,
)
from . import faults
from .rtc import Channel, close_quietly, peer_connection, relay_only_sdp
from .session import ConnectionLost, PeerError, ProtocolSession
from .signaling import SignalingClient
from .storage import PartialFile, ReceiveDirectory, StorageError

log = logging.getLogger(__name__)

# How long to wait for the sender (to appear, or to come back) before giving up.
SENDER_WAIT = 60.0
# A sender that sends nothing for this long is treated as gone (protocol.md §11).
SILENCE_TIMEOUT = 45.0


class TransferRefused(Exception):
    """A final failure: wrong link or password, tampering, a vanished sender."""


@dataclass
class ReceiveResult:
    files: list[Path] = field(default_factory=list)
    digests: list[str] = field(default_factory=list)
    bytes_transferred: int = 0  # received over the network in this run
    accept_to_first_byte: float | None = None  # seconds, first connection of this run


class ReceiveSession(ProtocolSession):
    """The protocol over one data channel (protocol.md §14.2)."""

    peer_role = "sender"
    binary_allowed = True
    silence_timeout = SILENCE_TIMEOUT

    def __init__(self, receiver: Receiver, channel: Channel, local_sdp: str, remote_sdp: str) -> None:
        super().__init__(channel)
        self.receiver = receiver
        self.sender_fps = sdp_fingerprints(remote_sdp)
        self.receiver_fps = sdp_fingerprints(local_sdp)
        self.writes: asyncio.Queue[Any] = asyncio.Queue()

    async def run(self) -> ReceiveResult:
        try:
            await asyncio.wait_for(self.channel.opened.wait(), 30)
            await self._authenticate()
            manifest = await self.expect(Manifest)
            files = await self.receiver.prepare(manifest)
            accept = Accept(manifest.transfer, tuple(
                AcceptedFile(f.held_offset, f.prefix if f.held_offset else None) for f in files
            ))
            self.send(accept)
            self.receiver.mark("accepted")
            start = await self.expect(Start)
            start.check(accept)
            return await self._receive(manifest, files, start)
        except (ProtocolError, StorageError) as error:
            if isinstance(error, StorageError):
                self.send(ErrorMessage("storage_error", str(error)))
            else:
                self.send(ErrorMessage.of(error))
            await self.channel.drain(1.0)
            raise

    async def _authenticate(self) -> None:
        hello = await self.expect(Hello)
        receiver = self.receiver
        if hello.password and receiver.password is None:
            raise TransferRefused("This transfer needs a password: use --password.")
        if hello.password:
            # PBKDF2 runs for a noticeable moment: keep the event loop (and ICE) alive.
            key = await asyncio.to_thread(
                derive_auth_key, receiver.link_key, receiver.room, receiver.password,
                hello.iterations,
            )
        else:
            key = derive_auth_key(receiver.link_key, receiver.room)
        nonce = new_nonce()
        mac = compute_mac(key, RECEIVER, receiver.room, self.sender_fps, self.receiver_fps,
                          hello.nonce, nonce)
        self.send(Auth(nonce, mac))
        answer = await self.expect(AuthOk, AuthFailed)
        if isinstance(answer, AuthFailed):
            raise TransferRefused(
                "Wrong password." if hello.password else
                "The sender refused this link: it is wrong or was altered."
            )
        if not verify_mac(key, answer.mac, SENDER, receiver.room, self.sender_fps,
                          self.receiver_fps, hello.nonce, nonce):
            self.send(ErrorMessage("auth_failed", "could not verify the sender"))
            await self.channel.drain(1.0)
            raise TransferRefused(
                "Could not verify the sender: the connection may have been tampered with."
            )

    async def _receive(self, manifest: Manifest, files: list[PartialFile], start: Start) -> ReceiveResult:
        held = []
        for partial, offset in zip(files, start.offsets, strict=True):
            chunks = -(-offset // CHUNK_SIZE)
            partial.open_for_writing(chunks)
            held.append(partial.digests[:chunks])
        assembler = ChunkAssembler([f.size for f in manifest.files], list(start.offsets), held)
        self.receiver.begin(manifest, sum(start.offsets))
        writer = asyncio.create_task(self._write_loop(files))
        try:
            while True:
                message = await self.recv()
                if isinstance(message, bytes):
                    if assembler.add_piece(decode_piece(message)):
                        self.receiver.mark("first_byte")
                        self.receiver.on_bytes(len(message) - HEADER_SIZE)
                        if faults.drop_now(self.receiver.network_bytes):
                            await self.receiver.drop_connection()
                elif isinstance(message, ChunkEnd):
                    chunk = assembler.end_chunk(message.file, message.chunk, message.size,
                                                message.sha256)
                    if chunk is not None:
                        await self.writes.put(chunk)
                elif isinstance(message, FileDone):
                    if assembler.file_done(message.file, message.digest) is not None:
                        await self.writes.put(("finish", message.file))
                elif isinstance(message, Done):
                    if not assembler.finished:
                        raise FrameError("done before every file was done")
                    break
                else:
                    raise FrameError(f"unexpected {type(message).__name__} while receiving")
                if writer.done():
                    writer.result()
            await self.writes.put(None)
            paths = await writer
        finally:
            writer.cancel()
        digests = [partial.prefix for partial in files]
        self.send(Complete(tuple(digests)))
        await self.channel.drain()
        return ReceiveResult(paths, [d.hex() for d in digests])

    async def _write_loop(self, files: list[PartialFile]) -> list[Path]:
        """Writes chunks in stream order; acks (or nacks) only after the write."""
        finished: dict[int, Path] = {}
        while True:
            item = await self.writes.get()
            if item is None:
                return [finished.get(i) or files[i].finish() for i in range(len(files))]
            if isinstance(item, tuple):
                finished[item[1]] = await self.receiver.disk(files[item[1]].finish)
                continue
            if not item.ok:
                self.send(Nack(item.file, item.chunk))
                continue
            await self.receiver.disk(files[item.file].write_chunk, item.chunk, item.data, item.digest)
            self.send(Ack(item.file, item.chunk))


class Receiver:
    """Joins a room and receives its files into a directory, resuming as needed."""

    def __init__(self, signaling: SignalingClient, room: str, link_key: bytes,
                 directory: Path, password: str | None = None,
                 on_manifest: Callable[[Manifest], None] | None = None,
                 on_progress: Callable[[int, int], None] | None = None,
                 relay_only: bool = False) -> None:
        self.signaling = signaling
        self.room = room
        self.link_key = link_key
        self.password = password
        self.storage = ReceiveDirectory(directory)
        self.on_manifest = on_manifest
        self.on_progress = on_progress
        self.relay_only = relay_only
        self.files: list[PartialFile] = []
        self.total = 0
        self.done_bytes = 0
        self.network_bytes = 0
        self._manifest_shown = False
        self._pc: RTCPeerConnection | None = None
        self.timeline: dict[str, float] = {}
        self._disk_operation: asyncio.Future[Any] | None = None

    async def disk(self, function: Callable[..., Any], *args: Any) -> Any:
        """Run a blocking storage call in a thread. The call finishes even when the
        session awaiting it is cancelled (a dropped connection), and the next session
        waits for it, so two sessions never touch the files at once."""
        operation = asyncio.ensure_future(asyncio.to_thread(function, *args))
        self._disk_operation = operation
        return await asyncio.shield(operation)

    async def prepare(self, manifest: Manifest) -> list[PartialFile]:
        if self._disk_operation is not None:
            await asyncio.wait([self._disk_operation])  # its outcome belonged to the old session
        for partial in self.files:
            partial.close()
        self.files = self.storage.match(manifest)
        if not self._manifest_shown and self.on_manifest:
            self.on_manifest(manifest)
            self._manifest_shown = True
        return self.files

    def mark(self, event: str) -> None:
        """Remember when something first happened (for the start-latency figure)."""
        if event not in self.timeline:  # called per piece: no clock read after the first
            self.timeline[event] = time.monotonic()

    def begin(self, manifest: Manifest, held: int) -> None:
        self.total = sum(f.size for f in manifest.files)
        self.done_bytes = held
        self._report()

    def on_bytes(self, count: int) -> None:
        self.done_bytes += count
        self.network_bytes += count
        self._report()

    def _report(self) -> None:
        if self.on_progress:
            self.on_progress(self.done_bytes, self.total)

    async def run(self) -> ReceiveResult:
        """Receive everything; reconnect and resume until done or refused for good."""
        sender = self._sender_in(self.signaling.welcome)
        waiting_since = asyncio.get_running_loop().time()
        pc: RTCPeerConnection | None = None
        session: asyncio.Task[ReceiveResult] | None = None
        try:
            while True:
                timeout = SENDER_WAIT - (asyncio.get_running_loop().time() - waiting_since)
                if timeout <= 0:
                    raise TransferRefused("The sender is gone (it did not come back in time).")
                getter = asyncio.create_task(self.signaling.messages.get())
                waiters: set[asyncio.Task[Any]] = {getter}
                if session is not None:
                    waiters.add(session)
                done, _ = await asyncio.wait(waiters, timeout=None if session else timeout,
                                             return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                if session is not None and session in done:
                    try:
                        result = session.result()
                    except (TimeoutError, ConnectionLost, PeerError) as error:
                        log.info("connection lost (%s); asking the sender to reconnect", error)
                        session = None
                        if pc is not None:
                            await close_quietly(pc)
                        waiting_since = asyncio.get_running_loop().time()
                        if sender:
                            await self.signaling.signal(sender, {"kind": "restart"})
                        continue
                    return self._finish(result)
                if getter not in done:
                    continue
                message = getter.result()
                kind = message.get("type")
                if kind == "signal" and message.get("from") == sender:
                    data = message.get("data") or {}
                    if data.get("kind") == "offer" and isinstance(data.get("sdp"), str):
                        if session is not None:
                            session.cancel()
                        if pc is not None:
                            await close_quietly(pc)
                        pc, session = await self._answer(sender, data)
                        self._pc = pc
                elif kind == "peer-joined" and message.get("role") == SENDER:
                    sender = message["peer"]
                    waiting_since = asyncio.get_running_loop().time()
                elif kind == "reconnected":
                    sender = self._sender_in(message["welcome"]) or sender
                elif kind == "room-closed":
                    reason = message.get("reason") or "The sender closed this transfer."
                    if session is None:
                        raise TransferRefused(reason)
                    # A one-time sender closes the room as soon as it has our `complete`,
                    # which may overtake the end of our own session: let it finish.
                    try:
                        result = await asyncio.wait_for(asyncio.shield(session), 30)
                    except Exception:  # noqa: BLE001 - the session failed: the room is gone
                        raise TransferRefused(reason) from None
                    return self._finish(result)
        finally:
            if session is not None:
                session.cancel()
            if pc is not None:
                await close_quietly(pc)
            for partial in self.files:
                partial.close()

    def _finish(self, result: ReceiveResult) -> ReceiveResult:
        result.bytes_transferred = self.network_bytes
        if "accepted" in self.timeline and "first_byte" in self.timeline:
            result.accept_to_first_byte = self.timeline["first_byte"] - self.timeline["accepted"]
        self.storage.clean_journal(self.files)
        return result

    async def drop_connection(self) -> None:
        """Close the peer connection as a network failure would (fault injection)."""
        if self._pc is not None:
            await close_quietly(self._pc)

    @staticmethod
    def _sender_in(welcome: dict[str, Any]) -> str | None:
        for peer in welcome.get("peers", []):
            if peer["role"] == SENDER:
                return str(peer["peer"])
        return None

    async def _answer(self, sender: str, data: dict[str, Any]
                      ) -> tuple[RTCPeerConnection, asyncio.Task[ReceiveResult]]:
        pc = await peer_connection(self.signaling.welcome.get("ice_servers", []), self.relay_only)
        opened: asyncio.Future[Channel] = asyncio.get_running_loop().create_future()

        @pc.on("datachannel")
        def on_datachannel(channel: Any) -> None:
            if channel.label == CHANNEL_LABEL and not opened.done():
                opened.set_result(Channel(channel))

        remote_sdp = data["sdp"]
        await pc.setRemoteDescription(RTCSessionDescription(remote_sdp, "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        local_sdp = pc.localDescription.sdp
        if self.relay_only:
            local_sdp = relay_only_sdp(local_sdp)
        await self.signaling.signal(
            sender, {"kind": "answer", "session": data.get("session"), "sdp": local_sdp}
        )

        async def run_session() -> ReceiveResult:
            channel = await asyncio.wait_for(asyncio.shield(opened), 30)
            return await ReceiveSession(self, channel, local_sdp, remote_sdp).run()

        return pc, asyncio.create_task(run_session())
