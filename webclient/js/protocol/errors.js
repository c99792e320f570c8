// @ts-check
/** Errors of the transfer protocol, each with a stable code (protocol.md section 12). */

export const BAD_VERSION = "bad_version";
export const BAD_FRAME = "bad_frame";
export const BAD_MANIFEST = "bad_manifest";
export const AUTH_FAILED = "auth_failed";
export const CANCELLED = "cancelled";
export const DISK_FULL = "disk_full";
export const STORAGE_ERROR = "storage_error";
export const SOURCE_ERROR = "source_error";
export const INTEGRITY = "integrity";
export const TIMEOUT = "timeout";
export const BUSY = "busy";
export const INTERNAL = "internal";
/** Local-only codes, never sent to the peer. */
export const BAD_LINK = "bad_link";
export const BAD_SDP = "bad_sdp";

/**
 * How a receive ended besides the wire codes (the `code` of the receiver machine's `end`
 * action, protocol.md sections 12 and 14.2): never sent to the peer.
 */
export const DONE = "done";
export const DECLINED = "declined";
/** The sender refused our proof, made with a password. */
export const WRONG_PASSWORD = "wrong_password";
/** The sender refused our proof: the link is wrong or altered. */
export const WRONG_LINK = "wrong_link";
/** The link needs a password (flag `p`), the sender asked for none (protocol.md section 3). */
export const PASSWORD_DOWNGRADE = "password_downgrade";
/** No sender came within `sender_wait`. */
export const SENDER_GONE = "sender_gone";
export const ROOM_CLOSED = "room_closed";
/** Never connected, and the server offers no relay (or it did not help). */
export const NO_PATH = "no_path";
/** Never connected, and the relay did not answer. */
export const RELAY_FAILED = "relay_failed";
/** Connected before, then no progress for `give_up_after`. */
export const GAVE_UP = "gave_up";

export const WIRE_CODES = new Set([
  BAD_VERSION, BAD_FRAME, BAD_MANIFEST, AUTH_FAILED, CANCELLED, DISK_FULL,
  STORAGE_ERROR, SOURCE_ERROR, INTEGRITY, TIMEOUT, BUSY, INTERNAL,
]);

/** A protocol rule was broken. `code` is stable; `message` is for humans. */
export class ProtocolError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   */
  constructor(code, message) {
    super(message);
    this.name = "ProtocolError";
    this.code = code;
  }
}

/**
 * The `error` message that tells the peer about `error`; codes the wire does not know
 * become `internal` (protocol.md section 12).
 * @param {ProtocolError} error
 * @returns {{t: "error", code: string, message: string}}
 */
export function errorMessage(error) {
  return { t: "error", code: WIRE_CODES.has(error.code) ? error.code : INTERNAL, message: error.message };
}

/** @param {string} message */
export const frameError = (message) => new ProtocolError(BAD_FRAME, message);
/** @param {string} message */
export const manifestError = (message) => new ProtocolError(BAD_MANIFEST, message);
