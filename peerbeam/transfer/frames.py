"""Binary data frames ("pieces") of file bytes.

Layout (big-endian, 16 bytes, then the payload):

    offset size field
    0      1    magic 0x50 ('P')
    1      1    frame version 0x01
    2      1    kind 0x01 = file data piece
    3      1    flags, 0 (reserved)
    4      4    file index (u32, position in the manifest)
    8      4    chunk index within the file (u32)
    12     4    byte offset of the payload within the chunk (u32)
    16     n    payload, 1 <= n <= 262144

Every piece names its file, chunk and offset, so the receiver checks that nothing was
skipped or reordered instead of trusting a counter, and a bug shows up as a clear error
at the first wrong frame rather than as a corrupt file later.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from .constants import CHUNK_SIZE, MAX_PIECE_PAYLOAD
from .errors import FrameError

MAGIC = 0x50
FRAME_VERSION = 1
KIND_DATA = 0x01
HEADER = struct.Struct(">BBBBIII")
HEADER_SIZE = HEADER.size  # 16
MAX_FRAME_SIZE = HEADER_SIZE + MAX_PIECE_PAYLOAD
# RFC 8841: an SDP without a=max-message-size promises 64 KiB.
DEFAULT_MAX_MESSAGE_SIZE = 65536
MIN_PIECE_PAYLOAD_LIMIT = 1024  # below this a peer is not worth talking to
_U32_MAX = 2**32 - 1


@dataclass(frozen=True)
class Piece:
    file: int
    chunk: int
    offset: int  # within the chunk
    payload: memoryview  # a view into the received message: no copy


def encode_piece(file: int, chunk: int, offset: int, payload: bytes | memoryview) -> bytes:
    if not 0 < len(payload) <= MAX_PIECE_PAYLOAD:
        raise ValueError(f"piece payload must be 1..{MAX_PIECE_PAYLOAD} bytes")
    for name, value in (("file", file), ("chunk", chunk), ("offset", offset)):
        if not 0 <= value <= _U32_MAX:
            raise ValueError(f"{name} index out of u32 range")
    return HEADER.pack(MAGIC, FRAME_VERSION, KIND_DATA, 0, file, chunk, offset) + bytes(payload)


def decode_piece(data: bytes | bytearray | memoryview, chunk_size: int = CHUNK_SIZE) -> Piece:
    """Parse and check one binary message. Raises FrameError (code bad_frame).

    Checks what a frame can show on its own; whether it is the piece the receiver
    expects next is ChunkAssembler's job.
    """
    view = memoryview(data)
    if len(view) <= HEADER_SIZE:
        raise FrameError(f"binary frame of {len(view)} bytes is too short for header + data")
    if len(view) > MAX_FRAME_SIZE:
        raise FrameError(f"binary frame of {len(view)} bytes exceeds {MAX_FRAME_SIZE}")
    magic, version, kind, flags, file, chunk, offset = HEADER.unpack_from(view)
    if magic != MAGIC:
        raise FrameError(f"binary frame has bad magic 0x{magic:02x}")
    if version != FRAME_VERSION:
        raise FrameError(f"binary frame version {version} is not {FRAME_VERSION}")
    if kind != KIND_DATA:
        raise FrameError(f"unknown binary frame kind {kind}")
    if flags != 0:
        raise FrameError(f"binary frame has reserved flags set (0x{flags:02x})")
    payload = view[HEADER_SIZE:]
    if offset + len(payload) > chunk_size:
        raise FrameError(f"piece at offset {offset} runs past the end of a {chunk_size}-byte chunk")
    return Piece(file, chunk, offset, payload)


def sdp_max_message_size(sdp: str) -> int:
    """The peer's a=max-message-size from its SDP (RFC 8841): 0 means no limit,
    absent means 65536. Browsers expose the result as `pc.sctp.maxMessageSize`;
    aiortc peers read it from the remote SDP with this function.
    """
    match = re.search(r"^a=max-message-size:[ \t]*(\d+)[ \t]*\r?$", sdp, re.MULTILINE)
    return int(match.group(1)) if match else DEFAULT_MAX_MESSAGE_SIZE


def piece_payload_limit(max_message_size: float) -> int:
    """Largest payload a sender may put in one piece towards this peer:
    min(256 KiB, max_message_size - 16), where 0 or infinity means "no limit".

    Chromium announces 262144, so towards Chromium pieces carry 262128 bytes; towards
    aiortc (65536) 65520 bytes. The receiver accepts any piece size from 1 to 256 KiB.
    """
    if max_message_size == 0 or math.isinf(max_message_size):
        return MAX_PIECE_PAYLOAD
    limit = min(MAX_PIECE_PAYLOAD, int(max_message_size) - HEADER_SIZE)
    if limit < MIN_PIECE_PAYLOAD_LIMIT:
        raise ValueError(f"peer's max message size {max_message_size} is too small")
    return limit


def iter_pieces(
    file: int, chunk: int, data: bytes | bytearray | memoryview, payload_limit: int
) -> Iterator[bytes]:
    """Split one chunk into consecutive binary frames of at most payload_limit bytes."""
    if not 0 < payload_limit <= MAX_PIECE_PAYLOAD:
        raise ValueError("payload_limit out of range")
    view = memoryview(data)
    for offset in range(0, len(view), payload_limit):
        yield encode_piece(file, chunk, offset, view[offset : offset + payload_limit])
