// @ts-check
/**
 * The share link `<site>/#<room>.<key>[.<flags>]` (protocol.md section 3). The room id and
 * the key live in the fragment, which browsers never send to a server. Flag `p`: the sender
 * set a password, so a "sender" that asks for none is refused.
 */
import { b64urlDecode, b64urlEncode, randomBytes } from "./codec.js";
import { BAD_LINK, ProtocolError } from "./errors.js";

export const LINK_KEY_SIZE = 16;
export const LINK_KEY_CHARS = 22;
const ROOM = /^[A-Za-z0-9_-]{1,64}$/;
/** Distinct lowercase letters; those other than PASSWORD_FLAG are reserved. */
const FLAGS = /^(?!.*(.).*\1)[a-z]{1,26}$/;
const PASSWORD_FLAG = "p";

/** @typedef {{baseUrl: string, room: string, key: Uint8Array<ArrayBuffer>, password: boolean}} Link */

/** @param {string} message */
const linkError = (message) => new ProtocolError(BAD_LINK, message);

export const newLinkKey = () => randomBytes(LINK_KEY_SIZE);

/** @param {unknown} room */
export function validateRoom(room) {
  if (typeof room !== "string" || !ROOM.test(room)) {
    throw linkError("room id must be 1-64 characters of A-Z a-z 0-9 - _");
  }
  return room;
}

/** @param {string} baseUrl */
function checkBaseUrl(baseUrl) {
  let url;
  try {
    url = new URL(baseUrl);
  } catch {
    throw linkError("link must start with http:// or https:// and a host");
  }
  if ((url.protocol !== "http:" && url.protocol !== "https:") || !url.host) {
    throw linkError("link must start with http:// or https:// and a host");
  }
  return url;
}

/**
 * Split a share link into its parts. Throws ProtocolError (code bad_link).
 * @param {string} text
 * @returns {Link}
 */
export function parseLink(text) {
  if (typeof text !== "string") throw linkError("link must be text");
  const url = text.trim();
  const hash = url.indexOf("#");
  if (hash < 0) throw linkError("link has no '#<room>.<key>' part (was it cut off?)");
  const baseUrl = url.slice(0, hash);
  const fragment = url.slice(hash + 1);
  checkBaseUrl(baseUrl);
  const dot = fragment.indexOf(".");
  if (dot < 0) throw linkError("link fragment must be '<room>.<key>'");
  const room = validateRoom(fragment.slice(0, dot));
  const rest = fragment.slice(dot + 1);
  const flagsDot = rest.indexOf(".");
  const keyText = flagsDot < 0 ? rest : rest.slice(0, flagsDot);
  const flags = flagsDot < 0 ? "" : rest.slice(flagsDot + 1);
  if (flagsDot >= 0 && !FLAGS.test(flags)) throw linkError("link flags after the key must be distinct lowercase letters");
  if (keyText.length !== LINK_KEY_CHARS) {
    throw linkError(
      `link key must be ${LINK_KEY_CHARS} base64url characters, got ${keyText.length} (was the link cut off?)`,
    );
  }
  let key;
  try {
    key = b64urlDecode(keyText, LINK_KEY_SIZE);
  } catch (error) {
    throw linkError(`link key is not valid: ${/** @type {Error} */ (error).message}`);
  }
  return { baseUrl, room, key, password: flags.includes(PASSWORD_FLAG) };
}

/**
 * Build the share link; a base URL without a path gets "/".
 * @param {string} baseUrl
 * @param {string} room
 * @param {Uint8Array} key
 * @param {boolean} [password] the sender set a password (flag `p`)
 */
export function makeLink(baseUrl, room, key, password = false) {
  if (baseUrl.includes("#")) throw linkError("base URL must not contain '#'");
  checkBaseUrl(baseUrl);
  validateRoom(room);
  if (!(key instanceof Uint8Array) || key.length !== LINK_KEY_SIZE) {
    throw linkError(`link key must be ${LINK_KEY_SIZE} bytes`);
  }
  // "https://x.example" and "https://x.example?q" have an empty path: insert "/".
  const scheme = baseUrl.indexOf("://") + 3;
  const rest = baseUrl.slice(scheme);
  const end = rest.search(/[/?]/);
  if (end < 0) baseUrl += "/";
  else if (rest[end] === "?") baseUrl = baseUrl.slice(0, scheme + end) + "/" + rest.slice(end);
  return `${baseUrl}#${room}.${b64urlEncode(key)}${password ? `.${PASSWORD_FLAG}` : ""}`;
}
