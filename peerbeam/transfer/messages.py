"""Text (JSON) control messages: one class per message, strict parsing, clear errors.

Every text frame is a JSON object with a string "t" naming its type. Unknown fields are
ignored (room for optional additions); unknown types, missing or mistyped fields are
errors (code bad_frame; bad_manifest for the manifest; bad_version for another major
version). Nothing in this module is MACed, so JSON needs no canonical form.

Integers must be JSON integers in JavaScript's safe range; binary values are base64url
without padding (nonces, MACs) or lowercase hex (digests). See docs/protocol.md.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar, Self, TypeAlias

from . import errors
from .auth import (
    MAC_SIZE,
    MAX_AUTH_ATTEMPTS,
    MAX_ITERATIONS,
    MIN_ITERATIONS,
    NONCE_SIZE,
    PBKDF2_NAME,
)
from .chunks import check_resume_offset
from .codec import b64url_decode, b64url_encode, hex_decode
from .constants import (
    CHUNK_SIZE,
    MAX_ERROR_MESSAGE_CHARS,
    MAX_FILE_SIZE,
    MAX_FILES,
    MAX_LANES,
    MAX_NAME_BYTES,
    MAX_SAFE_INTEGER,
    MAX_TEXT_MESSAGE,
    MAX_TYPE_CHARS,
    PROTOCOL_VERSION,
)
from .errors import FrameError, ManifestError, ProtocolError, VersionError

Json: TypeAlias = dict[str, Any]
DIGEST_SIZE = 32
_U32_MAX = 2**32 - 1
_TRANSFER_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
_ERROR_CODE = re.compile(r"[a-z][a-z0-9_]{0,31}")
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]*")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def new_transfer_id() -> str:
    """16 random bytes, base64url: tells a receiver that a reconnect is the same offer."""
    return b64url_encode(secrets.token_bytes(16))


# --- field readers: each raises `err` with a message naming the field ------------------


def _field(obj: Json, key: str, err: type[ProtocolError]) -> Any:
    if key not in obj:
        raise err(f"missing field '{key}'")
    return obj[key]


def _int(obj: Json, key: str, lo: int, hi: int, err: type[ProtocolError] = FrameError) -> int:
    value = _field(obj, key, err)
    # bool is an int in Python, never in JSON's sense.
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise err(f"'{key}' must be an integer from {lo} to {hi}")
    return value


def _bool(obj: Json, key: str) -> bool:
    value = _field(obj, key, FrameError)
    if not isinstance(value, bool):
        raise FrameError(f"'{key}' must be true or false")
    return value


def _str(obj: Json, key: str, err: type[ProtocolError] = FrameError) -> str:
    value = _field(obj, key, err)
    if not isinstance(value, str):
        raise err(f"'{key}' must be a string")
    return value


def _list(obj: Json, key: str, err: type[ProtocolError] = FrameError) -> list[Any]:
    value = _field(obj, key, err)
    if not isinstance(value, list):
        raise err(f"'{key}' must be an array")
    return value


def _obj(value: Any, what: str, err: type[ProtocolError] = FrameError) -> Json:
    if not isinstance(value, dict):
        raise err(f"{what} must be an object")
    return value


def _b64(obj: Json, key: str, size: int) -> bytes:
    try:
        return b64url_decode(_str(obj, key), size)
    except ValueError as exc:
        raise FrameError(f"'{key}': {exc}") from None


def _hex(obj: Json, key: str, size: int = DIGEST_SIZE) -> bytes:
    return _hex_value(_str(obj, key), key, size)


def _hex_value(value: Any, what: str, size: int = DIGEST_SIZE) -> bytes:
    try:
        return hex_decode(value, size)
    except ValueError as exc:
        raise FrameError(f"'{what}': {exc}") from None


def _check_bytes(value: bytes, size: int, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != size:
        raise ValueError(f"{what} must be {size} bytes")


def _lanes(obj: Json) -> int | None:
    """The optional `lanes` of hello, accept and start (protocol.md §7.4)."""
    return None if obj.get("lanes") is None else _int(obj, "lanes", 1, MAX_LANES)


def _check_lanes(lanes: int | None) -> None:
    if lanes is not None and not 1 <= lanes <= MAX_LANES:
        raise ValueError(f"lanes must be 1..{MAX_LANES}")


def _check_version(obj: Json) -> None:
    # Checked before anything else, so a newer peer learns "bad_version", not "bad_frame".
    version = obj.get("v")
    if not isinstance(version, int) or isinstance(version, bool):
        raise FrameError(f"'{obj.get('t')}' message lacks integer field 'v'")
    if version != PROTOCOL_VERSION:
        raise VersionError(
            f"peer speaks peerbeam protocol v{version}; this client speaks v{PROTOCOL_VERSION}"
        )


# --- authentication -------------------------------------------------------------------


@dataclass(frozen=True)
class Hello:
    """sender -> receiver, first message on the channel."""

    TYPE: ClassVar[str] = "hello"
    nonce: bytes
    password: bool
    iterations: int | None = None  # PBKDF2 iterations iff password
    lanes: int | None = None  # v1.1: the most connections the sender uses for one transfer

    def __post_init__(self) -> None:
        _check_bytes(self.nonce, NONCE_SIZE, "nonce")
        if self.password != (self.iterations is not None):
            raise ValueError("iterations are given exactly when a password is used")
        if self.iterations is not None and not MIN_ITERATIONS <= self.iterations <= MAX_ITERATIONS:
            raise ValueError(f"iterations must be {MIN_ITERATIONS}..{MAX_ITERATIONS}")
        _check_lanes(self.lanes)

    def to_json(self) -> Json:
        obj: Json = {
            "t": self.TYPE,
            "v": PROTOCOL_VERSION,
            "nonce": b64url_encode(self.nonce),
            "password": self.password,
        }
        if self.iterations is not None:
            obj["kdf"] = {"name": PBKDF2_NAME, "iterations": self.iterations}
        if self.lanes is not None:
            obj["lanes"] = self.lanes
        return obj

    @classmethod
    def from_json(cls, obj: Json) -> Hello:
        _check_version(obj)
        nonce = _b64(obj, "nonce", NONCE_SIZE)
        password = _bool(obj, "password")
        lanes = _lanes(obj)
        if not password:
            return cls(nonce, False, None, lanes)
        kdf = _obj(_field(obj, "kdf", FrameError), "'kdf'")
        if kdf.get("name") != PBKDF2_NAME:
            raise FrameError(f"unsupported kdf {kdf.get('name')!r}; expected {PBKDF2_NAME!r}")
        iterations = _int(kdf, "iterations", MIN_ITERATIONS, MAX_ITERATIONS)
        return cls(nonce, True, iterations, lanes)


@dataclass(frozen=True)
class Auth:
    """receiver -> sender: the receiver's proof (it proves first)."""

    TYPE: ClassVar[str] = "auth"
    nonce: bytes
    mac: bytes

    def __post_init__(self) -> None:
        _check_bytes(self.nonce, NONCE_SIZE, "nonce")
        _check_bytes(self.mac, MAC_SIZE, "mac")

    def to_json(self) -> Json:
        return {"t": self.TYPE, "nonce": b64url_encode(self.nonce), "mac": b64url_encode(self.mac)}

    @classmethod
    def from_json(cls, obj: Json) -> Auth:
        return cls(_b64(obj, "nonce", NONCE_SIZE), _b64(obj, "mac", MAC_SIZE))


