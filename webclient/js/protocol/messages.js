// @ts-check
/**
 * Text (JSON) control messages (protocol.md section 15), mirroring
 * peerbeam/transfer/messages.py: strict parsing with stable error codes, and encoding.
 *
 * Parsed messages are plain objects with `t` and decoded fields (nonces, MACs and
 * digests as Uint8Array). `encodeMessage` turns such an object back into wire JSON.
 */
import { b64urlDecode, b64urlEncode, hexDecode, hexEncode, utf8Length } from "./codec.js";
import {
  CHUNK_SIZE, MAX_AUTH_ATTEMPTS, MAX_ERROR_MESSAGE_CHARS, MAX_FILE_SIZE, MAX_FILES, MAX_ITERATIONS, MAX_LANES,
  MAX_NAME_BYTES, MAX_SAFE_INTEGER, MAX_TEXT_MESSAGE, MAX_TYPE_CHARS, MIN_ITERATIONS, PBKDF2_NAME,
  PROTOCOL_VERSION,
} from "./constants.js";
import { checkResumeOffset } from "./chunks.js";
import { BAD_VERSION, ProtocolError, frameError, manifestError } from "./errors.js";
import { MAC_SIZE, NONCE_SIZE } from "./auth.js";

const DIGEST_SIZE = 32;
const U32_MAX = 2 ** 32 - 1;
const TRANSFER_ID = /^[A-Za-z0-9_-]{8,64}$/;
const ERROR_CODE = /^[a-z][a-z0-9_]{0,31}$/;
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/**
 * @typedef {{name: string, size: number, type: string, mtime: number | null}} FileEntry
 * @typedef {{t: "hello", nonce: Uint8Array<ArrayBuffer>, password: boolean, iterations: number | null, lanes?: number | null}} Hello
 * @typedef {{t: "auth", nonce: Uint8Array<ArrayBuffer>, mac: Uint8Array<ArrayBuffer>}} Auth
 * @typedef {{t: "auth-failed", retry: boolean, remaining: number}} AuthFailed
 * @typedef {{t: "auth-ok", mac: Uint8Array<ArrayBuffer>}} AuthOk
 * @typedef {{t: "manifest", transfer: string, chunkSize: number, files: FileEntry[]}} Manifest
 * @typedef {{offset: number, prefix: Uint8Array | null}} AcceptedFile
 * @typedef {{t: "accept", transfer: string, files: AcceptedFile[], lanes?: number | null}} Accept
 * @typedef {{t: "start", offsets: number[], lanes?: number | null}} Start
 * @typedef {{t: "join", transfer: string, lane: number}} Join
 * @typedef {{t: "chunk", file: number, chunk: number, size: number, sha256: Uint8Array}} ChunkEnd
 * @typedef {{t: "ack" | "nack", file: number, chunk: number}} ChunkRef
 * @typedef {{t: "file-done", file: number, digest: Uint8Array}} FileDone
 * @typedef {{t: "complete", digests: Uint8Array[]}} Complete
 * @typedef {{t: "error", code: string, message: string}} ErrorMessage
 * @typedef {{t: "decline" | "done" | "ping" | "pong"}} Bare
 * @typedef {Hello | Auth | AuthFailed | AuthOk | Manifest | Accept | Start | Join | ChunkEnd | ChunkRef |
 *           FileDone | Complete | ErrorMessage | Bare} Message
 */

/** @typedef {(message: string) => ProtocolError} ErrorFactory */

/**
 * @param {Record<string, unknown>} obj
 * @param {string} key
 * @param {ErrorFactory} err
 */
function field(obj, key, err) {
  if (!Object.hasOwn(obj, key)) throw err(`missing field '${key}'`);
  return obj[key];
}

/**
 * @param {Record<string, unknown>} obj
 * @param {string} key
 * @param {number} lo
 * @param {number} hi
 * @param {ErrorFactory} [err]
 */
function int(obj, key, lo, hi, err = frameError) {
  const value = field(obj, key, err);
  if (!Number.isSafeInteger(value) || /** @type {number} */ (value) < lo || /** @type {number} */ (value) > hi) {
    throw err(`'${key}' must be an integer from ${lo} to ${hi}`);
  }
  return /** @type {number} */ (value);
}

/**
 * @param {Record<string, unknown>} obj
 * @param {string} key
 */
function bool(obj, key) {
  const value = field(obj, key, frameError);
  if (typeof value !== "boolean") throw frameError(`'${key}' must be true or false`);
  return value;
}

/**
 * @param {Record<string, unknown>} obj
 * @param {string} key
 * @param {ErrorFactory} [err]
 */
