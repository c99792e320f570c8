"""Chunks: arithmetic, digests, and the sans-I/O bookkeeping of both ends.

A file is cut into CHUNK_SIZE chunks (the last may be shorter; an empty file has none).
Each chunk is hashed with SHA-256; a file's digest is SHA-256 over the concatenated raw
32-byte chunk digests in order. The browser has no streaming SHA-256, but hashing 1 MiB
at a time is one WebCrypto call, and a digest of digests lets both sides compute the
file digest without ever reading the file twice.

SendWindow (sender) and ChunkAssembler (receiver) hold the protocol's rules about order,
acknowledgement and re-sending, so the aiortc peer and tests share one implementation.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .constants import CHUNK_SIZE, MAX_CHUNK_NACKS, WINDOW_CHUNKS
from .errors import FrameError, IntegrityError
from .frames import Piece


def chunk_count(size: int, chunk_size: int = CHUNK_SIZE) -> int:
    return -(-size // chunk_size)


def chunk_length(size: int, index: int, chunk_size: int = CHUNK_SIZE) -> int:
    """Bytes in chunk `index` of a file of `size` bytes."""
    if not 0 <= index < chunk_count(size, chunk_size):
        raise ValueError(f"chunk {index} does not exist in a file of {size} bytes")
    return min(chunk_size, size - index * chunk_size)


def chunk_digest(data: bytes | bytearray | memoryview) -> bytes:
    return hashlib.sha256(data).digest()


def file_digest(chunk_digests: Iterable[bytes]) -> bytes:
    """SHA-256 over the raw chunk digests in order. Also the `prefix` of an accept,
    computed over the digests of the chunks the receiver already holds."""
    h = hashlib.sha256()
    for digest in chunk_digests:
        if len(digest) != 32:
            raise ValueError("chunk digests are 32 bytes")
        h.update(digest)
    return h.digest()


def chunk_digests_of(data: bytes, chunk_size: int = CHUNK_SIZE) -> list[bytes]:
    """All chunk digests of an in-memory file (tests and small files)."""
    return [chunk_digest(data[i : i + chunk_size]) for i in range(0, len(data), chunk_size)]


def check_resume_offset(offset: int, size: int, chunk_size: int = CHUNK_SIZE) -> int:
    """Validate an accept offset; return how many chunks it covers.

    An offset is a whole number of chunks, or the whole file (whose last chunk may be
    short): the receiver only ever claims chunks it verified and stored.
    """
    if not 0 <= offset <= size or (offset % chunk_size and offset != size):
        raise ValueError(f"offset {offset} is not a chunk boundary of a {size}-byte file")
    return chunk_count(offset, chunk_size)


class SendWindow:
    """The sender's chunks that are sent but not yet acknowledged, oldest first.

    The receiver acknowledges strictly in order, so every ack or nack must name the
    oldest outstanding chunk; anything else is a protocol error.
    """

    def __init__(self, limit: int = WINDOW_CHUNKS, max_nacks: int = MAX_CHUNK_NACKS) -> None:
        self.limit = limit
        self.max_nacks = max_nacks
        self._outstanding: deque[tuple[int, int]] = deque()
        self._nacks: dict[tuple[int, int], int] = {}

    def __len__(self) -> int:
        return len(self._outstanding)

    @property
    def full(self) -> bool:
        """True: wait for an ack before sending another chunk."""
        return len(self._outstanding) >= self.limit

    def outstanding(self) -> tuple[tuple[int, int], ...]:
        """The chunks sent and not yet acknowledged, oldest first."""
        return tuple(self._outstanding)

    def sent(self, file: int, chunk: int) -> None:
        if self.full:
            raise RuntimeError("window is full: wait for an ack")
        self._outstanding.append((file, chunk))

    def _pop_head(self, kind: str, file: int, chunk: int) -> None:
        head = self._outstanding[0] if self._outstanding else None
        if head != (file, chunk):
            raise FrameError(f"{kind} for file {file} chunk {chunk}, expected {head}")
        self._outstanding.popleft()

    def acked(self, file: int, chunk: int) -> None:
        self._pop_head("ack", file, chunk)
        self._nacks.pop((file, chunk), None)

    def nacked(self, file: int, chunk: int) -> tuple[int, int]:
        """Forget everything outstanding (the receiver drops it) and return the
        (file, chunk) to continue from: go-back-N. Raises IntegrityError when the
        same chunk failed too often."""
        self._pop_head("nack", file, chunk)
        count = self._nacks.get((file, chunk), 0) + 1
        if count >= self.max_nacks:
            raise IntegrityError(f"file {file} chunk {chunk} failed verification {count} times")
        self._nacks[(file, chunk)] = count
        self._outstanding.clear()
        return file, chunk


@dataclass(frozen=True)
class ReceivedChunk:
    file: int
    chunk: int
    position: int  # byte offset in the file where `data` belongs
    data: bytearray  # empty when not ok
    digest: bytes  # the receiver's own SHA-256 of data
    ok: bool  # False: send nack, the sender re-sends from here


class ChunkAssembler:
    """The receiver's data phase: checks that pieces, chunk ends and file ends arrive
    exactly in the order the protocol defines, reassembles and verifies chunks, and
    checks file digests.

    After a failed chunk (ok=False) it drops everything until the first piece of that
    chunk arrives again: messages the sender sent before it saw the nack.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        start_offsets: Sequence[int],
        held_digests: Sequence[Sequence[bytes]] | None = None,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        if len(sizes) != len(start_offsets):
            raise ValueError("one start offset per file")
        self.sizes = list(sizes)
        self.chunk_size = chunk_size
        self._starts = [
            check_resume_offset(o, s, chunk_size) for o, s in zip(start_offsets, sizes, strict=True)
        ]
        held = held_digests if held_digests is not None else [[] for _ in sizes]
        if [len(h) for h in held] != self._starts:
            raise ValueError("held_digests must hold one digest per chunk below each offset")
        self._held = [list(h) for h in held]
        self.discarding = False
        self._file = 0
        self._enter_file()

    def _enter_file(self) -> None:
        self._buffer = bytearray()
        self._hash = hashlib.sha256()
        if self._file < len(self.sizes):
            self._chunk = self._starts[self._file]
            self._digests = self._held[self._file]

    @property
    def finished(self) -> bool:
        """True once every file's file-done was checked: `done` may come now."""
        return self._file >= len(self.sizes)

    @property
    def expecting(self) -> tuple[int, int] | None:
        """(file, chunk) whose pieces come next, or (file, -1) for that file's file-done,
        or None when finished."""
        if self.finished:
            return None
        if self._chunk >= chunk_count(self.sizes[self._file], self.chunk_size):
            return (self._file, -1)
        return (self._file, self._chunk)

    def add_piece(self, piece: Piece) -> bool:
        """Take one piece. False: dropped (stale after a nack). Raises FrameError."""
        expecting = self.expecting
        if self.discarding:
            # The re-sent chunk starts with its piece at offset 0; all else is stale.
            if expecting is None or (piece.file, piece.chunk, piece.offset) != (*expecting, 0):
                return False
            self.discarding = False
        if expecting is None or expecting[1] < 0:
            raise FrameError(f"piece of file {piece.file} chunk {piece.chunk} not expected now")
        if (piece.file, piece.chunk) != expecting:
            raise FrameError(
                f"piece of file {piece.file} chunk {piece.chunk}, expected {expecting}"
            )
        if piece.offset != len(self._buffer):
            raise FrameError(
                f"piece at offset {piece.offset} of chunk {piece.chunk}, "
                f"expected {len(self._buffer)}"
            )
        need = chunk_length(self.sizes[self._file], self._chunk, self.chunk_size)
        if len(self._buffer) + len(piece.payload) > need:
            raise FrameError(f"chunk {piece.chunk} of file {piece.file} is longer than {need}")
        self._buffer += piece.payload
        self._hash.update(piece.payload)
        return True

    def end_chunk(self, file: int, chunk: int, size: int, sha256: bytes) -> ReceivedChunk | None:
        """Handle {"t": "chunk"}. None: dropped (stale after a nack). Raises FrameError."""
        if self.discarding:
            return None
        if self.expecting != (file, chunk):
            raise FrameError(f"chunk end for file {file} chunk {chunk}, expected {self.expecting}")
        need = chunk_length(self.sizes[file], chunk, self.chunk_size)
        if size != need or len(self._buffer) != need:
            raise FrameError(
                f"chunk {chunk} of file {file}: announced {size} bytes, received "
                f"{len(self._buffer)}, expected {need}"
            )
        digest = self._hash.digest()
        data, self._buffer, self._hash = self._buffer, bytearray(), hashlib.sha256()
        if digest != sha256:
            self.discarding = True  # wait for the re-sent chunk, drop what is in flight
            return ReceivedChunk(file, chunk, chunk * self.chunk_size, bytearray(), digest, False)
        self._digests.append(digest)
        self._chunk += 1
        return ReceivedChunk(file, chunk, chunk * self.chunk_size, data, digest, True)

    def file_done(self, file: int, digest: bytes) -> bytes | None:
        """Handle {"t": "file-done"}: returns the verified file digest, None if dropped.
        Raises FrameError (out of order) or IntegrityError (digests differ)."""
        if self.discarding:
            return None
        if self.expecting != (file, -1):
            raise FrameError(f"file-done for file {file}, expected {self.expecting}")
        mine = file_digest(self._digests)
        if mine != digest:
            raise IntegrityError(
                f"file {file}: digest {mine.hex()} differs from the sender's {digest.hex()}"
            )
        self._file += 1
        self._enter_file()
        return mine
