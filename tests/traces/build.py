"""Writes docs/protocol-traces.json from the scenarios below.

    .venv/bin/python -m tests.traces.build

Each scenario is a script of events and the facts that must hold (`must`: actions that
must appear at a step, `absent`: actions that must not appear at a step, `never`: actions
that must not appear anywhere). The expected
actions in the file are what the Python machines produce, once every fact holds; the
JavaScript machines must then produce exactly the same. Run it after a deliberate change
of a rule and review the diff of the JSON like code.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from peerbeam.transfer.chunks import file_digest
from peerbeam.transfer.codec import b64url_encode

from .codec import TRACES, action_out, event_in, machine

MiB = 1024 * 1024
TRANSFER = "AAECAwQFBgcICQoLDA0ODw"
OTHER_TRANSFER = "ZZZZZZZZZZZZZZZZZZZZZZ"


def b64(seed: int) -> str:
    return b64url_encode(bytes((seed + i) % 256 for i in range(32)))


NONCE_S, NONCE_R, NONCE_R2, MAC_R, MAC_S = b64(0), b64(64), b64(96), b64(128), b64(160)


def digest(file: int, chunk: int, variant: str = "") -> str:
    return hashlib.sha256(f"file {file} chunk {chunk}{variant}".encode()).hexdigest()


def file_hex(file: int, chunks: int) -> str:
    return file_digest(bytes.fromhex(digest(file, c)) for c in range(chunks)).hex()


TWO_FILES = [{"name": "video.mp4", "size": 2 * MiB + MiB // 2 + 5, "type": "video/mp4"},
             {"name": "notes.txt", "size": 100, "type": "text/plain"}]
TWO_FILE_CHUNKS = [3, 1]


def manifest(files: list[dict[str, Any]] = TWO_FILES, transfer: str = TRANSFER) -> dict[str, Any]:
    return {"t": "manifest", "v": 1, "transfer": transfer, "chunk_size": MiB,
            "files": [{"name": f["name"], "size": f["size"], "type": f["type"]} for f in files]}


def m(t: str, **fields: Any) -> dict[str, Any]:
    return {"t": t, **fields}


def size_of(file: int, chunk: int, files: list[dict[str, Any]] = TWO_FILES) -> int:
    return min(MiB, files[file]["size"] - chunk * MiB)


@dataclass
class Scenario:
    name: str
    machine: str
    config: dict[str, Any]
    steps: list[dict[str, Any]] = field(default_factory=list)
    must: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    absent: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    never: list[dict[str, Any]] = field(default_factory=list)
    at: float = 0.0

    def ev(self, type_: str, at: float | None = None, **fields: Any) -> int:
        """Add an event; returns its step number (from 1)."""
        if at is not None:
            self.at = round(at, 3)
        self.steps.append({"at": self.at, "type": type_, **fields})
        return len(self.steps)

    def offer(self, session: str, sender: str = "S") -> int:
        """A signaling offer (`from` is a keyword in Python)."""
        self.steps.append({"at": self.at, "type": "offer", "from": sender, "session": session})
        return len(self.steps)

    def expect(self, step: int, **action: Any) -> None:
        self.must.append((step, action))

    def expect_none(self, step: int, **action: Any) -> None:
        self.absent.append((step, action))


def matches(action: dict[str, Any], want: dict[str, Any]) -> bool:
    return all(action.get(k) == v or (isinstance(v, dict) and isinstance(action.get(k), dict)
                                       and matches(action[k], v)) for k, v in want.items())


# -- sender scenarios ---------------------------------------------------------------------

def sender(name: str, files: list[dict[str, Any]] = TWO_FILES, password: bool = False,
           one_time: bool = False, timing: dict[str, Any] | None = None,
           lanes: int | None = None, fixed_lanes: bool = False) -> Scenario:
    config: dict[str, Any] = {"transfer": TRANSFER, "files": files, "password": password,
                              "iterations": 600000, "one_time": one_time}
    if timing:
        config["timing"] = timing
    if lanes is not None:
        config["lanes"] = lanes
        config["fixed_lanes"] = fixed_lanes
    return Scenario(name, "sender", config)


def sender_to_offered(s: Scenario, conn: str = "c1", peer: str = "R1", first: bool = True) -> None:
    if first:
        step = s.ev("peers", peers=[{"peer": peer, "role": "receiver"}])
        s.expect(step, type="open_connection", conn=conn, peer=peer)
    step = s.ev("channel_open", at=s.at + 0.5, conn=conn, nonce=NONCE_S)
    s.expect(step, type="send", conn=conn, message={"t": "hello", "nonce": NONCE_S})
    step = s.ev("message", at=s.at + 0.1, conn=conn, message=m("auth", nonce=NONCE_R, mac=MAC_R))
    s.expect(step, type="check_proof", conn=conn, nonce=NONCE_R, mac=MAC_R)
    step = s.ev("proof_checked", conn=conn, ok=True, mac=MAC_S)
    s.expect(step, type="send", conn=conn, message={"t": "auth-ok", "mac": MAC_S})
    s.expect(step, type="send", conn=conn, message={"t": "manifest", "transfer": TRANSFER})


def send_chunk(s: Scenario, file: int, chunk: int, conn: str = "c1", variant: str = "",
               files: list[dict[str, Any]] = TWO_FILES) -> None:
    """The driver read (file, chunk) for `conn`."""
    s.ev("chunk_read", conn=conn, file=file, chunk=chunk, size=size_of(file, chunk, files),
         digest=digest(file, chunk, variant))


def happy_sender() -> Scenario:
    s = sender("sender: two files, from hello to complete")
    sender_to_offered(s)
    step = s.ev("message", conn="c1", message=m("accept", transfer=TRANSFER,
                                                 files=[{"offset": 0}, {"offset": 0}]))
    s.expect(step, type="send", message={"t": "start", "files": [{"offset": 0}, {"offset": 0}]})
    s.expect(step, type="read_chunk", conn="c1", file=0, chunk=0)
    step = s.ev("chunk_read", conn="c1", file=0, chunk=0, size=MiB, digest=digest(0, 0))
    s.expect(step, type="send_pieces", conn="c1", file=0, chunk=0)
    s.expect(step, type="read_chunk", conn="c1", file=0, chunk=1)
    send_chunk(s, 0, 1)
    step = s.ev("pieces_sent", conn="c1", file=0, chunk=0)
    s.expect(step, type="send", message={"t": "chunk", "file": 0, "chunk": 0, "sha256": digest(0, 0)})
    s.expect(step, type="send_pieces", file=0, chunk=1)
    send_chunk(s, 0, 2)
    s.ev("message", at=s.at + 0.1, conn="c1", message=m("ack", file=0, chunk=0))
    s.ev("pieces_sent", conn="c1", file=0, chunk=1)
    send_chunk(s, 1, 0)
    step = s.ev("pieces_sent", conn="c1", file=0, chunk=2)
    s.expect(step, type="send", message={"t": "file-done", "file": 0, "digest": file_hex(0, 3)})
    s.ev("message", at=s.at + 0.1, conn="c1", message=m("ack", file=0, chunk=1))
    s.ev("message", conn="c1", message=m("ack", file=0, chunk=2))
    step = s.ev("pieces_sent", conn="c1", file=1, chunk=0)
    s.expect(step, type="send", message={"t": "file-done", "file": 1, "digest": file_hex(1, 1)})
    step = s.ev("message", at=s.at + 0.1, conn="c1", message=m("ack", file=1, chunk=0))
    s.expect(step, type="send", message={"t": "done"})
    step = s.ev("message", conn="c1", message=m("complete", digests=[file_hex(0, 3), file_hex(1, 1)]))
    s.expect(step, type="close", conn="c1")
    s.expect(step, type="receiver", state="done")
    return s


def sender_sending(name: str, files: list[dict[str, Any]] = TWO_FILES, **kwargs: Any) -> Scenario:
    """Offered, accepted from 0, the first chunk read."""
    s = sender(name, files=files, **kwargs)
    sender_to_offered(s)
    s.ev("message", conn="c1", message=m("accept", transfer=TRANSFER, files=[{"offset": 0} for _ in files]))
    send_chunk(s, 0, 0, files=files)
    return s


def nack_while_draining() -> Scenario:
    s = sender_sending("sender: a nack while a chunk's pieces wait for the send buffer")
    send_chunk(s, 0, 1)
    s.ev("pieces_sent", conn="c1", file=0, chunk=0)  # chunk 0 in the window, chunk 1 going out
    send_chunk(s, 0, 2)
    step = s.ev("message", conn="c1", message=m("nack", file=0, chunk=0))
    s.expect(step, type="stop_pieces", conn="c1")
    s.expect(step, type="read_chunk", conn="c1", file=0, chunk=0)
    # The driver's send loop for chunk 1 was stopped: a late report of it is stale.
    step = s.ev("pieces_sent", conn="c1", file=0, chunk=1)
    s.ev("chunk_read", conn="c1", file=0, chunk=2, size=MiB, digest=digest(0, 2))  # the old read-ahead
    step = s.ev("chunk_read", conn="c1", file=0, chunk=0, size=MiB, digest=digest(0, 0))
    s.expect(step, type="send_pieces", conn="c1", file=0, chunk=0)
    send_chunk(s, 0, 1)
    step = s.ev("pieces_sent", conn="c1", file=0, chunk=0)
    s.expect(step, type="send", message={"t": "chunk", "file": 0, "chunk": 0})
    step = s.ev("message", conn="c1", message=m("ack", file=0, chunk=0))
    s.expect(step, type="progress", acked=MiB)
    s.never.append({"type": "send", "message": {"t": "error"}})
    return s


def nack_after_ack() -> Scenario:
    s = sender_sending("sender: a nack for a chunk already acknowledged is refused")
    s.ev("pieces_sent", conn="c1", file=0, chunk=0)
    s.ev("message", conn="c1", message=m("ack", file=0, chunk=0))
    step = s.ev("message", conn="c1", message=m("nack", file=0, chunk=0))
    s.expect(step, type="send", message={"t": "error", "code": "bad_frame"})
    s.expect(step, type="close", conn="c1")
    return s


def third_nack() -> Scenario:
    s = sender_sending("sender: the third nack of one chunk ends with integrity")
    for attempt in range(3):
        s.ev("pieces_sent", conn="c1", file=0, chunk=0)
        step = s.ev("message", conn="c1", message=m("nack", file=0, chunk=0))
        if attempt < 2:
            send_chunk(s, 0, 0)
    s.expect(step, type="send", message={"t": "error", "code": "integrity"})
    return s


def guessing_cap() -> Scenario:
    s = sender("sender: 20 wrong passwords across connections and restarts, then none checked",
               password=True)
    s.ev("peers", peers=[{"peer": "R1", "role": "receiver"}, {"peer": "GOOD", "role": "receiver"}])
    # The honest receiver proves the password on c2 and stays.
    s.ev("channel_open", at=1, conn="c2", nonce=NONCE_S)
    s.ev("message", conn="c2", message=m("auth", nonce=NONCE_R, mac=MAC_R))
    s.ev("proof_checked", conn="c2", ok=True, mac=MAC_S)
    conn, failures = 1, 0
    while failures < 20:
        name = f"c{conn}"
        s.ev("channel_open", at=s.at + 0.1, conn=name, nonce=NONCE_S)
        for _ in range(5):
            step = s.ev("message", conn=name, message=m("auth", nonce=NONCE_R2, mac=MAC_R))
            s.expect(step, type="check_proof", conn=name)
            step = s.ev("proof_checked", conn=name, ok=False)
            failures += 1
            if failures == 20:
                break
        s.expect(step, type="send", conn=name, message={"t": "auth-failed", "retry": False, "remaining": 0})
        s.expect(step, type="close", conn=name)
        if failures == 20:
            s.expect(step, type="lock_room")
            break
        # The guesser comes back through a restart (a new connection).
        step = s.ev("restart", peer="R1")
        conn = conn + 2 if conn == 1 else conn + 1
        s.expect(step, type="open_connection", conn=f"c{conn}", peer="R1")
    # Past the cap: no new connection for the guesser, however it asks; none for a newcomer.
    s.ev("restart", at=s.at + 1, peer="R1")
    s.ev("peer_joined", peer="NEW", role="receiver")
    s.never.append({"type": "open_connection", "peer": "NEW"})
    # The receiver that proved the password may still come back (its transfer resumes).
    step = s.ev("restart", peer="GOOD")
    s.expect(step, type="open_connection", peer="GOOD")
    return s


def guess_on_open_connection_after_cap() -> Scenario:
    s = sender("sender: past the cap, a proof on a connection still open is not checked", password=True)
    s.ev("peers", peers=[{"peer": "A", "role": "receiver"}, {"peer": "B", "role": "receiver"},
                         {"peer": "C", "role": "receiver"}, {"peer": "D", "role": "receiver"},
                         {"peer": "E", "role": "receiver"}])
    for index in range(1, 6):
        s.ev("channel_open", at=s.at + 0.1, conn=f"c{index}", nonce=NONCE_S)
    for index in range(1, 5):
        for _ in range(5):
            s.ev("message", conn=f"c{index}", message=m("auth", nonce=NONCE_R2, mac=MAC_R))
            step = s.ev("proof_checked", conn=f"c{index}", ok=False)
    s.expect(step, type="lock_room")
    step = s.ev("message", conn="c5", message=m("auth", nonce=NONCE_R2, mac=MAC_R))
    s.expect(step, type="send", conn="c5", message={"t": "auth-failed", "retry": False, "remaining": 0})
    s.never.append({"type": "check_proof", "conn": "c5"})
    return s


def sender_resume() -> Scenario:
    s = sender("sender: resume from the receiver's held prefix; a wrong prefix restarts at 0")
    sender_to_offered(s)
    step = s.ev("message", conn="c1", message=m(
        "accept", transfer=TRANSFER,
        files=[{"offset": 2 * MiB, "prefix": file_hex(0, 2)}, {"offset": 100, "prefix": "00" * 32}]))
    s.expect(step, type="hash_chunk", file=0, chunk=0)
    s.expect(step, type="hash_chunk", file=0, chunk=1)
    step = s.ev("chunk_read", file=0, chunk=0, size=MiB, digest=digest(0, 0))
    s.expect(step, type="hash_chunk", file=1, chunk=0)  # two in flight at a time
    s.ev("chunk_read", file=0, chunk=1, size=MiB, digest=digest(0, 1))
    step = s.ev("chunk_read", file=1, chunk=0, size=100, digest=digest(1, 0))
    s.expect(step, type="send", message={"t": "start", "files": [{"offset": 2 * MiB}, {"offset": 0}]})
    s.expect(step, type="read_chunk", file=0, chunk=2)
    return s


def sender_keepalive() -> Scenario:
    s = sender("sender: keepalive pings after silence, the receiver is gone after 45 s of it")
    sender_to_offered(s)
    step = s.ev("tick", at=s.at + 15)
    s.expect(step, type="send", message={"t": "ping"})
    s.ev("message", at=s.at + 1, conn="c1", message=m("pong"))
    step = s.ev("tick", at=s.at + 15)
    s.expect(step, type="send", message={"t": "ping"})
    s.ev("tick", at=s.at + 15)
    step = s.ev("tick", at=s.at + 15)
    s.expect(step, type="close", conn="c1")
    s.expect(step, type="receiver", state="lost")
    return s


def sender_decline() -> Scenario:
    s = sender("sender: the receiver declines")
    sender_to_offered(s)
    step = s.ev("message", conn="c1", message=m("decline"))
    s.expect(step, type="close", conn="c1")
    s.expect(step, type="receiver", state="declined")
    return s


def sender_one_time() -> Scenario:
    s = sender("sender: a one-time link locks the room once the receiver proved the key", one_time=True)
    sender_to_offered(s)
    s.must.append((len(s.steps), {"type": "lock_room"}))
    s.ev("peer_joined", peer="LATE", role="receiver")
    return s


def sender_reconnect_keeps_connection() -> Scenario:
    s = sender_sending("sender: a receiver's signaling reconnect keeps its running connection")
    step = s.ev("peer_joined", at=s.at + 100, peer="R1", role="receiver")
    s.ev("peers", peers=[{"peer": "R1", "role": "receiver"}])
    s.never.append({"type": "open_connection", "conn": "c2"})
    s.never.append({"type": "close", "conn": "c1"})
    del step
    return s


def sender_room_gone_mid_transfer() -> Scenario:
    s = sender_sending("sender: the room expires mid-transfer; the transfer goes on to its end",
                       files=[TWO_FILES[1]])
    step = s.ev("room_gone", reason="the room expired")
    s.ev("restart", peer="R2")
    s.ev("pieces_sent", conn="c1", file=0, chunk=0)
    s.ev("message", conn="c1", message=m("ack", file=0, chunk=0))
    step = s.ev("message", conn="c1", message=m("complete", digests=[file_hex(0, 1)]))
    s.expect(step, type="receiver", state="done")
    s.expect(step, type="finished")
    s.never.append({"type": "open_connection", "peer": "R2"})
    return s


def sender_source_changed() -> Scenario:
    s = sender_sending("sender: a chunk that reads back different means the file changed")
    s.ev("pieces_sent", conn="c1", file=0, chunk=0)
    send_chunk(s, 0, 1)
    s.ev("message", conn="c1", message=m("nack", file=0, chunk=0))
    step = s.ev("chunk_read", conn="c1", file=0, chunk=0, size=MiB, digest=digest(0, 0, "edited"))
    s.expect(step, type="send", message={"t": "error", "code": "source_error"})
    s.expect(step, type="finished")
    return s


def sender_binary_from_receiver() -> Scenario:
    s = sender("sender: a binary frame from a receiver is bad_frame")
    sender_to_offered(s)
    step = s.ev("piece", conn="c1")
    s.expect(step, type="send", conn="c1", message={"t": "error", "code": "bad_frame"})
    s.expect(step, type="close", conn="c1")
    s.expect(step, type="receiver", state="failed", code="bad_frame")
    return s


# -- receiver scenarios -------------------------------------------------------------------

def receiver(name: str, **config: Any) -> Scenario:
    return Scenario(name, "receiver", config)


def receiver_to_manifest(s: Scenario, password: bool = False, iterations: int = 600000) -> None:
    step = s.ev("peers", peers=[{"peer": "S", "role": "sender"}], rejoin=False)
    s.expect(step, type="status", state="connecting")
    s.at = 0.2
    step = s.offer("offer-1")
    s.expect(step, type="answer", conn="c1", session="offer-1")
    s.ev("channel_open", at=0.5, conn="c1")
    hello: dict[str, Any] = {"v": 1, "nonce": NONCE_S, "password": password}
    if password:
        hello["kdf"] = {"name": "pbkdf2-sha256", "iterations": iterations}
    step = s.ev("message", conn="c1", message=m("hello", **hello))
    if password and s.config.get("password") is None:
        s.expect(step, type="ask_password")
        return
    s.expect(step, type="make_proof", conn="c1", sender_nonce=NONCE_S)
    step = s.ev("proof_made", conn="c1", nonce=NONCE_R, mac=MAC_R)
    s.expect(step, type="send", message={"t": "auth", "nonce": NONCE_R, "mac": MAC_R})
    step = s.ev("message", conn="c1", message=m("auth-ok", mac=MAC_S))
    s.expect(step, type="check_sender_proof", conn="c1", mac=MAC_S, sender_nonce=NONCE_S,
             receiver_nonce=NONCE_R)
    s.ev("sender_proof_checked", conn="c1", ok=True)
    step = s.ev("message", conn="c1", message=manifest())
    s.expect(step, type="load_records", manifest={"transfer": TRANSFER})


def record(index: int, held: int, transfer: str = TRANSFER, complete: bool = False,
           name: str | None = None) -> dict[str, Any]:
    entry = TWO_FILES[index]
    return {"id": f"{transfer}/{index}", "transfer": transfer, "index": index,
            "name": name or entry["name"], "size": entry["size"], "chunk_size": MiB,
            "complete": complete, "digests": [digest(index, c) for c in range(held)]}


def receive_chunk(s: Scenario, file: int, chunk: int, variant: str = "", conn: str = "c1") -> int:
    """Pieces of 256 KiB, the chunk message, the driver's digest; returns the last step."""
    size = size_of(file, chunk)
    for offset in range(0, size, 256 * 1024):
        s.ev("piece", conn=conn, file=file, chunk=chunk, offset=offset, size=min(256 * 1024, size - offset))
    s.ev("message", conn=conn,
         message=m("chunk", file=file, chunk=chunk, size=size, sha256=digest(file, chunk)))
    return s.ev("chunk_hashed", conn=conn, file=file, chunk=chunk, digest=digest(file, chunk, variant))