function str(obj, key, err = frameError) {
  const value = field(obj, key, err);
  if (typeof value !== "string") throw err(`'${key}' must be a string`);
  return value;
}

/**
 * @param {Record<string, unknown>} obj
 * @param {string} key
 * @param {ErrorFactory} [err]
 * @returns {unknown[]}
 */
function list(obj, key, err = frameError) {
  const value = field(obj, key, err);
  if (!Array.isArray(value)) throw err(`'${key}' must be an array`);
  return value;
}

/**
 * @param {unknown} value
 * @param {string} what
 * @param {ErrorFactory} [err]
 * @returns {Record<string, unknown>}
 */
function object(value, what, err = frameError) {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw err(`${what} must be an object`);
  return /** @type {Record<string, unknown>} */ (value);
}

/**
 * @param {Record<string, unknown>} obj
 * @param {string} key
 * @param {number} size
 */
function b64(obj, key, size) {
  const text = str(obj, key);
  try {
    return b64urlDecode(text, size);
  } catch (error) {
    throw frameError(`'${key}': ${/** @type {Error} */ (error).message}`);
  }
}

/**
 * @param {unknown} value
 * @param {string} what
 */
function hex(value, what) {
  try {
    return hexDecode(/** @type {string} */ (value), DIGEST_SIZE);
  } catch (error) {
    throw frameError(`'${what}': ${/** @type {Error} */ (error).message}`);
  }
}

/** @param {Record<string, unknown>} obj */
function checkVersion(obj) {
  const v = obj.v;
  if (!Number.isInteger(v) || typeof v !== "number") throw frameError(`'${obj.t}' message lacks integer field 'v'`);
  if (v !== PROTOCOL_VERSION) {
    throw new ProtocolError(BAD_VERSION, `peer speaks peerbeam protocol v${v}; this client speaks v${PROTOCOL_VERSION}`);
  }
}

/**
 * @param {unknown} value
 * @returns {FileEntry}
 */
function fileEntry(value) {
  const obj = object(value, "each file", manifestError);
  const name = field(obj, "name", manifestError);
  const size = field(obj, "size", manifestError);
  const type = field(obj, "type", manifestError);
  const mtime = obj.mtime ?? null;
  if (typeof name !== "string" || !name) throw manifestError("file name must be a non-empty string");
  if (!name.isWellFormed()) throw manifestError("file name contains an unpaired surrogate");
  if (utf8Length(name) > MAX_NAME_BYTES) throw manifestError(`file name is longer than ${MAX_NAME_BYTES} UTF-8 bytes`);
  if (!Number.isSafeInteger(size) || /** @type {number} */ (size) < 0 || /** @type {number} */ (size) > MAX_FILE_SIZE) {
    throw manifestError(`file size must be an integer from 0 to ${MAX_FILE_SIZE}`);
  }
  if (typeof type !== "string" || type.length > MAX_TYPE_CHARS || !PRINTABLE_ASCII.test(type)) {
    throw manifestError(`file type must be printable ASCII, at most ${MAX_TYPE_CHARS}`);
  }
  if (mtime !== null && !Number.isSafeInteger(mtime)) throw manifestError("mtime must be an integer (milliseconds since 1970)");
  return { name, size: /** @type {number} */ (size), type, mtime: /** @type {number | null} */ (mtime) };
}

/**
 * The optional `lanes` of hello, accept and start (protocol v1.1, protocol.md 7.4).
 * @param {Record<string, unknown>} obj
 */
function optionalLanes(obj) {
  return obj.lanes === undefined || obj.lanes === null ? null : int(obj, "lanes", 1, MAX_LANES);
}

