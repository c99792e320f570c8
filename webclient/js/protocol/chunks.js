// @ts-check
/**
 * Chunks (protocol.md section 8): arithmetic, digests, the sender's SendWindow (mirroring
 * peerbeam/transfer/chunks.py) and the receiving page's ChunkBuffer.
 */
import { Sha256 } from "./sha256.js";
import { CHUNK_SIZE, MAX_CHUNK_NACKS, WINDOW_CHUNKS } from "./constants.js";
import { INTEGRITY, ProtocolError, frameError } from "./errors.js";

/**
 * @param {number} size
 * @param {number} [chunkSize]
 */
export const chunkCount = (size, chunkSize = CHUNK_SIZE) => Math.ceil(size / chunkSize);

/**
 * Bytes in chunk `index` of a file of `size` bytes.
 * @param {number} size
 * @param {number} index
 * @param {number} [chunkSize]
 */
export function chunkLength(size, index, chunkSize = CHUNK_SIZE) {
  if (!(index >= 0 && index < chunkCount(size, chunkSize))) {
    throw new RangeError(`chunk ${index} does not exist in a file of ${size} bytes`);
  }
  return Math.min(chunkSize, size - index * chunkSize);
}

/**
 * SHA-256 of one chunk: one WebCrypto call (there is no streaming digest).
 * @param {BufferSource} data
 */
export async function chunkDigest(data) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", data));
}

/**
 * SHA-256 over the raw chunk digests in order; also an accept's `prefix`. Synchronous
 * (sha256.js), as the session machines need it: at most 32 bytes per MiB of files.
 * @param {Uint8Array[]} digests
 */
export function fileDigest(digests) {
  const hash = new Sha256();
  for (const d of digests) {
    if (d.length !== 32) throw new Error("chunk digests are 32 bytes");
    hash.update(d);
  }
  return hash.digest();
}

/**
 * Validate an accept offset; return how many chunks it covers.
 * @param {number} offset
 * @param {number} size
 * @param {number} [chunkSize]
 */
export function checkResumeOffset(offset, size, chunkSize = CHUNK_SIZE) {
  if (!(offset >= 0 && offset <= size) || (offset % chunkSize !== 0 && offset !== size)) {
    throw new RangeError(`offset ${offset} is not a chunk boundary of a ${size}-byte file`);
  }
  return chunkCount(offset, chunkSize);
}

/** The sender's chunks sent and not yet acknowledged, oldest first (acks come in order). */
export class SendWindow {
  constructor(limit = WINDOW_CHUNKS, maxNacks = MAX_CHUNK_NACKS) {
    this.limit = limit;
    this.maxNacks = maxNacks;
    /** @type {[number, number][]} */
    this.outstanding = [];
    /** @type {Map<string, number>} */
    this.nacks = new Map();
  }

  get size() {
    return this.outstanding.length;
  }

  get full() {
    return this.outstanding.length >= this.limit;
  }

  /**
   * @param {number} file
   * @param {number} chunk
   */
  sent(file, chunk) {
    if (this.full) throw new Error("window is full: wait for an ack");
    this.outstanding.push([file, chunk]);
  }

  /**
   * @param {string} kind
   * @param {number} file
   * @param {number} chunk
   */
  popHead(kind, file, chunk) {
    const head = this.outstanding[0];
    if (!head || head[0] !== file || head[1] !== chunk) {
      throw frameError(`${kind} for file ${file} chunk ${chunk}, expected ${head ? head.join("/") : "nothing"}`);
    }
    this.outstanding.shift();
  }

  /**
   * @param {number} file
   * @param {number} chunk
   */
  acked(file, chunk) {
    this.popHead("ack", file, chunk);
    this.nacks.delete(`${file}/${chunk}`);
  }

  /**
   * Forget everything outstanding and return where to continue (go-back-N).
   * @param {number} file
   * @param {number} chunk
   * @returns {[number, number]}
   */
  nacked(file, chunk) {
    this.popHead("nack", file, chunk);
    const key = `${file}/${chunk}`;
    const count = (this.nacks.get(key) ?? 0) + 1;
    if (count >= this.maxNacks) {
      throw new ProtocolError(INTEGRITY, `file ${file} chunk ${chunk} failed verification ${count} times`);
    }
    this.nacks.set(key, count);
    this.outstanding = [];
    return [file, chunk];
  }
}

/** Chunk buffers kept for reuse by a ChunkBuffer. */
const SPARE_BUFFERS = 4;

/**
 * The bytes of the chunk being received on one connection. The receiver machine decides
 * which pieces are kept and checks that they come in order (protocol.md 8.2); this only
 * places the payloads. Full-size buffers are reused once their write has taken its copy,
 * so a transfer does not allocate 1 MiB per chunk.
 */
export class ChunkBuffer {
  constructor(chunkSize = CHUNK_SIZE) {
    this.chunkSize = chunkSize;
    /** @type {Uint8Array<ArrayBuffer> | null} */
    this.buffer = null;
    /** @type {Uint8Array<ArrayBuffer>[]} */
    this.spare = [];
  }

  /**
   * Place a kept piece.
   * @param {number} offset within the chunk
   * @param {Uint8Array} payload
   * @param {number} length the chunk's length
   */
  put(offset, payload, length) {
    if (!this.buffer) this.buffer = (length === this.chunkSize && this.spare.pop()) || new Uint8Array(length);
    this.buffer.set(payload, offset);
  }

  /** The chunk's bytes (every piece was placed); the next piece starts a new chunk. */
  take() {
    const buffer = this.buffer;
    if (!buffer) throw new Error("no chunk was received");
    this.buffer = null;
    return buffer;
  }

  /**
   * Give back a chunk's buffer once nothing reads it any more (its write completed): the
   * next chunk is assembled in it. Every byte of a chunk is overwritten before it is used.
   * @param {Uint8Array<ArrayBuffer>} buffer
   */
  recycle(buffer) {
    if (buffer.length === this.chunkSize && buffer.byteLength === buffer.buffer.byteLength && this.spare.length < SPARE_BUFFERS) {
      this.spare.push(buffer);
    }
  }
}