def happy_receiver() -> Scenario:
    s = receiver("receiver: two files, asked, accepted, written, verified")
    receiver_to_manifest(s)
    step = s.ev("records_loaded", records=[])
    s.expect(step, type="ask_accept", held=0)
    step = s.ev("user_accepted", at=3)
    s.expect(step, type="prepare_storage", records=[None, None])
    step = s.ev("storage_ready")
    s.expect(step, type="send", message={"t": "accept", "transfer": TRANSFER,
                                         "files": [{"offset": 0}, {"offset": 0}]})
    s.ev("message", conn="c1", message=m("start", files=[{"offset": 0}, {"offset": 0}]))
    step = receive_chunk(s, 0, 0)
    s.expect(step, type="write_chunk", file=0, chunk=0, position=0, digest=digest(0, 0))
    receive_chunk(s, 0, 1)
    step = s.ev("chunk_written", conn="c1", file=0, chunk=0)
    s.expect(step, type="send", message={"t": "ack", "file": 0, "chunk": 0})
    receive_chunk(s, 0, 2)
    s.ev("message", conn="c1", message=m("file-done", file=0, digest=file_hex(0, 3)))
    receive_chunk(s, 1, 0)
    s.ev("message", conn="c1", message=m("file-done", file=1, digest=file_hex(1, 1)))
    s.ev("chunk_written", conn="c1", file=0, chunk=1)
    step = s.ev("chunk_written", conn="c1", file=0, chunk=2)
    s.expect(step, type="finish_file", file=0, digest=file_hex(0, 3))
    step = s.ev("chunk_written", conn="c1", file=1, chunk=0)
    s.expect(step, type="finish_file", file=1)
    s.ev("message", conn="c1", message=m("done"))
    s.ev("file_finished", file=0)
    step = s.ev("file_finished", file=1)
    s.expect(step, type="send", message={"t": "complete", "digests": [file_hex(0, 3), file_hex(1, 1)]})
    s.expect(step, type="end", outcome="done")
    step = s.ev("tick", at=s.at + 5)
    s.expect(step, type="close", conn="c1")
    return s


