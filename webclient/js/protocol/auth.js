// @ts-check
/**
 * Peer authentication (protocol.md sections 4-6): key derivation, DTLS fingerprints from
 * the SDP as exchanged, the length-prefixed transcript and its HMAC. WebCrypto only.
 */
import { concatBytes, randomBytes, utf8Encode } from "./codec.js";
import { BAD_SDP, ProtocolError } from "./errors.js";
import { LINK_KEY_SIZE, validateRoom } from "./link.js";

export const AUTH_KEY_SIZE = 32;
export const NONCE_SIZE = 32;
export const MAC_SIZE = 32;
const KDF_SALT_PREFIX = "peerbeam/v1/";
const KDF_INFO = utf8Encode("auth");
const TRANSCRIPT_LABEL = utf8Encode("peerbeam/v1/auth");

/** @typedef {"sender" | "receiver"} Role */

export const newNonce = () => randomBytes(NONCE_SIZE);

/**
 * NFC, then UTF-8: the same password typed on any system gives the same bytes.
 * @param {string} password
 */
export function normalizePassword(password) {
  if (typeof password !== "string" || !password) throw new Error("password must not be empty");
  if (!password.isWellFormed()) throw new Error("password contains an unpaired surrogate");
  return utf8Encode(password.normalize("NFC"));
}

/** @param {Uint8Array} linkKey */
function checkLinkKey(linkKey) {
  if (!(linkKey instanceof Uint8Array) || linkKey.length !== LINK_KEY_SIZE) {
    throw new Error(`link key must be ${LINK_KEY_SIZE} bytes`);
  }
}

/**
 * HKDF-SHA256 (RFC 5869) through WebCrypto.
 * @param {Uint8Array<ArrayBuffer>} ikm
 * @param {Uint8Array<ArrayBuffer>} salt
 * @param {Uint8Array<ArrayBuffer>} info
 * @param {number} [length]
 */
export async function hkdfSha256(ikm, salt, info, length = AUTH_KEY_SIZE) {
  const key = await crypto.subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt, info }, key, length * 8);
  return new Uint8Array(bits);
}

/**
 * PBKDF2-HMAC-SHA256(password, salt = link_key || room, iterations, 32 bytes).
 * @param {Uint8Array} linkKey
 * @param {string} room
 * @param {string} password
 * @param {number} iterations
 */
export async function stretchPassword(linkKey, room, password, iterations) {
  checkLinkKey(linkKey);
  if (!Number.isSafeInteger(iterations) || iterations < 1) throw new Error("iterations must be a positive integer");
  const salt = concatBytes(linkKey, utf8Encode(validateRoom(room)));
  const key = await crypto.subtle.importKey("raw", normalizePassword(password), "PBKDF2", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt, iterations }, key, 256);
  return new Uint8Array(bits);
}

/**
 * The 32-byte auth key both peers prove knowledge of.
 * @param {Uint8Array<ArrayBuffer>} linkKey
 * @param {string} room
 * @param {string | null} password
 * @param {number} [iterations]
 */
export async function deriveAuthKey(linkKey, room, password, iterations = 600_000) {
  checkLinkKey(linkKey);
  let ikm = linkKey;
  if (password !== null && password !== undefined) {
    ikm = concatBytes(linkKey, await stretchPassword(linkKey, room, password, iterations));
  }
  return hkdfSha256(ikm, utf8Encode(KDF_SALT_PREFIX + validateRoom(room)), KDF_INFO, AUTH_KEY_SIZE);
}

const FINGERPRINT_ATTR = "a=fingerprint:";
const HASH_NAME = /^[a-z0-9-]+$/;
const HEX_PAIRS = /^[0-9A-F]{2}(?::[0-9A-F]{2})+$/;
// eslint-disable-next-line no-control-regex
const ASCII = /^[\x00-\x7f]*$/;

/** @param {string} message */
const sdpError = (message) => new ProtocolError(BAD_SDP, message);

/**
 * "sha-256 ab:cd" -> "sha-256 AB:CD".
 * @param {string} value
 */
