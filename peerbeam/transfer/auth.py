"""Peer authentication: key derivation, DTLS fingerprints, transcript and MAC.

Why this exists: WebRTC's DTLS encrypts the data channel, but each side only learns the
other's certificate fingerprint from the SDP, and the SDP travels through the signaling
server. A malicious server could hand each peer its own SDP and sit in the middle of two
DTLS sessions. Both peers therefore prove knowledge of a key derived from the link (and
the optional password) with a MAC over the fingerprints each of them actually sees. A
man in the middle makes the two views differ, so the MACs fail.

Only primitives WebCrypto offers are used (HKDF, PBKDF2, HMAC, SHA-256), so the browser
computes exactly the same bytes. See docs/protocol.md, "Authentication".
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import struct
import unicodedata
from dataclasses import dataclass
from typing import Literal

from .errors import SdpError
from .link import LINK_KEY_SIZE, validate_room

Role = Literal["sender", "receiver"]
SENDER: Role = "sender"
RECEIVER: Role = "receiver"

AUTH_KEY_SIZE = 32
NONCE_SIZE = 32  # per connection and side; fresh nonces make every MAC single-use
MAC_SIZE = 32
KDF_SALT_PREFIX = "peerbeam/v1/"
KDF_INFO = b"auth"
TRANSCRIPT_LABEL = b"peerbeam/v1/auth"

PBKDF2_NAME = "pbkdf2-sha256"
# OWASP's 2023 figure for PBKDF2-HMAC-SHA256. The sender announces the count in its hello,
# so it can be raised later without a protocol change; receivers bound it so that a hostile
# sender can neither downgrade the stretching nor freeze the receiver's tab.
DEFAULT_ITERATIONS = 600_000
MIN_ITERATIONS = 600_000
MAX_ITERATIONS = 10_000_000
MAX_AUTH_ATTEMPTS = 5  # password tries per connection before the sender hangs up


def new_nonce() -> bytes:
    return secrets.token_bytes(NONCE_SIZE)


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int = AUTH_KEY_SIZE) -> bytes:
    """HKDF (RFC 5869) with SHA-256: WebCrypto's deriveBits({name: "HKDF", ...})."""
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    okm, block, counter = b"", b"", 1
    while len(okm) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm += block
        counter += 1
    return okm[:length]


def normalize_password(password: str) -> bytes:
    """NFC then UTF-8: the same password typed on different systems gives the same bytes.

    (macOS input methods may produce decomposed accents, most others composed ones.)
    """
    if not isinstance(password, str) or not password:
        raise ValueError("password must be a non-empty string")
    try:
        return unicodedata.normalize("NFC", password).encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("password contains an unpaired surrogate") from None


def _salt(room: str) -> bytes:
    return (KDF_SALT_PREFIX + validate_room(room)).encode("utf-8")


def _check_link_key(link_key: bytes) -> None:
    if not isinstance(link_key, bytes | bytearray) or len(link_key) != LINK_KEY_SIZE:
        raise ValueError(f"link key must be {LINK_KEY_SIZE} bytes")


def stretch_password(link_key: bytes, room: str, password: str, iterations: int) -> bytes:
    """PBKDF2-HMAC-SHA256(password, salt = link_key || room, iterations, 32 bytes).

    Salting with the link key makes a precomputed dictionary useless: every link needs
    its own brute-force run, and only someone holding the link can start one.
    """
    _check_link_key(link_key)
    if not isinstance(iterations, int) or iterations < 1:
        raise ValueError("iterations must be a positive integer")
    salt = bytes(link_key) + validate_room(room).encode("utf-8")
    return hashlib.pbkdf2_hmac(
        "sha256", normalize_password(password), salt, iterations, AUTH_KEY_SIZE
    )


def derive_auth_key(
    link_key: bytes,
    room: str,
    password: str | None = None,
    iterations: int = DEFAULT_ITERATIONS,
) -> bytes:
    """The 32-byte HMAC key both peers prove knowledge of.

    no password:   HKDF(ikm = link_key,               salt = "peerbeam/v1/" + room, "auth")
    with password: HKDF(ikm = link_key || PBKDF2(...), salt = "peerbeam/v1/" + room, "auth")

    `iterations` is not range-checked here (test vectors use 1000); the hello parser
    enforces MIN_ITERATIONS..MAX_ITERATIONS on what a peer announces.
    """
    _check_link_key(link_key)
    ikm = bytes(link_key)
    if password is not None:
        ikm += stretch_password(link_key, room, password, iterations)
    return hkdf_sha256(ikm, _salt(room), KDF_INFO, AUTH_KEY_SIZE)


# --- DTLS fingerprints from SDP -------------------------------------------------------

_FINGERPRINT_ATTR = "a=fingerprint:"
_HASH_NAME = re.compile(r"[a-z0-9-]+")
_BLANKS = re.compile(r"[ \t]+")
_HEX_PAIRS = re.compile(r"[0-9A-F]{2}(?::[0-9A-F]{2})+")


