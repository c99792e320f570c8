"""Edge cases of the pure transfer core: links, authentication, frames, chunk
bookkeeping, messages and file names. (Byte-exact formats: test_protocol_vectors.py.)"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator

import pytest

from peerbeam.transfer import (
    CHUNK_SIZE,
    MAX_AUTH_ATTEMPTS,
    Accept,
    AcceptedFile,
    AuthFailed,
    ChunkAssembler,
    ChunkEnd,
    ErrorMessage,
    FileDone,
    FileEntry,
    FrameError,
    Handshake,
    Hello,
    IntegrityError,
    LinkError,
    Manifest,
    ManifestError,
    ProtocolError,
    SendWindow,
    Start,
    check_resume_offset,
    chunk_count,
    chunk_digest,
    chunk_length,
    decode_piece,
    derive_auth_key,
    encode_message,
    encode_piece,
    file_digest,
    iter_pieces,
    make_link,
    new_link_key,
    new_nonce,
    new_transfer_id,
    parse_link,
    parse_message,
    piece_payload_limit,
    sanitize_filename,
    sdp_fingerprints,
)
from peerbeam.transfer.auth import Role
from peerbeam.transfer.chunks import chunk_digests_of
from peerbeam.transfer.errors import BAD_FRAME, BAD_LINK, BAD_SDP, INTERNAL
from peerbeam.transfer.filenames import SAVE_NAME_MAX_BYTES

ROOM = "mcWZ2DqXjP8"


def _sdp(*fingerprint_lines: str) -> str:
    lines = ["v=0", "o=- 1 1 IN IP4 0.0.0.0", "s=-", "t=0 0", "m=application 9 UDP/DTLS/SCTP x"]
    lines += [f"a=fingerprint:{line}" for line in fingerprint_lines]
    return "\r\n".join(lines) + "\r\n"


SENDER_SDP = _sdp("sha-256 " + ":".join(["AA"] * 32), "sha-384 " + ":".join(["AB"] * 48))
RECEIVER_SDP = _sdp("sha-256 " + ":".join(["BB"] * 32))
EVIL_SDP = _sdp("sha-256 " + ":".join(["EE"] * 32))


# --- links ------------------------------------------------------------------------------


def test_link_round_trip_with_random_keys() -> None:
    for _ in range(50):
        key = new_link_key()
        link = make_link("https://peerbeam.example", ROOM, key)
        assert parse_link(link) == ("https://peerbeam.example/", ROOM, key, False)


@pytest.mark.parametrize(
    ("base", "room", "key"),
    [
        ("https://x.example/#frag", ROOM, bytes(16)),
        ("mailto:x@example.org", ROOM, bytes(16)),
        ("https://x.example/", "has.dot", bytes(16)),
        ("https://x.example/", "", bytes(16)),
        ("https://x.example/", ROOM, bytes(15)),
    ],
)
def test_make_link_refuses_bad_parts(base: str, room: str, key: bytes) -> None:
    with pytest.raises(LinkError) as info:
        make_link(base, room, key)
    assert info.value.code == BAD_LINK


@pytest.mark.parametrize("bad", [None, 42, "", "   ", "https://x.example/#", "not a url"])
def test_parse_link_refuses_garbage(bad: object) -> None:
    with pytest.raises(ValueError) as info:  # LinkError is a ValueError ...
        parse_link(bad)  # type: ignore[arg-type]
    assert getattr(info.value, "code", None) == BAD_LINK  # ... with a stable code


def test_cut_off_link_says_so() -> None:
    link = make_link("https://x.example/", ROOM, bytes(16))
    with pytest.raises(LinkError, match="cut off"):
        parse_link(link[:-3])


# --- authentication ---------------------------------------------------------------------


class Side:
    """What one peer knows during the handshake: its own SDP and the one it received."""

    def __init__(self, key: bytes, sender_sdp: str, receiver_sdp: str) -> None:
        self.key = key
        self.sender_fps = sdp_fingerprints(sender_sdp)
        self.receiver_fps = sdp_fingerprints(receiver_sdp)

    def handshake(self, s_nonce: bytes, r_nonce: bytes) -> Handshake:
        return Handshake(ROOM, self.sender_fps, self.receiver_fps, s_nonce, r_nonce)

    def mac(self, role: Role, s_nonce: bytes, r_nonce: bytes) -> bytes:
        return self.handshake(s_nonce, r_nonce).mac(self.key, role)

    def verify(self, mac: bytes, role: Role, s_nonce: bytes, r_nonce: bytes) -> bool:
        return self.handshake(s_nonce, r_nonce).verify(self.key, role, mac)


LINK_KEY = bytes(range(16))
KEY = derive_auth_key(LINK_KEY, ROOM)


def test_honest_handshake_verifies_both_ways() -> None:
    sender, receiver = Side(KEY, SENDER_SDP, RECEIVER_SDP), Side(KEY, SENDER_SDP, RECEIVER_SDP)
    s_nonce, r_nonce = new_nonce(), new_nonce()
    assert sender.verify(receiver.mac("receiver", s_nonce, r_nonce), "receiver", s_nonce, r_nonce)
    assert receiver.verify(sender.mac("sender", s_nonce, r_nonce), "sender", s_nonce, r_nonce)


def test_signaling_man_in_the_middle_is_detected() -> None:
    # The server gave each peer the attacker's SDP instead of the other peer's.
    sender = Side(KEY, SENDER_SDP, EVIL_SDP)
    receiver = Side(KEY, EVIL_SDP, RECEIVER_SDP)
    s_nonce, r_nonce = new_nonce(), new_nonce()
    assert not sender.verify(
        receiver.mac("receiver", s_nonce, r_nonce), "receiver", s_nonce, r_nonce
    )
    assert not receiver.verify(sender.mac("sender", s_nonce, r_nonce), "sender", s_nonce, r_nonce)


def test_appended_fingerprint_line_is_detected() -> None:
    # Keeping the genuine line first and adding its own (which libwebrtc would use)
    # must not get an attacker past the MAC.
    tampered = SENDER_SDP + "a=fingerprint:sha-256 " + ":".join(["EE"] * 32) + "\r\n"
    sender = Side(KEY, SENDER_SDP, RECEIVER_SDP)
    receiver = Side(KEY, tampered, RECEIVER_SDP)
    s_nonce, r_nonce = new_nonce(), new_nonce()
    assert not sender.verify(
        receiver.mac("receiver", s_nonce, r_nonce), "receiver", s_nonce, r_nonce
    )


def test_fingerprint_order_and_case_do_not_matter() -> None:
    shuffled = _sdp("SHA-384 " + ":".join(["ab"] * 48), "sha-256 " + ":".join(["aa"] * 32))
    assert sdp_fingerprints(shuffled) == sdp_fingerprints(SENDER_SDP)


def test_sdp_without_fingerprint_is_refused() -> None:
    with pytest.raises(ProtocolError) as info:
        sdp_fingerprints("v=0\r\n")
    assert info.value.code == BAD_SDP
    with pytest.raises(ProtocolError):
        sdp_fingerprints(_sdp("sha-256 \ufb00:\ufb00"))  # 'ﬀ'.upper() == 'FF'


def test_tampered_mac_wrong_role_and_replay_fail() -> None:
    side = Side(KEY, SENDER_SDP, RECEIVER_SDP)
    s_nonce, r_nonce = new_nonce(), new_nonce()
    mac = side.mac("receiver", s_nonce, r_nonce)
    for bit in (0, 100, 255):
        flipped = bytearray(mac)
        flipped[bit // 8] ^= 1 << (bit % 8)
        assert not side.verify(bytes(flipped), "receiver", s_nonce, r_nonce)
    assert not side.verify(mac, "sender", s_nonce, r_nonce)  # reflection
    assert not side.verify(mac, "receiver", new_nonce(), r_nonce)  # replay, new connection
    assert not side.verify(mac[:31], "receiver", s_nonce, r_nonce)


def test_wrong_password_fails_and_retry_with_right_one_succeeds() -> None:
    sender_key = derive_auth_key(LINK_KEY, ROOM, "hunter2", 1000)
    sender = Side(sender_key, SENDER_SDP, RECEIVER_SDP)
    s_nonce = new_nonce()
    attempts = ["hunter3", "Hunter2", "hunter2"]
    for left, guess in zip(range(MAX_AUTH_ATTEMPTS - 1, -1, -1), attempts, strict=False):
        receiver = Side(derive_auth_key(LINK_KEY, ROOM, guess, 1000), SENDER_SDP, RECEIVER_SDP)
        r_nonce = new_nonce()  # fresh per attempt
        ok = sender.verify(receiver.mac("receiver", s_nonce, r_nonce), "receiver", s_nonce, r_nonce)
        assert ok == (guess == "hunter2")
        if not ok:
            failed = parse_message(encode_message(AuthFailed(retry=left > 0, remaining=left)))
            assert isinstance(failed, AuthFailed) and failed.retry


def test_password_needs_the_link_key_and_is_normalised() -> None:
    decomposed = derive_auth_key(LINK_KEY, ROOM, "Gru\u0308\u00dfe", 1000)
    assert decomposed == derive_auth_key(LINK_KEY, ROOM, "Gr\u00fc\u00dfe", 1000)
    assert decomposed != derive_auth_key(LINK_KEY, ROOM, None)
    assert decomposed != derive_auth_key(bytes(16), ROOM, "Gr\u00fc\u00dfe", 1000)
    assert decomposed != derive_auth_key(LINK_KEY, "otherroom", "Gr\u00fc\u00dfe", 1000)
    with pytest.raises(ValueError):
        derive_auth_key(LINK_KEY, ROOM, "")
    with pytest.raises(ValueError):
        derive_auth_key(LINK_KEY[:15], ROOM)


def test_hello_bounds_iterations() -> None:
    with pytest.raises(ValueError):
        Hello(new_nonce(), True, 1000)
    with pytest.raises(ValueError):
        Hello(new_nonce(), True, None)
    with pytest.raises(ValueError):
        Hello(new_nonce(), False, 600_000)
    hello = parse_message(encode_message(Hello(new_nonce(), True, 600_000)))
    assert isinstance(hello, Hello) and hello.iterations == 600_000


# --- frames -----------------------------------------------------------------------------


def test_garbled_frames_are_refused_never_crash() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        blob = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 40)))
        try:
            decode_piece(blob)
        except FrameError as exc:
            assert exc.code == BAD_FRAME and str(exc)


def test_frame_size_limits() -> None:
    assert decode_piece(encode_piece(0, 0, 0, b"x" * 262144)).payload.nbytes == 262144
    with pytest.raises(ValueError):
        encode_piece(0, 0, 0, b"x" * 262145)
    with pytest.raises(ValueError):
        encode_piece(0, 0, 0, b"")
    with pytest.raises(ValueError):
        encode_piece(2**32, 0, 0, b"x")
    with pytest.raises(FrameError, match="exceeds"):
        decode_piece(encode_piece(0, 0, 0, b"x")[:16] + bytes(262145))


def test_iter_pieces_covers_a_chunk_exactly() -> None:
    data = os.urandom(CHUNK_SIZE)
    for limit in (262128, 65520, 262144, 1000):
        pieces = [decode_piece(f) for f in iter_pieces(3, 9, data, limit)]
        assert all(p.payload.nbytes <= limit for p in pieces)
        assert [p.offset for p in pieces] == list(range(0, CHUNK_SIZE, limit))
        assert b"".join(bytes(p.payload) for p in pieces) == data


def test_piece_payload_limit_refuses_tiny_peers() -> None:
    assert piece_payload_limit(float("inf")) == 262144
    with pytest.raises(ValueError):
        piece_payload_limit(512)


# --- chunks: a whole transfer through SendWindow and ChunkAssembler ---------------------


def _chunks(data: bytes) -> Iterator[tuple[int, bytes]]:
    for index in range(chunk_count(len(data))):
        yield index, data[index * CHUNK_SIZE : (index + 1) * CHUNK_SIZE]


def _send_file(file: int, data: bytes, start: int = 0) -> list[object]:
    """The sender's stream for one file: pieces, chunk ends, file-done."""
    stream: list[object] = []
    for index, chunk in _chunks(data):
        if index < start:
            continue
        stream += [decode_piece(f) for f in iter_pieces(file, index, chunk, 262128)]
        stream.append(ChunkEnd(file, index, len(chunk), chunk_digest(chunk)))
    stream.append(FileDone(file, file_digest(chunk_digests_of(data))))
    return stream