def password_downgrade() -> Scenario:
    s = receiver("receiver: the link says a password is set, the sender asks for none",
                 expect_password=True, password="open sesame")
    s.ev("peers", peers=[{"peer": "S", "role": "sender"}], rejoin=False)
    s.offer("offer-1")
    s.ev("channel_open", conn="c1")
    step = s.ev("message", conn="c1", message=m("hello", v=1, nonce=NONCE_S, password=False))
    s.expect(step, type="send", message={"t": "error", "code": "auth_failed"})
    s.expect(step, type="end", outcome="failed", code="password_downgrade")
    s.never.append({"type": "make_proof"})
    return s


def weak_kdf() -> Scenario:
    s = receiver("receiver: fewer than 600000 PBKDF2 iterations are refused", password="pw")
    s.ev("peers", peers=[{"peer": "S", "role": "sender"}], rejoin=False)
    s.offer("offer-1")
    s.ev("channel_open", conn="c1")
    step = s.ev("message", conn="c1", message=m("hello", v=1, nonce=NONCE_S, password=True,
                                                kdf={"name": "pbkdf2-sha256", "iterations": 100000}))
    s.expect(step, type="send", message={"t": "error", "code": "bad_frame"})
    s.never.append({"type": "make_proof"})
    return s


def wrong_password_then_right() -> Scenario:
    s = receiver("receiver: a wrong password, asked again, then the right one")
    receiver_to_manifest(s, password=True)
    step = s.ev("password_entered", at=2, password="wrong")
    s.expect(step, type="make_proof", password="wrong", iterations=600000)
    s.ev("proof_made", conn="c1", nonce=NONCE_R, mac=MAC_R)
    step = s.ev("message", conn="c1", message=m("auth-failed", retry=True, remaining=4))
    s.expect(step, type="ask_password", remaining=4)
    step = s.ev("password_entered", password="right")
    s.expect(step, type="make_proof", password="right")
    step = s.ev("proof_made", conn="c1", nonce=NONCE_R2, mac=MAC_R)
    s.expect(step, type="send", message={"t": "auth", "nonce": NONCE_R2})
    step = s.ev("message", conn="c1", message=m("auth-ok", mac=MAC_S))
    s.expect(step, type="check_sender_proof", receiver_nonce=NONCE_R2)
    return s


