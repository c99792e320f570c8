"""The receiver's session machine (docs/protocol.md §14.2): one per run of a link (a
`peerbeam receive`, a receiver page), across every connection to the sender. Pure: no
I/O, no clock, no randomness.

Events (driver → machine), besides ``tick``:

- signaling: ``peers {peers: [{peer, role}], rejoin}`` (a welcome; `rejoin`: we were in
  this room before, or the socket reconnected), ``peer_joined {peer, role}``,
  ``offer {from, session}``, ``room_gone {reason}``;
- one connection: ``channel_open {conn}``, ``message {conn, text}``,
  ``piece {conn, file, chunk, offset, size}`` (a binary frame's header and payload length),
  ``bad_piece {conn, detail}`` (a binary frame whose header does not decode),
  ``connection_lost {conn, reason}``;
- the user: ``password_entered {password}``, ``user_accepted``, ``user_declined``,
  ``user_cancelled``;
- results of actions: ``proof_made {conn, nonce, mac}``, ``sender_proof_checked {conn, ok}``,
  ``records_loaded {records}``, ``storage_ready``, ``storage_failed {code, message}``,
  ``chunk_hashed {conn, file, chunk, digest}``, ``chunk_written {conn, file, chunk}``,
  ``file_finished {file}``.

Actions (machine → driver), besides ``wake``: ``answer {conn, session}``,
``restart {to}``, ``send {conn, message}``, ``close {conn}``, ``ask_password {remaining}``,
``make_proof {conn, password, iterations, sender_nonce}``,
``check_sender_proof {conn, mac, sender_nonce, receiver_nonce}``, ``load_records {manifest}``,
``ask_accept {manifest, held}``, ``prepare_storage {manifest, records}``,
``reset_file {file}``, ``drop_piece {conn}``, ``hash_chunk {conn, file, chunk}``,
``drop_chunk {conn, file, chunk}``, ``write_chunk {conn, file, chunk, position, digest}``,
``finish_file {file, digest}``, ``status {state, …}``, ``progress {held, total}``,
``end {outcome, code, detail, …}`` (`code` says why; the user interface words it).

The driver delivers ``chunk_hashed`` before any further event of that connection, and
carries out ``write_chunk`` / ``finish_file`` / ``reset_file`` strictly in order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .chunks import chunk_count, chunk_length, file_digest
from .constants import WINDOW_CHUNKS
from .errors import AUTH_FAILED, FrameError, IntegrityError, ProtocolError
from .machine import Event, Keepalive, Machine, SessionTiming
from .messages import (
    Accept,
    AcceptedFile,
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
    Join,
    Manifest,
    Message,
    Nack,
    Ping,
    Pong,
    Start,
    parse_message,
)
from .resume import Record, match_records

# Local outcome codes (never sent on the wire; docs/protocol.md §12).
WRONG_PASSWORD = "wrong_password"  # the sender refused our proof, made with a password
WRONG_LINK = "wrong_link"  # the sender refused our proof: the link is wrong or altered
PASSWORD_DOWNGRADE = "password_downgrade"  # the link needs a password, the sender asked none
DECLINED = "declined"
SENDER_GONE = "sender_gone"  # the sender never came (sender_wait)
ROOM_CLOSED = "room_closed"
NO_PATH = "no_path"  # never connected, and the server offers no relay (or it did not help)
RELAY_FAILED = "relay_failed"  # never connected, and the relay did not answer
GAVE_UP = "gave_up"  # connected before, then no progress for give_up_after

# Connection states.
(OPENING, HELLO, PASSWORD, PROVING, AUTHING, VERIFYING, MANIFEST, MATCHING, ASKING, PREPARING,
 STARTING, RECEIVING, FINISHING, DONE, CLOSED) = (
    "opening", "hello", "password", "proving", "authing", "verifying", "manifest", "matching",
    "asking", "preparing", "starting", "receiving", "finishing", "done", "closed",
)


class _End(Exception):
    """The whole receive ends (not only this connection)."""

    def __init__(self, code: str, detail: str = "", wire: ProtocolError | None = None,
                 remote: bool = False) -> None:
        super().__init__(detail or code)
        self.code = code
        self.detail = detail
        self.wire = wire  # what to tell the sender, if anything
        self.remote = remote  # the sender said so


@dataclass
class _Stream:
    """Where the data phase of one connection stands (protocol.md §8): which piece,
    chunk message and file-done may come next, and what is in flight to the disk."""

    sizes: list[int]
    offsets: list[int]
    file: int = 0
    chunk: int = 0
    received: int = 0  # payload bytes of the current chunk
    discarding: tuple[int, int] | None = None  # after a nack: drop until this chunk restarts
    hashing: tuple[int, int, bytes] | None = None  # file, chunk, announced digest
    outcomes: deque[tuple[str, int, int]] = field(default_factory=deque)  # ack/nack in order
    unacked: int = 0  # chunk messages taken and not yet answered
    done: bool = False
    window: int = WINDOW_CHUNKS  # chunks this connection may have unanswered
    assembling: tuple[int, int] | None = None  # lane mode: the chunk whose pieces come now

    def __post_init__(self) -> None:
        self.chunk = chunk_count(self.offsets[0]) if self.offsets else 0

    def expecting(self) -> tuple[int, int] | None:
        """(file, chunk) whose pieces come next, (file, -1) for its file-done, None: all done."""
        if self.file >= len(self.sizes):
            return None
        if self.chunk >= chunk_count(self.sizes[self.file]):
            return (self.file, -1)
        return (self.file, self.chunk)

    def next_file(self) -> None:
        self.file += 1
        self.received = 0
        if self.file < len(self.sizes):
            self.chunk = chunk_count(self.offsets[self.file])


@dataclass
class _Connection:
    conn: str
    opened_at: float
    state: str = OPENING
    keepalive: Keepalive | None = None
    hello: Hello | None = None
    nonce: bytes = b""  # ours, of the proof in flight
    accept: Accept | None = None
    stream: _Stream | None = None
    lane: int = 0  # v1.1: 0 for the connection that started the transfer, k for an extra one


class ReceiverMachine(Machine):
    def __init__(self, expect_password: bool | None = None, password: str | None = None,
                 auto_accept: bool = False, timing: SessionTiming | None = None,
                 lanes: int | None = None, accepted: str | None = None) -> None:
        """`expect_password`: the link says a password is set (True) or not (False);
        None for an old link that does not say. `password`: known up front (the CLI).
        `lanes`: protocol v1.1, the most connections this receiver takes for one transfer
        (None: a v1 receiver). `accepted`: the transfer the user already accepted, with
        its storage prepared, when a new machine takes over (the page's Try again): a
        manifest of it is accepted by itself, as on a reconnect."""
        super().__init__(timing or SessionTiming())
        self.max_lanes = lanes
        self.lane_mode = False  # both sides speak v1.1: chunks may come on several lanes
        self.lanes: dict[int, str] = {}  # lane index -> conn, while a transfer runs
        self.agreed = 1
        self.taken: dict[tuple[int, int], str] = {}  # chunk -> the lane assembling it
        self.written: list[set[int]] = []  # per file: chunks written, held or not yet
        self.expected: list[bytes | None] = []  # lane mode: each file's digest from file-done
        self.expect_password = expect_password
        self.password = password
        self.auto_accept = auto_accept
        self.sender: str | None = None
        self.connections: dict[str, _Connection] = {}
        self.current: _Connection | None = None
        # Getting a connection (back), protocol.md §14.2 "Connecting and giving up".
        self.waiting_since: float | None = None  # the sender absent, never connected
        self.connected_ever = False
        self.first_attempt_at: float | None = None  # never connected: the first offer answered
        self.last_progress: float | None = None  # anything from the sender, on any connection
        self.retry_at: float | None = None  # ask for a new connection again at
        self.backoff = self.timing.retry_min
        self.relay = "none"  # the relay, as the driver found it: none, failed, ok
        self.room_gone: str | None = None
        self.ended = False
        self.manifest: Manifest | None = None
        self.accepted: str | None = accepted  # the transfer the user accepted
        self.held: list[list[bytes]] = []  # per file: digests of chunks held durably
        self.digests: list[list[bytes]] = []  # per file: verified digests this session
        self.file_digests: list[bytes | None] = []
        self.plan: list[Record | None] = []  # the matching record of each file, if any
        self.finishing: set[int] = set()  # files being finalised
        self.finished: set[int] = set()
        self._serial = 0
        self._handlers = {
            "peers": self._on_peers,
            "peer_joined": self._on_peer_joined,
            "offer": self._on_offer,
            "room_gone": self._on_room_gone,
            "channel_open": self._on_channel_open,
            "message": self._on_message,
            "piece": self._on_piece,
            "bad_piece": self._on_bad_piece,
            "connection_lost": self._on_connection_lost,
            "password_entered": self._on_password_entered,
            "user_accepted": self._on_user_accepted,
            "user_declined": self._on_user_declined,
            "user_cancelled": self._on_user_cancelled,
            "proof_made": self._on_proof_made,
            "sender_proof_checked": self._on_sender_proof_checked,
            "records_loaded": self._on_records_loaded,
            "storage_ready": self._on_storage_ready,
            "storage_failed": self._on_storage_failed,
            "chunk_hashed": self._on_chunk_hashed,
            "chunk_written": self._on_chunk_written,
            "file_finished": self._on_file_finished,
        }

    def handle(self, event: Event) -> list[dict[str, Any]]:
        if self.ended and event.get("type") != "tick":
            return []  # only the close of a finished connection is left to do
        return super().handle(event)

    # -- the sender and its connections -----------------------------------------------

    def _session_running(self) -> bool:
        return self.current is not None and self.current.state != CLOSED

    def _on_peers(self, event: Event) -> None:
        sender = next((p["peer"] for p in event["peers"] if p["role"] == "sender"), None)
        if sender is not None:
            self.sender = sender
            if event.get("rejoin") and not self._session_running():
                # Back in a room we were in before (a re-run, a reload, a signaling
                # reconnect) without a working connection: the sender may still hold one
                # to our old self and would not offer by itself.
                self.emit("restart", to=sender)
        if not self._session_running():
            if self.waiting_since is None:
                self.waiting_since = self.now
            self._status("connecting" if self.sender else "waiting")

    def _on_peer_joined(self, event: Event) -> None:
        if event["role"] == "sender":
            self.sender = event["peer"]
            if not self._session_running():
                self.waiting_since = self.now
                self._status("connecting")

    def _on_offer(self, event: Event) -> None:
        if event["from"] != self.sender or self.ended:
            return
        lane = int(event.get("lane") or 0)
        if lane:
            self._lane_offer(lane, event["session"])
            return
        if self.current is not None:
            self._close(self.current)  # a new offer replaces the connection we had
        self._serial += 1
        connection = _Connection(f"c{self._serial}", self.now)
        self.connections[connection.conn] = connection
        self.current = connection
        self.waiting_since = self.retry_at = None
        if not self.connected_ever and self.first_attempt_at is None:
            self.first_attempt_at = self.now
        self.emit("answer", conn=connection.conn, session=event["session"])

    def _on_room_gone(self, event: Event) -> None:
        self.room_gone = str(event.get("reason") or "")
        if not self._session_running():
            self._end(ROOM_CLOSED, self.room_gone)
        # else: a transfer whose connection works goes on; only a reconnect is impossible

    def _connection(self, event: Event) -> _Connection | None:
        connection = self.connections.get(event["conn"])
        return None if connection is None or connection.state == CLOSED else connection

    def _send(self, connection: _Connection, message: Message) -> None:
        self.emit("send", conn=connection.conn, message=message)

    def _close(self, connection: _Connection) -> None:
        if connection.state == CLOSED:
            return
        connection.state = CLOSED
        self.emit("close", conn=connection.conn)
        if self.lanes.get(connection.lane) != connection.conn:
            return
        del self.lanes[connection.lane]
        self.taken = {chunk: conn for chunk, conn in self.taken.items() if conn != connection.conn}
        if connection.lane == 0:
            for conn in list(self.lanes.values()):  # the transfer ends with its primary
                self._close(self.connections[conn])

    def _on_connection_lost(self, event: Event) -> None:
        self.relay = str(event.get("relay") or self.relay)
        connection = self._connection(event)
        if connection is not None:
            self._lost(connection)

    def _lost(self, connection: _Connection) -> None:
        was_done = connection.state == DONE
        self._close(connection)
        if connection is not self.current or self.ended or was_done:
            return  # an extra lane costs only the chunks it was carrying
        if self.room_gone is not None:
            self._end(ROOM_CLOSED, self.room_gone)
            return
        # Keep everything, ask the sender for a new connection (it may not have noticed),
        # and resume on it; ask again, less and less often, until one works or it is time
        # to give up.
        if self.sender is not None:
            self.emit("restart", to=self.sender)
        self.retry_at = self.now + self.backoff
        self.backoff = min(self.backoff * 2, self.timing.retry_max)
        self._status("reconnecting" if self.connected_ever else "connecting")

    def _status(self, state: str, **fields: Any) -> None:
        self.emit("status", state=state, **fields)

    def _end(self, code: str, detail: str = "", **fields: Any) -> None:
        """The receive is over. `code` says why (for the user's sentence), `detail` adds
        what the sentence may quote (a peer's message, which digest differed)."""
        if self.ended:
            return
        self.ended = True
        for connection in self.connections.values():
            if connection.state not in (CLOSED, DONE):
                self._close(connection)
        outcome = "done" if code == "done" else "declined" if code == DECLINED else "failed"
        self.emit("end", outcome=outcome, code=code, detail=detail, **fields)

    def _guarded(self, connection: _Connection, step: Any, *args: Any) -> None:
        """One step of a connection: a broken rule ends the transfer with the error sent."""
        try:
            step(connection, *args)
        except ProtocolError as error:
            self._send(connection, ErrorMessage.of(error))
            self._close(connection)
            self._end(error.code, str(error))
        except _End as end:
            if end.wire is not None:
                self._send(connection, ErrorMessage.of(end.wire))
            self._end(end.code, end.detail, **({"remote": True} if end.remote else {}))

    # -- authentication (protocol.md §6) ----------------------------------------------

    def _on_channel_open(self, event: Event) -> None:
        connection = self._connection(event)
        if connection is None or connection.state != OPENING:
            return
        connection.keepalive = Keepalive(self.timing, self.now)
        connection.state = HELLO
        self.connected_ever = True
        self.first_attempt_at = None
        self.backoff = self.timing.retry_min
        self.last_progress = self.now

    def _on_message(self, event: Event) -> None:
        connection = self._connection(event)
        if connection is None or connection.keepalive is None:
            return
        connection.keepalive.received(self.now)
        self.last_progress = self.now
        self._guarded(connection, self._message, event["text"])

    def _message(self, connection: _Connection, text: str) -> None:
        message = parse_message(text)
        stream = connection.stream
        if stream is not None and stream.hashing is not None:
            raise ValueError("the driver must deliver chunk_hashed before the next message")
        if isinstance(message, Ping):
            self._send(connection, Pong())
        elif isinstance(message, Pong):
            pass
        elif isinstance(message, ErrorMessage):
            raise _End(message.code, message.message, remote=True)
        elif connection.state == HELLO and isinstance(message, Hello):
            self._hello(connection, message)
        elif connection.state == AUTHING and isinstance(message, AuthFailed):
            self._auth_failed(connection, message)
        elif connection.state == AUTHING and isinstance(message, AuthOk):
            connection.state = VERIFYING
            assert connection.hello is not None
            self.emit("check_sender_proof", conn=connection.conn, mac=message.mac,
                      sender_nonce=connection.hello.nonce, receiver_nonce=connection.nonce)
        elif connection.state == MANIFEST and isinstance(message, Manifest) and not connection.lane:
            self._manifest(connection, message)
        elif connection.state == MANIFEST and isinstance(message, Join) and connection.lane:
            self._join(connection, message)
        elif connection.state == STARTING and isinstance(message, Start):
            self._start(connection, message)
        elif connection.state == RECEIVING and isinstance(message, ChunkEnd):
            self._chunk_end(connection, message)
        elif connection.state == RECEIVING and isinstance(message, FileDone) and not connection.lane:
            self._file_done(connection, message)
        elif connection.state == RECEIVING and isinstance(message, Done) and not connection.lane:
            self._done(connection)
        else:
            raise FrameError(f"unexpected '{message.TYPE}' while {connection.state}")

    def _hello(self, connection: _Connection, hello: Hello) -> None:
        connection.hello = hello
        if not connection.lane:
            self.lane_mode = hello.lanes is not None and self.max_lanes is not None
        if self.expect_password and not hello.password:
            # The link was made with a password: a "sender" that asks for none does not
            # know it, and would pass its own proof with the link key alone.
            raise _End(PASSWORD_DOWNGRADE, wire=ProtocolError(
                "the link needs a password; the sender asked for none", AUTH_FAILED))
        if hello.password and self.password is None:
            connection.state = PASSWORD
            self.emit("ask_password", remaining=None)
            self._status("password")
            return
        self._prove(connection)

    def _prove(self, connection: _Connection) -> None:
        hello = connection.hello
        assert hello is not None
        connection.state = PROVING
        self.emit("make_proof", conn=connection.conn,
                  password=self.password if hello.password else None,
                  iterations=hello.iterations, sender_nonce=hello.nonce)
        self._status("verifying")

    def _on_password_entered(self, event: Event) -> None:
        self.password = event["password"]
        connection = self.current
        if connection is not None and connection.state == PASSWORD:
            self._prove(connection)

    def _on_proof_made(self, event: Event) -> None:
        connection = self._connection(event)
        if connection is None or connection.state != PROVING:
            return
        connection.nonce = event["nonce"]
        connection.state = AUTHING
        self._send(connection, Auth(event["nonce"], event["mac"]))

    def _auth_failed(self, connection: _Connection, message: AuthFailed) -> None:
        assert connection.hello is not None
        if message.retry:
            self.password = None
            connection.state = PASSWORD
            self.emit("ask_password", remaining=message.remaining)
            self._status("password", remaining=message.remaining)
            return
        self._close(connection)
        self._end(WRONG_PASSWORD if connection.hello.password else WRONG_LINK)

    def _on_sender_proof_checked(self, event: Event) -> None:
        connection = self._connection(event)
        if connection is None or connection.state != VERIFYING:
            return
        if event["ok"]:
            connection.state = MANIFEST
            return
        self._guarded(connection, self._tampered)

    def _tampered(self, connection: _Connection) -> None:
        raise _End(AUTH_FAILED, wire=ProtocolError("could not verify the sender", AUTH_FAILED))

    # -- manifest, accept, start (protocol.md §7, §10) --------------------------------

    def _manifest(self, connection: _Connection, manifest: Manifest) -> None:
        if self.manifest is not None and manifest.transfer != self.manifest.transfer and self.accepted:
            raise FrameError("the sender offers another transfer on a reconnect")
        self.manifest = manifest
        connection.state = MATCHING
        self.emit("load_records", manifest=manifest)

    def _on_records_loaded(self, event: Event) -> None:
        connection = self.current
        if connection is None or connection.state != MATCHING or self.manifest is None:
            return
        manifest = self.manifest
        records: list[Record] = list(event["records"])
        plan = match_records(manifest, records)
        self.held = [list(record.digests[:chunk_count(entry.size)]) if record else []
                     for record, entry in zip(plan, manifest.files, strict=True)]
        self.plan = plan
        if self.accepted == manifest.transfer:
            self._status("receiving", reconnected=True)
            self._send_accept(connection)  # a reconnect to what the user accepted
        elif self.auto_accept:
            self._prepare(connection)
        else:
            connection.state = ASKING
            self.emit("ask_accept", manifest=manifest, held=self._held_bytes())
            self._status("offer", held=self._held_bytes())

    def _held_bytes(self) -> int:
        assert self.manifest is not None
        return sum(min(entry.size, len(held) * self.manifest.chunk_size)
                   for entry, held in zip(self.manifest.files, self.held, strict=True))

    def _on_user_accepted(self, event: Event) -> None:
        connection = self.current
        if connection is not None and connection.state == ASKING:
            self._prepare(connection)

    def _prepare(self, connection: _Connection) -> None:
        connection.state = PREPARING
        self.emit("prepare_storage", manifest=self.manifest,
                  records=[record.id if record else None for record in self.plan])
        self._status("saving")

    def _on_storage_ready(self, event: Event) -> None:
        connection = self.current
        if connection is not None and connection.state == PREPARING and self.manifest is not None:
            self.accepted = self.manifest.transfer
            self._status("receiving")
            self._send_accept(connection)

    def _send_accept(self, connection: _Connection) -> None:
        assert self.manifest is not None
        files = []
        for entry, held in zip(self.manifest.files, self.held, strict=True):
            offset = min(entry.size, len(held) * self.manifest.chunk_size)
            files.append(AcceptedFile(offset, file_digest(held) if offset else None))
        connection.accept = Accept(self.manifest.transfer, tuple(files),
                                   self.max_lanes if self.lane_mode else None)
        connection.state = STARTING
        self._send(connection, connection.accept)

    def _on_user_declined(self, event: Event) -> None:
        connection = self.current
        if connection is not None and connection.state == ASKING:
            self._send(connection, Decline())
            self._close(connection)
        self._end(DECLINED)

    def _on_user_cancelled(self, event: Event) -> None:
        connection = self.current
        if connection is not None and connection.state != CLOSED:
            self._send(connection, ErrorMessage("cancelled", "the receiver cancelled"))
            self._close(connection)
        self._end("cancelled")

    def _on_storage_failed(self, event: Event) -> None:
        code = event["code"] if event["code"] in ("disk_full", "storage_error") else "storage_error"
        connection = self.current
        error = ProtocolError(str(event.get("message") or code), code)
        if connection is not None and connection.state != CLOSED:
            self._send(connection, ErrorMessage.of(error))
            self._close(connection)
        self._end(code, str(error))

    def _start(self, connection: _Connection, start: Start) -> None:
        assert connection.accept is not None and self.manifest is not None
        start.check(connection.accept)
        sizes = [entry.size for entry in self.manifest.files]
        for file, offset in enumerate(start.offsets):
            if offset == 0 and self.held[file]:
                self.held[file] = []  # the sender's prefix check failed: start over
                self.emit("reset_file", file=file)
        connection.stream = _Stream(sizes, list(start.offsets))
        connection.state = RECEIVING
        self.digests = [list(held) for held in self.held]
        self.written = [set(range(len(held))) for held in self.held]
        self.file_digests = [None] * len(sizes)
        self.expected = [None] * len(sizes)
        self.finishing, self.finished = set(), set()
        self.taken = {}
        self.lanes = {0: connection.conn}
        self.agreed = start.lanes or 1
        connection.stream.window = max(2, WINDOW_CHUNKS // self.agreed)
        self.emit("progress", held=self._held_bytes(), total=sum(sizes))

    # -- data (protocol.md §8) ----------------------------------------------------------

    def _on_piece(self, event: Event) -> None:
        connection = self._connection(event)
        if connection is None or connection.keepalive is None:
            return
        connection.keepalive.received(self.now)
        self.last_progress = self.now
        self._guarded(connection, self._piece, event)

    def _on_bad_piece(self, event: Event) -> None:
        connection = self._connection(event)
        if connection is not None and connection.keepalive is not None:
            self._guarded(connection, self._bad_piece, str(event.get("detail") or "bad header"))

    def _bad_piece(self, connection: _Connection, detail: str) -> None:
        # The driver could not even read the frame's header (protocol.md §8.2): whatever the
        # sender meant, the stream can no longer be trusted.
        raise FrameError(f"a binary frame that does not decode: {detail}")

    def _piece(self, connection: _Connection, event: Event) -> None:
        stream = connection.stream
        if connection.state != RECEIVING or stream is None:
            raise FrameError("binary data before 'start'")
        if stream.hashing is not None:
            raise ValueError("the driver must deliver chunk_hashed before the next piece")
        file, chunk, offset, size = event["file"], event["chunk"], event["offset"], event["size"]
        if self.lane_mode:
            self._lane_piece(connection, stream, file, chunk, offset, size)
            return
        expecting = stream.expecting()
        if stream.discarding is not None:
            # After a nack everything up to the re-sent chunk's first piece is stale.
            if (file, chunk, offset) != (*stream.discarding, 0):
                self.emit("drop_piece", conn=connection.conn)
                return
            stream.discarding = None
        if expecting is None or expecting[1] < 0 or (file, chunk) != expecting:
            raise FrameError(f"piece of file {file} chunk {chunk}, expected {expecting}")
        if offset != stream.received:
            raise FrameError(f"piece at offset {offset} of chunk {chunk}, expected {stream.received}")
        need = chunk_length(stream.sizes[file], chunk)
        if stream.received + size > need:
            raise FrameError(f"chunk {chunk} of file {file} is longer than {need}")
        stream.received += size

    def _chunk_end(self, connection: _Connection, message: ChunkEnd) -> None:
        stream = connection.stream
        assert stream is not None
        if stream.discarding is not None:
            return  # stale: sent before the sender saw our nack
        expecting = stream.assembling if self.lane_mode else stream.expecting()
        if expecting != (message.file, message.chunk):
            raise FrameError(f"chunk end for file {message.file} chunk {message.chunk}, "
                             f"expected {expecting}")
        need = chunk_length(stream.sizes[message.file], message.chunk)
        if message.size != need or stream.received != need:
            raise FrameError(f"chunk {message.chunk} of file {message.file}: announced {message.size} "
                             f"bytes, received {stream.received}, expected {need}")
        stream.unacked += 1
        if stream.unacked > stream.window:
            raise FrameError(f"more than {stream.window} chunks sent without acknowledgement")
        stream.hashing = (message.file, message.chunk, message.sha256)
        self.emit("hash_chunk", conn=connection.conn, file=message.file, chunk=message.chunk)

    def _on_chunk_hashed(self, event: Event) -> None:
        connection = self._connection(event)
        stream = connection.stream if connection is not None else None
        if connection is None or stream is None or stream.hashing is None:
            return
        file, chunk, announced = stream.hashing
        if (event["file"], event["chunk"]) != (file, chunk):
            raise ValueError(f"chunk_hashed for {event['file']}/{event['chunk']}, hashing {file}/{chunk}")
        stream.hashing = None
        stream.received = 0
        stream.assembling = None
        self.taken.pop((file, chunk), None)
        digest = event["digest"]
        if digest != announced:
            self.emit("drop_chunk", conn=connection.conn, file=file, chunk=chunk)
            stream.discarding = (file, chunk)
            stream.outcomes.append(("nack", file, chunk))
        else:
            if self.lane_mode:
                known = self.digests[file]
                known.extend([b""] * (chunk + 1 - len(known)))
                known[chunk] = digest
            else:
                self.digests[file].append(digest)
                stream.chunk += 1
            stream.outcomes.append(("ack", file, chunk))
            assert self.manifest is not None
            self.emit("write_chunk", conn=connection.conn, file=file, chunk=chunk,
                      position=chunk * self.manifest.chunk_size, digest=digest)
        self._answer_in_order(connection)

    def _answer_in_order(self, connection: _Connection) -> None:
        """Nacks wait behind the acks of earlier chunks (acks wait for their writes)."""
        stream = connection.stream
        assert stream is not None
        while stream.outcomes and stream.outcomes[0][0] == "nack":
            _, file, chunk = stream.outcomes.popleft()
            stream.unacked -= 1
            self._send(connection, Nack(file, chunk))

    def _on_chunk_written(self, event: Event) -> None:
        file, chunk = event["file"], event["chunk"]
        self.written[file].add(chunk)
        held = self.held[file]
        while len(held) in self.written[file]:  # held: the run of chunks from 0
            held.append(self.digests[file][len(held)])
        assert self.manifest is not None
        self.emit("progress", held=self._held_bytes(), total=self.manifest.total_size)
        connection = self._connection(event)
        if connection is None or connection.stream is None:
            return
        stream = connection.stream
        if not stream.outcomes or stream.outcomes[0] != ("ack", file, chunk):
            raise ValueError(f"chunk_written for {file}/{chunk} out of order")
        stream.outcomes.popleft()
        stream.unacked -= 1
        self._send(connection, Ack(file, chunk))
        self._answer_in_order(connection)
        if self.lane_mode and self.current is not None:
            self._guarded(self.current, lambda _: self._check_file(file))
        self._maybe_finish_file(connection, file)

    def _file_done(self, connection: _Connection, message: FileDone) -> None:
        stream = connection.stream
        assert stream is not None
        if self.lane_mode:
            if self.expected[message.file] is not None:
                raise FrameError(f"a second file-done for file {message.file}")
            self.expected[message.file] = message.digest
            self._check_file(message.file)
            return
        if stream.discarding is not None:
            return
        if stream.expecting() != (message.file, -1):
            raise FrameError(f"file-done for file {message.file}, expected {stream.expecting()}")
        mine = file_digest(self.digests[message.file])
        if mine != message.digest:
            raise IntegrityError(f"file {message.file}: digest {mine.hex()} differs from the "
                                 f"sender's {message.digest.hex()}")
        self.file_digests[message.file] = mine
        stream.next_file()
        self._maybe_finish_file(connection, message.file)

    def _maybe_finish_file(self, connection: _Connection, file: int) -> None:
        """Finalise a file once its digest is verified and all of its chunks are written."""
        assert self.manifest is not None
        digest = self.file_digests[file] if file < len(self.file_digests) else None
        if digest is None or file in self.finishing:
            return
        if len(self.held[file]) < chunk_count(self.manifest.files[file].size):
            return
        self.finishing.add(file)
        self.emit("finish_file", file=file, digest=digest)

    def _done(self, connection: _Connection) -> None:
        stream = connection.stream
        assert stream is not None
        if self.lane_mode:
            if any(digest is None for digest in self.file_digests):
                raise FrameError("'done' before every file was verified")
            stream.done = True
            connection.state = FINISHING
            self._maybe_complete(connection)
            return
        if stream.discarding is not None:
            raise FrameError("'done' while a re-sent chunk is still expected")
        if stream.expecting() is not None:
            raise FrameError("'done' before every file-done")
        stream.done = True
        connection.state = FINISHING
        self._maybe_complete(connection)

    def _on_file_finished(self, event: Event) -> None:
        self.finished.add(event["file"])
        if self.current is not None and self.current.state == FINISHING:
            self._maybe_complete(self.current)

    def _maybe_complete(self, connection: _Connection) -> None:
        assert self.manifest is not None
        if len(self.finished) < len(self.manifest.files):
            return
        digests = [d for d in self.file_digests if d is not None]
        self._send(connection, Complete(tuple(digests)))
        connection.state = DONE
        connection.opened_at = self.now  # the close-after-complete clock
        self._end("done", digests=[d.hex() for d in digests])

    # -- lane mode (protocol v1.1, §8.7) --------------------------------------------------

    def _lane_offer(self, lane: int, session: str) -> None:
        """An extra connection for the running transfer (never a replacement of it)."""
        primary = self.current
        limit = self.agreed if primary is not None and primary.state == RECEIVING else self.max_lanes or 1
        if not self.lane_mode or primary is None or primary.state not in (STARTING, RECEIVING) \
                or lane >= limit:
            return  # nothing it could join: do not answer
        old = self.lanes.get(lane)
        if old is not None:
            self._close(self.connections[old])
        self._serial += 1
        connection = _Connection(f"c{self._serial}", self.now, lane=lane)
        self.connections[connection.conn] = connection
        self.emit("answer", conn=connection.conn, session=session)

    def _join(self, connection: _Connection, join: Join) -> None:
        primary = self.current
        if primary is None or primary.state != RECEIVING or self.manifest is None:
            # Nothing (yet) to join here: this lane goes, the transfer does not.
            self._send(connection, ErrorMessage("bad_frame", "'join' before the transfer started"))
            self._close(connection)
            return
        if join.transfer != self.manifest.transfer or join.lane != connection.lane \
                or join.lane >= self.agreed:
            raise FrameError("'join' for another transfer, or past the agreed lanes")
        old = self.lanes.get(join.lane)
        if old is not None and old != connection.conn:
            self._close(self.connections[old])
        self.lanes[join.lane] = connection.conn
        connection.stream = _Stream([entry.size for entry in self.manifest.files],
                                    [0] * len(self.manifest.files))
        connection.stream.window = max(2, WINDOW_CHUNKS // self.agreed)
        connection.state = RECEIVING

    def _lane_piece(self, connection: _Connection, stream: _Stream, file: int, chunk: int,
                    offset: int, size: int) -> None:
        """A chunk's pieces come in order on one lane; which chunk is the sender's choice,
        as long as no other lane is carrying it (protocol.md §8.7)."""
        if stream.discarding is not None:
            if (file, chunk, offset) != (*stream.discarding, 0):
                self.emit("drop_piece", conn=connection.conn)
                return
            stream.discarding = None
        if stream.assembling is None:
            if offset != 0:
                raise FrameError(f"piece at offset {offset} starts no chunk")
            if not 0 <= file < len(stream.sizes) or not 0 <= chunk < chunk_count(stream.sizes[file]):
                raise FrameError(f"piece of file {file} chunk {chunk}, which does not exist")
            if self.taken.get((file, chunk), connection.conn) != connection.conn:
                raise FrameError(f"file {file} chunk {chunk} is coming on another connection")
            self.taken[(file, chunk)] = connection.conn
            stream.assembling = (file, chunk)
            stream.received = 0
        elif stream.assembling != (file, chunk):
            raise FrameError(f"piece of file {file} chunk {chunk}, expected {stream.assembling}")
        if offset != stream.received:
            raise FrameError(f"piece at offset {offset} of chunk {chunk}, expected {stream.received}")
        need = chunk_length(stream.sizes[file], chunk)
        if stream.received + size > need:
            raise FrameError(f"chunk {chunk} of file {file} is longer than {need}")
        stream.received += size

    def _check_file(self, file: int) -> None:
        """Lane mode: verify a file once its file-done came and all its chunks are verified."""
        expected = self.expected[file]
        if expected is None or self.file_digests[file] is not None:
            return
        known = self.digests[file]
        count = chunk_count(self.manifest.files[file].size) if self.manifest else 0
        if len(known) < count or any(not digest for digest in known[:count]):
            return
        mine = file_digest(known[:count])
        if mine != expected:
            raise IntegrityError(f"file {file}: digest {mine.hex()} differs from the sender's "
                                 f"{expected.hex()}")
        self.file_digests[file] = mine
        if self.current is not None:
            self._maybe_finish_file(self.current, file)

    # -- time ---------------------------------------------------------------------------

    def deadlines(self) -> Iterable[float]:
        for connection in self.connections.values():
            if connection.state == OPENING:
                yield connection.opened_at + self.timing.open_timeout
            elif connection.state == DONE:
                yield connection.opened_at + self.timing.close_after_complete
            elif connection.state != CLOSED and connection.keepalive is not None:
                yield connection.keepalive.deadline()
        if not self.ended:
            yield from (d for d in (self._give_up_at(), self._retry_due()) if d is not None)

    def _give_up_at(self) -> float | None:
        """When the receive ends if nothing gets better (protocol.md §14.2)."""
        if self.connected_ever:
            if self._session_running() or self.last_progress is None:
                return None  # a running session is judged by its keepalive alone
            return self.last_progress + self.timing.give_up_after
        if self.first_attempt_at is not None:
            return self.first_attempt_at + self.timing.connect_timeout
        if self.waiting_since is not None and self.timing.sender_wait is not None:
            return self.waiting_since + self.timing.sender_wait
        return None

    def _retry_due(self) -> float | None:
        if self.retry_at is None or self.sender is None or self._session_running():
            return None
        return self.retry_at

    def on_tick(self) -> None:
        for connection in list(self.connections.values()):
            if connection.state == OPENING:
                if self.now >= connection.opened_at + self.timing.open_timeout:
                    self._lost(connection)
            elif connection.state == DONE:
                if self.now >= connection.opened_at + self.timing.close_after_complete:
                    self._close(connection)
            elif connection.state != CLOSED and connection.keepalive is not None:
                due = connection.keepalive.due(self.now)
                if due == "dead":
                    self._lost(connection)
                elif due == "ping":
                    self._send(connection, Ping())
        if self.ended:
            return
        give_up = self._give_up_at()
        if give_up is not None and self.now >= give_up:
            if self.connected_ever:
                self._end(GAVE_UP)
            elif self.first_attempt_at is not None:
                self._end(RELAY_FAILED if self.relay == "failed" else NO_PATH,
                          "even through the relay" if self.relay == "ok" else "")
            else:
                self._end(SENDER_GONE)
            return
        retry = self._retry_due()
        if retry is not None and self.now >= retry and self.sender is not None:
            self.emit("restart", to=self.sender)
            self.retry_at = self.now + self.backoff
            self.backoff = min(self.backoff * 2, self.timing.retry_max)


def records_from_json(objects: Sequence[dict[str, Any]]) -> list[Record]:
    return [Record(o["id"], o["transfer"], o["index"], o["name"], o["size"], o["chunk_size"],
                   bool(o.get("complete")), tuple(bytes.fromhex(d) for d in o.get("digests", ())))
            for o in objects]
