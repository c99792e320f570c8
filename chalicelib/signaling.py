"""The signaling relay: validates client messages, relays signals, announces peers.

Dispatch is on the ``type`` field of each message because API Gateway routes
everything that is not $connect/$disconnect to $default.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from . import jsonvalue
from .errors import (
    BadMessage,
    HelloTimeout,
    InternalError,
    MessageTooLarge,
    PeerbeamError,
    PeerNotFound,
    UnknownType,
    excerpt,
)
from .gateway import ConnectionGone, Transport
from .ice import ice_servers
from .rooms import RoomService
from .store import Connection, Member

log = logging.getLogger(__name__)

Handler = Callable[["Signaling", Connection, Mapping[str, Any]], None]


def encode(message: Mapping[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))


def error_message(error: PeerbeamError) -> dict[str, Any]:
    return {"type": "error", **error.to_dict()}


class Signaling:
    def __init__(self, rooms: RoomService, transport: Transport) -> None:
        self.rooms = rooms
        self.transport = transport

    # -- lifecycle -----------------------------------------------------------

    def connect(self, connection_id: str, query: Mapping[str, str]) -> None:
        """$connect: admit or raise a PeerbeamError (the handshake is refused).

        Nothing may be posted to the new connection here: API Gateway only
        accepts posts once $connect has returned. The client says ``hello`` next.
        """
        joined = self.rooms.join(query, connection_id)
        self._evict(joined.evicted)
        if joined.replaced_connection:
            self._post(
                joined.replaced_connection,
                {
                    "type": "error",
                    "code": "connection_replaced",
                    "message": "This peer connected again from another connection.",
                },
            )
            self.transport.close(joined.replaced_connection)

    def _evict(self, connections: Iterable[Connection]) -> None:
        """Tell connections that lost their slot for not saying hello, and close them."""
        for connection in connections:
            error = HelloTimeout(
                f"Say hello within {self.rooms.settings.hello_timeout} s of connecting."
            )
            self._post(connection.connection_id, error_message(error))
            self.transport.close(connection.connection_id)

    def room_state(self, room_id: str) -> dict[str, Any]:
        """``GET /rooms/{id}``: the public state, after reclaiming slots held past the hello
        deadline, so that a squatted room does not look full to a receiver's page."""
        room = self.rooms.get(room_id)
        if room.receivers >= room.max_receivers:
            evicted = self.rooms.reclaim_slots(room.room_id)
            if evicted:
                try:
                    self._evict(evicted)
                except ValueError:
                    # The WebSocket API endpoint is not configured for this function:
                    # the evicted connections learn it on their next message (not_joined).
                    log.warning("reclaimed slots in room %s without closing connections", room_id)
        return self.rooms.public_state(room_id)

    def disconnect(self, connection_id: str) -> None:
        left = self.rooms.leave(connection_id)
        if left is None:
            return
        event = {"type": "peer-left", "peer": left.peer_id}
        for member in self.rooms.ready_peers(left):
            self._post_member(member, event)

    def message(self, connection_id: str, body: str | bytes | None) -> None:
        """$default: one client message. Errors go back to the sender of the message."""
        try:
            message = self._parse(body)
            handler = HANDLERS.get(message["type"])
            if handler is None:
                raise UnknownType(f"Unknown message type {excerpt(message['type'])}.")
            handler(self, self.rooms.membership(connection_id), message)
        except PeerbeamError as error:
            self._post(connection_id, error_message(error))
        except Exception:
            # A bug or an outage (the store), not the client's fault: one log line with
            # the traceback, an answer, and the connection stays usable.
            log.exception("message from connection %s failed", connection_id)
            self._post(connection_id, error_message(InternalError("The server failed; try again.")))

    def _parse(self, body: str | bytes | None) -> dict[str, Any]:
        # surrogatepass: a lone surrogate (from a JSON-escaped event body) becomes bytes that
        # are not UTF-8, which parse() refuses as bad_json, instead of failing here.
        raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else (body or b"")
        limit = self.rooms.settings.max_message_bytes
        if len(raw) > limit:
            raise MessageTooLarge(f"Messages may be at most {limit} bytes.")
        message = jsonvalue.parse(raw, "The message")
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            raise BadMessage("A message must be a JSON object with a string 'type'.")
        return message

    # -- delivery --------------------------------------------------------------

    def _post(self, connection_id: str, message: Mapping[str, Any]) -> bool:
        """Send, cleaning up after a connection that vanished without $disconnect."""
        try:
            self.transport.send(connection_id, encode(message))
        except ConnectionGone:
            log.info("connection %s is gone; cleaning up", connection_id)
            self.disconnect(connection_id)
            return False
        return True

    def _post_member(self, member: Member, message: Mapping[str, Any]) -> bool:
        return member.connection_id is not None and self._post(member.connection_id, message)

    def announce_closed(self, members: Iterable[Member]) -> None:
        for member in members:
            if member.connection_id:
                self._post_member(member, {"type": "room-closed"})
                self.transport.close(member.connection_id)

    # -- message handlers ------------------------------------------------------

    def hello(self, connection: Connection, message: Mapping[str, Any]) -> None:
        first = self.rooms.store.mark_ready(
            connection.room_id, connection.peer_id, connection.connection_id
        )
        peers = self.rooms.ready_peers(connection)
        self._post(
            connection.connection_id,
            {
                "type": "welcome",
                "room": connection.room_id,
                "peer": connection.peer_id,
                "role": connection.role,
                "expires_at": connection.expires_at,
                "ice_servers": ice_servers(
                    self.rooms.settings, connection.peer_id, self.rooms.now(),
                    connection.expires_at,
                ),
                "peers": [{"peer": m.peer_id, "role": m.role} for m in peers],
            },
        )
        if first:
            joined = {"type": "peer-joined", "peer": connection.peer_id, "role": connection.role}
            for member in peers:
                self._post_member(member, joined)

    def signal(self, connection: Connection, message: Mapping[str, Any]) -> None:
        to, data = message.get("to"), message.get("data")
        if not isinstance(to, str) or not isinstance(data, dict):
            raise BadMessage("A signal needs a string 'to' and an object 'data'.")
        target = self.rooms.target(connection, to)
        relayed = {"type": "signal", "from": connection.peer_id, "data": data}
        if not self._post_member(target, relayed):
            raise PeerNotFound("That peer has left the room.")

    def ping(self, connection: Connection, message: Mapping[str, Any]) -> None:
        self._post(connection.connection_id, {"type": "pong"})

    def lock(self, connection: Connection, message: Mapping[str, Any]) -> None:
        self.rooms.lock(connection)
        self._post(connection.connection_id, {"type": "locked"})

    def close(self, connection: Connection, message: Mapping[str, Any]) -> None:
        self.announce_closed(self.rooms.close_by_sender(connection))


HANDLERS: dict[str, Handler] = {
    "hello": Signaling.hello,
    "signal": Signaling.signal,
    "ping": Signaling.ping,
    "lock": Signaling.lock,
    "close": Signaling.close,
}