@dataclass(frozen=True)
class AuthFailed:
    """sender -> receiver: the receiver's MAC was wrong. retry: another password may be
    tried on this connection (`remaining` more times); otherwise the sender hangs up."""

    TYPE: ClassVar[str] = "auth-failed"
    retry: bool
    remaining: int

    def __post_init__(self) -> None:
        if not 0 <= self.remaining <= MAX_AUTH_ATTEMPTS or self.retry != (self.remaining > 0):
            raise ValueError("retry is true exactly when attempts remain")

    def to_json(self) -> Json:
        return {"t": self.TYPE, "retry": self.retry, "remaining": self.remaining}

    @classmethod
    def from_json(cls, obj: Json) -> AuthFailed:
        retry = _bool(obj, "retry")
        remaining = _int(obj, "remaining", 0, MAX_AUTH_ATTEMPTS)
        if retry != (remaining > 0):
            raise FrameError("'retry' must be true exactly when 'remaining' > 0")
        return cls(retry, remaining)


@dataclass(frozen=True)
class AuthOk:
    """sender -> receiver: the receiver is authenticated; here is the sender's proof."""

    TYPE: ClassVar[str] = "auth-ok"
    mac: bytes

    def __post_init__(self) -> None:
        _check_bytes(self.mac, MAC_SIZE, "mac")

    def to_json(self) -> Json:
        return {"t": self.TYPE, "mac": b64url_encode(self.mac)}

    @classmethod
    def from_json(cls, obj: Json) -> AuthOk:
        return cls(_b64(obj, "mac", MAC_SIZE))


