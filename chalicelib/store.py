"""The room store interface and the records it keeps.

A store offers *atomic* operations: every rule that must hold under concurrency
(two receivers racing for the last slot, a reconnect racing a disconnect) is
enforced inside one store operation, with a transaction (SQLite) or a
conditional write (DynamoDB). The room rules in ``rooms.py`` decide everything
that needs no atomicity.

Expiry is checked on every read: DynamoDB's TTL deletes expired items only
eventually (typically within days), so an expired room must look exactly like
a missing one.

Rooms stay small whatever their members do: a receiver that can never come back
(no token) is deleted when it leaves, and a room keeps at most ``max_receivers``
away receivers (the ones that left longest ago are forgotten first), so a room
never holds more than ``1 + 2 * max_receivers`` members, and every per-room
operation costs the same after 5 or 5000 joins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

SENDER = "sender"
RECEIVER = "receiver"
ROLES = (SENDER, RECEIVER)


@dataclass(frozen=True)
class Room:
    room_id: str
    owner_token_hash: str
    sender_peer: str
    created_at: int
    expires_at: int
    one_time: bool
    max_receivers: int
    locked: bool = False
    # Receivers currently holding a slot (connected).
    receivers: int = 0


@dataclass(frozen=True)
class Member:
    room_id: str
    peer_id: str
    role: str
    # Hash of the token that lets this member come back after a reconnect:
    # the owner token for the sender, the client-chosen token for a receiver.
    token_hash: str | None
    # None while the member is away (disconnected, may come back).
    connection_id: str | None = None
    # True once the member said hello on its current connection: only ready
    # members are announced to others and listed in welcomes.
    ready: bool = False
    # When the current connection attached (Unix seconds): the hello deadline runs from it.
    attached_at: int = 0
    # When the member last went away (Unix seconds): the oldest away receivers go first.
    left_at: int = 0


@dataclass(frozen=True)
class Connection:
    connection_id: str
    room_id: str
    peer_id: str
    role: str
    expires_at: int


class RoomStore(Protocol):
    def create_room(self, room: Room, sender: Member) -> None:
        """Store a new room and its sender member (away until it connects)."""

    def get_room(self, room_id: str, now: int) -> Room | None:
        """The room, or None when it does not exist or has expired."""

    def delete_room(self, room_id: str) -> list[Member]:
        """Remove the room with its members and connections; return the members it had."""

    def lock_room(self, room_id: str, now: int) -> bool:
        """Refuse new receivers from now on. False when the room is gone."""

    def add_receiver(self, member: Member, connection_id: str, now: int) -> None:
        """Take a receiver slot and add a new connected member, atomically.

        Raises RoomNotFound, RoomLocked or RoomFull (errors.py)."""

    def attach(self, room_id: str, peer_id: str, connection_id: str, now: int) -> str | None:
        """Connect an existing member on a new connection.

        A member that was away takes a slot again if it is a receiver (RoomFull
        when none is left; a lock does not keep a known member out). A member
        that still has a connection (its $disconnect may never come) has it
        replaced; the replaced connection id is returned so it can be told.
        Raises RoomNotFound or PeerNotFound."""

    def detach(self, connection_id: str, now: int) -> Connection | None:
        """Forget a connection. If it was its member's current connection the
        member goes away (its receiver slot is released) and the connection is
        returned; otherwise (stale or unknown) None.

        A receiver without a token can never come back: it is deleted. Of the
        away receivers with a token, a room keeps the ``max_receivers`` that left
        last."""

    def evict_unready(self, connection_id: str, attached_before: int, now: int) -> Connection | None:
        """``detach``, but only if this connection is a receiver's current one, has not
        said hello, and attached before ``attached_before``; else None, nothing changed."""

    def unready_connections(self, room_id: str, attached_before: int) -> list[str]:
        """Connections of receivers that attached before ``attached_before`` and have
        not said hello (candidates for ``evict_unready``)."""

    def get_connection(self, connection_id: str, now: int) -> Connection | None:
        """The connection's membership, or None if unknown or its room expired."""

    def get_member(self, room_id: str, peer_id: str) -> Member | None: ...

    def list_members(self, room_id: str) -> list[Member]: ...

    def mark_ready(self, room_id: str, peer_id: str, connection_id: str) -> bool:
        """Mark the member ready on this connection; True only the first time."""

    def sweep(self, now: int) -> int:
        """Delete expired rooms where the backend does not do it; return how many."""
