"""Errors with stable codes, shared by the REST API, the WebSocket relay and the local server.

Every refusal a client can see is one of these classes: ``docs/signaling.md`` lists the
codes, and nothing else may appear in a ``code`` field.
"""

from __future__ import annotations

import json

# How much client-supplied text an error message may quote.
EXCERPT_CHARS = 32


def excerpt(value: object, limit: int = EXCERPT_CHARS) -> str:
    """A short, quoted, ASCII-escaped rendering of client-supplied text for an error message.

    Error messages go back to the client and into logs: echoing a client's input in full
    lets it make the server hold and write as much as it sends (and put control characters
    into terminals and logs)."""
    text = value if isinstance(value, str) else repr(value)
    shown = json.dumps(text[:limit], ensure_ascii=True)
    return shown[:-1] + '..."' if len(text) > limit else shown


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


class HelloTimeout(PeerbeamError):
    """Sent to a connection that held a receiver slot without saying hello in time."""

    code = "hello_timeout"
    status = 408


class RateLimited(PeerbeamError):
    code = "rate_limited"
    status = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        # Whole seconds until a retry can succeed: the Retry-After header.
        self.retry_after = max(1, retry_after)


class InternalError(PeerbeamError):
    code = "internal_error"
    status = 500


# HTTP-level refusals (the REST API's routing, the local server's limits).


class BadRequest(PeerbeamError):
    code = "bad_request"
    status = 400


class NotFound(PeerbeamError):
    code = "not_found"
    status = 404


class MethodNotAllowed(PeerbeamError):
    code = "method_not_allowed"
    status = 405


class RequestTimeout(PeerbeamError):
    code = "request_timeout"
    status = 408


class RequestTooLarge(PeerbeamError):
    code = "request_too_large"
    status = 413


class UnsupportedMediaType(PeerbeamError):
    code = "unsupported_media_type"
    status = 415


class HostNotAllowed(PeerbeamError):
    code = "host_not_allowed"
    status = 421


class ServerBusy(PeerbeamError):
    code = "server_busy"
    status = 503


# The error a refusal with this HTTP status gets when it does not come from our own code
# (Chalice's routing, aiohttp's parser): one stable code per status.
BY_STATUS: dict[int, type[PeerbeamError]] = {
    400: BadRequest,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    408: RequestTimeout,
    413: RequestTooLarge,
    415: UnsupportedMediaType,
    421: HostNotAllowed,
    429: RateLimited,
    503: ServerBusy,
}


def for_status(status: int, message: str) -> PeerbeamError:
    """The refusal for an HTTP status produced outside our handlers."""
    kind = BY_STATUS.get(status)
    if kind is RateLimited:
        return RateLimited(message, retry_after=1)
    if kind is None:
        return InternalError(message) if status >= 500 else BadRequest(message)
    return kind(message)