# --- manifest and its answer ----------------------------------------------------------


@dataclass(frozen=True)
class FileEntry:
    name: str  # as the sender knows it; sanitise before saving (filenames.py)
    size: int
    type: str = ""  # MIME type, "" when unknown (as File.type in browsers)
    mtime: int | None = None  # milliseconds since the Unix epoch (File.lastModified)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ManifestError("file name must be a non-empty string")
        try:
            name_bytes = len(self.name.encode("utf-8"))
        except UnicodeEncodeError:
            raise ManifestError("file name contains an unpaired surrogate") from None
        if name_bytes > MAX_NAME_BYTES:
            raise ManifestError(f"file name is longer than {MAX_NAME_BYTES} UTF-8 bytes")
        if (
            not isinstance(self.size, int)
            or isinstance(self.size, bool)
            or not (0 <= self.size <= MAX_FILE_SIZE)
        ):
            raise ManifestError(f"file size must be an integer from 0 to {MAX_FILE_SIZE}")
        if (
            not isinstance(self.type, str)
            or len(self.type) > MAX_TYPE_CHARS
            or not (_PRINTABLE_ASCII.fullmatch(self.type))
        ):
            raise ManifestError(f"file type must be printable ASCII, at most {MAX_TYPE_CHARS}")
        if self.mtime is not None and (
            not isinstance(self.mtime, int)
            or isinstance(self.mtime, bool)
            or not -MAX_SAFE_INTEGER <= self.mtime <= MAX_SAFE_INTEGER
        ):
            raise ManifestError("mtime must be an integer (milliseconds since 1970)")

    def to_json(self) -> Json:
        obj: Json = {"name": self.name, "size": self.size, "type": self.type}
        if self.mtime is not None:
            obj["mtime"] = self.mtime
        return obj

    @classmethod
    def from_json(cls, obj: Any) -> FileEntry:
        obj = _obj(obj, "each file", ManifestError)
        mtime = obj.get("mtime")
        return cls(
            name=_field(obj, "name", ManifestError),
            size=_field(obj, "size", ManifestError),
            type=_field(obj, "type", ManifestError),
            mtime=mtime,
        )


@dataclass(frozen=True)
class Manifest:
    """sender -> receiver after auth-ok: what is offered."""

    TYPE: ClassVar[str] = "manifest"
    transfer: str
    files: tuple[FileEntry, ...]
    chunk_size: int = CHUNK_SIZE

    def __post_init__(self) -> None:
        if not isinstance(self.transfer, str) or not _TRANSFER_ID.fullmatch(self.transfer):
            raise ManifestError("transfer id must be 8-64 characters of A-Z a-z 0-9 - _")
        if self.chunk_size != CHUNK_SIZE:
            raise ManifestError(f"chunk_size must be {CHUNK_SIZE} in protocol v1")
        if not isinstance(self.files, tuple) or not 1 <= len(self.files) <= MAX_FILES:
            raise ManifestError(f"a manifest lists 1 to {MAX_FILES} files")
        if not all(isinstance(f, FileEntry) for f in self.files):
            raise ManifestError("files must be FileEntry objects")

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)

    def to_json(self) -> Json:
        return {
            "t": self.TYPE,
            "v": PROTOCOL_VERSION,
            "transfer": self.transfer,
            "chunk_size": self.chunk_size,
            "files": [f.to_json() for f in self.files],
        }

    @classmethod
    def from_json(cls, obj: Json) -> Manifest:
        _check_version(obj)
        files = _list(obj, "files", ManifestError)
        return cls(
            transfer=_field(obj, "transfer", ManifestError),
            files=tuple(FileEntry.from_json(f) for f in files),
            chunk_size=_int(obj, "chunk_size", 1, MAX_SAFE_INTEGER, ManifestError),
        )