def receiving(name: str, records: list[dict[str, Any]] | None = None, **config: Any) -> Scenario:
    s = receiver(name, auto_accept=True, **config)
    receiver_to_manifest(s)
    s.ev("records_loaded", records=records or [])
    s.ev("storage_ready")
    return s


def window_overrun() -> Scenario:
    files = [{"name": "big.bin", "size": 40 * MiB, "type": ""}]
    s = receiver("receiver: a 17th chunk without acknowledgement is bad_frame", auto_accept=True)
    s.ev("peers", peers=[{"peer": "S", "role": "sender"}], rejoin=False)
    s.offer("o")
    s.ev("channel_open", conn="c1")
    s.ev("message", conn="c1", message=m("hello", v=1, nonce=NONCE_S, password=False))
    s.ev("proof_made", conn="c1", nonce=NONCE_R, mac=MAC_R)
    s.ev("message", conn="c1", message=m("auth-ok", mac=MAC_S))
    s.ev("sender_proof_checked", conn="c1", ok=True)
    s.ev("message", conn="c1", message=manifest(files))
    s.ev("records_loaded", records=[])
    s.ev("storage_ready")
    s.ev("message", conn="c1", message=m("start", files=[{"offset": 0}]))
    for chunk in range(17):
        s.ev("piece", conn="c1", file=0, chunk=chunk, offset=0, size=MiB)
        step = s.ev("message", conn="c1", message=m("chunk", file=0, chunk=chunk, size=MiB,
                                                    sha256=digest(0, chunk)))
        if chunk < 16:
            s.ev("chunk_hashed", conn="c1", file=0, chunk=chunk, digest=digest(0, chunk))
    s.expect(step, type="send", message={"t": "error", "code": "bad_frame"})
    return s


def receiver_resume() -> Scenario:
    s = receiver("receiver: resume from a partial record of the same transfer", auto_accept=True)
    receiver_to_manifest(s)
    step = s.ev("records_loaded", records=[record(0, 2), record(1, 0)])
    s.expect(step, type="prepare_storage", records=[f"{TRANSFER}/0", f"{TRANSFER}/1"])
    step = s.ev("storage_ready")
    s.expect(step, type="send", message={"t": "accept", "files": [
        {"offset": 2 * MiB, "prefix": file_hex(0, 2)}, {"offset": 0}]})
    step = s.ev("message", conn="c1", message=m("start", files=[{"offset": 2 * MiB}, {"offset": 0}]))
    s.expect(step, type="progress", held=2 * MiB)
    step = receive_chunk(s, 0, 2)
    s.expect(step, type="write_chunk", file=0, chunk=2, position=2 * MiB)
    s.never.append({"type": "reset_file"})
    return s


def receiver_try_again() -> Scenario:
    s = receiver("receiver: a new machine for the transfer the user accepted (Try again) resumes unasked",
                 accepted=TRANSFER)
    receiver_to_manifest(s)
    step = s.ev("records_loaded", records=[record(0, 2), record(1, 0)])
    s.expect(step, type="status", state="receiving", reconnected=True)
    s.expect(step, type="send", message={"t": "accept", "files": [
        {"offset": 2 * MiB, "prefix": file_hex(0, 2)}, {"offset": 0}]})
    s.never.append({"type": "ask_accept"})
    s.never.append({"type": "prepare_storage"})
    return s


def start_zero_over_complete() -> Scenario:
    s = receiver("receiver: start at 0 over a complete record of this transfer rewrites it",
                 auto_accept=True)
    receiver_to_manifest(s)
    s.ev("records_loaded", records=[record(0, 3, complete=True), record(1, 1, complete=True)])
    step = s.ev("storage_ready")
    s.expect(step, type="send", message={"t": "accept", "files": [
        {"offset": TWO_FILES[0]["size"], "prefix": file_hex(0, 3)},
        {"offset": 100, "prefix": file_hex(1, 1)}]})
    step = s.ev("message", conn="c1", message=m("start", files=[{"offset": 0}, {"offset": 100}]))
    s.expect(step, type="reset_file", file=0)
    step = receive_chunk(s, 0, 0)
    s.expect(step, type="write_chunk", file=0, chunk=0)
    return s


