// @ts-check
/** Numbers of the transfer protocol v1 (docs/protocol.md); mirrors peerbeam/transfer/constants.py. */

export const PROTOCOL_VERSION = 1;
export const CHANNEL_LABEL = "peerbeam";

export const KIB = 1024;
export const MIB = 1024 * KIB;

/** The unit of acknowledgement, integrity and resume. */
export const CHUNK_SIZE = MIB;
/** Largest payload of one binary piece. */
export const MAX_PIECE_PAYLOAD = 256 * KIB;
/** Text messages are at most 64 KiB of UTF-8 (aiortc and RFC 8841 peers accept no more). */
export const MAX_TEXT_MESSAGE = 64 * KIB;

/** At most this many chunks sent and not yet acknowledged. */
export const WINDOW_CHUNKS = 16;
/** Stop queueing pieces above this bufferedAmount (Chromium fails sends above 16 MiB). */
export const BUFFERED_HIGH_WATER = 8 * MIB;
export const BUFFERED_LOW_WATER = 2 * MIB;

export const MAX_FILE_SIZE = CHUNK_SIZE * 2 ** 32;
/** Every per-file message (an accept resuming every file: ~105 bytes each) fits 64 KiB. */
export const MAX_FILES = 500;
/** v1.1: connections (lanes) one transfer may use; each gets max(2, 16 / lanes) of the window. */
export const MAX_LANES = 8;
export const MAX_NAME_BYTES = 1024;
export const MAX_TYPE_CHARS = 255;
export const MAX_ERROR_MESSAGE_CHARS = 1000;
export const MAX_SAFE_INTEGER = Number.MAX_SAFE_INTEGER;
export const MAX_CHUNK_NACKS = 3;

export const DEFAULT_ITERATIONS = 600_000;
export const MIN_ITERATIONS = 600_000;
export const MAX_ITERATIONS = 10_000_000;
export const MAX_AUTH_ATTEMPTS = 5;
export const PBKDF2_NAME = "pbkdf2-sha256";