@dataclass(frozen=True)
class AcceptedFile:
    offset: int = 0  # bytes already held durably: whole chunks, or the whole file
    prefix: bytes | None = None  # file_digest of the held chunks' digests; iff offset > 0

    def __post_init__(self) -> None:
        if (self.offset > 0) != (self.prefix is not None):
            raise ValueError("prefix is given exactly when offset > 0")
        if self.prefix is not None:
            _check_bytes(self.prefix, DIGEST_SIZE, "prefix")

    def to_json(self) -> Json:
        obj: Json = {"offset": self.offset}
        if self.prefix is not None:
            obj["prefix"] = self.prefix.hex()
        return obj

    @classmethod
    def from_json(cls, obj: Any) -> AcceptedFile:
        obj = _obj(obj, "each accepted file")
        offset = _int(obj, "offset", 0, MAX_FILE_SIZE)
        if offset == 0:
            if "prefix" in obj:
                raise FrameError("'prefix' must be absent when offset is 0")
            return cls(0)
        return cls(offset, _hex(obj, "prefix"))


@dataclass(frozen=True)
class Accept:
    """receiver -> sender: yes, starting at these offsets (resume when > 0)."""

    TYPE: ClassVar[str] = "accept"
    transfer: str
    files: tuple[AcceptedFile, ...]
    lanes: int | None = None  # v1.1: the most connections the receiver takes

    def __post_init__(self) -> None:
        _check_lanes(self.lanes)

    def to_json(self) -> Json:
        obj: Json = {
            "t": self.TYPE,
            "transfer": self.transfer,
            "files": [f.to_json() for f in self.files],
        }
        if self.lanes is not None:
            obj["lanes"] = self.lanes
        return obj

    @classmethod
    def from_json(cls, obj: Json) -> Accept:
        return cls(
            _str(obj, "transfer"),
            tuple(AcceptedFile.from_json(f) for f in _list(obj, "files")),
            _lanes(obj),
        )

    def check(self, manifest: Manifest) -> None:
        """Raise FrameError unless this answers `manifest` with valid offsets."""
        if self.transfer != manifest.transfer:
            raise FrameError("accept names another transfer than the manifest")
        if len(self.files) != len(manifest.files):
            raise FrameError(
                f"accept lists {len(self.files)} files, the manifest {len(manifest.files)}"
            )
        for index, (entry, answer) in enumerate(zip(manifest.files, self.files, strict=True)):
            try:
                check_resume_offset(answer.offset, entry.size, manifest.chunk_size)
            except ValueError as exc:
                raise FrameError(f"file {index}: {exc}") from None


@dataclass(frozen=True)
class _Bare:
    """A message that is nothing but its type."""

    TYPE: ClassVar[str]

    def to_json(self) -> Json:
        return {"t": self.TYPE}

    @classmethod
    def from_json(cls, obj: Json) -> Self:
        return cls()


@dataclass(frozen=True)
class Decline(_Bare):
    """receiver -> sender: no thanks; the sender closes this connection."""

    TYPE: ClassVar[str] = "decline"


@dataclass(frozen=True)
class Start:
    """sender -> receiver: data follows from these offsets: the accepted offset, or 0
    where the receiver's prefix did not match the sender's file."""

    TYPE: ClassVar[str] = "start"
    offsets: tuple[int, ...]
    lanes: int | None = None  # v1.1: the agreed number of connections, at most both offers

    def __post_init__(self) -> None:
        _check_lanes(self.lanes)

    def to_json(self) -> Json:
        obj: Json = {"t": self.TYPE, "files": [{"offset": o} for o in self.offsets]}
        if self.lanes is not None:
            obj["lanes"] = self.lanes
        return obj

    @classmethod
    def from_json(cls, obj: Json) -> Start:
        files = _list(obj, "files")
        return cls(tuple(_int(_obj(f, "each file"), "offset", 0, MAX_FILE_SIZE) for f in files),
                   _lanes(obj))

    def check(self, accept: Accept) -> None:
        if len(self.offsets) != len(accept.files) or any(
            offset not in (0, answer.offset)
            for offset, answer in zip(self.offsets, accept.files, strict=False)
        ):
            raise FrameError("start offsets must each be 0 or the accepted offset")
        if (self.lanes is None) != (accept.lanes is None) or (
                self.lanes is not None and accept.lanes is not None and self.lanes > accept.lanes):
            raise FrameError("start must agree on lanes exactly when accept offers them, "
                             "and on no more than it offers")