/** @type {Record<string, (obj: Record<string, unknown>) => Message>} */
const PARSERS = {
  hello(obj) {
    checkVersion(obj);
    const nonce = b64(obj, "nonce", NONCE_SIZE);
    const password = bool(obj, "password");
    const lanes = optionalLanes(obj);
    if (!password) return { t: "hello", nonce, password, iterations: null, lanes };
    const kdf = object(field(obj, "kdf", frameError), "'kdf'");
    if (kdf.name !== PBKDF2_NAME) throw frameError(`unsupported kdf ${JSON.stringify(kdf.name)}; expected '${PBKDF2_NAME}'`);
    return { t: "hello", nonce, password, iterations: int(kdf, "iterations", MIN_ITERATIONS, MAX_ITERATIONS), lanes };
  },
  auth: (obj) => ({ t: "auth", nonce: b64(obj, "nonce", NONCE_SIZE), mac: b64(obj, "mac", MAC_SIZE) }),
  "auth-failed"(obj) {
    const retry = bool(obj, "retry");
    const remaining = int(obj, "remaining", 0, MAX_AUTH_ATTEMPTS);
    if (retry !== remaining > 0) throw frameError("'retry' must be true exactly when 'remaining' > 0");
    return { t: "auth-failed", retry, remaining };
  },
  "auth-ok": (obj) => ({ t: "auth-ok", mac: b64(obj, "mac", MAC_SIZE) }),
  manifest(obj) {
    checkVersion(obj);
    const files = list(obj, "files", manifestError);
    const transfer = field(obj, "transfer", manifestError);
    const parsed = files.map(fileEntry);
    const chunkSize = int(obj, "chunk_size", 1, MAX_SAFE_INTEGER, manifestError);
    if (typeof transfer !== "string" || !TRANSFER_ID.test(transfer)) {
      throw manifestError("transfer id must be 8-64 characters of A-Z a-z 0-9 - _");
    }
    if (chunkSize !== CHUNK_SIZE) throw manifestError(`chunk_size must be ${CHUNK_SIZE} in protocol v1`);
    if (parsed.length < 1 || parsed.length > MAX_FILES) throw manifestError(`a manifest lists 1 to ${MAX_FILES} files`);
    return { t: "manifest", transfer, chunkSize, files: parsed };
  },
  accept(obj) {
    const transfer = str(obj, "transfer");
    const files = list(obj, "files").map((value) => {
      const entry = object(value, "each accepted file");
      const offset = int(entry, "offset", 0, MAX_FILE_SIZE);
      if (offset === 0) {
        if (Object.hasOwn(entry, "prefix")) throw frameError("'prefix' must be absent when offset is 0");
        return { offset, prefix: null };
      }
      return { offset, prefix: hex(str(entry, "prefix"), "prefix") };
    });
    return { t: "accept", transfer, files, lanes: optionalLanes(obj) };
  },
  decline: () => ({ t: "decline" }),
  start: (obj) => ({
    t: "start",
    offsets: list(obj, "files").map((f) => int(object(f, "each file"), "offset", 0, MAX_FILE_SIZE)),
    lanes: optionalLanes(obj),
  }),
  join: (obj) => ({ t: "join", transfer: str(obj, "transfer"), lane: int(obj, "lane", 1, MAX_LANES - 1) }),
  chunk: (obj) => ({
    t: "chunk",
    file: int(obj, "file", 0, U32_MAX),
    chunk: int(obj, "chunk", 0, U32_MAX),
    size: int(obj, "size", 1, CHUNK_SIZE),
    sha256: hex(str(obj, "sha256"), "sha256"),
  }),
  ack: (obj) => ({ t: "ack", file: int(obj, "file", 0, U32_MAX), chunk: int(obj, "chunk", 0, U32_MAX) }),
  nack: (obj) => ({ t: "nack", file: int(obj, "file", 0, U32_MAX), chunk: int(obj, "chunk", 0, U32_MAX) }),
  "file-done": (obj) => ({ t: "file-done", file: int(obj, "file", 0, U32_MAX), digest: hex(str(obj, "digest"), "digest") }),
  done: () => ({ t: "done" }),
  complete: (obj) => ({ t: "complete", digests: list(obj, "digests").map((d) => hex(d, "digests")) }),
  ping: () => ({ t: "ping" }),
  pong: () => ({ t: "pong" }),
  error(obj) {
    const code = str(obj, "code");
    if (!ERROR_CODE.test(code)) throw frameError("'code' must be lowercase snake_case, at most 32 characters");
    // Cut by code points, unpaired surrogates replaced: the same text as the Python twin.
    const message = typeof obj.message === "string"
      ? Array.from(obj.message).slice(0, MAX_ERROR_MESSAGE_CHARS).join("").toWellFormed() : "";
    return { t: "error", code, message };
  },
};

/**
 * Parse one text frame. Throws ProtocolError (bad_frame, bad_manifest, bad_version).
 * @param {string} text
 * @returns {Message}
 */
export function parseMessage(text) {
  if (typeof text !== "string") throw frameError("text message expected");
  if (utf8Length(text) > MAX_TEXT_MESSAGE) throw frameError(`text message exceeds ${MAX_TEXT_MESSAGE} bytes`);
  let obj;
  try {
    obj = JSON.parse(text);
  } catch {
    throw frameError("text message is not JSON");
  }
  if (typeof obj !== "object" || obj === null || Array.isArray(obj)) throw frameError("text message must be a JSON object");
  const kind = obj.t;
  if (typeof kind !== "string") throw frameError("text message lacks string field 't'");
  const parse = Object.hasOwn(PARSERS, kind) ? PARSERS[kind] : undefined;
  if (!parse) throw frameError(`unknown message type ${JSON.stringify(kind.slice(0, 40))}`);
  return parse(obj);
}