def _receive(assembler: ChunkAssembler, stream: list[object], disk: dict[int, bytearray]
             ) -> list[tuple[str, int, int]]:
    """Feed a stream; write verified chunks to `disk`; return the acks/nacks sent."""
    answers: list[tuple[str, int, int]] = []
    for item in stream:
        if isinstance(item, ChunkEnd):
            got = assembler.end_chunk(item.file, item.chunk, item.size, item.sha256)
            if got is None:
                continue
            if got.ok:
                target = disk.setdefault(got.file, bytearray())
                assert len(target) == got.position  # in order, no holes
                target += got.data
            answers.append(("ack" if got.ok else "nack", got.file, got.chunk))
        elif isinstance(item, FileDone):
            assembler.file_done(item.file, item.digest)
        else:
            assembler.add_piece(item)  # type: ignore[arg-type]
    return answers


FILES = [os.urandom(2 * CHUNK_SIZE + 12345), b"", os.urandom(CHUNK_SIZE)]


def test_whole_transfer_in_order() -> None:
    assembler = ChunkAssembler([len(f) for f in FILES], [0, 0, 0])
    stream = [item for i, data in enumerate(FILES) for item in _send_file(i, data)]
    disk: dict[int, bytearray] = {}
    window = SendWindow()
    for kind, file, chunk in _receive(assembler, stream, disk):
        window.sent(file, chunk)
        assert kind == "ack"
        window.acked(file, chunk)
    assert assembler.finished and assembler.expecting is None
    assert [bytes(disk.get(i, b"")) for i in range(3)] == FILES