@dataclass(frozen=True)
class Join:
    """sender -> receiver, v1.1: after auth-ok on an extra connection (a lane), in place of
    the manifest: this connection carries chunks of the transfer already started."""

    TYPE: ClassVar[str] = "join"
    transfer: str
    lane: int

    def __post_init__(self) -> None:
        if not 1 <= self.lane < MAX_LANES:
            raise ValueError(f"lane must be 1..{MAX_LANES - 1}")

    def to_json(self) -> Json:
        return {"t": self.TYPE, "transfer": self.transfer, "lane": self.lane}

    @classmethod
    def from_json(cls, obj: Json) -> Join:
        return cls(_str(obj, "transfer"), _int(obj, "lane", 1, MAX_LANES - 1))


# --- data phase -----------------------------------------------------------------------


@dataclass(frozen=True)
class ChunkEnd:
    """sender -> receiver, after the last piece of a chunk: its size and SHA-256."""

    TYPE: ClassVar[str] = "chunk"
    file: int
    chunk: int
    size: int
    sha256: bytes

    def __post_init__(self) -> None:
        _check_bytes(self.sha256, DIGEST_SIZE, "sha256")

    def to_json(self) -> Json:
        return {
            "t": self.TYPE,
            "file": self.file,
            "chunk": self.chunk,
            "size": self.size,
            "sha256": self.sha256.hex(),
        }

    @classmethod
    def from_json(cls, obj: Json) -> ChunkEnd:
        return cls(
            _int(obj, "file", 0, _U32_MAX),
            _int(obj, "chunk", 0, _U32_MAX),
            _int(obj, "size", 1, CHUNK_SIZE),
            _hex(obj, "sha256"),
        )


@dataclass(frozen=True)
class _ChunkRef:
    TYPE: ClassVar[str]
    file: int
    chunk: int

    def to_json(self) -> Json:
        return {"t": self.TYPE, "file": self.file, "chunk": self.chunk}

    @classmethod
    def from_json(cls, obj: Json) -> Self:
        return cls(_int(obj, "file", 0, _U32_MAX), _int(obj, "chunk", 0, _U32_MAX))


@dataclass(frozen=True)
class Ack(_ChunkRef):
    """receiver -> sender: chunk verified and written to storage."""

    TYPE: ClassVar[str] = "ack"


@dataclass(frozen=True)
class Nack(_ChunkRef):
    """receiver -> sender: chunk failed its digest; re-send from it (go-back-N)."""

    TYPE: ClassVar[str] = "nack"


@dataclass(frozen=True)
class FileDone:
    """sender -> receiver, after the last chunk of a file: the file digest."""

    TYPE: ClassVar[str] = "file-done"
    file: int
    digest: bytes

    def __post_init__(self) -> None:
        _check_bytes(self.digest, DIGEST_SIZE, "digest")

    def to_json(self) -> Json:
        return {"t": self.TYPE, "file": self.file, "digest": self.digest.hex()}

    @classmethod
    def from_json(cls, obj: Json) -> FileDone:
        return cls(_int(obj, "file", 0, _U32_MAX), _hex(obj, "digest"))


@dataclass(frozen=True)
class Done(_Bare):
    """sender -> receiver: every chunk of every file is acknowledged."""

    TYPE: ClassVar[str] = "done"


@dataclass(frozen=True)
class Complete:
    """receiver -> sender: all files are saved; the file digests it computed."""

    TYPE: ClassVar[str] = "complete"
    digests: tuple[bytes, ...]

    def to_json(self) -> Json:
        return {"t": self.TYPE, "digests": [d.hex() for d in self.digests]}

    @classmethod
    def from_json(cls, obj: Json) -> Complete:
        return cls(tuple(_hex_value(d, "digests") for d in _list(obj, "digests")))


# --- any time -------------------------------------------------------------------------


@dataclass(frozen=True)
class Ping(_Bare):
    """Either direction, any time: optional keepalive; answer with pong."""

    TYPE: ClassVar[str] = "ping"


@dataclass(frozen=True)
class Pong(_Bare):
    TYPE: ClassVar[str] = "pong"