/**
 * The wire JSON object of a message.
 * @param {Message} m
 * @returns {Record<string, unknown>}
 */
export function toJson(m) {
  switch (m.t) {
    case "hello": {
      /** @type {Record<string, unknown>} */
      const obj = { t: "hello", v: PROTOCOL_VERSION, nonce: b64urlEncode(m.nonce), password: m.password };
      if (m.password) obj.kdf = { name: PBKDF2_NAME, iterations: m.iterations };
      if (m.lanes) obj.lanes = m.lanes;
      return obj;
    }
    case "auth":
      return { t: m.t, nonce: b64urlEncode(m.nonce), mac: b64urlEncode(m.mac) };
    case "auth-failed":
      return { t: m.t, retry: m.retry, remaining: m.remaining };
    case "auth-ok":
      return { t: m.t, mac: b64urlEncode(m.mac) };
    case "manifest":
      return {
        t: m.t, v: PROTOCOL_VERSION, transfer: m.transfer, chunk_size: m.chunkSize,
        files: m.files.map((f) => {
          /** @type {Record<string, unknown>} */
          const entry = { name: f.name, size: f.size, type: f.type };
          if (f.mtime !== null) entry.mtime = f.mtime;
          return entry;
        }),
      };
    case "accept": {
      /** @type {Record<string, unknown>} */
      const obj = {
        t: m.t, transfer: m.transfer,
        files: m.files.map((f) => (f.offset > 0 && f.prefix ? { offset: f.offset, prefix: hexEncode(f.prefix) } : { offset: f.offset })),
      };
      if (m.lanes) obj.lanes = m.lanes;
      return obj;
    }
    case "start": {
      /** @type {Record<string, unknown>} */
      const obj = { t: m.t, files: m.offsets.map((offset) => ({ offset })) };
      if (m.lanes) obj.lanes = m.lanes;
      return obj;
    }
    case "join":
      return { t: m.t, transfer: m.transfer, lane: m.lane };
    case "chunk":
      return { t: m.t, file: m.file, chunk: m.chunk, size: m.size, sha256: hexEncode(m.sha256) };
    case "ack":
    case "nack":
      return { t: m.t, file: m.file, chunk: m.chunk };
    case "file-done":
      return { t: m.t, file: m.file, digest: hexEncode(m.digest) };
    case "complete":
      return { t: m.t, digests: m.digests.map(hexEncode) };
    case "error":
      return { t: m.t, code: m.code, message: Array.from(m.message).slice(0, MAX_ERROR_MESSAGE_CHARS).join("").toWellFormed() };
    default:
      return { t: m.t };
  }
}

/**
 * Serialise for `channel.send(text)`; refuses what the peer would reject.
 * @param {Message} message
 */
export function encodeMessage(message) {
  const text = JSON.stringify(toJson(message));
  if (utf8Length(text) > MAX_TEXT_MESSAGE) {
    if (message.t === "manifest") {
      throw manifestError(`the list of files does not fit one ${MAX_TEXT_MESSAGE}-byte message: send fewer files (or an archive)`);
    }
    throw new RangeError("message too large");
  }
  return text;
}

/**
 * Raise bad_frame unless `accept` answers `manifest` with valid offsets.
 * @param {Accept} accept
 * @param {Manifest} manifest
 */
export function checkAccept(accept, manifest) {
  if (accept.transfer !== manifest.transfer) throw frameError("accept names another transfer than the manifest");
  if (accept.files.length !== manifest.files.length) {
    throw frameError(`accept lists ${accept.files.length} files, the manifest ${manifest.files.length}`);
  }
  accept.files.forEach((answer, index) => {
    try {
      checkResumeOffset(answer.offset, manifest.files[index].size, manifest.chunkSize);
    } catch (error) {
      throw frameError(`file ${index}: ${/** @type {Error} */ (error).message}`);
    }
  });
}

/**
 * Raise bad_frame unless each start offset is 0 or the accepted one.
 * @param {Start} start
 * @param {Accept} accept
 */
export function checkStart(start, accept) {
  if (start.offsets.length !== accept.files.length || start.offsets.some((o, i) => o !== 0 && o !== accept.files[i].offset)) {
    throw frameError("start offsets must each be 0 or the accepted offset");
  }
  const offered = accept.lanes ?? null;
  const agreed = start.lanes ?? null;
  if ((agreed === null) !== (offered === null) || (agreed !== null && offered !== null && agreed > offered)) {
    throw frameError("start must agree on lanes exactly when accept offers them, and on no more than it offers");
  }
}

export const newTransferId = () => b64urlEncode(crypto.getRandomValues(new Uint8Array(16)));