def cross_transfer_match() -> Scenario:
    s = receiver("receiver: another transfer's complete record is never offered", auto_accept=True)
    receiver_to_manifest(s)
    step = s.ev("records_loaded", records=[record(0, 3, transfer=OTHER_TRANSFER, complete=True),
                                           record(1, 0, transfer=OTHER_TRANSFER)])
    s.expect(step, type="prepare_storage", records=[None, f"{OTHER_TRANSFER}/1"])
    step = s.ev("storage_ready")
    s.expect(step, type="send", message={"t": "accept", "files": [{"offset": 0}, {"offset": 0}]})
    return s


def cross_transfer_partial() -> Scenario:
    s = receiver("receiver: another transfer's partial record of the same name and size is offered",
                 auto_accept=True)
    receiver_to_manifest(s)
    s.ev("records_loaded", records=[record(0, 1, transfer=OTHER_TRANSFER)])
    step = s.ev("storage_ready")
    s.expect(step, type="send", message={"t": "accept", "files": [
        {"offset": MiB, "prefix": file_hex(0, 1)}, {"offset": 0}]})
    return s


def disk_full() -> Scenario:
    s = receiving("receiver: the disk fills up")
    s.ev("message", conn="c1", message=m("start", files=[{"offset": 0}, {"offset": 0}]))
    receive_chunk(s, 0, 0)
    step = s.ev("storage_failed", code="disk_full", message="No space left on device")
    s.expect(step, type="send", message={"t": "error", "code": "disk_full"})
    s.expect(step, type="end", outcome="failed", code="disk_full")
    return s


def receiver_nack() -> Scenario:
    s = receiving("receiver: a corrupt chunk is nacked after earlier acks, stale data dropped")
    s.ev("message", conn="c1", message=m("start", files=[{"offset": 0}, {"offset": 0}]))
    receive_chunk(s, 0, 0)
    step = receive_chunk(s, 0, 1, variant="corrupt")
    s.expect(step, type="drop_chunk", file=0, chunk=1)
    s.never.append({"type": "write_chunk", "chunk": 1, "digest": digest(0, 1, "corrupt")})
    # In flight before the sender saw the nack: dropped.
    step = s.ev("piece", conn="c1", file=0, chunk=2, offset=0, size=256 * 1024)
    s.expect(step, type="drop_piece")
    s.ev("message", conn="c1", message=m("chunk", file=0, chunk=2, size=size_of(0, 2), sha256=digest(0, 2)))
    step = s.ev("chunk_written", conn="c1", file=0, chunk=0)
    s.expect(step, type="send", message={"t": "ack", "file": 0, "chunk": 0})
    s.expect(step, type="send", message={"t": "nack", "file": 0, "chunk": 1})
    step = receive_chunk(s, 0, 1)
    s.expect(step, type="write_chunk", file=0, chunk=1, digest=digest(0, 1))
    return s


def receiver_bad_piece() -> Scenario:
    s = receiving("receiver: a binary frame whose header does not decode is bad_frame")
    s.ev("message", conn="c1", message=m("start", files=[{"offset": 0}, {"offset": 0}]))
    receive_chunk(s, 0, 0)
    s.ev("piece", conn="c1", file=0, chunk=1, offset=0, size=256 * 1024)
    step = s.ev("bad_piece", conn="c1", detail="bad magic")
    s.expect(step, type="send", conn="c1", message={"t": "error", "code": "bad_frame"})
    s.expect(step, type="close", conn="c1")
    s.expect(step, type="end", outcome="failed", code="bad_frame")
    s.never.append({"type": "restart"})
    return s


def receiver_keepalive_and_gone() -> Scenario:
    s = receiving("receiver: silence loses the connection; it asks again, less and less often, "
                  "and gives up 10 minutes after the last progress")
    s.ev("message", conn="c1", message=m("start", files=[{"offset": 0}, {"offset": 0}]))
    last = s.at
    step = s.ev("tick", at=s.at + 15)
    s.expect(step, type="send", message={"t": "ping"})
    s.ev("tick", at=s.at + 15)
    step = s.ev("tick", at=s.at + 15)
    s.expect(step, type="close", conn="c1")
    s.expect(step, type="restart", to="S")
    step = s.ev("tick", at=s.at + 1)
    s.expect(step, type="restart", to="S")  # after 1 s, then 2, 4, 8, 16, 30, 30, ...
    restarts_from = step
    while s.at < last + 590:
        s.ev("tick", at=s.at + 10)
    step = s.ev("tick", at=last + 600)
    s.expect(step, type="end", outcome="failed", code="gave_up")
    s.never.append({"type": "end", "code": "sender_gone"})
    del restarts_from
    return s


def receiver_never_connects() -> Scenario:
    s = receiver("receiver: never connected and no relay: gives up 50 s after the first attempt",
                 auto_accept=True)
    s.ev("peers", peers=[{"peer": "S", "role": "sender"}], rejoin=False)
    step = s.offer("o1")
    s.expect(step, type="answer", conn="c1")
    step = s.ev("connection_lost", at=8, conn="c1", reason="ICE failed", relay="none")
    s.expect(step, type="restart", to="S")
    s.ev("tick", at=9)
    s.at = 9.5
    step = s.offer("o2")
    s.expect(step, type="answer", conn="c2")
    step = s.ev("tick", at=39.5)  # open_timeout: this one never opened either
    s.expect(step, type="close", conn="c2")
    s.ev("tick", at=45)
    step = s.ev("tick", at=50)
    s.expect(step, type="end", outcome="failed", code="no_path")
    return s


def receiver_relay_failed() -> Scenario:
    s = receiver("receiver: never connected, the relay did not answer: says so 50 s after the first attempt",
                 auto_accept=True)
    s.ev("peers", peers=[{"peer": "S", "role": "sender"}], rejoin=False)
    s.offer("o1")
    s.ev("connection_lost", at=20, conn="c1", reason="ICE failed", relay="failed")
    step = s.ev("tick", at=50)
    s.expect(step, type="end", outcome="failed", code="relay_failed")
    return s


def receiver_waits_for_absent_sender() -> Scenario:
    s = receiver("receiver: the sender is not in the room: the CLI waits 60 s for it")
    step = s.ev("peers", peers=[], rejoin=False)
    s.expect(step, type="status", state="waiting")
    step = s.ev("tick", at=60)
    s.expect(step, type="end", outcome="failed", code="sender_gone")
    return s


def sender_receiver_never_connects() -> Scenario:
    s = sender("sender: a receiver no connection reaches is reported 50 s after the first offer, once")
    s.ev("peers", peers=[{"peer": "R1", "role": "receiver"}])
    step = s.ev("connection_lost", at=10, conn="c1", reason="ICE failed", relay="none")
    s.expect(step, type="receiver", state="lost")
    step = s.ev("restart", at=11, peer="R1")
    s.expect(step, type="open_connection", conn="c2")
    step = s.ev("tick", at=50)
    s.expect(step, type="close", conn="c2")
    s.expect(step, type="receiver", state="failed", code="no_path")
    s.ev("tick", at=120)
    return s


def sender_try_again() -> Scenario:
    s = sender("sender: the user's Try again offers a receiver no connection reached anew")
    s.ev("peers", peers=[{"peer": "R1", "role": "receiver"}])
    step = s.ev("tick", at=50)
    s.expect(step, type="receiver", state="failed", code="no_path")
    step = s.ev("retry", at=60, peer="R1")
    s.expect(step, type="open_connection", conn="c2", peer="R1")
    s.expect(step, type="receiver", state="connecting")
    step = s.ev("tick", at=110)
    s.expect(step, type="close", conn="c2")
    s.expect(step, type="receiver", state="failed", code="no_path")
    return s


