"""The share link: `<site>/#<room>.<key>`, or `<site>/#<room>.<key>.<flags>`.

The room id tells the signaling server which room to join; the key is the secret that
authenticates the two peers to each other. Both live in the URL fragment, which
browsers never send to a server (not in requests, not in Referer headers), so the
server that hosts the page and relays signaling never learns the key. The flags say what
the receiver must insist on: `p`, the sender set a password (so a "sender" that asks for
none is refused: docs/protocol.md §3).
"""

from __future__ import annotations

import re
import secrets
from typing import NamedTuple
from urllib.parse import urlsplit, urlunsplit

from .codec import b64url_decode, b64url_encode
from .errors import LinkError

LINK_KEY_SIZE = 16  # 128 bits: beyond brute force, and only 22 characters in the link
LINK_KEY_CHARS = 22  # base64url of 16 bytes, no padding
# The signaling server's room ids (chalicelib/ids.py): URL-safe, 1..64 characters.
ROOM_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Lowercase letters, each at most once; letters other than PASSWORD_FLAG are reserved.
FLAGS_PATTERN = re.compile(r"(?!.*(.).*\1)[a-z]{1,26}")
PASSWORD_FLAG = "p"


class Link(NamedTuple):
    base_url: str  # everything before '#': where the web client lives
    room: str
    key: bytes  # LINK_KEY_SIZE bytes
    password: bool = False  # the sender set a password (flag `p`)


def new_link_key() -> bytes:
    return secrets.token_bytes(LINK_KEY_SIZE)


def validate_room(room: object) -> str:
    if not isinstance(room, str) or not ROOM_PATTERN.fullmatch(room):
        raise LinkError("room id must be 1-64 characters of A-Z a-z 0-9 - _")
    return room


def _validate_base_url(base_url: str) -> None:
    try:
        parts = urlsplit(base_url)
    except ValueError as exc:
        raise LinkError(f"not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise LinkError("link must start with http:// or https:// and a host")


def parse_link(url: str) -> Link:
    """Split a share link into (base_url, room, key). Raises LinkError (code bad_link)."""
    if not isinstance(url, str):
        raise LinkError("link must be text")
    # Tolerate what copy and paste adds around a link, nothing inside it.
    url = url.strip()
    base_url, hash_sign, fragment = url.partition("#")
    if not hash_sign:
        raise LinkError("link has no '#<room>.<key>' part (was it cut off?)")
    _validate_base_url(base_url)
    room, dot, rest = fragment.partition(".")
    if not dot:
        raise LinkError("link fragment must be '<room>.<key>'")
    validate_room(room)
    key_text, dot, flags = rest.partition(".")
    if dot and not FLAGS_PATTERN.fullmatch(flags):
        raise LinkError("link flags after the key must be distinct lowercase letters")
    if len(key_text) != LINK_KEY_CHARS:
        raise LinkError(
            f"link key must be {LINK_KEY_CHARS} base64url characters, got {len(key_text)}"
            " (was the link cut off?)"
        )
    try:
        key = b64url_decode(key_text, LINK_KEY_SIZE)
    except ValueError as exc:
        raise LinkError(f"link key is not valid: {exc}") from None
    return Link(base_url, room, key, PASSWORD_FLAG in flags)


def make_link(base_url: str, room: str, key: bytes, password: bool = False) -> str:
    """Build the share link. A base URL without a path gets '/' so the link is canonical."""
    if "#" in base_url:
        raise LinkError("base URL must not contain '#'")
    _validate_base_url(base_url)
    validate_room(room)
    if not isinstance(key, bytes | bytearray) or len(key) != LINK_KEY_SIZE:
        raise LinkError(f"link key must be {LINK_KEY_SIZE} bytes")
    parts = urlsplit(base_url)
    if not parts.path:
        base_url = urlunsplit(parts._replace(path="/"))
    flags = f".{PASSWORD_FLAG}" if password else ""
    return f"{base_url}#{room}.{b64url_encode(bytes(key))}{flags}"
