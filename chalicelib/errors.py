"""Errors with stable codes, shared by the REST API and the WebSocket relay."""

from __future__ import annotations


class PeerbeamError(Exception):
    """A refusal the client should see: a stable ``code``, a human ``message``
    and the HTTP status used when it ends a REST call or a WebSocket handshake."""

    code = "internal_error"
    status = 500

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, str]:
        body = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return body


class BadJson(PeerbeamError):
    code = "bad_json"
    status = 400


class BadMessage(PeerbeamError):
    code = "bad_message"
    status = 400


class InvalidParameter(PeerbeamError):
    code = "invalid_parameter"
    status = 400


class UnknownType(PeerbeamError):
    code = "unknown_type"
    status = 400


class MessageTooLarge(PeerbeamError):
    code = "message_too_large"
    status = 413


class OriginNotAllowed(PeerbeamError):
    code = "origin_not_allowed"
    status = 403


class RoomNotFound(PeerbeamError):
    code = "room_not_found"
    status = 404


class Forbidden(PeerbeamError):
    code = "forbidden"
    status = 403


class RoomFull(PeerbeamError):
    code = "room_full"
    status = 409


class RoomLocked(PeerbeamError):
    code = "room_locked"
    status = 410


class PeerNotFound(PeerbeamError):
    code = "peer_not_found"
    status = 404


class NotAllowed(PeerbeamError):
    code = "not_allowed"
    status = 403


class NotJoined(PeerbeamError):
    code = "not_joined"
    status = 409