def test_corrupt_chunk_is_nacked_and_resent_go_back_n() -> None:
    data = FILES[0]
    assembler = ChunkAssembler([len(data)], [0])
    stream = _send_file(0, data)
    # Corrupt chunk 0's digest as announced; the sender keeps streaming chunk 1, 2 ...
    bad = next(i for i, item in enumerate(stream) if isinstance(item, ChunkEnd))
    end = stream[bad]
    assert isinstance(end, ChunkEnd)
    stream[bad] = ChunkEnd(0, 0, end.size, bytes(32))
    window = SendWindow()
    for chunk in range(3):
        window.sent(0, chunk)
    disk: dict[int, bytearray] = {}
    answers = _receive(assembler, stream, disk)
    assert answers == [("nack", 0, 0)]  # everything after the bad chunk was dropped
    assert assembler.expecting == (0, 0) and assembler.discarding
    assert window.nacked(0, 0) == (0, 0) and len(window) == 0
    # The sender rewinds to chunk 0 and sends the rest again.
    answers = _receive(assembler, _send_file(0, data), disk)
    assert answers == [("ack", 0, 0), ("ack", 0, 1), ("ack", 0, 2)]
    assert assembler.finished and bytes(disk[0]) == data


def test_sender_gives_up_after_repeated_nacks() -> None:
    window = SendWindow()
    with pytest.raises(IntegrityError):
        for _ in range(10):
            window.sent(0, 5)
            window.nacked(0, 5)


