// @ts-check
/**
 * SHA-256 (FIPS 180-4, section 6.2) in plain JavaScript: synchronous and incremental.
 *
 * WebCrypto's digest is asynchronous and takes the whole input at once. The session
 * machines (protocol.md section 14) are synchronous and hash only short things: a file
 * digest is SHA-256 over the 32-byte chunk digests (3.2 MB for 100 GB), an accept prefix
 * the same over fewer. Chunks themselves (1 MiB each) are still hashed by WebCrypto in
 * the drivers, which is much faster. Checked against the NIST CAVP byte-oriented short and
 * long message vectors (tests/js/sha256.test.mjs).
 */

/** The first 32 bits of the fractional parts of the cube roots of the first 64 primes. */
const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

/** The initial hash value: square roots of the first 8 primes. */
const INITIAL = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

const BLOCK = 64;
export const SHA256_SIZE = 32;

export class Sha256 {
  constructor() {
    this.state = new Uint32Array(INITIAL);
    /** Bytes of the block being filled. */
    this.block = new Uint8Array(BLOCK);
    this.filled = 0;
    /** Bytes hashed so far (a safe integer: up to 8 PiB). */
    this.length = 0;
    this.schedule = new Uint32Array(64);
    this.finished = false;
  }

  /**
   * Hash more bytes.
   * @param {Uint8Array} data
   * @returns {this}
   */
  update(data) {
    if (this.finished) throw new Error("this SHA-256 was finished: start a new one");
    let at = 0;
    this.length += data.length;
    if (this.filled > 0) {
      const take = Math.min(BLOCK - this.filled, data.length);
      this.block.set(data.subarray(0, take), this.filled);
      this.filled += take;
      at = take;
      if (this.filled < BLOCK) return this;
      this.compress(this.block, 0);
      this.filled = 0;
    }
    for (; at + BLOCK <= data.length; at += BLOCK) this.compress(data, at);
    if (at < data.length) {
      this.block.set(data.subarray(at), 0);
      this.filled = data.length - at;
    }
    return this;
  }

  /**
   * The 32-byte digest; the object cannot be updated afterwards.
   * @returns {Uint8Array<ArrayBuffer>}
   */
  digest() {
    if (this.finished) throw new Error("this SHA-256 was finished: start a new one");
    this.finished = true;
    const block = this.block;
    block[this.filled++] = 0x80;
    if (this.filled > BLOCK - 8) {
      block.fill(0, this.filled);
      this.compress(block, 0);
      this.filled = 0;
    }
    block.fill(0, this.filled, BLOCK - 8);
    // The message length in bits, a 64-bit big-endian integer (bytes * 8 without overflow).
    const view = new DataView(block.buffer, block.byteOffset, BLOCK);
    view.setUint32(BLOCK - 8, Math.floor(this.length / 0x20000000), false);
    view.setUint32(BLOCK - 4, (this.length % 0x20000000) * 8, false);
    this.compress(block, 0);
    const out = new Uint8Array(SHA256_SIZE);
    const outView = new DataView(out.buffer);
    for (let i = 0; i < 8; i++) outView.setUint32(4 * i, this.state[i], false);
    return out;
  }

  /**
   * One 64-byte block into the state.
   * @param {Uint8Array} bytes
   * @param {number} offset
   */
  compress(bytes, offset) {
    const w = this.schedule;
    for (let i = 0; i < 16; i++) {
      const j = offset + 4 * i;
      w[i] = (bytes[j] << 24) | (bytes[j + 1] << 16) | (bytes[j + 2] << 8) | bytes[j + 3];
    }
    for (let i = 16; i < 64; i++) {
      const a = w[i - 15];
      const b = w[i - 2];
      const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
      const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
    }
    const s = this.state;
    let a = s[0], b = s[1], c = s[2], d = s[3], e = s[4], f = s[5], g = s[6], h = s[7];
    for (let i = 0; i < 64; i++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const ch = (e & f) ^ (~e & g);
      const t1 = (h + S1 + ch + K[i] + w[i]) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const maj = (a & b) ^ (a & c) ^ (b & c);
      const t2 = (S0 + maj) | 0;
      h = g;
      g = f;
      f = e;
      e = (d + t1) | 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) | 0;
    }
    s[0] += a;
    s[1] += b;
    s[2] += c;
    s[3] += d;
    s[4] += e;
    s[5] += f;
    s[6] += g;
    s[7] += h;
  }
}

/**
 * SHA-256 of `data` in one call.
 * @param {Uint8Array} data
 */
export function sha256(data) {
  return new Sha256().update(data).digest();
}
