"""Errors of the transfer protocol, each with a stable machine-readable code.

The codes are part of the protocol (docs/protocol.md, "Errors"): peers put them into
`{"t": "error", "code": ...}` messages and user interfaces map them to explanations,
so they never change once released. Messages are for humans and may change.
"""

from __future__ import annotations

# Codes that travel on the wire in {"t": "error"} messages.
BAD_VERSION = "bad_version"  # the peer speaks a protocol major version we do not
BAD_FRAME = "bad_frame"  # malformed or unexpected message / binary frame
BAD_MANIFEST = "bad_manifest"  # the manifest is invalid
AUTH_FAILED = "auth_failed"  # the other side failed to prove the link key (and password)
CANCELLED = "cancelled"  # a user stopped the transfer
DISK_FULL = "disk_full"  # the receiver ran out of space
STORAGE_ERROR = "storage_error"  # the receiver cannot write (permission, lost handle, ...)
SOURCE_ERROR = "source_error"  # the sender cannot read a file any more (moved, changed)
INTEGRITY = "integrity"  # a chunk kept failing verification, or final digests differ
TIMEOUT = "timeout"  # the peer stopped answering
BUSY = "busy"  # the sender serves as many receivers as it is willing to
INTERNAL = "internal"  # a bug; the message says what

WIRE_CODES: frozenset[str] = frozenset(
    {
        BAD_VERSION,
        BAD_FRAME,
        BAD_MANIFEST,
        AUTH_FAILED,
        CANCELLED,
        DISK_FULL,
        STORAGE_ERROR,
        SOURCE_ERROR,
        INTEGRITY,
        TIMEOUT,
        BUSY,
        INTERNAL,
    }
)

# Codes that only ever describe local input (never sent to the peer).
BAD_LINK = "bad_link"
BAD_SDP = "bad_sdp"


class ProtocolError(ValueError):
    """A protocol rule was broken. `code` is stable; `str(error)` is for humans.

    A ValueError so that callers validating user input (links, passwords) can treat
    it like any other invalid value.
    """

    code: str = INTERNAL

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self)


class LinkError(ProtocolError):
    """The link (URL) is not a peerbeam link."""

    code = BAD_LINK


class SdpError(ProtocolError):
    """The SDP has no usable a=fingerprint line."""

    code = BAD_SDP


class FrameError(ProtocolError):
    """A text message or binary frame is malformed or arrives when it must not."""

    code = BAD_FRAME


class ManifestError(ProtocolError):
    """The manifest (the list of offered files) is invalid."""

    code = BAD_MANIFEST


class VersionError(ProtocolError):
    """The peer speaks another major version of the protocol."""

    code = BAD_VERSION


class IntegrityError(ProtocolError):
    """Data failed verification beyond what the protocol repairs by re-sending."""

    code = INTEGRITY
