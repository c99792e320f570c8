// @ts-check
/**
 * Strict encodings of binary values (protocol.md section 2): base64url without padding,
 * canonical (re-encoding the bytes gives the same text), and lowercase hex.
 * Two implementations must accept and reject exactly the same inputs.
 */

const B64URL = /^[A-Za-z0-9_-]*$/;
const HEX_LOWER = /^[0-9a-f]*$/;
const utf8 = new TextEncoder();

/** @param {Uint8Array} bytes */
export function b64urlEncode(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/**
 * @param {string} text
 * @param {number} [size] expected byte length
 * @returns {Uint8Array<ArrayBuffer>}
 */
export function b64urlDecode(text, size) {
  if (typeof text !== "string" || !B64URL.test(text)) {
    throw new Error("not base64url (allowed: A-Z a-z 0-9 - _, no padding)");
  }
  if (text.length % 4 === 1) throw new Error("impossible base64url length");
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  if (b64urlEncode(bytes) !== text) {
    throw new Error("non-canonical base64url (unused trailing bits are set)");
  }
  if (size !== undefined && bytes.length !== size) {
    throw new Error(`expected ${size} bytes, got ${bytes.length}`);
  }
  return bytes;
}

/** @param {Uint8Array} bytes */
export function hexEncode(bytes) {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

/**
 * @param {string} text
 * @param {number} size
 */
export function hexDecode(text, size) {
  if (typeof text !== "string" || text.length !== 2 * size || !HEX_LOWER.test(text)) {
    throw new Error(`expected ${2 * size} lowercase hex digits`);
  }
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}

/** @param {string} text */
export const utf8Encode = (text) => utf8.encode(text);
/** @param {string} text UTF-8 length; lone surrogates count 3 bytes like Python's surrogatepass */
export const utf8Length = (text) => utf8.encode(text).length;

/** @param {Uint8Array[]} parts */
export function concatBytes(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** @param {number} size */
export function randomBytes(size) {
  return crypto.getRandomValues(new Uint8Array(size));
}

/**
 * Two byte strings are equal (not constant-time: for public values such as digests).
 * @param {Uint8Array} a
 * @param {Uint8Array} b
 */
export function bytesEqual(a, b) {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
