"""Numbers of the transfer protocol v1 (docs/protocol.md). Both implementations use these."""

from __future__ import annotations

PROTOCOL_VERSION = 1
CHANNEL_LABEL = "peerbeam"

KIB = 1024
MIB = 1024 * KIB

# The unit of acknowledgement, integrity and resume. Big enough that per-chunk overhead
# (a JSON message, a hash call, an ack) is negligible; small enough that a browser can hash
# it in one WebCrypto call (which has no streaming digest) and that a re-send is cheap.
CHUNK_SIZE = 1 * MIB

# Largest payload of one binary message. 256 KiB messages were the fastest measured
# between browsers (docs/measurements.md); the header comes on top, and senders also stay
# under the peer's SCTP max-message-size (see frames.piece_payload_limit).
MAX_PIECE_PAYLOAD = 256 * KIB

# Text (JSON) messages are at most 64 KiB of UTF-8: aiortc, and RFC 8841 peers that
# announce no limit, accept no more in one message.
MAX_TEXT_MESSAGE = 64 * KIB

# Flow control. 16 unacknowledged chunks keep a fast link busy through hashing and disk
# latency, yet bound the receiver's memory (chunks waiting for the disk) to 16 MiB.
WINDOW_CHUNKS = 16
# RTCDataChannel send queues fail above 16 MiB in Chromium; pause well before that.
BUFFERED_HIGH_WATER = 8 * MIB
BUFFERED_LOW_WATER = 2 * MIB

# A chunk index is a u32 in the binary header, so a file has at most 2**32 chunks.
MAX_FILE_SIZE = CHUNK_SIZE * 2**32  # 4 PiB; also below JavaScript's 2**53 safe integers
# Every per-file message must fit one 64 KiB text message: the worst is an `accept` that
# resumes every file (about 105 bytes a file), which fits 623 files; 500 leaves room.
MAX_FILES = 500
# v1.1: connections (lanes) one transfer may use; each gets max(2, 16 // lanes) of the window.
MAX_LANES = 8
MAX_NAME_BYTES = 1024  # UTF-8 bytes of a file name in the manifest (saving truncates more)
MAX_TYPE_CHARS = 255
MAX_ERROR_MESSAGE_CHARS = 1000
MAX_SAFE_INTEGER = 2**53 - 1  # JSON integers both implementations read exactly

# The sender gives up on a chunk after this many nacks for it (a nack should never happen
# on a DTLS channel; repeated ones mean a bug or failing memory, not bad luck).
MAX_CHUNK_NACKS = 3