def receiver_long_session() -> Scenario:
    s = receiving("receiver: signaling traffic during a long session never ends it")
    s.ev("message", conn="c1", message=m("start", files=[{"offset": 0}, {"offset": 0}]))
    for minute in range(1, 11):
        at = s.at + 60
        s.ev("piece", at=at, conn="c1", file=0, chunk=0, offset=(minute - 1) * 1024, size=1024)
        s.ev("peers", peers=[{"peer": "S", "role": "sender"}], rejoin=True)  # a signaling reconnect
        s.ev("peer_joined", peer="OTHER", role="receiver")
        s.ev("tick")
    s.never.append({"type": "end"})
    s.never.append({"type": "restart"})
    s.never.append({"type": "close"})
    return s


def receiver_rejoin() -> Scenario:
    s = receiver("receiver: back in the room without a connection, it asks for one", auto_accept=True)
    step = s.ev("peers", peers=[{"peer": "S", "role": "sender"}], rejoin=True)
    s.expect(step, type="restart", to="S")
    return s


def receiver_new_offer_replaces() -> Scenario:
    s = receiving("receiver: a new offer replaces the connection it has")
    step = s.offer("offer-2")
    s.expect(step, type="close", conn="c1")
    s.expect(step, type="answer", conn="c2", session="offer-2")
    return s


def receiver_decline() -> Scenario:
    s = receiver("receiver: the user declines")
    receiver_to_manifest(s)
    s.ev("records_loaded", records=[])
    step = s.ev("user_declined")
    s.expect(step, type="send", message={"t": "decline"})
    s.expect(step, type="end", outcome="declined")
    return s


def receiver_room_gone() -> Scenario:
    s = receiving("receiver: the room ends mid-transfer; the transfer goes on until its connection ends")
    s.ev("message", conn="c1", message=m("start", files=[{"offset": 0}, {"offset": 0}]))
    s.ev("room_gone", reason="This link has expired.")
    receive_chunk(s, 0, 0)
    step = s.ev("connection_lost", conn="c1", reason="closed")
    s.expect(step, type="end", outcome="failed", code="room_closed")
    s.never.append({"type": "restart"})
    return s


# -- lanes (protocol v1.1, §8.7) ------------------------------------------------------------

def lanes_sender(name: str, lanes: int = 2, fixed: bool = True, accept_lanes: int | None = 4,
                 timing: dict[str, Any] | None = None) -> Scenario:
    """A v1.1 sender, offered and accepted (the receiver offers `accept_lanes`)."""
    s = sender(name, lanes=lanes, fixed_lanes=fixed, timing=timing)
    sender_to_offered(s)
    accept: dict[str, Any] = {"transfer": TRANSFER, "files": [{"offset": 0}, {"offset": 0}]}
    if accept_lanes is not None:
        accept["lanes"] = accept_lanes
    s.ev("message", conn="c1", message=m("accept", **accept))
    return s


def join_lane(s: Scenario, conn: str = "c2", lane: int = 1) -> int:
    s.ev("channel_open", at=s.at + 0.3, conn=conn, nonce=NONCE_S)
    s.ev("message", conn=conn, message=m("auth", nonce=NONCE_R2, mac=MAC_R))
    step = s.ev("proof_checked", conn=conn, ok=True, mac=MAC_S)
    s.expect(step, type="send", conn=conn, message={"t": "join", "transfer": TRANSFER, "lane": lane})
    return step


def lanes_two_connections() -> Scenario:
    s = lanes_sender("sender v1.1: two lanes agreed; chunks go to whichever has room; file-done waits "
                     "for the acks; done and complete on the first")
    s.must.append((len(s.steps), {"type": "send", "message": {"t": "start", "lanes": 2}}))
    s.must.append((len(s.steps), {"type": "open_connection", "conn": "c2", "lane": 1}))
    send_chunk(s, 0, 0)
    send_chunk(s, 0, 1)
    step = join_lane(s)
    s.expect(step, type="read_chunk", conn="c2", file=0, chunk=2)
    step = s.ev("chunk_read", conn="c2", file=0, chunk=2, size=size_of(0, 2), digest=digest(0, 2))
    s.expect(step, type="send_pieces", conn="c2", file=0, chunk=2)
    s.expect(step, type="read_chunk", conn="c2", file=1, chunk=0)
    s.ev("pieces_sent", conn="c1", file=0, chunk=0)
    s.ev("pieces_sent", conn="c2", file=0, chunk=2)
    send_chunk(s, 1, 0, conn="c2")
    s.ev("pieces_sent", conn="c1", file=0, chunk=1)
    step = s.ev("pieces_sent", conn="c2", file=1, chunk=0)
    s.expect(step, type="send", conn="c2", message={"t": "chunk", "file": 1, "chunk": 0})
    step = s.ev("message", conn="c2", message=m("ack", file=0, chunk=2))  # acks cross lanes
    s.ev("message", conn="c1", message=m("ack", file=0, chunk=0))
    step = s.ev("message", conn="c1", message=m("ack", file=0, chunk=1))
    s.expect(step, type="send", conn="c1", message={"t": "file-done", "file": 0, "digest": file_hex(0, 3)})
    step = s.ev("message", conn="c2", message=m("ack", file=1, chunk=0))
    s.expect(step, type="send", conn="c1", message={"t": "file-done", "file": 1})
    s.expect(step, type="send", conn="c1", message={"t": "done"})
    step = s.ev("message", conn="c1", message=m("complete", digests=[file_hex(0, 3), file_hex(1, 1)]))
    s.expect(step, type="close", conn="c1")
    s.expect(step, type="close", conn="c2")
    s.expect(step, type="receiver", state="done")
    s.never.append({"type": "send", "conn": "c2", "message": {"t": "done"}})
    return s


def lanes_nack_on_one_lane() -> Scenario:
    s = lanes_sender("sender v1.1: a nack on one lane rewinds that lane only")
    send_chunk(s, 0, 0)
    send_chunk(s, 0, 1)
    join_lane(s)
    s.ev("chunk_read", conn="c2", file=0, chunk=2, size=size_of(0, 2), digest=digest(0, 2))
    s.ev("pieces_sent", conn="c1", file=0, chunk=0)
    s.ev("pieces_sent", conn="c2", file=0, chunk=2)
    step = s.ev("message", conn="c2", message=m("nack", file=0, chunk=2))
    s.expect(step, type="read_chunk", conn="c2", file=0, chunk=2)  # the same chunk, the same lane
    step = s.ev("message", conn="c1", message=m("ack", file=0, chunk=0))
    s.ev("chunk_read", conn="c2", file=0, chunk=2, size=size_of(0, 2), digest=digest(0, 2))
    step = s.ev("pieces_sent", conn="c2", file=0, chunk=2)
    s.expect(step, type="send", conn="c2", message={"t": "chunk", "file": 0, "chunk": 2})
    s.never.append({"type": "stop_pieces", "conn": "c1"})
    return s


