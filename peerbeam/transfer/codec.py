"""Strict encodings of binary values inside links and JSON messages.

Binary values are base64url without padding (RFC 4648 section 5) where they are secret or
random (keys, nonces, MACs) and lowercase hex where a human may compare them (digests).

Decoding is strict and canonical: exactly one text decodes to a given byte string.
Two implementations (Python here, JavaScript in the browser) must accept and reject the
same inputs, and lenient decoders differ in what they forgive (padding, whitespace,
non-zero trailing bits), so we forgive nothing.
"""

from __future__ import annotations

import base64
import binascii
import re

_B64URL_CHARS = re.compile(r"[A-Za-z0-9_-]*")
_HEX_LOWER = re.compile(r"[0-9a-f]*")


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str, size: int | None = None) -> bytes:
    """Decode unpadded base64url; reject padding, other alphabets, non-canonical tails.

    Raises ValueError (the callers wrap it into the ProtocolError of their context).
    """
    if not isinstance(text, str) or not _B64URL_CHARS.fullmatch(text):
        raise ValueError("not base64url (allowed: A-Z a-z 0-9 - _, no padding)")
    if len(text) % 4 == 1:
        raise ValueError("impossible base64url length")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as exc:  # pragma: no cover - excluded by the checks above
        raise ValueError(str(exc)) from None
    if b64url_encode(data) != text:
        # The unused low bits of the last character were not zero: another text
        # would decode to the same bytes, which a canonical encoding forbids.
        raise ValueError("non-canonical base64url (unused trailing bits are set)")
    if size is not None and len(data) != size:
        raise ValueError(f"expected {size} bytes, got {len(data)}")
    return data


def hex_decode(text: str, size: int) -> bytes:
    """Decode lowercase hex of exactly `size` bytes."""
    if not isinstance(text, str) or len(text) != 2 * size or not _HEX_LOWER.fullmatch(text):
        raise ValueError(f"expected {2 * size} lowercase hex digits")
    return bytes.fromhex(text)
