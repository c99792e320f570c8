// @ts-check
/**
 * Fault injection for tests, the page's twin of peerbeam/peer/faults.py. An init script
 * sets `globalThis.PEERBEAM_FAULTS = "corrupt=F:C"` before the page loads; pages never set
 * it, and unset every check here is a no-op.
 *
 * - `corrupt=F:C`: the sender flips one byte of file F chunk C, once, after hashing it
 *   (the receiver must detect it, nack, and get it again: go-back-N).
 * - `garble=F:C`: the sender breaks the header (magic byte) of the first piece of file F
 *   chunk C, once (the receiver must end the transfer with bad_frame).
 * - `drop_lane=N`: the receiver closes its first extra connection (a v1.1 lane) once after
 *   N bytes of files arrived (only that lane's chunks in flight are sent again).
 */

/** @param {unknown} spec */
function parse(spec) {
  /** @type {Map<string, string>} */
  const faults = new Map();
  if (typeof spec !== "string") return faults;
  for (const item of spec.split(",").map((part) => part.trim()).filter(Boolean)) {
    const [name, value = ""] = item.split("=", 2);
    faults.set(name, value);
  }
  return faults;
}

const FAULTS = parse(/** @type {any} */ (globalThis).PEERBEAM_FAULTS);

/**
 * The bytes to send for a chunk: `data`, or once a corrupted copy of it.
 * @param {number} file
 * @param {number} chunk
 * @param {Uint8Array} data
 */
export function corruptOnce(file, chunk, data) {
  if (FAULTS.get("corrupt") !== `${file}:${chunk}`) return data;
  FAULTS.delete("corrupt");
  const copy = data.slice();
  copy[0] ^= 0xff;
  return copy;
}

/**
 * Break the header of the frame about to be sent for the first piece of (file, chunk), once.
 * @param {number} file
 * @param {number} chunk
 * @param {number} offset
 * @param {Uint8Array} frame
 */
export function garbleOnce(file, chunk, offset, frame) {
  if (offset !== 0 || FAULTS.get("garble") !== `${file}:${chunk}`) return;
  FAULTS.delete("garble");
  frame[0] ^= 0xff;
}

/**
 * True once, when `received` reaches the threshold of `fault`.
 * @param {number} received
 * @param {string} fault
 */
export function dropNow(received, fault) {
  const threshold = FAULTS.get(fault);
  if (threshold === undefined || received < Number(threshold)) return false;
  FAULTS.delete(fault);
  return true;
}
