// @ts-check
/**
 * Chunks (protocol.md section 8): arithmetic, digests, and the bookkeeping of both ends,
 * mirroring peerbeam/transfer/chunks.py: SendWindow (sender) and ChunkAssembler (receiver).
 */
import { bytesEqual, hexEncode } from "./codec.js";
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

/** Chunk buffers kept for reuse by a ChunkAssembler. */
const SPARE_BUFFERS = 4;

/**
 * @typedef {{file: number, chunk: number, position: number, data: Uint8Array<ArrayBuffer>,
 *            digest: Uint8Array, ok: boolean}} ReceivedChunk
 */

/**
 * The receiver's data phase: pieces, chunk ends and file ends must arrive exactly in
 * protocol order; chunks are reassembled and verified; file digests are checked.
 * After a failed chunk it drops everything until that chunk's first piece comes again.
 */
export class ChunkAssembler {
  /**
   * @param {number[]} sizes
   * @param {number[]} startOffsets
   * @param {Uint8Array[][]} [heldDigests] one digest per chunk below each start offset
   * @param {number} [chunkSize]
   */
  constructor(sizes, startOffsets, heldDigests, chunkSize = CHUNK_SIZE) {
    if (sizes.length !== startOffsets.length) throw new Error("one start offset per file");
    this.sizes = sizes;
    this.chunkSize = chunkSize;
    this.starts = startOffsets.map((o, i) => checkResumeOffset(o, sizes[i], chunkSize));
    const held = heldDigests ?? sizes.map(() => []);
    if (held.some((h, i) => h.length !== this.starts[i])) {
      throw new Error("heldDigests must hold one digest per chunk below each offset");
    }
    /** @type {Uint8Array[][]} */
    this.digests = held.map((h) => [...h]);
    this.discarding = false;
    this.file = 0;
    /** @type {Uint8Array<ArrayBuffer> | null} */
    this.buffer = null;
    /** Full-size chunk buffers given back after their write: reused instead of allocated. @type {Uint8Array<ArrayBuffer>[]} */
    this.spare = [];
    this.filled = 0;
    this.chunk = 0;
    this.enterFile();
  }

  enterFile() {
    this.buffer = null;
    this.filled = 0;
    this.chunk = this.file < this.sizes.length ? this.starts[this.file] : 0;
  }

  /** True once every file's file-done was checked. */
  get finished() {
    return this.file >= this.sizes.length;
  }

  /** @returns {[number, number] | null} (file, chunk), (file, -1) for file-done, or null */
  get expecting() {
    if (this.finished) return null;
    if (this.chunk >= chunkCount(this.sizes[this.file], this.chunkSize)) return [this.file, -1];
    return [this.file, this.chunk];
  }

  /**
   * Take one piece; false when dropped (stale after a nack). Throws bad_frame.
   * @param {import("./frames.js").Piece} piece
   */
  addPiece(piece) {
    const expecting = this.expecting;
    if (this.discarding) {
      if (!expecting || piece.file !== expecting[0] || piece.chunk !== expecting[1] || piece.offset !== 0) return false;
      this.discarding = false;
    }
    if (!expecting || expecting[1] < 0) throw frameError(`piece of file ${piece.file} chunk ${piece.chunk} not expected now`);
    if (piece.file !== expecting[0] || piece.chunk !== expecting[1]) {
      throw frameError(`piece of file ${piece.file} chunk ${piece.chunk}, expected ${expecting.join("/")}`);
    }
    if (piece.offset !== this.filled) {
      throw frameError(`piece at offset ${piece.offset} of chunk ${piece.chunk}, expected ${this.filled}`);
    }
    const need = chunkLength(this.sizes[this.file], this.chunk, this.chunkSize);
    if (this.filled + piece.payload.length > need) {
      throw frameError(`chunk ${piece.chunk} of file ${piece.file} is longer than ${need}`);
    }
    if (!this.buffer) this.buffer = (need === this.chunkSize && this.spare.pop()) || new Uint8Array(need);
    this.buffer.set(piece.payload, this.filled);
    this.filled += piece.payload.length;
    return true;
  }

  /**
   * Handle {"t":"chunk"}; null when dropped. Throws bad_frame.
   * @param {number} file
   * @param {number} chunk
   * @param {number} size
   * @param {Uint8Array} sha256
   * @returns {Promise<ReceivedChunk | null>}
   */
  async endChunk(file, chunk, size, sha256) {
    if (this.discarding) return null;
    const expecting = this.expecting;
    if (!expecting || expecting[0] !== file || expecting[1] !== chunk) {
      throw frameError(`chunk end for file ${file} chunk ${chunk}, expected ${expecting ? expecting.join("/") : "nothing"}`);
    }
    const need = chunkLength(this.sizes[file], chunk, this.chunkSize);
    if (size !== need || this.filled !== need || !this.buffer) {
      throw frameError(`chunk ${chunk} of file ${file}: announced ${size} bytes, received ${this.filled}, expected ${need}`);
    }
    const data = this.buffer;
    this.buffer = null;
    this.filled = 0;
    const digest = await chunkDigest(data);
    const position = chunk * this.chunkSize;
    if (!bytesEqual(digest, sha256)) {
      this.recycle(data);
      this.discarding = true;
      return { file, chunk, position, data: new Uint8Array(0), digest, ok: false };
    }
    this.digests[file].push(digest);
    this.chunk += 1;
    return { file, chunk, position, data, digest, ok: true };
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

  /**
   * Handle {"t":"file-done"}: the verified file digest, or null when dropped.
   * @param {number} file
   * @param {Uint8Array} digest
   */
  async fileDone(file, digest) {
    if (this.discarding) return null;
    const expecting = this.expecting;
    if (!expecting || expecting[0] !== file || expecting[1] !== -1) {
      throw frameError(`file-done for file ${file}, expected ${expecting ? expecting.join("/") : "nothing"}`);
    }
    const mine = await fileDigest(this.digests[file]);
    if (!bytesEqual(mine, digest)) {
      throw new ProtocolError(INTEGRITY, `file ${file}: digest ${hexEncode(mine)} differs from the sender's ${hexEncode(digest)}`);
    }
    this.file += 1;
    this.enterFile();
    return mine;
  }
}
