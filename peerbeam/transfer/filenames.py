"""Turning a name from the manifest into a name that is safe to save under.

The sender controls file names, and a receiver must never let one choose where a file
lands: the result is always a single path component (no separators, never "." or
".."), so joining it to the target directory cannot leave it. It must also be a name
every common file system accepts (Windows is the strictest) and must not disguise its
type with bidirectional-text tricks ("photo\\u202egpj.exe" shows as "photoexe.jpg").

The algorithm is specified step by step in docs/protocol.md ("Saving file names") and
the JavaScript client follows it exactly; protocol-vectors.json checks both.
"""

from __future__ import annotations

import unicodedata

SAVE_NAME_MAX_BYTES = 200  # leaves room under the usual 255 for " (12)" and ".part"
MAX_EXTENSION_BYTES = 32  # a longer "extension" is just part of the name
FALLBACK_NAME = "file"

# Characters Windows forbids in names (and '/' everywhere), replaced by '_'.
_FORBIDDEN = set('<>:"/\\|?*')
# Bidirectional formatting characters, removed.
_BIDI = {0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)}
_RESERVED = {
    "CON",
    "PRN",
    "AUX",
    "NUL",
    "CONIN$",
    "CONOUT$",
    *(f"COM{c}" for c in "0123456789\u00b9\u00b2\u00b3"),
    *(f"LPT{c}" for c in "0123456789\u00b9\u00b2\u00b3"),
}


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _map_char(char: str) -> str:
    code = ord(char)
    if code in _BIDI:
        return ""
    if (
        char in _FORBIDDEN
        or code < 0x20
        or 0x7F <= code <= 0x9F  # DEL and C1 controls
        or 0xD800 <= code <= 0xDFFF  # unpaired surrogates (JS strings can hold them)
    ):
        return "_"
    return char


def _truncate(name: str, limit: int) -> str:
    """Cut to `limit` UTF-8 bytes at a code point boundary, keeping a short extension."""
    if _utf8_len(name) <= limit:
        return name
    dot = name.rfind(".")
    extension = name[dot:] if dot > 0 and _utf8_len(name[dot:]) <= MAX_EXTENSION_BYTES else ""
    stem = name[: len(name) - len(extension)]
    budget = limit - _utf8_len(extension)
    while _utf8_len(stem) > budget:
        stem = stem[:-1]
    return stem.rstrip(" .") + extension


def sanitize_filename(name: str) -> str:
    """A single, portable, non-deceptive path component derived from `name`.

    1. Unicode NFC.
    2. Remove bidi controls (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069);
       replace < > : " / \\ | ? *, C0 controls, DEL, C1 controls and unpaired
       surrogates with '_'.
    3. Strip spaces and dots from both ends (no hidden files, no "." / "..", and
       Windows drops trailing ones silently anyway).
    4. If empty: "file".
    5. If longer than 200 UTF-8 bytes: keep the extension (from the last '.', if that is
       not the first character and is at most 32 bytes), cut the rest at a code point
       boundary to fit, strip trailing spaces and dots from the cut part.
    6. If the part before the first '.', without trailing spaces, is a Windows device
       name (CON, PRN, AUX, NUL, CONIN$, CONOUT$, COM0-9, LPT0-9, COM/LPT + superscript
       1-3; any letter case): prefix '_'.
    """
    text = "".join(_map_char(c) for c in unicodedata.normalize("NFC", name))
    text = text.strip(" .") or FALLBACK_NAME
    text = _truncate(text, SAVE_NAME_MAX_BYTES)
    if text.split(".", 1)[0].rstrip(" ").upper() in _RESERVED:
        text = "_" + text
    return text


def numbered_filename(name: str, number: int) -> str:
    """'report.pdf', 2 -> 'report (2).pdf': the next candidate when a name is taken.

    `name` must already be sanitised. The stem is shortened if needed so that the
    number always survives the length limit (otherwise the candidates would repeat).
    """
    dot = name.rfind(".")
    extension = name[dot:] if dot > 0 and _utf8_len(name[dot:]) <= MAX_EXTENSION_BYTES else ""
    stem = name[: len(name) - len(extension)]
    suffix = f" ({number})"
    while stem and _utf8_len(stem + suffix + extension) > SAVE_NAME_MAX_BYTES:
        stem = stem[:-1]
    return (stem.rstrip(" .") or FALLBACK_NAME) + suffix + extension
