// @ts-check
/**
 * A manifest name -> one safe, portable, non-deceptive path component (protocol.md 16).
 * Follows peerbeam/transfer/filenames.py step by step; the vectors check both.
 */
import { utf8Length } from "./codec.js";

export const SAVE_NAME_MAX_BYTES = 200;
const MAX_EXTENSION_BYTES = 32;
const FALLBACK_NAME = "file";
const FORBIDDEN = new Set('<>:"/\\|?*');
const BIDI = new Set([0x061c, 0x200e, 0x200f, 0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2066, 0x2067, 0x2068, 0x2069]);
const RESERVED = new Set(["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]);
for (const c of "0123456789\u00b9\u00b2\u00b3") {
  RESERVED.add(`COM${c}`);
  RESERVED.add(`LPT${c}`);
}

/** @param {string} char one code point (or a lone surrogate) */
function mapChar(char) {
  const code = /** @type {number} */ (char.codePointAt(0));
  if (BIDI.has(code)) return "";
  if (FORBIDDEN.has(char) || code < 0x20 || (code >= 0x7f && code <= 0x9f) || (code >= 0xd800 && code <= 0xdfff)) {
    return "_";
  }
  return char;
}

/** @param {string} text */
const stripSpacesDots = (text) => text.replace(/^[ .]+|[ .]+$/g, "");
/** @param {string} text */
const stripTrailingSpacesDots = (text) => text.replace(/[ .]+$/, "");

/** @param {string} name */
function extensionOf(name) {
  const dot = name.lastIndexOf(".");
  return dot > 0 && utf8Length(name.slice(dot)) <= MAX_EXTENSION_BYTES ? name.slice(dot) : "";
}

/**
 * @param {string} name
 * @param {number} limit
 */
function truncate(name, limit) {
  if (utf8Length(name) <= limit) return name;
  const extension = extensionOf(name);
  const stem = Array.from(name.slice(0, name.length - extension.length));
  const budget = limit - utf8Length(extension);
  while (utf8Length(stem.join("")) > budget) stem.pop();
  return stripTrailingSpacesDots(stem.join("")) + extension;
}

/** @param {string} name */
export function sanitizeFilename(name) {
  let text = Array.from(name.normalize("NFC"), mapChar).join("");
  text = stripSpacesDots(text) || FALLBACK_NAME;
  text = truncate(text, SAVE_NAME_MAX_BYTES);
  if (RESERVED.has(text.split(".", 1)[0].replace(/ +$/, "").toUpperCase())) text = "_" + text;
  return text;
}

/**
 * "report.pdf", 2 -> "report (2).pdf"; the stem shrinks so the number survives.
 * @param {string} name an already sanitised name
 * @param {number} number
 */
export function numberedFilename(name, number) {
  const extension = extensionOf(name);
  const stem = Array.from(name.slice(0, name.length - extension.length));
  const suffix = ` (${number})`;
  while (stem.length && utf8Length(stem.join("") + suffix + extension) > SAVE_NAME_MAX_BYTES) stem.pop();
  return (stripTrailingSpacesDots(stem.join("")) || FALLBACK_NAME) + suffix + extension;
}
