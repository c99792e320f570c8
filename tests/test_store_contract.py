"""One contract, both room stores: SQLite (temp file) and DynamoDB (moto)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.errors import PeerNotFound, RoomFull, RoomLocked, RoomNotFound
from chalicelib.store import RECEIVER, SENDER, Member, Room, RoomStore
from chalicelib.store_dynamodb import DynamoRoomStore, create_table
from chalicelib.store_sqlite import SqliteRoomStore

NOW = 1_800_000_000


@pytest.fixture(params=["sqlite", "dynamodb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RoomStore]:
    if request.param == "sqlite":
        sqlite = SqliteRoomStore(tmp_path / "rooms.sqlite3")
        yield sqlite
        sqlite.close()
    else:
        with mock_aws():
            client = boto3.client("dynamodb", region_name="us-east-1")
            one_request_at_a_time(client)
            create_table(client, "rooms")
            yield DynamoRoomStore(client, "rooms")


def one_request_at_a_time(client: Any) -> None:
    """DynamoDB applies each request atomically; moto applies a transaction's
    condition checks and writes without a lock, so concurrent threads can
    interleave inside one request. Serialise requests to get the service's
    semantics: races then happen between requests, as they do in AWS."""
    lock = threading.Lock()
    make_api_call = client._make_api_call  # noqa: SLF001 - the one place all calls pass

    def atomic(*args: Any, **kwargs: Any) -> Any:
        with lock:
            result = make_api_call(*args, **kwargs)
        time.sleep(0.002)  # let other threads in between requests, where races live
        return result

    client._make_api_call = atomic  # noqa: SLF001


def make_room(store: RoomStore, room_id: str = "room1", *, max_receivers: int = 2,
              expires_at: int = NOW + 3600) -> Room:
    room = Room(room_id, "owner-hash", f"{room_id}-sender", NOW, expires_at, False, max_receivers)
    store.create_room(room, Member(room_id, room.sender_peer, SENDER, "owner-hash"))
    return room


def receiver(room_id: str, peer: str, token_hash: str | None = "t") -> Member:
    return Member(room_id, peer, RECEIVER, token_hash)


def test_created_room_reads_back(store: RoomStore) -> None:
    room = make_room(store)
    assert store.get_room("room1", NOW) == room
    sender = store.get_member("room1", room.sender_peer)
    assert sender is not None and sender.role == SENDER and sender.connection_id is None


def test_expired_room_reads_as_missing_even_before_ttl_deletes_it(store: RoomStore) -> None:
    make_room(store, expires_at=NOW + 10)
    assert store.get_room("room1", NOW + 9) is not None
    assert store.get_room("room1", NOW + 10) is None
    with pytest.raises(RoomNotFound):
        store.add_receiver(receiver("room1", "r1"), "c1", NOW + 11)
    with pytest.raises(RoomNotFound):
        store.attach("room1", "room1-sender", "c0", NOW + 11)
    assert store.lock_room("room1", NOW + 11) is False


def test_connection_of_expired_room_is_unknown(store: RoomStore) -> None:
    make_room(store, expires_at=NOW + 10)
    store.add_receiver(receiver("room1", "r1"), "c1", NOW)
    assert store.get_connection("c1", NOW).peer_id == "r1"  # type: ignore[union-attr]
    assert store.get_connection("c1", NOW + 10) is None


def test_unknown_room_and_peer(store: RoomStore) -> None:
    assert store.get_room("nope", NOW) is None
    with pytest.raises(RoomNotFound):
        store.add_receiver(receiver("nope", "r1"), "c1", NOW)
    make_room(store)
    with pytest.raises(PeerNotFound):
        store.attach("room1", "ghost", "c1", NOW)


def test_receivers_take_slots_up_to_the_limit(store: RoomStore) -> None:
    make_room(store, max_receivers=2)
    store.add_receiver(receiver("room1", "r1"), "c1", NOW)
    store.add_receiver(receiver("room1", "r2"), "c2", NOW)
    with pytest.raises(RoomFull):
        store.add_receiver(receiver("room1", "r3"), "c3", NOW)
    room = store.get_room("room1", NOW)
    assert room is not None and room.receivers == 2
    assert store.get_member("room1", "r3") is None
    assert store.get_connection("c3", NOW) is None


def test_leaving_frees_the_slot(store: RoomStore) -> None:
    make_room(store, max_receivers=1)
    store.add_receiver(receiver("room1", "r1"), "c1", NOW)
    left = store.detach("c1", NOW)
    assert left is not None and (left.room_id, left.peer_id, left.role) == ("room1", "r1", RECEIVER)
    assert store.get_room("room1", NOW).receivers == 0  # type: ignore[union-attr]
    assert store.get_member("room1", "r1").connection_id is None  # type: ignore[union-attr]
    store.add_receiver(receiver("room1", "r2"), "c2", NOW)


def test_detach_of_unknown_connection_changes_nothing(store: RoomStore) -> None:
    make_room(store)
    store.add_receiver(receiver("room1", "r1"), "c1", NOW)
    assert store.detach("never-connected", NOW) is None
    assert store.detach("c1", NOW) is not None
    assert store.detach("c1", NOW) is None  # $disconnect twice
    assert store.get_room("room1", NOW).receivers == 0  # type: ignore[union-attr]


def test_lock_keeps_new_receivers_out_but_lets_members_back(store: RoomStore) -> None:
    make_room(store, max_receivers=1)
    store.add_receiver(receiver("room1", "r1"), "c1", NOW)
    assert store.lock_room("room1", NOW)
    store.detach("c1", NOW)
    with pytest.raises(RoomLocked):
        store.add_receiver(receiver("room1", "r2"), "c2", NOW)
    assert store.attach("room1", "r1", "c3", NOW) is None
    assert store.get_connection("c3", NOW).peer_id == "r1"  # type: ignore[union-attr]
    assert store.get_room("room1", NOW).receivers == 1  # type: ignore[union-attr]


def test_reconnect_replaces_a_connection_whose_disconnect_never_came(store: RoomStore) -> None:
    make_room(store, max_receivers=1)
    store.add_receiver(receiver("room1", "r1"), "c1", NOW)
    assert store.mark_ready("room1", "r1", "c1")
    assert store.attach("room1", "r1", "c2", NOW) == "c1"
    member = store.get_member("room1", "r1")
    assert member is not None and member.connection_id == "c2" and not member.ready
    assert store.get_connection("c1", NOW) is None
    # The old connection's late $disconnect must not evict the new one.
    assert store.detach("c1", NOW) is None
    assert store.get_member("room1", "r1").connection_id == "c2"  # type: ignore[union-attr]
    assert store.get_room("room1", NOW).receivers == 1  # type: ignore[union-attr]


def test_returning_receiver_needs_a_free_slot(store: RoomStore) -> None:
    make_room(store, max_receivers=1)
    store.add_receiver(receiver("room1", "r1"), "c1", NOW)
    store.detach("c1", NOW)
    store.add_receiver(receiver("room1", "r2"), "c2", NOW)
    with pytest.raises(RoomFull):
        store.attach("room1", "r1", "c3", NOW)
    assert store.get_member("room1", "r1").connection_id is None  # type: ignore[union-attr]


def test_sender_attach_takes_no_slot(store: RoomStore) -> None:
    room = make_room(store, max_receivers=1)
    store.add_receiver(receiver("room1", "r1"), "c1", NOW)
    assert store.attach("room1", room.sender_peer, "s1", NOW) is None
    assert store.get_room("room1", NOW).receivers == 1  # type: ignore[union-attr]
    assert store.detach("s1", NOW) is not None
    assert store.get_room("room1", NOW).receivers == 1  # type: ignore[union-attr]


def test_mark_ready_only_once_and_only_for_the_current_connection(store: RoomStore) -> None:
    make_room(store)
    store.add_receiver(receiver("room1", "r1"), "c1", NOW)
    assert store.mark_ready("room1", "r1", "stale") is False
    assert store.mark_ready("room1", "r1", "c1") is True
    assert store.mark_ready("room1", "r1", "c1") is False
    assert store.get_member("room1", "r1").ready  # type: ignore[union-attr]


def test_delete_room_returns_members_and_forgets_everything(store: RoomStore) -> None:
    room = make_room(store)
    store.attach("room1", room.sender_peer, "s1", NOW)
    store.add_receiver(receiver("room1", "r1"), "c1", NOW)
    members = store.delete_room("room1")
    assert {(m.peer_id, m.connection_id) for m in members} == {
        (room.sender_peer, "s1"), ("r1", "c1")
    }
    assert store.get_room("room1", NOW) is None
    assert store.get_connection("c1", NOW) is None
    assert store.list_members("room1") == []
    assert store.detach("c1", NOW) is None


def test_rooms_do_not_share_members(store: RoomStore) -> None:
    make_room(store, "a")
    make_room(store, "b")
    store.add_receiver(receiver("a", "ra"), "ca", NOW)
    store.add_receiver(receiver("b", "rb"), "cb", NOW)
    assert {m.peer_id for m in store.list_members("a")} == {"a-sender", "ra"}
    assert {m.peer_id for m in store.list_members("b")} == {"b-sender", "rb"}


def test_two_receivers_never_both_take_the_last_slot(store: RoomStore) -> None:
    make_room(store, max_receivers=1)
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def race(index: int) -> None:
        barrier.wait()
        try:
            store.add_receiver(receiver("room1", f"r{index}"), f"c{index}", NOW)
            outcomes.append("joined")
        except RoomFull:
            outcomes.append("full")

    threads = [threading.Thread(target=race, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["full"] * 7 + ["joined"]
    room = store.get_room("room1", NOW)
    assert room is not None and room.receivers == 1
    assert len([m for m in store.list_members("room1") if m.role == RECEIVER]) == 1


def test_sqlite_rooms_survive_reopening(tmp_path: Path) -> None:
    first = SqliteRoomStore(tmp_path / "rooms.sqlite3")
    make_room(first)
    first.close()
    second = SqliteRoomStore(tmp_path / "rooms.sqlite3")
    assert second.get_room("room1", NOW) is not None


def test_sqlite_sweep_deletes_only_expired_rooms(tmp_path: Path) -> None:
    store = SqliteRoomStore(tmp_path / "rooms.sqlite3")
    make_room(store, "old", expires_at=NOW + 5)
    make_room(store, "new", expires_at=NOW + 500)
    store.add_receiver(receiver("old", "r1"), "c1", NOW)
    assert store.sweep(NOW + 10) == 1
    assert store.list_members("old") == []
    assert store.get_room("new", NOW + 10) is not None


# -- rooms stay small (issue: 5000 join/leave cycles left 5001 member rows) -------------


def test_join_leave_churn_leaves_a_bounded_number_of_members(store: RoomStore) -> None:
    """Receivers without a token are forgotten when they leave; of those with one, a
    room keeps the max_receivers that left last: 1 + 2 * max_receivers members at most."""
    make_room(store, max_receivers=2)
    for cycle in range(60):
        token = None if cycle % 2 else f"token-{cycle}"
        store.add_receiver(receiver("room1", f"r{cycle}", token), f"c{cycle}", NOW + cycle)
        assert store.detach(f"c{cycle}", NOW + cycle) is not None
    members = store.list_members("room1")
    assert len(members) <= 1 + 2 * 2
    assert store.get_room("room1", NOW).receivers == 0  # type: ignore[union-attr]


def test_a_receiver_without_a_token_is_forgotten_when_it_leaves(store: RoomStore) -> None:
    make_room(store)
    store.add_receiver(receiver("room1", "r1", None), "c1", NOW)
    assert store.detach("c1", NOW) is not None
    assert store.get_member("room1", "r1") is None
    assert store.get_room("room1", NOW).receivers == 0  # type: ignore[union-attr]


def test_the_away_receivers_that_left_first_are_forgotten_first(store: RoomStore) -> None:
    make_room(store, max_receivers=2)
    for index in (1, 2, 3):
        store.add_receiver(receiver("room1", f"r{index}"), f"c{index}", NOW)
        store.detach(f"c{index}", NOW + index)
    assert {m.peer_id for m in store.list_members("room1") if m.role == RECEIVER} == {"r2", "r3"}
    assert store.attach("room1", "r2", "c4", NOW + 5) is None  # still resumable
    with pytest.raises(PeerNotFound):
        store.attach("room1", "r1", "c5", NOW + 5)


def test_a_sender_is_never_forgotten(store: RoomStore) -> None:
    room = make_room(store, max_receivers=1)
    for cycle in range(3):
        store.attach("room1", room.sender_peer, f"s{cycle}", NOW)
        store.detach(f"s{cycle}", NOW)
    assert store.get_member("room1", room.sender_peer) is not None


def test_only_receivers_silent_past_the_deadline_can_be_evicted(store: RoomStore) -> None:
    make_room(store, max_receivers=3)
    store.add_receiver(receiver("room1", "quiet"), "c1", NOW)
    store.add_receiver(receiver("room1", "greeted"), "c2", NOW)
    store.mark_ready("room1", "greeted", "c2")
    store.add_receiver(receiver("room1", "late"), "c3", NOW + 10)
    assert store.unready_connections("room1", NOW) == []  # attached at the deadline itself
    assert store.unready_connections("room1", NOW + 1) == ["c1"]
    assert store.evict_unready("c2", NOW + 1, NOW + 1) is None  # said hello
    assert store.evict_unready("c3", NOW + 1, NOW + 1) is None  # still within its time
    assert store.evict_unready("unknown", NOW + 1, NOW + 1) is None
    assert store.get_room("room1", NOW).receivers == 3  # type: ignore[union-attr]
    evicted = store.evict_unready("c1", NOW + 1, NOW + 1)
    assert evicted is not None and evicted.peer_id == "quiet"
    assert store.get_room("room1", NOW).receivers == 2  # type: ignore[union-attr]
    assert store.get_connection("c1", NOW) is None
    assert store.get_member("room1", "quiet").connection_id is None  # type: ignore[union-attr]
    assert store.evict_unready("c1", NOW + 1, NOW + 1) is None  # once


def test_a_sender_connection_is_never_evicted(store: RoomStore) -> None:
    room = make_room(store)
    store.attach("room1", room.sender_peer, "s1", NOW)
    assert store.unready_connections("room1", NOW + 100) == []
    assert store.evict_unready("s1", NOW + 100, NOW + 100) is None
    assert store.get_connection("s1", NOW) is not None


def test_sqlite_data_directory_of_the_first_schema_is_upgraded(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "rooms.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE members (room_id TEXT NOT NULL, peer_id TEXT NOT NULL, role TEXT NOT NULL,"
        " token_hash TEXT, connection_id TEXT, ready INTEGER NOT NULL DEFAULT 0,"
        " PRIMARY KEY (room_id, peer_id));"
    )
    old.close()
    store = SqliteRoomStore(path)
    make_room(store)
    store.add_receiver(receiver("room1", "r1"), "c1", NOW)
    assert store.get_member("room1", "r1").attached_at == NOW  # type: ignore[union-attr]