@dataclass(frozen=True)
class ErrorMessage:
    """Either direction, any time: the sender of it closes the channel next."""

    TYPE: ClassVar[str] = "error"
    code: str
    message: str = field(default="")

    def __post_init__(self) -> None:
        if not isinstance(self.code, str) or not _ERROR_CODE.fullmatch(self.code):
            raise ValueError("error code must be lowercase snake_case, at most 32 characters")
        # Long texts are cut, not refused: the connection is ending anyway and the code
        # says what matters. Cut by code points and with unpaired surrogates replaced, as
        # the JavaScript twin does, so both read the same text and can always encode it.
        # Display it as plain text only, never as HTML.
        text = _LONE_SURROGATE.sub("\ufffd", str(self.message)[:MAX_ERROR_MESSAGE_CHARS])
        object.__setattr__(self, "message", text)

    @classmethod
    def of(cls, exc: ProtocolError) -> ErrorMessage:
        code = exc.code if exc.code in errors.WIRE_CODES else errors.INTERNAL
        return cls(code, str(exc))

    def to_json(self) -> Json:
        return {"t": self.TYPE, "code": self.code, "message": self.message}

    @classmethod
    def from_json(cls, obj: Json) -> ErrorMessage:
        code = _str(obj, "code")
        if not _ERROR_CODE.fullmatch(code):
            raise FrameError("'code' must be lowercase snake_case, at most 32 characters")
        message = obj.get("message", "")
        return cls(code, message if isinstance(message, str) else "")


Message: TypeAlias = (
    Hello
    | Auth
    | AuthFailed
    | AuthOk
    | Manifest
    | Accept
    | Decline
    | Start
    | Join
    | ChunkEnd
    | Ack
    | Nack
    | FileDone
    | Done
    | Complete
    | Ping
    | Pong
    | ErrorMessage
)
MESSAGE_TYPES: dict[str, Any] = {
    cls.TYPE: cls
    for cls in (
        Hello,
        Auth,
        AuthFailed,
        AuthOk,
        Manifest,
        Accept,
        Decline,
        Start,
        Join,
        ChunkEnd,
        Ack,
        Nack,
        FileDone,
        Done,
        Complete,
        Ping,
        Pong,
        ErrorMessage,
    )
}


def _reject_constant(name: str) -> Any:
    raise FrameError(f"JSON value {name} is not allowed")


def _number(literal: str) -> int | float:
    """A JSON number with a fraction or an exponent, read as JavaScript reads it: 1.0 and
    1e0 are the integer 1 there (JSON.parse cannot tell them apart), so they are here too;
    anything else stays a float, which no integer field accepts."""
    value = Decimal(literal)
    if value.is_finite() and value == value.to_integral_value() and abs(value) <= MAX_SAFE_INTEGER:
        return int(value)
    return float(literal)


def parse_message(text: str) -> Message:
    """Parse one text frame. Raises FrameError, ManifestError or VersionError."""
    if not isinstance(text, str):
        raise FrameError("text message expected")
    if len(text.encode("utf-8", "surrogatepass")) > MAX_TEXT_MESSAGE:
        raise FrameError(f"text message exceeds {MAX_TEXT_MESSAGE} bytes")
    try:
        # NaN and Infinity are Python extensions; JavaScript's JSON.parse rejects them.
        obj = json.loads(text, parse_constant=_reject_constant, parse_float=_number)
    except ProtocolError:
        raise
    except json.JSONDecodeError as exc:
        raise FrameError(f"text message is not JSON: {exc.msg}") from None
    except ValueError:  # e.g. an integer literal of thousands of digits
        raise FrameError("text message has an unreadable JSON value") from None
    except RecursionError:
        raise FrameError("text message nests too deeply") from None
    if not isinstance(obj, dict):
        raise FrameError("text message must be a JSON object")
    kind = obj.get("t")
    if not isinstance(kind, str):
        raise FrameError("text message lacks string field 't'")
    cls = MESSAGE_TYPES.get(kind)
    if cls is None:
        raise FrameError(f"unknown message type {kind[:40]!r}")
    try:
        message: Message = cls.from_json(obj)
    except ProtocolError:
        raise
    except (ValueError, TypeError) as exc:  # a constructor check, not yet a ProtocolError
        raise FrameError(f"'{kind}' message: {exc}") from None
    return message


def encode_message(message: Message) -> str:
    """Serialise for `channel.send(text)`; refuses messages the peer would reject."""
    text = json.dumps(message.to_json(), separators=(",", ":"), ensure_ascii=False)
    if len(text.encode("utf-8")) > MAX_TEXT_MESSAGE:
        if isinstance(message, Manifest):
            raise ManifestError(
                f"the list of files does not fit one {MAX_TEXT_MESSAGE}-byte message: "
                "send fewer files (or an archive)"
            )
        raise ValueError("message too large")
    return text