function normalizeFingerprint(value) {
  const parts = ASCII.test(value) ? value.replace(/^[ \t]+|[ \t]+$/g, "").split(/[ \t]+/) : [];
  if (parts.length !== 2) throw sdpError(`a=fingerprint must be '<hash> <hex>', got ${JSON.stringify(value.slice(0, 80))}`);
  const algorithm = parts[0].toLowerCase();
  const digest = parts[1].toUpperCase();
  if (!HASH_NAME.test(algorithm) || !HEX_PAIRS.test(digest)) {
    throw sdpError(`malformed a=fingerprint value ${JSON.stringify(value.slice(0, 80))}`);
  }
  return `${algorithm} ${digest}`;
}

/**
 * Every a=fingerprint of the SDP (session and media level), normalised, de-duplicated,
 * sorted. All of them, because stacks disagree about which line counts.
 * @param {string} sdp
 * @returns {string[]}
 */
export function sdpFingerprintList(sdp) {
  const found = new Set();
  for (const raw of sdp.split("\n")) {
    const line = raw.replace(/^[ \t\r]+|[ \t\r]+$/g, "");
    const prefix = line.slice(0, FINGERPRINT_ATTR.length);
    if (ASCII.test(prefix) && prefix.toLowerCase() === FINGERPRINT_ATTR) {
      found.add(normalizeFingerprint(line.slice(FINGERPRINT_ATTR.length)));
    }
  }
  if (!found.size) throw sdpError("SDP has no a=fingerprint line");
  // Plain code-unit order, as Python sorts (all ASCII).
  return [...found].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** @param {string} sdp */
export const sdpFingerprints = (sdp) => sdpFingerprintList(sdp).join(",");

/** @param {Uint8Array} value */
function field(value) {
  const out = new Uint8Array(4 + value.length);
  new DataView(out.buffer).setUint32(0, value.length, false);
  out.set(value, 4);
  return out;
}

/**
 * One connection's authentication (protocol.md 5.3): the room, both peers' canonical
 * fingerprint texts (each taken from the SDP as exchanged: sdpFingerprints) and both
 * nonces. Each peer builds the same value and proves its role with a MAC over it.
 */
export class Handshake {
  /**
   * @param {{room: string, senderFingerprints: string, receiverFingerprints: string,
   *          senderNonce: Uint8Array, receiverNonce: Uint8Array}} fields
   */
  constructor({ room, senderFingerprints, receiverFingerprints, senderNonce, receiverNonce }) {
    for (const nonce of [senderNonce, receiverNonce]) {
      if (!(nonce instanceof Uint8Array) || nonce.length !== NONCE_SIZE) throw new Error(`nonces are ${NONCE_SIZE} bytes`);
    }
    for (const fps of [senderFingerprints, receiverFingerprints]) {
      if (typeof fps !== "string" || !fps || !ASCII.test(fps)) throw new Error("fingerprints must be the canonical text");
    }
    this.room = validateRoom(room);
    this.senderFingerprints = senderFingerprints;
    this.receiverFingerprints = receiverFingerprints;
    this.senderNonce = senderNonce;
    this.receiverNonce = receiverNonce;
  }

  /**
   * The seven length-prefixed fields the MAC of `role` covers.
   * @param {Role} role the prover
   */
  transcript(role) {
    if (role !== "sender" && role !== "receiver") throw new Error("role must be 'sender' or 'receiver'");
    return concatBytes(
      field(TRANSCRIPT_LABEL),
      field(utf8Encode(role)),
      field(utf8Encode(this.room)),
      field(utf8Encode(this.senderFingerprints)),
      field(utf8Encode(this.receiverFingerprints)),
      field(this.senderNonce),
      field(this.receiverNonce),
    );
  }

  /**
   * HMAC-SHA256(auth_key, transcript(role)): what `role` sends to prove the key.
   * @param {Uint8Array<ArrayBuffer>} authKey
   * @param {Role} role
   */
  async mac(authKey, role) {
    return new Uint8Array(await crypto.subtle.sign("HMAC", await hmacKey(authKey), this.transcript(role)));
  }

  /**
   * Constant-time check (crypto.subtle.verify) of the MAC the peer playing `role` sent.
   * @param {Uint8Array<ArrayBuffer>} authKey
   * @param {Role} role
   * @param {Uint8Array<ArrayBuffer>} mac
   */
  async verify(authKey, role, mac) {
    return crypto.subtle.verify("HMAC", await hmacKey(authKey), mac, this.transcript(role));
  }
}

/** @param {Uint8Array<ArrayBuffer>} authKey */
const hmacKey = (authKey) =>
  crypto.subtle.importKey("raw", authKey, { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