def test_send_window_bounds_and_order() -> None:
    window = SendWindow(limit=2)
    window.sent(0, 0)
    window.sent(0, 1)
    assert window.full
    with pytest.raises(RuntimeError):
        window.sent(0, 2)
    with pytest.raises(FrameError):
        window.acked(0, 1)  # acks come strictly in order
    window.acked(0, 0)
    window.acked(0, 1)
    with pytest.raises(FrameError):
        window.acked(0, 2)  # never sent


def test_resume_from_offset_checks_held_digests() -> None:
    data = FILES[0]
    digests = chunk_digests_of(data)
    assembler = ChunkAssembler([len(data)], [CHUNK_SIZE], [digests[:1]])
    disk = {0: bytearray(data[:CHUNK_SIZE])}
    answers = _receive(assembler, _send_file(0, data, start=1), disk)
    assert answers == [("ack", 0, 1), ("ack", 0, 2)]
    assert bytes(disk[0]) == data
    # Held chunks that were not what the sender has: the file digest exposes it.
    wrong = ChunkAssembler([len(data)], [CHUNK_SIZE], [[bytes(32)]])
    with pytest.raises(IntegrityError):
        _receive(wrong, _send_file(0, data, start=1), {0: bytearray(CHUNK_SIZE)})


def test_complete_file_on_resume_only_needs_file_done() -> None:
    data = FILES[2]
    assembler = ChunkAssembler([len(data)], [len(data)], [chunk_digests_of(data)])
    assert assembler.expecting == (0, -1)
    assert assembler.file_done(0, file_digest(chunk_digests_of(data))) is not None
    assert assembler.finished


