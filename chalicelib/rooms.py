"""Room rules: creation bounds, who may join, reconnects, lock and close.

Pure decisions over a RoomStore; the store makes them atomic. Nothing here
talks to a network.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import ids
from .errors import (
    EXCERPT_CHARS,
    Forbidden,
    InvalidParameter,
    NotAllowed,
    NotJoined,
    PeerNotFound,
    RoomFull,
    RoomNotFound,
    excerpt,
)
from .settings import Settings
from .store import RECEIVER, ROLES, SENDER, Connection, Member, Room, RoomStore

Clock = Callable[[], float]


@dataclass(frozen=True)
class CreatedRoom:
    room: Room
    owner_token: str


@dataclass(frozen=True)
class Joined:
    """The outcome of a WebSocket join: who the connection is now."""

    room_id: str
    peer_id: str
    role: str
    # An older connection of the same member that this one replaced.
    replaced_connection: str | None
    # Connections that held a receiver slot without saying hello in time and lost it
    # to this one: to be told and closed.
    evicted: tuple[Connection, ...] = ()


def _bounded_int(body: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParameter(f"{name} must be an integer.", field=name)
    if not low <= value <= high:
        raise InvalidParameter(f"{name} must be between {low} and {high}.", field=name)
    return value


class RoomService:
    def __init__(self, store: RoomStore, settings: Settings, clock: Clock = time.time) -> None:
        self.store = store
        self.settings = settings
        self._clock = clock

    def now(self) -> int:
        return int(self._clock())

    # -- REST --------------------------------------------------------------

    def create(self, body: Mapping[str, Any]) -> CreatedRoom:
        known = {"expires_in", "one_time", "max_receivers"}
        unknown = sorted(set(body) - known)
        if unknown:
            name = unknown[0]
            raise InvalidParameter(f"Unknown field {excerpt(name)}.", field=name[:EXCERPT_CHARS])
        s = self.settings
        expires_in = _bounded_int(
            body, "expires_in", s.default_expires_in, s.min_expires_in, s.max_expires_in
        )
        one_time = body.get("one_time", False)
        if not isinstance(one_time, bool):
            raise InvalidParameter("one_time must be true or false.", field="one_time")
        max_receivers = _bounded_int(
            body, "max_receivers", s.default_max_receivers, 1, s.max_max_receivers
        )
        if one_time:
            # A one-time link serves exactly one receiver.
            max_receivers = 1
        now = self.now()
        owner_token = ids.new_owner_token()
        room = Room(
            room_id=ids.new_room_id(),
            owner_token_hash=ids.hash_token(owner_token),
            sender_peer=ids.new_peer_id(),
            created_at=now,
            expires_at=now + expires_in,
            one_time=one_time,
            max_receivers=max_receivers,
        )
        sender = Member(room.room_id, room.sender_peer, SENDER, room.owner_token_hash)
        self.store.sweep(now)
        self.store.create_room(room, sender)
        return CreatedRoom(room, owner_token)

    def get(self, room_id: str) -> Room:
        room = self.store.get_room(room_id, self.now()) if ids.is_valid_id(room_id) else None
        if room is None:
            raise RoomNotFound("This link is unknown or has expired.")
        return room

    def public_state(self, room_id: str) -> dict[str, Any]:
        """What a receiver page may know before joining; never the owner token.

        Slots held past the hello deadline are reclaimed (``reclaim_slots``) by the caller
        first, so that ``full`` does not turn a page away from a squatted room."""
        room = self.get(room_id)
        sender = self.store.get_member(room.room_id, room.sender_peer)
        return {
            "room": room.room_id,
            "expires_at": room.expires_at,
            "one_time": room.one_time,
            "locked": room.locked,
            "max_receivers": room.max_receivers,
            "receivers": room.receivers,
            "full": room.receivers >= room.max_receivers,
            "sender_online": bool(sender and sender.connection_id),
        }

    def close(self, room_id: str, owner_token: str) -> list[Member]:
        room = self.get(room_id)
        if not ids.token_matches(owner_token, room.owner_token_hash):
            raise Forbidden("Only the sender who created this room can close it.")
        return self.store.delete_room(room.room_id)

    # -- WebSocket ---------------------------------------------------------

    def join(self, query: Mapping[str, str], connection_id: str) -> Joined:
        """Admit a connection: ``room``, ``role``, and ``token``/``peer`` as the role needs.

        - sender: ``token`` = owner token. Always the room's one sender peer.
        - new receiver: optional ``token`` (16-128 URL-safe chars, chosen by the
          client) that lets it reclaim the same peer id after a reconnect.
        - returning receiver: ``peer`` plus the same ``token``.
        """
        room_id = query.get("room", "")
        role = query.get("role", "")
        token = query.get("token") or ""
        if not ids.is_valid_id(room_id):
            raise RoomNotFound("This link is unknown or has expired.")
        if role not in ROLES:
            raise InvalidParameter("role must be 'sender' or 'receiver'.", field="role")
        room = self.get(room_id)
        now = self.now()
        if role == SENDER:
            if not ids.token_matches(token, room.owner_token_hash):
                raise Forbidden("Wrong owner token for this room.")
            replaced = self.store.attach(room_id, room.sender_peer, connection_id, now)
            return Joined(room_id, room.sender_peer, SENDER, replaced)
        peer_id = query.get("peer")
        if peer_id:
            member = self.store.get_member(room_id, peer_id) if ids.is_valid_id(peer_id) else None
            if (
                member is None
                or member.role != RECEIVER
                or member.token_hash is None
                or not ids.token_matches(token, member.token_hash)
            ):
                raise Forbidden("This receiver cannot be resumed with that token.")
            attached: list[str | None] = []
            evicted = self._with_reclaim(
                room_id,
                lambda: attached.append(self.store.attach(room_id, peer_id, connection_id, now)),
            )
            return Joined(room_id, peer_id, RECEIVER, attached[-1], evicted)
        if token and not ids.CLIENT_TOKEN_PATTERN.match(token):
            raise InvalidParameter(
                "token must be 16 to 128 URL-safe characters.", field="token"
            )
        member = Member(
            room_id, ids.new_peer_id(), RECEIVER, ids.hash_token(token) if token else None
        )
        evicted = self._with_reclaim(
            room_id, lambda: self.store.add_receiver(member, connection_id, self.now())
        )
        return Joined(room_id, member.peer_id, RECEIVER, None, evicted)

    def _with_reclaim(self, room_id: str, take_slot: Callable[[], object]) -> tuple[Connection, ...]:
        """Take a receiver slot; if the room is full, reclaim slots held past the hello
        deadline and try once more. The evicted connections are returned. (Should another
        receiver win the freed slot first, RoomFull propagates; the evicted connections then
        learn on their next message, not_joined, and the local server closes them anyway.)"""
        try:
            take_slot()
            return ()
        except RoomFull:
            evicted = self.reclaim_slots(room_id)
            if not evicted:
                raise
        take_slot()
        return evicted

    def reclaim_slots(self, room_id: str) -> tuple[Connection, ...]:
        """Free the slots of receivers that connected more than ``hello_timeout`` seconds
        ago and have not said hello: knowing a room id is not enough to hold a slot."""
        now = self.now()
        deadline = now - self.settings.hello_timeout
        evicted = []
        for connection_id in self.store.unready_connections(room_id, deadline):
            connection = self.store.evict_unready(connection_id, deadline, now)
            if connection is not None:
                evicted.append(connection)
        return tuple(evicted)

    def membership(self, connection_id: str) -> Connection:
        connection = self.store.get_connection(connection_id, self.now())
        if connection is None:
            raise NotJoined("This connection is not in a room (it may have closed or expired).")
        return connection

    def leave(self, connection_id: str) -> Connection | None:
        return self.store.detach(connection_id, self.now())

    def ready_peers(self, connection: Connection) -> list[Member]:
        """Members this connection may see: the sender sees receivers, a receiver the sender."""
        visible = RECEIVER if connection.role == SENDER else SENDER
        return [
            member
            for member in self.store.list_members(connection.room_id)
            if member.role == visible and member.ready and member.connection_id
        ]

    def target(self, connection: Connection, peer_id: str) -> Member:
        """The member a signal may go to: in the same room, on the other side, and ready
        (said hello: before that its connection may not accept posts yet)."""
        member = self.store.get_member(connection.room_id, peer_id) if ids.is_valid_id(
            peer_id
        ) else None
        if (
            member is None
            or member.peer_id == connection.peer_id
            or member.role == connection.role
            or not (member.connection_id and member.ready)
        ):
            raise PeerNotFound("That peer is not in this room.")
        return member

    def require_sender(self, connection: Connection, what: str) -> None:
        if connection.role != SENDER:
            raise NotAllowed(f"Only the sender may {what}.")

    def lock(self, connection: Connection) -> None:
        self.require_sender(connection, "lock the room")
        if not self.store.lock_room(connection.room_id, self.now()):
            raise RoomNotFound("This room has expired.")

    def close_by_sender(self, connection: Connection) -> list[Member]:
        self.require_sender(connection, "close the room")
        return self.store.delete_room(connection.room_id)

