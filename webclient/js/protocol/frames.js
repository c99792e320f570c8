// @ts-check
/**
 * Binary piece frames (protocol.md 8.2): 16-byte big-endian header, then 1..262144 bytes.
 * magic 0x50, version 1, kind 1, flags 0, file u32, chunk u32, offset-in-chunk u32.
 */
import { CHUNK_SIZE, MAX_PIECE_PAYLOAD } from "./constants.js";
import { frameError } from "./errors.js";

export const MAGIC = 0x50;
export const FRAME_VERSION = 1;
export const KIND_DATA = 1;
export const HEADER_SIZE = 16;
export const MAX_FRAME_SIZE = HEADER_SIZE + MAX_PIECE_PAYLOAD;
export const DEFAULT_MAX_MESSAGE_SIZE = 65536;
const MIN_PIECE_PAYLOAD_LIMIT = 1024;
const U32_MAX = 2 ** 32 - 1;

/** @typedef {{file: number, chunk: number, offset: number, payload: Uint8Array}} Piece */

/**
 * @param {number} file
 * @param {number} chunk
 * @param {number} offset
 * @param {Uint8Array} payload
 * @param {Uint8Array} [into] build the frame at the start of this buffer (reused by the
 *   sender: RTCDataChannel.send copies the bytes) instead of a new one
 * @returns {Uint8Array}
 */
export function encodePiece(file, chunk, offset, payload, into) {
  if (!(payload.length > 0 && payload.length <= MAX_PIECE_PAYLOAD)) {
    throw new RangeError(`piece payload must be 1..${MAX_PIECE_PAYLOAD} bytes`);
  }
  for (const value of [file, chunk, offset]) {
    if (!Number.isInteger(value) || value < 0 || value > U32_MAX) throw new RangeError("index out of u32 range");
  }
  const length = HEADER_SIZE + payload.length;
  const frame = into && into.length >= length ? into.subarray(0, length) : new Uint8Array(length);
  const view = new DataView(frame.buffer, frame.byteOffset, length);
  view.setUint8(0, MAGIC);
  view.setUint8(1, FRAME_VERSION);
  view.setUint8(2, KIND_DATA);
  view.setUint8(3, 0);
  view.setUint32(4, file, false);
  view.setUint32(8, chunk, false);
  view.setUint32(12, offset, false);
  frame.set(payload, HEADER_SIZE);
  return frame;
}

/**
 * Parse and check one binary message (what it can show on its own). Throws bad_frame.
 * The payload is a view into the message: no copy.
 * @param {ArrayBuffer | Uint8Array} data
 * @param {number} [chunkSize]
 * @returns {Piece}
 */
export function decodePiece(data, chunkSize = CHUNK_SIZE) {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
  if (bytes.length <= HEADER_SIZE) throw frameError(`binary frame of ${bytes.length} bytes is too short for header + data`);
  if (bytes.length > MAX_FRAME_SIZE) throw frameError(`binary frame of ${bytes.length} bytes exceeds ${MAX_FRAME_SIZE}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint8(0) !== MAGIC) throw frameError("binary frame has bad magic");
  if (view.getUint8(1) !== FRAME_VERSION) throw frameError(`binary frame version ${view.getUint8(1)} is not ${FRAME_VERSION}`);
  if (view.getUint8(2) !== KIND_DATA) throw frameError(`unknown binary frame kind ${view.getUint8(2)}`);
  if (view.getUint8(3) !== 0) throw frameError("binary frame has reserved flags set");
  const file = view.getUint32(4, false);
  const chunk = view.getUint32(8, false);
  const offset = view.getUint32(12, false);
  const payload = bytes.subarray(HEADER_SIZE);
  if (offset + payload.length > chunkSize) {
    throw frameError(`piece at offset ${offset} runs past the end of a ${chunkSize}-byte chunk`);
  }
  return { file, chunk, offset, payload };
}

/**
 * The peer's a=max-message-size (0: no limit; absent: 65536).
 * @param {string} sdp
 */
export function sdpMaxMessageSize(sdp) {
  const match = /^a=max-message-size:[ \t]*(\d+)[ \t]*\r?$/m.exec(sdp);
  return match ? Number(match[1]) : DEFAULT_MAX_MESSAGE_SIZE;
}

/**
 * min(256 KiB, maxMessageSize - 16); 0 or Infinity mean no limit.
 * @param {number} maxMessageSize
 */
export function piecePayloadLimit(maxMessageSize) {
  if (maxMessageSize === 0 || !Number.isFinite(maxMessageSize)) return MAX_PIECE_PAYLOAD;
  const limit = Math.min(MAX_PIECE_PAYLOAD, Math.floor(maxMessageSize) - HEADER_SIZE);
  if (limit < MIN_PIECE_PAYLOAD_LIMIT) throw new RangeError(`peer's max message size ${maxMessageSize} is too small`);
  return limit;
}