@pytest.mark.parametrize(
    "mutate",
    [
        lambda p: encode_piece(p.file, p.chunk + 1, p.offset, p.payload),  # wrong chunk
        lambda p: encode_piece(p.file + 1, p.chunk, p.offset, p.payload),  # wrong file
        lambda p: encode_piece(p.file, p.chunk, p.offset + 1, p.payload),  # gap
    ],
)
def test_out_of_order_pieces_are_refused(mutate) -> None:
    data = FILES[0]
    assembler = ChunkAssembler([len(data), 10], [0, 0])
    first = _send_file(0, data)[0]
    with pytest.raises(FrameError):
        assembler.add_piece(decode_piece(mutate(first)))


def test_chunk_end_and_file_done_out_of_place_are_refused() -> None:
    data = FILES[0]
    stream = _send_file(0, data)
    assembler = ChunkAssembler([len(data)], [0])
    with pytest.raises(FrameError):  # chunk end before its pieces
        assembler.end_chunk(0, 0, CHUNK_SIZE, bytes(32))
    with pytest.raises(FrameError):  # file-done before its chunks
        assembler.file_done(0, bytes(32))
    pieces = [p for p in stream if not isinstance(p, ChunkEnd | FileDone)]
    assembler.add_piece(pieces[0])  # type: ignore[arg-type]
    with pytest.raises(FrameError):  # announced size disagrees with what arrived
        assembler.end_chunk(0, 0, CHUNK_SIZE, bytes(32))
    # More bytes than the (short) last chunk holds.
    last = ChunkAssembler([10], [0])
    with pytest.raises(FrameError):
        last.add_piece(decode_piece(encode_piece(0, 0, 0, b"x" * 11)))


def test_resume_offsets() -> None:
    size = 2 * CHUNK_SIZE + 5
    assert check_resume_offset(0, size) == 0
    assert check_resume_offset(CHUNK_SIZE, size) == 1
    assert check_resume_offset(size, size) == 3
    for bad in (-1, 1, CHUNK_SIZE + 1, size + 1, 3 * CHUNK_SIZE):
        with pytest.raises(ValueError):
            check_resume_offset(bad, size)
    assert chunk_count(0) == 0 and chunk_length(size, 2) == 5
    with pytest.raises(ValueError):
        chunk_length(size, 3)


# --- manifest, accept, start ------------------------------------------------------------


def _manifest(*sizes: int) -> Manifest:
    return Manifest(
        new_transfer_id(), tuple(FileEntry(f"f{i}.bin", s) for i, s in enumerate(sizes))
    )


def test_accept_is_checked_against_the_manifest() -> None:
    manifest = _manifest(3 * CHUNK_SIZE, 10)
    good = Accept(
        manifest.transfer, (AcceptedFile(CHUNK_SIZE, bytes(32)), AcceptedFile(10, bytes(32)))
    )
    good.check(manifest)
    parsed = parse_message(encode_message(good))
    assert parsed == good
    bad_cases = [
        Accept(new_transfer_id(), good.files),  # another transfer
        Accept(manifest.transfer, good.files[:1]),  # file count
        Accept(manifest.transfer, (AcceptedFile(5, bytes(32)), AcceptedFile())),  # mid-chunk
        Accept(manifest.transfer, (AcceptedFile(), AcceptedFile(11, bytes(32)))),  # past end
    ]
    for accept in bad_cases:
        with pytest.raises(FrameError):
            accept.check(manifest)
    with pytest.raises(ValueError):
        AcceptedFile(CHUNK_SIZE)  # a resume needs its prefix digest


def test_start_offsets_are_the_accepted_ones_or_zero() -> None:
    manifest = _manifest(3 * CHUNK_SIZE)
    accept = Accept(manifest.transfer, (AcceptedFile(CHUNK_SIZE, bytes(32)),))
    Start((CHUNK_SIZE,)).check(accept)
    Start((0,)).check(accept)  # prefix mismatch: the sender starts over
    with pytest.raises(FrameError):
        Start((2 * CHUNK_SIZE,)).check(accept)
    with pytest.raises(FrameError):
        Start(()).check(accept)


def test_manifest_too_big_for_one_message() -> None:
    files = tuple(FileEntry("n" * 1000, 1) for _ in range(100))
    with pytest.raises(ManifestError, match="fewer files"):
        encode_message(Manifest(new_transfer_id(), files))