def normalize_fingerprint(value: str) -> str:
    """'sha-256 ab:cd:...' -> 'sha-256 AB:CD:...' (algorithm lowercase, hex uppercase)."""
    # SDP is ASCII; checking first keeps Unicode case mapping ("\ufb00".upper() == "FF")
    # from turning garbage into a valid-looking fingerprint.
    parts = _BLANKS.split(value.strip(" \t")) if value.isascii() else []
    if len(parts) != 2:
        raise SdpError(f"a=fingerprint must be '<hash> <hex>', got {value!r:.80}")
    algorithm, digest = parts[0].lower(), parts[1].upper()
    if not _HASH_NAME.fullmatch(algorithm) or not _HEX_PAIRS.fullmatch(digest):
        raise SdpError(f"malformed a=fingerprint value {value!r:.80}")
    return f"{algorithm} {digest}"


def sdp_fingerprint_list(sdp: str) -> tuple[str, ...]:
    """Every a=fingerprint in the SDP (session and all media levels), normalised,
    de-duplicated and sorted.

    Why all of them and not the first: WebRTC stacks disagree about which line counts.
    aiortc writes sha-256, sha-384 and sha-512 lines and checks all; libwebrtc (Chrome)
    keeps one fingerprint per transport, a later line replacing an earlier one. If we
    bound only the first line, an attacker could append a line of its own that Chrome
    would verify against while our MAC still covered the genuine first line. Binding the
    whole set makes any added, removed or changed line break the MAC.
    """
    found: set[str] = set()
    for raw_line in sdp.split("\n"):
        line = raw_line.strip(" \t\r")
        prefix = line[: len(_FINGERPRINT_ATTR)]
        if prefix.isascii() and prefix.lower() == _FINGERPRINT_ATTR:
            found.add(normalize_fingerprint(line[len(_FINGERPRINT_ATTR) :]))
    if not found:
        raise SdpError("SDP has no a=fingerprint line")
    return tuple(sorted(found))


def sdp_fingerprints(sdp: str) -> str:
    """The canonical fingerprint text for the transcript: the sorted set joined by ','."""
    return ",".join(sdp_fingerprint_list(sdp))


# --- transcript and MAC ---------------------------------------------------------------


def _field(value: bytes) -> bytes:
    # Length-prefixed fields: no choice of separator can be smuggled inside a value.
    return struct.pack(">I", len(value)) + value


@dataclass(frozen=True)
class Handshake:
    """What one connection's authentication binds (protocol.md §5.3): the room, both
    sides' DTLS fingerprints as this peer sees them, and both nonces. Each side builds it
    from the SDPs it sent and received, so a man in the middle makes the two views differ.
    """

    room: str
    sender_fingerprints: str
    receiver_fingerprints: str
    sender_nonce: bytes
    receiver_nonce: bytes

    def __post_init__(self) -> None:
        validate_room(self.room)
        for name, nonce in (("sender", self.sender_nonce), ("receiver", self.receiver_nonce)):
            if not isinstance(nonce, bytes | bytearray) or len(nonce) != NONCE_SIZE:
                raise ValueError(f"{name} nonce must be {NONCE_SIZE} bytes")
        for name, fps in (("sender", self.sender_fingerprints), ("receiver", self.receiver_fingerprints)):
            if not isinstance(fps, str) or not fps or not fps.isascii():
                raise ValueError(f"{name} fingerprints must be the non-empty canonical text")

    def transcript(self, role: Role) -> bytes:
        """The bytes a MAC covers: seven fields, each u32 big-endian length || bytes:

        label "peerbeam/v1/auth", prover role, room, sender fingerprints, receiver
        fingerprints, sender nonce (raw 32 bytes), receiver nonce (raw 32 bytes).

        The role makes the sender's and the receiver's MAC different (no reflection);
        the nonces make them fresh (no replay of an old connection's MAC).
        """
        if role not in (SENDER, RECEIVER):
            raise ValueError("role must be 'sender' or 'receiver'")
        return b"".join(
            (
                _field(TRANSCRIPT_LABEL),
                _field(role.encode("ascii")),
                _field(self.room.encode("utf-8")),
                _field(self.sender_fingerprints.encode("ascii")),
                _field(self.receiver_fingerprints.encode("ascii")),
                _field(bytes(self.sender_nonce)),
                _field(bytes(self.receiver_nonce)),
            )
        )

    def mac(self, auth_key: bytes, role: Role) -> bytes:
        """HMAC-SHA256(auth_key, transcript): what `role` sends to prove the key."""
        return hmac.new(auth_key, self.transcript(role), hashlib.sha256).digest()

    def verify(self, auth_key: bytes, role: Role, mac: bytes) -> bool:
        """Constant-time check of the MAC the peer playing `role` sent."""
        return hmac.compare_digest(self.mac(auth_key, role), bytes(mac))
