"""The sender's session machine (docs/protocol.md §14.1): one per offer, serving every
receiver of the link over its own connection. Pure: no I/O, no clock, no randomness.

Events (driver → machine), besides ``tick``:

- signaling: ``peers {peers: [{peer, role}]}`` (a welcome), ``peer_joined {peer, role}``,
  ``restart {peer}`` (a receiver asks for a new connection),
  ``room_gone {reason}``, ``stop`` (the user stops sharing), ``retry {peer}`` (the user asks
  to try that receiver again: the same as its `restart`);
- one connection: ``channel_open {conn, nonce}`` (the driver's fresh hello nonce),
  ``message {conn, text}``, ``piece {conn}`` (a binary frame: never from a receiver),
  ``connection_lost {conn, reason}``;
- results of actions: ``proof_checked {conn, ok, mac}``, ``chunk_read {conn?, file, chunk,
  size, digest}``, ``read_failed {file, chunk, message}``, ``pieces_sent {conn, file, chunk}``.

Actions (machine → driver), besides ``wake``: ``open_connection {conn, peer}``,
``close {conn}``, ``send {conn, message}``, ``check_proof {conn, nonce, mac}``,
``read_chunk {conn, file, chunk}`` (bytes to send), ``hash_chunk {file, chunk}`` (digest
only), ``send_pieces {conn, file, chunk}``, ``stop_pieces {conn}``, ``lock_room``,
``receiver {peer, state, acked, total, …}`` and ``progress {peer, acked, total}`` (for the
user), ``finished {reason}`` (the offer is over).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .chunks import SendWindow, check_resume_offset, chunk_count, chunk_length, file_digest
from .constants import WINDOW_CHUNKS
from .errors import FrameError, IntegrityError, ProtocolError
from .machine import Event, Keepalive, Machine, SessionTiming
from .messages import (
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
    FileEntry,
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

MAX_AUTH_ATTEMPTS = 5  # wrong proofs per connection (protocol.md §6)
MAX_FAILED_PROOFS = 20  # wrong proofs per offer, across connections and restarts
PREFIX_READS = 2  # chunks hashed at once while checking a resumed prefix

# Connection states.
OPENING, AUTH, CHECKING, OFFERED, PREPARING, SENDING, FINISHING, CLOSED = (
    "opening", "auth", "checking", "offered", "preparing", "sending", "finishing", "closed",
)


class _Failed(Exception):
    """The connection ends: tell the peer `error` (when given) and the user `state`."""

    def __init__(self, state: str, detail: str, error: ProtocolError | None = None) -> None:
        super().__init__(detail)
        self.state = state
        self.detail = detail
        self.error = error


@dataclass
class _Connection:
    conn: str
    peer: str
    opened_at: float
    state: str = OPENING
    nonce: bytes = b""
    attempts: int = 0
    keepalive: Keepalive | None = None
    accept: Accept | None = None
    offsets: list[int] = field(default_factory=list)
    prefix_todo: deque[tuple[int, int]] = field(default_factory=deque)  # not yet asked for
    prefix_pending: set[tuple[int, int]] = field(default_factory=set)  # being hashed
    window: SendWindow = field(default_factory=SendWindow)
    next_send: tuple[int, int] = (0, 0)  # the next chunk whose pieces go out
    next_read: tuple[int, int] = (0, 0)
    reading: tuple[int, int] | None = None
    ready: tuple[int, int] | None = None  # read, waiting for the window
    sending: tuple[int, int] | None = None  # pieces going out
    done_sent: bool = False
    lane: int = 0  # v1.1: 0 for the connection that started the transfer, k for an extra one
    resend: deque[tuple[int, int]] = field(default_factory=deque)  # lane mode, after a nack


@dataclass
class _Receiver:
    peer: str
    conn: str | None = None
    proved: bool = False  # proved the key once: may come back even after the cap
    acked: int = 0
    state: str = "connecting"
    unconnected_since: float | None = None  # offered since then, never connected
    connected_ever: bool = False
    transfer: _Transfer | None = None  # lane mode: the running transfer over its lanes


@dataclass
class _Transfer:
    """One receiver's transfer in lane mode (protocol.md §8.7): chunks go to whichever of
    its connections has room, file-done and done wait for the acknowledgements."""

    agreed: int  # connections agreed in start
    offsets: list[int]
    unacked_in_file: list[int]  # chunks of each file not yet acknowledged
    cursor: tuple[int, int]  # the next chunk never sent, in stream order
    lanes: dict[int, str] = field(default_factory=dict)  # lane index -> conn
    queue: deque[tuple[int, int]] = field(default_factory=deque)  # to send before new ones
    file_dones: int = 0  # file-done sent for the files below this
    acked_chunks: int = 0  # acknowledged in this transfer, on every lane
    grow_at: float | None = None  # when the current measuring interval may be judged
    grow_since: float = 0.0  # when it began
    grow_from: tuple[int, int] = (0, 0)  # acknowledged (bytes, chunks) when it began
    last_rate: float | None = None

    @property
    def window(self) -> int:
        return max(2, WINDOW_CHUNKS // self.agreed)


class SenderMachine(Machine):
    def __init__(self, transfer: str, files: Sequence[FileEntry], password: bool, iterations: int,
                 one_time: bool = False, timing: SessionTiming | None = None,
                 lanes: int | None = None, fixed_lanes: bool = False) -> None:
        """`lanes`: protocol v1.1, the most connections one transfer may use (None: a v1
        sender, one connection); `fixed_lanes`: open them all at once instead of adding
        them while the transfer gets faster (protocol.md §8.7)."""
        super().__init__(timing or SessionTiming())
        self.max_lanes = lanes
        self.fixed_lanes = fixed_lanes
        self.manifest = Manifest(transfer, tuple(files))
        self.sizes = [f.size for f in files]
        self.total = sum(self.sizes)
        self.password = password
        self.iterations = iterations
        self.one_time = one_time
        #: chunk digests per file, filled as chunks are read: shared by every receiver
        self.digests: list[list[bytes | None]] = [[] for _ in files]
        self.failed_proofs = 0
        self.locked = False
        self.room_gone = False
        self.stopped = False
        self.receivers: dict[str, _Receiver] = {}
        self.connections: dict[str, _Connection] = {}
        self._serial = 0
        self._hashing: set[tuple[int, int]] = set()  # chunks being read for their digest
        self.relay = "none"  # the relay, as the driver found it: none, failed, ok
        self._handlers = {
            "peers": self._on_peers,
            "peer_joined": self._on_peer_joined,
            "restart": self._on_restart,
            "retry": self._on_restart,
            "room_gone": self._on_room_gone,
            "stop": self._on_stop,
            "channel_open": self._on_channel_open,
            "message": self._on_message,
            "connection_lost": self._on_connection_lost,
            "proof_checked": self._on_proof_checked,
            "chunk_read": self._on_chunk_read,
            "read_failed": self._on_read_failed,
            "pieces_sent": self._on_pieces_sent,
            "piece": self._on_piece,
        }

    # -- receivers and their connections ----------------------------------------------

    @property
    def capped(self) -> bool:
        return self.failed_proofs >= MAX_FAILED_PROOFS

    def _live(self, receiver: _Receiver) -> bool:
        return receiver.conn is not None and self.connections[receiver.conn].state != CLOSED

    def _on_peers(self, event: Event) -> None:
        for peer in event["peers"]:
            if peer["role"] == "receiver":
                self._seen(peer["peer"], offer_if_idle=True)

    def _on_peer_joined(self, event: Event) -> None:
        if event["role"] == "receiver":
            # A receiver whose signaling socket merely reconnected keeps its connection;
            # one that lost it too asks with `restart` (protocol.md §1.0).
            self._seen(event["peer"], offer_if_idle=True)

    def _seen(self, peer: str, offer_if_idle: bool) -> None:
        receiver = self.receivers.get(peer)
        if receiver is None:
            receiver = self.receivers[peer] = _Receiver(peer)
        if offer_if_idle and not self._live(receiver):
            self._offer(receiver)

    def _on_restart(self, event: Event) -> None:
        receiver = self.receivers.get(event["peer"])
        if receiver is None:
            receiver = self.receivers[event["peer"]] = _Receiver(event["peer"])
        self._offer(receiver)

    def _offer(self, receiver: _Receiver) -> None:
        """A new connection to `receiver`, replacing the one it has."""
        if self.stopped or self.room_gone:
            return
        if self.capped and not receiver.proved:
            return  # too many wrong proofs: only receivers that proved may come back
        if receiver.conn is not None:
            self._close(self.connections[receiver.conn])
        self._serial += 1
        conn = f"c{self._serial}"
        self.connections[conn] = _Connection(conn, receiver.peer, self.now)
        receiver.conn = conn
        if receiver.unconnected_since is None and not receiver.connected_ever:
            receiver.unconnected_since = self.now
        self.emit("open_connection", conn=conn, peer=receiver.peer)
        self._report(receiver, "connecting")

    def _on_room_gone(self, event: Event) -> None:
        # No new receivers and no reconnects from now on; running transfers go on to
        # their end (a room may expire mid-transfer).
        self.room_gone = True
        self._finish_if_idle(str(event.get("reason") or "the room is closed"))

    def _on_stop(self, event: Event) -> None:
        self.stopped = True
        for connection in list(self.connections.values()):
            if connection.state != CLOSED:
                self._send(connection, ErrorMessage("cancelled", "the sender stopped sharing"))
                self._close(connection)
                self._report(self.receivers[connection.peer], "failed", detail="stopped")
        self.emit("finished", reason="stopped")

    def _finish_if_idle(self, reason: str) -> None:
        if not any(c.state not in (OPENING, CLOSED) for c in self.connections.values()):
            for connection in self.connections.values():
                if connection.state == OPENING:
                    self._close(connection)
            self.emit("finished", reason=reason)

    def _report(self, receiver: _Receiver, state: str, **fields: Any) -> None:
        receiver.state = state
        self.emit("receiver", peer=receiver.peer, state=state, acked=receiver.acked,
                  total=self.total, **fields)

    # -- one connection ---------------------------------------------------------------

    def _connection(self, event: Event) -> _Connection | None:
        connection = self.connections.get(event["conn"])
        return None if connection is None or connection.state == CLOSED else connection

    def _send(self, connection: _Connection, message: Message) -> None:
        self.emit("send", conn=connection.conn, message=message)

    def _close(self, connection: _Connection) -> None:
        if connection.state == CLOSED:
            return
        if connection.sending is not None:
            self.emit("stop_pieces", conn=connection.conn)
        connection.state = CLOSED
        self.emit("close", conn=connection.conn)
        receiver = self.receivers.get(connection.peer)
        transfer = receiver.transfer if receiver is not None else None
        if transfer is None or transfer.lanes.get(connection.lane) != connection.conn:
            return
        if connection.lane == 0:
            # The connection that carries the control messages: the transfer ends here
            # (its chunks resume on the next one), and so do its other lanes.
            assert receiver is not None
            receiver.transfer = None
            for conn in list(transfer.lanes.values())[1:]:
                self._close(self.connections[conn])
        else:
            self._lane_lost(transfer, connection)

    def _guarded(self, connection: _Connection, step: Any, *args: Any) -> None:
        """Run one step of a connection; a broken rule or a failure ends the connection."""
        try:
            step(connection, *args)
        except ProtocolError as error:
            self._fail(connection, _Failed("failed", str(error), error))
        except _Failed as failure:
            self._fail(connection, failure)

    def _fail(self, connection: _Connection, failure: _Failed) -> None:
        if failure.error is not None:
            self._send(connection, ErrorMessage.of(failure.error))
        receiver = self.receivers[connection.peer]
        if connection.lane and receiver.transfer is not None:
            # A broken rule on any lane ends the whole transfer.
            self._close(self.connections[receiver.transfer.lanes[0]])
        self._close(connection)
        fields: dict[str, Any] = {"detail": failure.detail}
        if failure.error is not None:
            fields["code"] = failure.error.code
        self._report(receiver, failure.state, **fields)
        self._after_end()

    def _after_end(self) -> None:
        if self.room_gone:
            self._finish_if_idle("the room is closed")

    def _on_channel_open(self, event: Event) -> None:
        connection = self._connection(event)
        if connection is None or connection.state != OPENING:
            return
        connection.nonce = event["nonce"]
        connection.keepalive = Keepalive(self.timing, self.now)
        connection.state = AUTH
        receiver = self.receivers[connection.peer]
        receiver.unconnected_since = None
        receiver.connected_ever = True
        self._send(connection, Hello(connection.nonce, self.password,
                                     self.iterations if self.password else None, self.max_lanes))
        if not connection.lane:
            self._report(receiver, "authenticating")

    def _on_connection_lost(self, event: Event) -> None:
        self.relay = str(event.get("relay") or self.relay)
        connection = self._connection(event)
        if connection is None:
            return
        self._lost(connection, str(event.get("reason") or "the connection closed"))

    def _lost(self, connection: _Connection, reason: str) -> None:
        """The connection ended without a word: the receiver keeps what it has and asks
        for a new connection (`restart`) when it wants to resume. An extra lane's loss
        costs only the chunks it carried (they go to the other lanes)."""
        self._close(connection)
        if connection.lane:
            return
        self._report(self.receivers[connection.peer], "lost", detail=reason)
        self._after_end()

    def _on_message(self, event: Event) -> None:
        connection = self._connection(event)
        if connection is None or connection.keepalive is None:
            return
        connection.keepalive.received(self.now)
        self._guarded(connection, self._message, event["text"])

    def _on_piece(self, event: Event) -> None:
        connection = self._connection(event)
        if connection is not None:
            self._guarded(connection, self._binary)

    def _binary(self, connection: _Connection) -> None:
        raise FrameError("a receiver never sends binary frames")

    def _message(self, connection: _Connection, text: str) -> None:
        message = parse_message(text)
        if isinstance(message, Ping):
            self._send(connection, Pong())
        elif isinstance(message, Pong):
            pass
        elif isinstance(message, ErrorMessage):
            raise _Failed("failed", f"the receiver stopped: {message.message or message.code}")
        elif connection.state == AUTH and isinstance(message, Auth):
            self._auth(connection, message)
        elif connection.state == OFFERED and isinstance(message, Accept):
            self._accepted(connection, message)
        elif connection.state == OFFERED and isinstance(message, Decline):
            self._close(connection)
            self._report(self.receivers[connection.peer], "declined")
            self._after_end()
        elif connection.state in (SENDING, FINISHING) and isinstance(message, Ack):
            self._ack(connection, message)
        elif connection.state in (SENDING, FINISHING) and isinstance(message, Nack):
            self._nack(connection, message)
        elif connection.state == FINISHING and isinstance(message, Complete):
            self._complete(connection, message)
        else:
            raise FrameError(f"unexpected '{message.TYPE}' while {connection.state}")

    # -- authentication (protocol.md §6) ----------------------------------------------

    def _auth(self, connection: _Connection, message: Auth) -> None:
        if self.capped:
            # Past the cap no proof is checked at all: nothing more to learn by guessing.
            self._refuse(connection, "too many wrong passwords for this link")
            return
        connection.state = CHECKING
        self.emit("check_proof", conn=connection.conn, nonce=message.nonce, mac=message.mac)

    def _on_proof_checked(self, event: Event) -> None:
        connection = self._connection(event)
        if connection is None or connection.state != CHECKING:
            return
        receiver = self.receivers[connection.peer]
        if event["ok"]:
            receiver.proved = True
            if connection.lane:
                self._join(receiver, connection, event["mac"])
                return
            connection.state = OFFERED
            self._send(connection, AuthOk(event["mac"]))
            self._send(connection, self.manifest)
            if self.one_time and not self.locked:
                self.locked = True  # the one receiver proved the key: nobody else joins
                self.emit("lock_room")
            self._report(receiver, "offered")
            return
        self.failed_proofs += 1
        connection.attempts += 1
        remaining = 0
        if self.password:
            remaining = min(MAX_AUTH_ATTEMPTS - connection.attempts, MAX_FAILED_PROOFS - self.failed_proofs)
        if self.capped and not self.locked:
            self.locked = True
            self.emit("lock_room")
        if remaining > 0:
            connection.state = AUTH
            self._send(connection, AuthFailed(True, remaining))
            self._report(receiver, "authenticating", detail="wrong password")
            return
        detail = ("too many wrong passwords for this link" if self.capped else
                  "the receiver could not prove it has the link (wrong link or password)")
        self._refuse(connection, detail)

    def _refuse(self, connection: _Connection, detail: str) -> None:
        self._send(connection, AuthFailed(False, 0))
        self._close(connection)
        self._report(self.receivers[connection.peer], "failed", detail=detail, code="auth_failed")
        self._after_end()

    # -- manifest, accept, start (protocol.md §7) -------------------------------------

    def _accepted(self, connection: _Connection, accept: Accept) -> None:
        accept.check(self.manifest)
        connection.accept = accept
        connection.state = PREPARING
        for index, answer in enumerate(accept.files):
            held = check_resume_offset(answer.offset, self.sizes[index])
            connection.prefix_todo.extend((index, chunk) for chunk in range(held)
                                          if self._digest(index, chunk) is None)
        self._check_prefixes(connection)

    def _digest(self, file: int, chunk: int) -> bytes | None:
        known = self.digests[file]
        return known[chunk] if chunk < len(known) else None

    def _check_prefixes(self, connection: _Connection) -> None:
        """Hash what the prefix checks still need (a few at a time), then start."""
        todo = connection.prefix_todo
        while todo and len(connection.prefix_pending) < PREFIX_READS:
            position = todo.popleft()
            if self._digest(*position) is not None:
                continue
            connection.prefix_pending.add(position)
            if position not in self._hashing:
                self._hashing.add(position)
                self.emit("hash_chunk", file=position[0], chunk=position[1])
        if connection.prefix_pending:
            return
        assert connection.accept is not None
        offsets = []
        for index, answer in enumerate(connection.accept.files):
            offset = answer.offset
            if offset:
                held = chunk_count(offset)
                mine = file_digest(self._known(index, held))
                if mine != answer.prefix:
                    offset = 0  # not our bytes: this file starts over
            offsets.append(offset)
        agreed = None
        if connection.accept.lanes is not None and self.max_lanes is not None:
            agreed = min(connection.accept.lanes, self.max_lanes)
        start = Start(tuple(offsets), agreed)
        start.check(connection.accept)
        connection.offsets = offsets
        self._send(connection, start)
        receiver = self.receivers[connection.peer]
        receiver.acked = sum(offsets)
        connection.state = SENDING
        self._report(receiver, "sending")
        if agreed is not None:
            self._start_lanes(receiver, connection, agreed, offsets)
            return
        first = self._first_chunk(connection, 0)
        connection.next_send = connection.next_read = first
        self._advance(connection)

    def _known(self, file: int, count: int) -> list[bytes]:
        digests = self.digests[file][:count]
        if len(digests) < count or any(d is None for d in digests):
            raise AssertionError(f"digests of file {file} below chunk {count} are not known")
        return [d for d in digests if d is not None]

    def _remember(self, file: int, chunk: int, digest: bytes) -> None:
        """Cache a chunk digest; a different digest than before means the file changed."""
        known = self.digests[file]
        if chunk < len(known) and known[chunk] is not None and known[chunk] != digest:
            raise _SourceChanged(file)
        while len(known) <= chunk:
            known.append(None)
        known[chunk] = digest

    def _on_chunk_read(self, event: Event) -> None:
        file, chunk = event["file"], event["chunk"]
        try:
            self._remember(file, chunk, event["digest"])
        except _SourceChanged:
            self._source_failed(f"{self.manifest.files[file].name} changed while it was being sent")
            return
        self._hashing.discard((file, chunk))
        for connection in list(self.connections.values()):
            if connection.state == PREPARING and (file, chunk) in connection.prefix_pending:
                connection.prefix_pending.discard((file, chunk))
                self._guarded(connection, self._check_prefixes)
        reader = self._connection(event) if "conn" in event else None
        if reader is not None and reader.state == SENDING and reader.reading == (file, chunk):
            reader.reading = None
            reader.ready = (file, chunk)
            self._guarded(reader, self._lane_advance if self._lane_mode(reader) else self._advance)

    def _on_read_failed(self, event: Event) -> None:
        self._source_failed(str(event.get("message") or "a file cannot be read any more"))

    def _source_failed(self, detail: str) -> None:
        """A source file is gone or changed: no receiver can be served any more."""
        error = ProtocolError(detail, "source_error")
        for connection in list(self.connections.values()):
            if connection.state != CLOSED:
                self._fail(connection, _Failed("failed", detail, error))
        self.stopped = True
        self.emit("finished", reason=detail)

    # -- data (protocol.md §8, §9) -----------------------------------------------------

    def _first_chunk(self, connection: _Connection, file: int) -> tuple[int, int]:
        if file >= len(self.sizes):
            return (len(self.sizes), 0)
        return (file, chunk_count(connection.offsets[file]))

    def _after(self, connection: _Connection, position: tuple[int, int]) -> tuple[int, int]:
        file, chunk = position
        if chunk + 1 < chunk_count(self.sizes[file]):
            return (file, chunk + 1)
        return self._first_chunk(connection, file + 1)

    def _advance(self, connection: _Connection) -> None:
        """Emit what the stream allows now: file-done, pieces, reads, done."""
        while connection.state == SENDING and connection.sending is None:
            file, chunk = connection.next_send
            if file == len(self.sizes):
                if len(connection.window) == 0 and not connection.done_sent:
                    connection.done_sent = True
                    connection.state = FINISHING
                    self._send(connection, Done())
                    self._report(self.receivers[connection.peer], "finishing")
                break
            if chunk >= chunk_count(self.sizes[file]):
                self._send(connection, FileDone(file, file_digest(self._known(file, chunk))))
                connection.next_send = self._first_chunk(connection, file + 1)
                if connection.next_read < connection.next_send:
                    connection.next_read = connection.next_send
                continue
            if connection.ready == (file, chunk) and not connection.window.full:
                connection.ready = None
                connection.sending = (file, chunk)
                self.emit("send_pieces", conn=connection.conn, file=file, chunk=chunk)
            break
        self._read_ahead(connection)

    def _read_ahead(self, connection: _Connection) -> None:
        """One chunk read while another one's pieces go out (protocol.md §9)."""
        if connection.state != SENDING or connection.reading is not None or connection.ready is not None:
            return
        file, chunk = connection.next_read
        while file < len(self.sizes) and chunk >= chunk_count(self.sizes[file]):
            file, chunk = self._first_chunk(connection, file + 1)
        if file == len(self.sizes):
            return
        connection.reading = (file, chunk)
        connection.next_read = self._after(connection, (file, chunk))
        self.emit("read_chunk", conn=connection.conn, file=file, chunk=chunk)

    def _on_pieces_sent(self, event: Event) -> None:
        connection = self._connection(event)
        position = (event["file"], event["chunk"])
        if connection is None or connection.state != SENDING or connection.sending != position:
            return  # stopped by a nack or a close: not part of the stream any more
        file, chunk = position
        digest = self._digest(file, chunk)
        assert digest is not None
        connection.sending = None
        self._send(connection, ChunkEnd(file, chunk, chunk_length(self.sizes[file], chunk), digest))
        connection.window.sent(file, chunk)
        if self._lane_mode(connection):
            self._guarded(connection, self._lane_advance)
            return
        connection.next_send = (file, chunk + 1)  # at a file's end: its file-done comes next
        self._guarded(connection, self._advance)

    def _ack(self, connection: _Connection, ack: Ack) -> None:
        connection.window.acked(ack.file, ack.chunk)
        receiver = self.receivers[connection.peer]
        receiver.acked += chunk_length(self.sizes[ack.file], ack.chunk)
        self.emit("progress", peer=receiver.peer, acked=receiver.acked, total=self.total)
        if receiver.transfer is not None:
            receiver.transfer.unacked_in_file[ack.file] -= 1
            receiver.transfer.acked_chunks += 1
            self._lane_advance(connection)
            self._control(receiver)
            return
        self._advance(connection)

    def _nack(self, connection: _Connection, nack: Nack) -> None:
        """Go-back-N (protocol.md §8.4): forget what is in flight, resend from the chunk."""
        if self._lane_mode(connection):
            self._lane_nack(connection, nack)
            return
        position = connection.window.nacked(nack.file, nack.chunk)
        if connection.sending is not None:
            self.emit("stop_pieces", conn=connection.conn)
        connection.sending = connection.reading = connection.ready = None
        connection.next_send = connection.next_read = position
        self._advance(connection)

    def _complete(self, connection: _Connection, complete: Complete) -> None:
        mine = [file_digest(self._known(f, chunk_count(size))) for f, size in enumerate(self.sizes)]
        if list(complete.digests) != mine:
            raise IntegrityError("the receiver's file digests differ from ours")
        self._close(connection)  # and its extra lanes
        receiver = self.receivers[connection.peer]
        self._report(receiver, "done", digests=[d.hex() for d in mine])
        if self.one_time:
            self.stopped = True
            self.emit("finished", reason="done")
        else:
            self._after_end()

    # -- lane mode (protocol v1.1, §8.7) --------------------------------------------------

    def _lane_mode(self, connection: _Connection) -> bool:
        receiver = self.receivers.get(connection.peer)
        return receiver is not None and receiver.transfer is not None \
            and receiver.transfer.lanes.get(connection.lane) == connection.conn

    def _start_lanes(self, receiver: _Receiver, primary: _Connection, agreed: int,
                     offsets: list[int]) -> None:
        counts = [chunk_count(size) - chunk_count(offset) for size, offset in zip(self.sizes, offsets,
                                                                                  strict=True)]
        transfer = _Transfer(agreed, offsets, counts, self._fresh((0, chunk_count(offsets[0]))))
        transfer.lanes[0] = primary.conn
        receiver.transfer = transfer
        primary.window = SendWindow(transfer.window)
        if self.fixed_lanes:
            for _ in range(agreed - 1):
                self._open_lane(receiver, transfer)
        elif agreed > 1:
            self._measure_from_now(receiver, transfer)
        self._lane_advance(primary)
        self._control(receiver)

    def _fresh(self, position: tuple[int, int]) -> tuple[int, int]:
        """`position`, or the first chunk after it that exists (past held files)."""
        file, chunk = position
        while file < len(self.sizes) and chunk >= chunk_count(self.sizes[file]):
            file += 1
            chunk = 0
        return (file, chunk)

    def _open_lane(self, receiver: _Receiver, transfer: _Transfer) -> None:
        lane = next(k for k in range(1, transfer.agreed) if k not in transfer.lanes)
        self._serial += 1
        conn = f"c{self._serial}"
        self.connections[conn] = _Connection(conn, receiver.peer, self.now, lane=lane)
        transfer.lanes[lane] = conn
        self.emit("open_connection", conn=conn, peer=receiver.peer, lane=lane)

    def _join(self, receiver: _Receiver, connection: _Connection, mac: bytes) -> None:
        transfer = receiver.transfer
        if transfer is None or transfer.lanes.get(connection.lane) != connection.conn:
            self._close(connection)  # the transfer it was to join is over
            return
        self._send(connection, AuthOk(mac))
        self._send(connection, Join(self.manifest.transfer, connection.lane))
        connection.state = SENDING
        connection.window = SendWindow(transfer.window)
        if transfer.grow_at is not None:
            # The lane carries from now: what it adds is measured from here, not from
            # when it was asked for (ICE, DTLS and the proofs take a few round trips).
            self._measure_from_now(receiver, transfer)
        self._lane_advance(connection)

    def _take(self, transfer: _Transfer, connection: _Connection) -> tuple[int, int] | None:
        """The next chunk for this lane: its own to send again, the transfer's requeued
        ones, then the next never sent."""
        if connection.resend:
            return connection.resend.popleft()
        if transfer.queue:
            return transfer.queue.popleft()
        file, chunk = transfer.cursor
        if file >= len(self.sizes):
            return None
        transfer.cursor = self._fresh((file, chunk + 1))
        return (file, chunk)

    def _lane_advance(self, connection: _Connection) -> None:
        """A lane sends when its window has room and reads one chunk ahead."""
        receiver = self.receivers[connection.peer]
        transfer = receiver.transfer
        if transfer is None or connection.state != SENDING:
            return
        if connection.sending is None and connection.ready is not None and not connection.window.full:
            connection.sending, connection.ready = connection.ready, None
            self.emit("send_pieces", conn=connection.conn, file=connection.sending[0],
                      chunk=connection.sending[1])
        if connection.reading is None and connection.ready is None:
            position = self._take(transfer, connection)
            if position is not None:
                connection.reading = position
                self.emit("read_chunk", conn=connection.conn, file=position[0], chunk=position[1])

    def _control(self, receiver: _Receiver) -> None:
        """file-done for each file whose chunks are all acknowledged, in file order, then
        done: on the primary connection (protocol.md §8.7)."""
        transfer = receiver.transfer
        if transfer is None:
            return
        primary = self.connections[transfer.lanes[0]]
        if primary.state != SENDING:
            return
        while transfer.file_dones < len(self.sizes) and transfer.unacked_in_file[transfer.file_dones] == 0:
            file = transfer.file_dones
            self._send(primary, FileDone(file, file_digest(self._known(file, chunk_count(self.sizes[file])))))
            transfer.file_dones += 1
        if transfer.file_dones == len(self.sizes):
            primary.state = FINISHING
            primary.done_sent = True
            self._send(primary, Done())
            self._report(receiver, "finishing")

    def _lane_nack(self, connection: _Connection, nack: Nack) -> None:
        """Go-back-N on this lane only: its chunks from the failed one on go out again, on
        it and in the same order; the other lanes go on."""
        outstanding = connection.window.outstanding()
        connection.window.nacked(nack.file, nack.chunk)  # raises integrity at the third
        if connection.sending is not None:
            self.emit("stop_pieces", conn=connection.conn)
        later = [p for p in (connection.sending, connection.ready, connection.reading) if p is not None]
        connection.resend = deque([*outstanding, *later, *connection.resend])
        connection.sending = connection.ready = connection.reading = None
        self._lane_advance(connection)

    def _lane_lost(self, transfer: _Transfer, connection: _Connection) -> None:
        """An extra lane is gone: what it carried and was not acknowledged goes to the
        others, first (protocol.md §8.7)."""
        del transfer.lanes[connection.lane]
        carried = [*connection.window.outstanding(), *(p for p in (connection.sending, connection.ready,
                                                                    connection.reading) if p is not None),
                   *connection.resend]
        connection.sending = connection.ready = connection.reading = None
        connection.resend.clear()
        transfer.queue.extendleft(reversed(carried))
        for conn in transfer.lanes.values():
            self._lane_advance(self.connections[conn])

    def _measure_from_now(self, receiver: _Receiver, transfer: _Transfer) -> None:
        transfer.grow_since = self.now
        transfer.grow_from = (receiver.acked, transfer.acked_chunks)
        transfer.grow_at = self.now + self.timing.grow_interval

    def _grow(self, receiver: _Receiver, transfer: _Transfer) -> None:
        """Another lane while the last one made the transfer faster (protocol.md §7.4)."""
        acked_from, chunks_from = transfer.grow_from
        if transfer.acked_chunks - chunks_from < self.timing.grow_chunks:
            transfer.grow_at = self.now + self.timing.grow_interval  # too few acks to judge yet
            return
        rate = (receiver.acked - acked_from) / (self.now - transfer.grow_since)
        if len(transfer.lanes) < transfer.agreed and (
                transfer.last_rate is None or rate >= transfer.last_rate * (1 + self.timing.grow_gain)):
            self._open_lane(receiver, transfer)
            transfer.last_rate = rate
            self._measure_from_now(receiver, transfer)
        else:
            transfer.grow_at = None  # no more lanes for this transfer

    # -- time ---------------------------------------------------------------------------

    def deadlines(self) -> Iterable[float]:
        for connection in self.connections.values():
            if connection.state == OPENING:
                yield connection.opened_at + self.timing.open_timeout
            elif connection.state != CLOSED and connection.keepalive is not None:
                yield connection.keepalive.deadline()
        for receiver in self.receivers.values():
            if receiver.unconnected_since is not None:
                yield receiver.unconnected_since + self.timing.connect_timeout
            if receiver.transfer is not None and receiver.transfer.grow_at is not None:
                yield receiver.transfer.grow_at

    def on_tick(self) -> None:
        for connection in list(self.connections.values()):
            if connection.state == OPENING:
                if self.now >= connection.opened_at + self.timing.open_timeout:
                    self._lost(connection, "the connection did not open")
            elif connection.state != CLOSED and connection.keepalive is not None:
                due = connection.keepalive.due(self.now)
                if due == "dead":
                    self._lost(connection, "the receiver stopped answering")
                elif due == "ping":
                    self._send(connection, Ping())
        for receiver in list(self.receivers.values()):
            transfer = receiver.transfer
            if transfer is not None and transfer.grow_at is not None and self.now >= transfer.grow_at:
                self._grow(receiver, transfer)
        for receiver in self.receivers.values():
            since = receiver.unconnected_since
            if since is not None and self.now >= since + self.timing.connect_timeout:
                # No connection to it ever opened: say why, once; it may ask again.
                receiver.unconnected_since = None
                if receiver.conn is not None:
                    self._close(self.connections[receiver.conn])
                code = "relay_failed" if self.relay == "failed" else "no_path"
                self._report(receiver, "failed", code=code)


class _SourceChanged(Exception):
    def __init__(self, file: int) -> None:
        super().__init__(file)
        self.file = file
