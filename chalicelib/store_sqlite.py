"""SQLite room store: the local default, persistent across restarts.

One connection guarded by a lock; every operation runs in one ``BEGIN
IMMEDIATE`` transaction, which makes it atomic against other threads and
other processes sharing the file.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import PeerNotFound, RoomFull, RoomLocked, RoomNotFound
from .store import RECEIVER, Connection, Member, Room

SCHEMA = """
CREATE TABLE IF NOT EXISTS rooms (
    room_id TEXT PRIMARY KEY,
    owner_token_hash TEXT NOT NULL,
    sender_peer TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    one_time INTEGER NOT NULL,
    max_receivers INTEGER NOT NULL,
    locked INTEGER NOT NULL DEFAULT 0,
    receivers INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS members (
    room_id TEXT NOT NULL REFERENCES rooms(room_id) ON DELETE CASCADE,
    peer_id TEXT NOT NULL,
    role TEXT NOT NULL,
    token_hash TEXT,
    connection_id TEXT,
    ready INTEGER NOT NULL DEFAULT 0,
    attached_at INTEGER NOT NULL DEFAULT 0,
    left_at INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, peer_id)
);
CREATE TABLE IF NOT EXISTS connections (
    connection_id TEXT PRIMARY KEY,
    room_id TEXT NOT NULL REFERENCES rooms(room_id) ON DELETE CASCADE,
    peer_id TEXT NOT NULL,
    role TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS rooms_by_expiry ON rooms(expires_at);
CREATE INDEX IF NOT EXISTS connections_by_room ON connections(room_id);
"""
# Columns added since the first schema: a data directory from an older version gets them.
MEMBER_COLUMNS_ADDED = {
    "attached_at": "INTEGER NOT NULL DEFAULT 0",
    "left_at": "INTEGER NOT NULL DEFAULT 0",
}
MEMBER_INSERT = (
    "INSERT INTO members (room_id, peer_id, role, token_hash, connection_id, ready, attached_at) "
    "VALUES (?, ?, ?, ?, ?, 0, ?)"
)


def _room(row: sqlite3.Row) -> Room:
    return Room(
        room_id=row["room_id"],
        owner_token_hash=row["owner_token_hash"],
        sender_peer=row["sender_peer"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        one_time=bool(row["one_time"]),
        max_receivers=row["max_receivers"],
        locked=bool(row["locked"]),
        receivers=row["receivers"],
    )


def _member(row: sqlite3.Row) -> Member:
    return Member(
        room_id=row["room_id"],
        peer_id=row["peer_id"],
        role=row["role"],
        token_hash=row["token_hash"],
        connection_id=row["connection_id"],
        ready=bool(row["ready"]),
        attached_at=row["attached_at"],
        left_at=row["left_at"],
    )


class SqliteRoomStore:
    def __init__(self, path: str | Path) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            str(path), check_same_thread=False, isolation_level=None, timeout=30
        )
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        present = {row["name"] for row in self._db.execute("PRAGMA table_info(members)")}
        for name, declaration in MEMBER_COLUMNS_ADDED.items():
            if name not in present:
                self._db.execute(f"ALTER TABLE members ADD COLUMN {name} {declaration}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")

    @staticmethod
    def _live_room(db: sqlite3.Connection, room_id: str, now: int) -> Room | None:
        row = db.execute("SELECT * FROM rooms WHERE room_id = ?", (room_id,)).fetchone()
        if row is None or row["expires_at"] <= now:
            return None
        return _room(row)

    def create_room(self, room: Room, sender: Member) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO rooms VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    room.room_id, room.owner_token_hash, room.sender_peer, room.created_at,
                    room.expires_at, int(room.one_time), room.max_receivers,
                    int(room.locked), room.receivers,
                ),
            )
            db.execute(
                MEMBER_INSERT,
                (sender.room_id, sender.peer_id, sender.role, sender.token_hash, None, 0),
            )

    def get_room(self, room_id: str, now: int) -> Room | None:
        with self._lock:
            return self._live_room(self._db, room_id, now)

    def delete_room(self, room_id: str) -> list[Member]:
        with self._tx() as db:
            rows = db.execute("SELECT * FROM members WHERE room_id = ?", (room_id,)).fetchall()
            db.execute("DELETE FROM rooms WHERE room_id = ?", (room_id,))
            return [_member(row) for row in rows]

    def lock_room(self, room_id: str, now: int) -> bool:
        with self._tx() as db:
            cursor = db.execute(
                "UPDATE rooms SET locked = 1 WHERE room_id = ? AND expires_at > ?", (room_id, now)
            )
            return cursor.rowcount == 1

    def add_receiver(self, member: Member, connection_id: str, now: int) -> None:
        with self._tx() as db:
            room = self._live_room(db, member.room_id, now)
            if room is None:
                raise RoomNotFound("This link is unknown or has expired.")
            if room.locked:
                raise RoomLocked("This one-time link has already been used.")
            if room.receivers >= room.max_receivers:
                raise RoomFull("This room already has as many receivers as it allows.")
            db.execute(
                "UPDATE rooms SET receivers = receivers + 1 WHERE room_id = ?", (room.room_id,)
            )
            db.execute(
                MEMBER_INSERT,
                (member.room_id, member.peer_id, member.role, member.token_hash, connection_id,
                 now),
            )
            db.execute(
                "INSERT INTO connections VALUES (?, ?, ?, ?)",
                (connection_id, member.room_id, member.peer_id, member.role),
            )

    def attach(self, room_id: str, peer_id: str, connection_id: str, now: int) -> str | None:
        with self._tx() as db:
            room = self._live_room(db, room_id, now)
            if room is None:
                raise RoomNotFound("This link is unknown or has expired.")
            row = db.execute(
                "SELECT * FROM members WHERE room_id = ? AND peer_id = ?", (room_id, peer_id)
            ).fetchone()
            if row is None:
                raise PeerNotFound("No such peer in this room.")
            member = _member(row)
            replaced = member.connection_id
            if replaced is None and member.role == RECEIVER:
                if room.receivers >= room.max_receivers:
                    raise RoomFull("This room already has as many receivers as it allows.")
                db.execute(
                    "UPDATE rooms SET receivers = receivers + 1 WHERE room_id = ?", (room_id,)
                )
            if replaced is not None:
                db.execute("DELETE FROM connections WHERE connection_id = ?", (replaced,))
            db.execute(
                "UPDATE members SET connection_id = ?, ready = 0, attached_at = ? "
                "WHERE room_id = ? AND peer_id = ?",
                (connection_id, now, room_id, peer_id),
            )
            db.execute(
                "INSERT INTO connections VALUES (?, ?, ?, ?)",
                (connection_id, room_id, peer_id, member.role),
            )
            return replaced

    def detach(self, connection_id: str, now: int) -> Connection | None:
        with self._tx() as db:
            return self._detach(db, connection_id, now, unready_before=None)

    def evict_unready(self, connection_id: str, attached_before: int, now: int) -> Connection | None:
        with self._tx() as db:
            return self._detach(db, connection_id, now, unready_before=attached_before)

    def _detach(
        self, db: sqlite3.Connection, connection_id: str, now: int, unready_before: int | None
    ) -> Connection | None:
        row = db.execute(
            "SELECT c.*, r.expires_at, r.max_receivers FROM connections c "
            "JOIN rooms r USING (room_id) WHERE c.connection_id = ?",
            (connection_id,),
        ).fetchone()
        if row is None:
            return None
        room_id, peer_id, role = row["room_id"], row["peer_id"], row["role"]
        member = db.execute(
            "SELECT * FROM members WHERE room_id = ? AND peer_id = ? AND connection_id = ?",
            (room_id, peer_id, connection_id),
        ).fetchone()
        if unready_before is not None and (
            member is None
            or role != RECEIVER
            or member["ready"]
            or member["attached_at"] >= unready_before
        ):
            return None
        db.execute("DELETE FROM connections WHERE connection_id = ?", (connection_id,))
        if member is None:
            return None  # a stale connection: a newer one took over
        if role == RECEIVER:
            db.execute(
                "UPDATE rooms SET receivers = receivers - 1 WHERE room_id = ? AND receivers > 0",
                (room_id,),
            )
        if role == RECEIVER and member["token_hash"] is None:
            # Without a token nobody can ever reclaim this peer id: forget it now.
            db.execute("DELETE FROM members WHERE room_id = ? AND peer_id = ?", (room_id, peer_id))
        else:
            db.execute(
                "UPDATE members SET connection_id = NULL, ready = 0, left_at = ? "
                "WHERE room_id = ? AND peer_id = ?",
                (now, room_id, peer_id),
            )
            if role == RECEIVER:
                self._forget_oldest_away(db, room_id, row["max_receivers"])
        return Connection(connection_id, room_id, peer_id, role, row["expires_at"])

    @staticmethod
    def _forget_oldest_away(db: sqlite3.Connection, room_id: str, keep: int) -> None:
        db.execute(
            "DELETE FROM members WHERE rowid IN (SELECT rowid FROM members "
            "WHERE room_id = ? AND role = ? AND connection_id IS NULL "
            "ORDER BY left_at DESC, rowid DESC LIMIT -1 OFFSET ?)",
            (room_id, RECEIVER, keep),
        )

    def unready_connections(self, room_id: str, attached_before: int) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT connection_id FROM members WHERE room_id = ? AND role = ? "
                "AND connection_id IS NOT NULL AND ready = 0 AND attached_at < ?",
                (room_id, RECEIVER, attached_before),
            ).fetchall()
        return [row["connection_id"] for row in rows]

    def get_connection(self, connection_id: str, now: int) -> Connection | None:
        with self._lock:
            row = self._db.execute(
                "SELECT c.*, r.expires_at FROM connections c JOIN rooms r USING (room_id) "
                "WHERE c.connection_id = ?",
                (connection_id,),
            ).fetchone()
        if row is None or row["expires_at"] <= now:
            return None
        return Connection(
            connection_id, row["room_id"], row["peer_id"], row["role"], row["expires_at"]
        )

    def get_member(self, room_id: str, peer_id: str) -> Member | None:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM members WHERE room_id = ? AND peer_id = ?", (room_id, peer_id)
            ).fetchone()
        return None if row is None else _member(row)

    def list_members(self, room_id: str) -> list[Member]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM members WHERE room_id = ? ORDER BY rowid", (room_id,)
            ).fetchall()
        return [_member(row) for row in rows]

    def mark_ready(self, room_id: str, peer_id: str, connection_id: str) -> bool:
        with self._tx() as db:
            cursor = db.execute(
                "UPDATE members SET ready = 1 "
                "WHERE room_id = ? AND peer_id = ? AND connection_id = ? AND ready = 0",
                (room_id, peer_id, connection_id),
            )
            return cursor.rowcount == 1

    def sweep(self, now: int) -> int:
        with self._tx() as db:
            return db.execute("DELETE FROM rooms WHERE expires_at <= ?", (now,)).rowcount