def lanes_lane_lost() -> Scenario:
    s = lanes_sender("sender v1.1: a lane that drops hands its unacknowledged chunks to the others")
    send_chunk(s, 0, 0)
    send_chunk(s, 0, 1)
    join_lane(s)
    s.ev("chunk_read", conn="c2", file=0, chunk=2, size=size_of(0, 2), digest=digest(0, 2))
    s.ev("pieces_sent", conn="c2", file=0, chunk=2)  # chunk 2 sent on the lane, not acked
    step = s.ev("connection_lost", conn="c2", reason="ICE failed")
    s.expect(step, type="close", conn="c2")
    step = s.ev("pieces_sent", conn="c1", file=0, chunk=0)
    s.expect(step, type="read_chunk", conn="c1", file=0, chunk=2)  # the lost lane's chunk, first
    s.ev("message", conn="c1", message=m("ack", file=0, chunk=0))
    s.never.append({"type": "receiver", "state": "lost"})
    return s


def acked_chunks(s: Scenario, chunks: range, at: float, conn: str = "c1") -> None:
    """Chunks of file 0 read, sent and acknowledged on `conn`, the last ack at `at`."""
    for chunk in chunks:
        send_chunk(s, 0, chunk, conn=conn, files=BIG_FILE)
        s.ev("pieces_sent", conn=conn, file=0, chunk=chunk)
    for chunk in chunks:
        s.ev("message", at=at, conn=conn, message=m("ack", file=0, chunk=chunk))


BIG_FILE = [{"name": "disk.img", "size": 64 * MiB, "type": "application/octet-stream"}]


def growing_sender(name: str, grow_chunks: int) -> Scenario:
    """A v1.1 sender of one 64 MiB file that grows up to 4 lanes, judging every 5 s."""
    s = sender(name, files=BIG_FILE, lanes=4, timing={"grow_interval": 5, "grow_chunks": grow_chunks})
    sender_to_offered(s)
    s.ev("message", conn="c1", message=m("accept", transfer=TRANSFER, files=[{"offset": 0}], lanes=4))
    return s


def lanes_growing() -> Scenario:
    s = growing_sender("sender v1.1: adds a lane while the last one made it faster, then stops", 1)
    acked_chunks(s, range(2), at=2)  # 2 MiB in the first 5 s on one lane
    step = s.ev("tick", at=5.6)
    s.expect(step, type="open_connection", conn="c2", lane=1)
    acked_chunks(s, range(2, 3), at=8)  # 1 MiB in the next 5 s: the second lane made it slower
    step = s.ev("tick", at=10.6)
    s.expect_none(step, type="open_connection")
    acked_chunks(s, range(3, 8), at=12)
    s.ev("tick", at=15.6)  # however fast it goes now: the growth has stopped
    s.never.append({"type": "open_connection", "conn": "c3"})
    return s


def lanes_growing_while_level() -> Scenario:
    s = growing_sender("sender v1.1: a lane that left the throughput level is followed by another; "
                       "none after one that lowered it", 1)
    acked_chunks(s, range(1), at=1)  # 1 MiB in the first 5.6 s
    step = s.ev("tick", at=5.6)
    s.expect(step, type="open_connection", conn="c2", lane=1)
    acked_chunks(s, range(1, 2), at=7)  # 1 MiB in the next 5 s: level
    step = s.ev("tick", at=10.6)
    s.expect(step, type="open_connection", conn="c3", lane=2)
    step = s.ev("tick", at=15.6)  # nothing acknowledged: not judged yet
    s.expect_none(step, type="open_connection")
    acked_chunks(s, range(2, 3), at=20)
    s.ev("tick", at=20.6)  # 1 MiB in 10 s: slower, no fourth lane
    s.never.append({"type": "open_connection", "conn": "c4"})
    return s


def lanes_growing_waits_for_acks() -> Scenario:
    s = growing_sender("sender v1.1: an interval is judged only once it holds grow_chunks acknowledged "
                       "chunks", 4)
    acked_chunks(s, range(2), at=3)
    step = s.ev("tick", at=5.6)  # two acks are too few to judge by
    s.expect_none(step, type="open_connection")
    acked_chunks(s, range(2, 4), at=9)
    step = s.ev("tick", at=10.6)  # four acks in 10.6 s
    s.expect(step, type="open_connection", conn="c2", lane=1)
    return s


def lanes_growing_from_join() -> Scenario:
    s = growing_sender("sender v1.1: a new lane's interval starts when it joins, not when it was asked "
                       "for", 1)
    acked_chunks(s, range(1), at=1)
    step = s.ev("tick", at=5.6)
    s.expect(step, type="open_connection", conn="c2", lane=1)
    acked_chunks(s, range(1, 5), at=7)  # four acks while the lane is being set up: not its doing
    s.at = 8.0
    join_lane(s)  # joins at 8.3: judged at 13.3
    step = s.ev("tick", at=10.6)
    s.expect_none(step, type="open_connection")
    acked_chunks(s, range(5, 6), at=13)
    step = s.ev("tick", at=13.3)  # 1 MiB in 5 s against 1 MiB in 5.6 s
    s.expect(step, type="open_connection", conn="c3", lane=2)
    return s


def lanes_v1_receiver() -> Scenario:
    s = lanes_sender("sender v1.1 to a v1 receiver: one connection, v1 rules", accept_lanes=None)
    s.must.append((len(s.steps), {"type": "send", "message": {"t": "start", "files": [{"offset": 0},
                                                                                       {"offset": 0}]}}))
    s.never.append({"type": "open_connection", "conn": "c2"})
    send_chunk(s, 0, 0)
    s.expect(len(s.steps), type="send_pieces", conn="c1", file=0, chunk=0)
    s.expect(len(s.steps), type="read_chunk", conn="c1", file=0, chunk=1)
    return s


def lanes_receiver(name: str) -> Scenario:
    """A v1.1 receiver (4 lanes) to a v1.1 sender (2): offered, accepted, started."""
    s = receiver(name, auto_accept=True, lanes=4)
    s.ev("peers", peers=[{"peer": "S", "role": "sender"}], rejoin=False)
    s.offer("offer-1")
    s.ev("channel_open", conn="c1")
    s.ev("message", conn="c1", message=m("hello", v=1, nonce=NONCE_S, password=False, lanes=2))
    s.ev("proof_made", conn="c1", nonce=NONCE_R, mac=MAC_R)
    s.ev("message", conn="c1", message=m("auth-ok", mac=MAC_S))
    s.ev("sender_proof_checked", conn="c1", ok=True)
    s.ev("message", conn="c1", message=manifest())
    s.ev("records_loaded", records=[])
    step = s.ev("storage_ready")
    s.expect(step, type="send", message={"t": "accept", "lanes": 4})
    s.ev("message", conn="c1", message=m("start", files=[{"offset": 0}, {"offset": 0}], lanes=2))
    return s


def receiver_join_lane(s: Scenario, conn: str = "c2") -> None:
    s.steps.append({"at": s.at, "type": "offer", "from": "S", "session": "lane-1", "lane": 1})
    s.expect(len(s.steps), type="answer", conn=conn, session="lane-1")
    s.ev("channel_open", conn=conn)
    s.ev("message", conn=conn, message=m("hello", v=1, nonce=NONCE_S, password=False, lanes=2))
    s.ev("proof_made", conn=conn, nonce=NONCE_R2, mac=MAC_R)
    s.ev("message", conn=conn, message=m("auth-ok", mac=MAC_S))
    s.ev("sender_proof_checked", conn=conn, ok=True)
    s.ev("message", conn=conn, message=m("join", transfer=TRANSFER, lane=1))