@pytest.mark.parametrize(
    "entry",
    [
        {"name": "a", "size": 1},  # type missing
        {"name": "a", "size": True, "type": ""},
        {"name": 5, "size": 1, "type": ""},
        {"name": "a", "size": 1, "type": "x" * 256},
        {"name": "a", "size": 1, "type": "", "mtime": "yesterday"},
        "a.txt",
    ],
)
def test_bad_file_entries(entry: object) -> None:
    text = json.dumps(
        {
            "t": "manifest",
            "v": 1,
            "transfer": new_transfer_id(),
            "chunk_size": CHUNK_SIZE,
            "files": [entry],
        }
    )
    with pytest.raises(ManifestError):
        parse_message(text)


def test_manifest_accepts_null_mtime_and_duplicate_names() -> None:
    text = json.dumps(
        {
            "t": "manifest",
            "v": 1,
            "transfer": new_transfer_id(),
            "chunk_size": CHUNK_SIZE,
            "files": [
                {"name": "a", "size": 1, "type": "", "mtime": None},
                {"name": "a", "size": 2, "type": "text/plain"},
            ],
        }
    )
    manifest = parse_message(text)
    assert isinstance(manifest, Manifest) and manifest.total_size == 3


@pytest.mark.parametrize(
    "text",
    [b'{"t":"ping"}', "[" * 30000 + "]" * 30000, '{"t":"ping"} x', '{"t":null}', "", "\x00"],
)
def test_garbled_messages(text: object) -> None:
    with pytest.raises(FrameError):
        parse_message(text)  # type: ignore[arg-type]


def test_error_message_from_exceptions() -> None:
    assert ErrorMessage.of(IntegrityError("boom")).code == "integrity"
    assert ErrorMessage.of(LinkError("local only")).code == INTERNAL
    long = ErrorMessage("disk_full", "x" * 5000)
    assert len(long.message) == 1000
    assert parse_message(encode_message(long)) == long


# --- file names -------------------------------------------------------------------------

HOSTILE = [
    "../../etc/passwd",
    "..\\..\\Windows\\System32\\drivers\\etc\\hosts",
    "/etc/shadow",
    "C:\\evil.exe",
    "a/../../b",
    "..",
    ".",
    "",
    " ",
    "\x00",
    "x\x00/../y",
    "NUL",
    "nul.tar.gz",
    "AUX ",
    "com9.txt",
    "LPT1",
    "CONIN$",
    "\u202e",
    "a" * 10000,
    "\u00e9" * 5000,
    "\U0001f600" * 300,
    "name with spaces .txt",
    ". .. ...",
    "\ud800\udfff",
    "a:b",
    "~",
]


@pytest.mark.parametrize("name", HOSTILE, ids=lambda n: repr(n)[:30])
def test_sanitized_names_never_escape_the_target_directory(name: str, tmp_path) -> None:
    safe = sanitize_filename(name)
    assert safe and safe not in (".", "..")
    assert "/" not in safe and "\\" not in safe and "\x00" not in safe
    assert len(safe.encode("utf-8", "surrogatepass")) <= SAVE_NAME_MAX_BYTES + 1
    assert safe.split(".")[0].rstrip(" ").upper() not in (
        "CON",
        "NUL",
        "AUX",
        "PRN",
        "LPT1",
        "COM9",
    )
    joined = os.path.normpath(os.path.join(tmp_path, safe))
    assert os.path.dirname(joined) == os.path.normpath(tmp_path)
    assert sanitize_filename(safe) == safe


def test_every_message_about_all_files_fits_one_text_frame_at_the_maximum() -> None:
    """The largest accept (every file resumed at the largest offset), start and complete
    for MAX_FILES files each fit the 64 KiB text limit; one file more is refused."""
    from peerbeam.transfer.constants import MAX_FILE_SIZE, MAX_FILES, MAX_TEXT_MESSAGE
    from peerbeam.transfer.messages import AcceptedFile, Complete, Start

    largest = MAX_FILE_SIZE - CHUNK_SIZE
    accept = Accept("A" * 64, tuple(AcceptedFile(largest, b"\xff" * 32) for _ in range(MAX_FILES)))
    for message in (accept, Start((largest,) * MAX_FILES), Complete((b"\xff" * 32,) * MAX_FILES)):
        assert len(encode_message(message).encode()) <= MAX_TEXT_MESSAGE
    with pytest.raises(ManifestError):
        Manifest("A" * 22, tuple(FileEntry(f"{i}", 0) for i in range(MAX_FILES + 1)))
