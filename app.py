"""peerbeam signaling: thin Chalice routes over chalicelib.

REST under the API root (``/rooms``), WebSocket ``$connect``/``$default``/
``$disconnect``. Each handler parses, calls chalicelib, and answers. The local
server (``peerbeam serve``) invokes these very handlers with API Gateway-shaped
events.

CORS is answered here, not by API Gateway, because the allowed origins are
configuration (``PEERBEAM_ALLOWED_ORIGINS``, see ``chalicelib/origins.py``): a
page from another origin gets ``403 origin_not_allowed`` and no CORS headers.

Every error is ``{"code", "message"}`` JSON (docs/signaling.md), including the ones
Chalice makes itself (405, 415, 500): the ``contract_errors`` middleware reshapes them.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import boto3
from chalice.app import Chalice, Request, Response, WebsocketEvent, WebsocketEventSourceHandler

from chalicelib import jsonvalue
from chalicelib.connect_limit import DynamoConnectLimiter
from chalicelib.errors import (
    BadJson,
    Forbidden,
    OriginNotAllowed,
    PeerbeamError,
    RateLimited,
    for_status,
)
from chalicelib.gateway import ApiGatewayTransport
from chalicelib.origins import header, origin_allowed
from chalicelib.rooms import RoomService
from chalicelib.settings import Settings
from chalicelib.signaling import Signaling
from chalicelib.store import RoomStore

app = Chalice(app_name="peerbeam")
app.experimental_feature_flags.update(["WEBSOCKETS"])
app.websocket_api.session = boto3.session.Session()
app.log.setLevel(logging.INFO)


def build_store(settings: Settings) -> RoomStore:
    if settings.store == "dynamodb":
        from chalicelib.store_dynamodb import DynamoRoomStore

        return DynamoRoomStore(boto3.client("dynamodb"), settings.table_name)
    if settings.store == "sqlite":
        from chalicelib.store_sqlite import SqliteRoomStore

        return SqliteRoomStore(settings.sqlite_path)
    raise ValueError(f"PEERBEAM_STORE must be 'dynamodb' or 'sqlite', not {settings.store!r}")


@lru_cache(maxsize=1)
def signaling() -> Signaling:
    """Built on first use, so tests and the local server can set the environment first."""
    settings = Settings.from_env()
    if settings.websocket_api_id:
        # REST handlers (DELETE /rooms) post to WebSocket members too.
        app.websocket_api.configure_from_api_id(
            settings.websocket_api_id, settings.websocket_stage or "api"
        )
    rooms = RoomService(build_store(settings), settings)
    return Signaling(rooms, ApiGatewayTransport(app.websocket_api))


@lru_cache(maxsize=1)
def connect_limiter() -> DynamoConnectLimiter | None:
    """The per-address cap on $connect (AWS; ``PEERBEAM_CONNECTS_PER_MINUTE``)."""
    settings = signaling().rooms.settings
    if settings.connects_per_minute <= 0 or settings.store != "dynamodb":
        return None
    return DynamoConnectLimiter(
        boto3.client("dynamodb"), settings.table_name, settings.connects_per_minute
    )


# What a preflight allows: the methods and request headers of the REST API.
CORS_ALLOW_METHODS = "GET, POST, DELETE, OPTIONS"
CORS_ALLOW_HEADERS = "authorization, content-type"
CORS_MAX_AGE = "600"


ResponseHeaders = dict[str, str | list[str]]


def current_request() -> Request:
    """The request of the running route: Chalice sets it before it calls one."""
    request = app.current_request
    if request is None:
        raise RuntimeError("no request is being handled")
    return request


def request_headers() -> Mapping[str, str]:
    request = app.current_request
    return request.headers if request is not None else {}


def check_origin(headers: Mapping[str, str] | None) -> None:
    """Refuse requests made by pages of other sites (see chalicelib/origins.py)."""
    allowed = signaling().rooms.settings.allowed_origins
    if not origin_allowed(header(headers, "origin"), header(headers, "host"), allowed):
        raise OriginNotAllowed("Pages from this origin may not use this peerbeam server.")


def cors_headers() -> ResponseHeaders:
    """CORS response headers for the current request: only for an allowed Origin."""
    headers = request_headers()
    origin = header(headers, "origin")
    if not origin:
        return {}
    allowed = signaling().rooms.settings.allowed_origins
    if not origin_allowed(origin, header(headers, "host"), allowed):
        return {"Vary": "Origin"}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


def respond(status: int, body: Any) -> Response:
    headers = cors_headers()
    if isinstance(body, dict):
        headers["Content-Type"] = "application/json"
    return Response(body=body, status_code=status, headers=headers)


def error_response(error: PeerbeamError) -> Response:
    return respond(error.status, error.to_dict())


# Chalice's own refusals carry its wording (which quotes the request); ours is stable.
CHALICE_ERROR_MESSAGES = {
    405: "This resource does not allow that method.",
    415: "Send the body as application/json or text/plain.",
    500: "The server failed; try again.",
}


def contract_shape(response: Response) -> Response:
    """Chalice's ``{"Code", "Message"}`` errors as ``{"code", "message"}``."""
    body = response.body
    if response.status_code >= 400 and isinstance(body, dict) and "Code" in body:
        message = CHALICE_ERROR_MESSAGES.get(response.status_code, "The request was refused.")
        response.body = for_status(response.status_code, message).to_dict()
        response.headers["Content-Type"] = "application/json"
    return response