def lanes_receiving() -> Scenario:
    s = lanes_receiver("receiver v1.1: chunks on two lanes in any order, acks on the lane they "
                       "came on, file-done checked once every chunk is in")
    receiver_join_lane(s)
    step = receive_chunk(s, 0, 2, conn="c2")
    s.expect(step, type="write_chunk", conn="c2", file=0, chunk=2, position=2 * MiB)
    receive_chunk(s, 0, 0)
    step = s.ev("chunk_written", conn="c2", file=0, chunk=2)
    s.expect(step, type="send", conn="c2", message={"t": "ack", "file": 0, "chunk": 2})
    s.ev("chunk_written", conn="c1", file=0, chunk=0)
    s.ev("message", conn="c1", message=m("file-done", file=0, digest=file_hex(0, 3)))  # before chunk 1
    receive_chunk(s, 0, 1)
    step = s.ev("chunk_written", conn="c1", file=0, chunk=1)
    s.expect(step, type="send", conn="c1", message={"t": "ack", "file": 0, "chunk": 1})
    s.expect(step, type="finish_file", file=0, digest=file_hex(0, 3))
    receive_chunk(s, 1, 0, conn="c2")
    s.ev("chunk_written", conn="c2", file=1, chunk=0)
    s.ev("message", conn="c1", message=m("file-done", file=1, digest=file_hex(1, 1)))
    s.ev("message", conn="c1", message=m("done"))
    s.ev("file_finished", file=0)
    step = s.ev("file_finished", file=1)
    s.expect(step, type="send", conn="c1", message={"t": "complete"})
    s.expect(step, type="end", outcome="done")
    return s


def lanes_chunk_on_two_lanes() -> Scenario:
    s = lanes_receiver("receiver v1.1: a chunk already coming on one lane may not start on another")
    receiver_join_lane(s)
    s.ev("piece", conn="c1", file=0, chunk=1, offset=0, size=256 * 1024)
    step = s.ev("piece", conn="c2", file=0, chunk=1, offset=0, size=256 * 1024)
    s.expect(step, type="send", conn="c2", message={"t": "error", "code": "bad_frame"})
    return s


def lanes_duplicate_after_lost_lane() -> Scenario:
    s = lanes_receiver("receiver v1.1: a chunk written on a lane that dropped before its ack may "
                       "come again on another, and is acknowledged again")
    receiver_join_lane(s)
    receive_chunk(s, 0, 2, conn="c2")
    step = s.ev("connection_lost", conn="c2", reason="ICE failed")
    s.expect(step, type="close", conn="c2")
    s.ev("chunk_written", conn="c2", file=0, chunk=2)  # the write finishes; no lane to ack on
    step = receive_chunk(s, 0, 2)
    s.expect(step, type="write_chunk", conn="c1", file=0, chunk=2)
    step = s.ev("chunk_written", conn="c1", file=0, chunk=2)
    s.expect(step, type="send", conn="c1", message={"t": "ack", "file": 0, "chunk": 2})
    s.never.append({"type": "restart"})
    s.never.append({"type": "end"})
    return s


def lanes_join_before_start() -> Scenario:
    s = receiver("receiver v1.1: a lane that would join before the transfer started goes alone",
                 auto_accept=True, lanes=4)
    s.ev("peers", peers=[{"peer": "S", "role": "sender"}], rejoin=False)
    s.offer("offer-1")
    s.ev("channel_open", conn="c1")
    s.ev("message", conn="c1", message=m("hello", v=1, nonce=NONCE_S, password=False, lanes=2))
    s.ev("proof_made", conn="c1", nonce=NONCE_R, mac=MAC_R)
    s.ev("message", conn="c1", message=m("auth-ok", mac=MAC_S))
    s.ev("sender_proof_checked", conn="c1", ok=True)
    s.ev("message", conn="c1", message=manifest())
    s.ev("records_loaded", records=[])
    s.ev("storage_ready")  # accept sent: the first connection waits for start
    receiver_join_lane(s)
    s.must.append((len(s.steps), {"type": "close", "conn": "c2"}))
    s.never.append({"type": "end"})
    s.never.append({"type": "close", "conn": "c1"})
    return s


def lanes_v1_sender() -> Scenario:
    s = receiver("receiver v1.1 from a v1 sender: no lanes offered, v1 rules", auto_accept=True, lanes=4)
    receiver_to_manifest(s)
    s.ev("records_loaded", records=[])
    step = s.ev("storage_ready")
    s.expect(step, type="send", message={"t": "accept", "transfer": TRANSFER,
                                         "files": [{"offset": 0}, {"offset": 0}]})
    s.never.append({"type": "send", "message": {"t": "accept", "lanes": 4}})
    return s


SCENARIOS: list[Callable[[], Scenario]] = [
    happy_sender, nack_while_draining, nack_after_ack, third_nack, guessing_cap,
    guess_on_open_connection_after_cap, sender_resume, sender_keepalive, sender_decline,
    sender_one_time, sender_reconnect_keeps_connection, sender_room_gone_mid_transfer,
    sender_source_changed, sender_receiver_never_connects, sender_binary_from_receiver,
    happy_receiver, password_downgrade, weak_kdf, wrong_password_then_right, window_overrun,
    receiver_resume, start_zero_over_complete, cross_transfer_match, cross_transfer_partial,
    disk_full, receiver_nack, receiver_keepalive_and_gone, receiver_long_session, receiver_rejoin,
    receiver_new_offer_replaces, receiver_decline, receiver_room_gone, receiver_never_connects,
    receiver_relay_failed, receiver_waits_for_absent_sender, receiver_bad_piece, receiver_try_again,
    sender_try_again,
    lanes_two_connections, lanes_nack_on_one_lane, lanes_lane_lost, lanes_growing, lanes_growing_while_level,
    lanes_v1_receiver,
    lanes_receiving, lanes_chunk_on_two_lanes, lanes_duplicate_after_lost_lane, lanes_join_before_start,
    lanes_v1_sender, lanes_growing_waits_for_acks, lanes_growing_from_join,
]


def build(scenario: Scenario) -> dict[str, Any]:
    trace = {"name": scenario.name, "machine": scenario.machine, "config": scenario.config}
    subject = machine(trace)
    steps = []
    for number, event in enumerate(scenario.steps, 1):
        actions = [action_out(a) for a in subject.handle(event_in(event))]
        steps.append({"event": event, "actions": actions})
        for at, want in scenario.must:
            if at == number and not any(matches(a, want) for a in actions):
                raise AssertionError(
                    f"{scenario.name}, step {number} {event['type']}: no {want} in {actions}")
        for at, want in scenario.absent:
            if at == number and any(matches(a, want) for a in actions):
                raise AssertionError(f"{scenario.name}, step {number}: {want} must not be here: {actions}")
        for want in scenario.never:
            if any(matches(a, want) for a in actions):
                raise AssertionError(f"{scenario.name}, step {number}: {want} must not happen: {actions}")
    return {**trace, "steps": steps}


def main() -> None:
    traces = [build(make()) for make in SCENARIOS]
    document = {
        "about": "Session machine traces (docs/protocol.md §14): for each trace, feed every event to a "
                 "fresh machine and expect exactly these actions, in order. Written by "
                 "tests/traces/build.py; checked by tests/test_protocol_traces.py (Python) and "
                 "tests/js/run_traces.mjs (JavaScript).",
        "traces": traces,
    }
    TRACES.write_text(json.dumps(document, indent=1, ensure_ascii=True) + "\n", "utf-8")
    print(f"wrote {len(traces)} traces, {sum(len(t['steps']) for t in traces)} steps to {TRACES}")


if __name__ == "__main__":
    main()
