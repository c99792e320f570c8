"""Unguessable identifiers and secret comparison."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

# 64 random bits: enumeration is pointless, and a guessed id is useless
# without the link key, which never reaches the server.
ROOM_ID_BYTES = 8
PEER_ID_BYTES = 12
OWNER_TOKEN_BYTES = 32

ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Receiver tokens are chosen by the client; demand enough entropy.
CLIENT_TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,128}$")


def new_room_id() -> str:
    return secrets.token_urlsafe(ROOM_ID_BYTES)


def new_peer_id() -> str:
    return secrets.token_urlsafe(PEER_ID_BYTES)


def new_owner_token() -> str:
    return secrets.token_urlsafe(OWNER_TOKEN_BYTES)


def hash_token(token: str) -> str:
    """Tokens are stored hashed: a leaked store does not hand out control of rooms."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_matches(token: str, token_hash: str) -> bool:
    return hmac.compare_digest(hash_token(token), token_hash)


def is_valid_id(value: object) -> bool:
    return isinstance(value, str) and bool(ID_PATTERN.match(value))