@app.middleware("http")
def contract_errors(request: Request, get_response: Callable[[Request], Response]) -> Response:
    try:
        response = get_response(request)
    except Exception:
        app.log.exception("request to %s failed", getattr(request, "path", "?"))
        response = Response(body={"Code": "InternalServerError"}, status_code=500)
    return contract_shape(response)


def json_body() -> dict[str, Any]:
    raw = current_request().raw_body
    if not raw:
        return {}
    body = jsonvalue.parse(raw, "The request body")
    if not isinstance(body, dict):
        raise BadJson("The request body must be a JSON object.")
    return body


def public_ws_url(settings: Settings) -> str:
    """The configured WebSocket URL, or one derived from the request (local server)."""
    if settings.ws_url:
        return settings.ws_url
    headers = request_headers()
    scheme = "wss" if headers.get("x-forwarded-proto") == "https" else "ws"
    return f"{scheme}://{headers.get('host', '127.0.0.1')}/ws"


# text/plain too: a browser fetch() with a string body and no headers sends it,
# and it needs no CORS preflight.
JSON_TYPES = ["application/json", "text/plain"]


@app.route("/rooms", methods=["POST"], content_types=JSON_TYPES)
def create_room() -> Response:
    service = signaling().rooms
    try:
        check_origin(request_headers())
        created = service.create(json_body())
    except PeerbeamError as error:
        return error_response(error)
    return respond(
        201,
        {
            "room": created.room.room_id,
            "owner_token": created.owner_token,
            "expires_at": created.room.expires_at,
            "one_time": created.room.one_time,
            "max_receivers": created.room.max_receivers,
            "ws_url": public_ws_url(service.settings),
        },
    )


@app.route("/rooms/{room_id}", methods=["GET"])
def get_room(room_id: str) -> Response:
    try:
        check_origin(request_headers())
        return respond(200, signaling().room_state(room_id))
    except PeerbeamError as error:
        return error_response(error)


@app.route("/rooms/{room_id}", methods=["DELETE"])
def delete_room(room_id: str) -> Response:
    relay = signaling()
    auth = request_headers().get("authorization", "")
    scheme, _, token = auth.partition(" ")
    try:
        check_origin(request_headers())
        if scheme.lower() != "bearer" or not token:
            raise Forbidden("Send the owner token as 'Authorization: Bearer <token>'.")
        members = relay.rooms.close(room_id, token.strip())
    except PeerbeamError as error:
        return error_response(error)
    try:
        relay.announce_closed(members)
    except ValueError:
        # The WebSocket API endpoint is not configured for this function:
        # members learn of the closed room on their next message.
        app.log.warning("room %s closed without notifying members", room_id)
    return respond(204, "")


def preflight() -> Response:
    """A CORS preflight (DELETE with Authorization needs one): allowed origins only."""
    try:
        check_origin(request_headers())
    except PeerbeamError as error:
        return error_response(error)
    headers = cors_headers()
    if headers:
        headers.update(
            {
                "Access-Control-Allow-Methods": CORS_ALLOW_METHODS,
                "Access-Control-Allow-Headers": CORS_ALLOW_HEADERS,
                "Access-Control-Max-Age": CORS_MAX_AGE,
            }
        )
    return Response(body="", status_code=204, headers=headers)


@app.route("/rooms", methods=["OPTIONS"])
def rooms_preflight() -> Response:
    return preflight()


@app.route("/rooms/{room_id}", methods=["OPTIONS"])
def room_preflight(room_id: str) -> Response:
    return preflight()


@app.on_ws_connect()
def websocket_connect(event: WebsocketEvent) -> dict[str, Any] | None:
    raw = event.to_dict()
    query = raw.get("queryStringParameters") or {}
    source = (raw.get("requestContext") or {}).get("identity", {}).get("sourceIp")
    try:
        # Browsers apply no CORS to WebSockets: the Origin check is ours to make.
        check_origin(raw.get("headers"))
        limiter = connect_limiter()
        if limiter is not None:
            limiter.admit(source, int(time.time()))
        signaling().connect(event.connection_id, query)
    except PeerbeamError as error:
        # A non-2xx answer makes API Gateway refuse the handshake with that status.
        refusal: dict[str, Any] = {"statusCode": error.status, "body": json.dumps(error.to_dict())}
        if isinstance(error, RateLimited):
            refusal["headers"] = {"Retry-After": str(error.retry_after)}
        return refusal
    return None


@app.on_ws_message()
def websocket_message(event: WebsocketEvent) -> None:
    signaling().message(event.connection_id, event.body)


@app.on_ws_disconnect()
def websocket_disconnect(event: WebsocketEvent) -> None:
    signaling().disconnect(event.connection_id)


WEBSOCKET_HANDLERS: dict[str, WebsocketEventSourceHandler] = {
    "$connect": websocket_connect,
    "$default": websocket_message,
    "$disconnect": websocket_disconnect,
}
