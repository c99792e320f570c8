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

/** @param {string} message */
export const frameError = (message) => new ProtocolError(BAD_FRAME, message);
/** @param {string} message */
export const manifestError = (message) => new ProtocolError(BAD_MANIFEST, message);
