"""DynamoDB room store: one table, TTL on ``expires_at``, conditional writes.

Item layout (partition key ``pk``, sort key ``sk``, both strings):

| item       | pk            | sk           | attributes                                        |
|------------|---------------|--------------|---------------------------------------------------|
| room       | ``room#ID``   | ``room``     | owner_token_hash, sender_peer, created_at,        |
|            |               |              | expires_at, one_time, max_receivers, locked,      |
|            |               |              | receivers                                         |
| member     | ``room#ID``   | ``peer#PEER``| role, token_hash, connection_id (absent: away),   |
|            |               |              | ready, attached_at, left_at, expires_at           |
| connection | ``conn#CID``  | ``conn``     | room_id, peer_id, role, expires_at                |
| counter    | ``limit#...`` | ``limit``    | hits, expires_at (chalicelib/connect_limit.py)    |

Every item carries the room's ``expires_at`` so TTL removes all of them; reads
never trust TTL to have done so.
"""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from .errors import PeerNotFound, RoomFull, RoomLocked, RoomNotFound
from .store import RECEIVER, Connection, Member, Room

ROOM_SK = "room"
CONN_SK = "conn"
# Conditional writes that lose a race are retried this often before giving up.
ATTEMPTS = 5

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _ser(item: dict[str, Any]) -> dict[str, Any]:
    return {key: _serializer.serialize(value) for key, value in item.items() if value is not None}


def _de(item: dict[str, Any]) -> dict[str, Any]:
    return {key: _deserializer.deserialize(value) for key, value in item.items()}


def _room_key(room_id: str) -> dict[str, Any]:
    return _ser({"pk": f"room#{room_id}", "sk": ROOM_SK})


def _member_key(room_id: str, peer_id: str) -> dict[str, Any]:
    return _ser({"pk": f"room#{room_id}", "sk": f"peer#{peer_id}"})


def _conn_key(connection_id: str) -> dict[str, Any]:
    return _ser({"pk": f"conn#{connection_id}", "sk": CONN_SK})


def _to_room(item: dict[str, Any]) -> Room:
    return Room(
        room_id=item["pk"].removeprefix("room#"),
        owner_token_hash=item["owner_token_hash"],
        sender_peer=item["sender_peer"],
        created_at=int(item["created_at"]),
        expires_at=int(item["expires_at"]),
        one_time=bool(item["one_time"]),
        max_receivers=int(item["max_receivers"]),
        locked=bool(item["locked"]),
        receivers=int(item["receivers"]),
    )


def _to_member(item: dict[str, Any]) -> Member:
    return Member(
        room_id=item["pk"].removeprefix("room#"),
        peer_id=item["sk"].removeprefix("peer#"),
        role=item["role"],
        token_hash=item.get("token_hash"),
        connection_id=item.get("connection_id"),
        ready=bool(item.get("ready", False)),
        attached_at=int(item.get("attached_at", 0)),
        left_at=int(item.get("left_at", 0)),
    )


def _is_conflict(error: ClientError) -> bool:
    return error.response["Error"]["Code"] in (
        "ConditionalCheckFailedException",
        "TransactionCanceledException",
    )


class DynamoRoomStore:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    # -- reads -------------------------------------------------------------

    def _get(self, key: dict[str, Any]) -> dict[str, Any] | None:
        response = self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True)
        item = response.get("Item")
        return None if item is None else _de(item)

    def get_room(self, room_id: str, now: int) -> Room | None:
        item = self._get(_room_key(room_id))
        if item is None or int(item["expires_at"]) <= now:
            return None
        return _to_room(item)

    def get_member(self, room_id: str, peer_id: str) -> Member | None:
        item = self._get(_member_key(room_id, peer_id))
        return None if item is None else _to_member(item)

    def list_members(self, room_id: str) -> list[Member]:
        members: list[Member] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :peer)",
            "ExpressionAttributeValues": _ser({":pk": f"room#{room_id}", ":peer": "peer#"}),
            "ConsistentRead": True,
        }
        while True:
            response = self._client.query(**kwargs)
            members.extend(_to_member(_de(item)) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return members
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def get_connection(self, connection_id: str, now: int) -> Connection | None:
        item = self._get(_conn_key(connection_id))
        if item is None or int(item["expires_at"]) <= now:
            return None
        return Connection(
            connection_id, item["room_id"], item["peer_id"], item["role"], int(item["expires_at"])
        )

    # -- writes ------------------------------------------------------------

    def create_room(self, room: Room, sender: Member) -> None:
        room_item = _ser(
            {
                "pk": f"room#{room.room_id}",
                "sk": ROOM_SK,
                "owner_token_hash": room.owner_token_hash,
                "sender_peer": room.sender_peer,
                "created_at": room.created_at,
                "expires_at": room.expires_at,
                "one_time": room.one_time,
                "max_receivers": room.max_receivers,
                "locked": room.locked,
                "receivers": room.receivers,
            }
        )
        self._client.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": room_item,
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {"Put": {"TableName": self._table, "Item": self._member_item(sender, room.expires_at)}},
            ]
        )

    def _member_item(self, member: Member, expires_at: int) -> dict[str, Any]:
        return _ser(
            {
                "pk": f"room#{member.room_id}",
                "sk": f"peer#{member.peer_id}",
                "role": member.role,
                "token_hash": member.token_hash,
                "connection_id": member.connection_id,
                "ready": member.ready,
                "attached_at": member.attached_at,
                "left_at": member.left_at,
                "expires_at": expires_at,
            }
        )

    def _conn_put(self, connection_id: str, room: Room, peer_id: str, role: str) -> dict[str, Any]:
        item = _ser(
            {
                "pk": f"conn#{connection_id}",
                "sk": CONN_SK,
                "room_id": room.room_id,
                "peer_id": peer_id,
                "role": role,
                "expires_at": room.expires_at,
            }
        )
        return {"Put": {"TableName": self._table, "Item": item}}

    def delete_room(self, room_id: str) -> list[Member]:
        members = self.list_members(room_id)
        keys = [_room_key(room_id)] + [_member_key(room_id, m.peer_id) for m in members]
        keys += [_conn_key(m.connection_id) for m in members if m.connection_id]
        for start in range(0, len(keys), 25):
            requests = [{"DeleteRequest": {"Key": key}} for key in keys[start : start + 25]]
            pending: dict[str, Any] = {self._table: requests}
            while pending:
                response = self._client.batch_write_item(RequestItems=pending)
                pending = response.get("UnprocessedItems") or {}
        return members

    def lock_room(self, room_id: str, now: int) -> bool:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=_room_key(room_id),
                UpdateExpression="SET locked = :true",
                ConditionExpression="attribute_exists(pk) AND expires_at > :now",
                ExpressionAttributeValues=_ser({":true": True, ":now": now}),
            )
        except ClientError as error:
            if _is_conflict(error):
                return False
            raise
        return True

    def _take_slot(self, room_id: str, now: int, respect_lock: bool) -> dict[str, Any]:
        condition = "attribute_exists(pk) AND expires_at > :now AND receivers < max_receivers"
        values: dict[str, Any] = {":now": now, ":one": 1}
        if respect_lock:
            condition += " AND locked = :false"
            values[":false"] = False
        return {
            "Update": {
                "TableName": self._table,
                "Key": _room_key(room_id),
                "UpdateExpression": "SET receivers = receivers + :one",
                "ConditionExpression": condition,
                "ExpressionAttributeValues": _ser(values),
            }
        }

    def _refusal(self, room_id: str, now: int, respect_lock: bool) -> Exception:
        """Explain why a conditional slot take failed, from a fresh read."""
        room = self.get_room(room_id, now)
        if room is None:
            return RoomNotFound("This link is unknown or has expired.")
        if respect_lock and room.locked:
            return RoomLocked("This one-time link has already been used.")
        return RoomFull("This room already has as many receivers as it allows.")

    def add_receiver(self, member: Member, connection_id: str, now: int) -> None:
        room = self.get_room(member.room_id, now)
        if room is None:
            raise RoomNotFound("This link is unknown or has expired.")
        connected = Member(
            member.room_id, member.peer_id, member.role, member.token_hash, connection_id, False,
            attached_at=now,
        )
        try:
            self._client.transact_write_items(
                TransactItems=[
                    self._take_slot(member.room_id, now, respect_lock=True),
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": self._member_item(connected, room.expires_at),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    self._conn_put(connection_id, room, member.peer_id, member.role),
                ]
            )
        except ClientError as error:
            if _is_conflict(error):
                raise self._refusal(member.room_id, now, respect_lock=True) from None
            raise

    def attach(self, room_id: str, peer_id: str, connection_id: str, now: int) -> str | None:
        for _ in range(ATTEMPTS):
            room = self.get_room(room_id, now)
            if room is None:
                raise RoomNotFound("This link is unknown or has expired.")
            member = self.get_member(room_id, peer_id)
            if member is None:
                raise PeerNotFound("No such peer in this room.")
            replaced = member.connection_id
            items: list[dict[str, Any]] = []
            values: dict[str, Any] = {":conn": connection_id, ":false": False, ":now": now}
            if replaced is None:
                member_condition = "attribute_exists(pk) AND attribute_not_exists(connection_id)"
                if member.role == RECEIVER:
                    items.append(self._take_slot(room_id, now, respect_lock=False))
            else:
                member_condition = "connection_id = :old"
                values[":old"] = replaced
                items.append({"Delete": {"TableName": self._table, "Key": _conn_key(replaced)}})
            if not any("Update" in item for item in items):
                items.append(
                    {
                        "ConditionCheck": {
                            "TableName": self._table,
                            "Key": _room_key(room_id),
                            "ConditionExpression": "attribute_exists(pk) AND expires_at > :now",
                            "ExpressionAttributeValues": _ser({":now": now}),
                        }
                    }
                )
            items.append(
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": _member_key(room_id, peer_id),
                        "UpdateExpression": (
                            "SET connection_id = :conn, ready = :false, attached_at = :now"
                        ),
                        "ConditionExpression": member_condition,
                        "ExpressionAttributeValues": _ser(values),
                    }
                }
            )
            items.append(self._conn_put(connection_id, room, peer_id, member.role))
            try:
                self._client.transact_write_items(TransactItems=items)
            except ClientError as error:
                if not _is_conflict(error):
                    raise
                fresh = self.get_room(room_id, now)
                if fresh is None:
                    raise RoomNotFound("This link is unknown or has expired.") from None
                if member.role == RECEIVER and replaced is None and (
                    fresh.receivers >= fresh.max_receivers
                ):
                    raise RoomFull(
                        "This room already has as many receivers as it allows."
                    ) from None
                continue  # the member changed under us: look again
            return replaced
        raise RoomFull("The room is too busy right now; try again.")

    def detach(self, connection_id: str, now: int) -> Connection | None:
        item = self._get(_conn_key(connection_id))
        if item is None:
            return None
        # A stale connection (replaced by a newer one) is forgotten either way.
        self._client.delete_item(TableName=self._table, Key=_conn_key(connection_id))
        return self._detach(item, connection_id, now, unready_before=None)

    def evict_unready(self, connection_id: str, attached_before: int, now: int) -> Connection | None:
        item = self._get(_conn_key(connection_id))
        if item is None:
            return None
        return self._detach(item, connection_id, now, unready_before=attached_before)

    def _detach(
        self, item: dict[str, Any], connection_id: str, now: int, unready_before: int | None
    ) -> Connection | None:
        connection = Connection(
            connection_id, item["room_id"], item["peer_id"], item["role"], int(item["expires_at"])
        )
        member = self.get_member(connection.room_id, connection.peer_id)
        if member is None or member.connection_id != connection_id:
            return None
        forget = connection.role == RECEIVER and member.token_hash is None
        condition = "connection_id = :conn"
        values: dict[str, Any] = {":conn": connection_id}
        items: list[dict[str, Any]] = []
        if unready_before is not None:
            if connection.role != RECEIVER:
                return None
            condition += " AND ready = :false AND attached_at < :before"
            values.update({":false": False, ":before": unready_before})
            items.append({"Delete": {"TableName": self._table, "Key": _conn_key(connection_id)}})
        member_key = _member_key(connection.room_id, connection.peer_id)
        if forget:
            # Without a token nobody can ever reclaim this peer id: forget it now.
            items.append(
                {
                    "Delete": {
                        "TableName": self._table,
                        "Key": member_key,
                        "ConditionExpression": condition,
                        "ExpressionAttributeValues": _ser(values),
                    }
                }
            )
        else:
            values.update({":false": False, ":now": now})
            items.append(
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": member_key,
                        "UpdateExpression": "REMOVE connection_id SET ready = :false, left_at = :now",
                        "ConditionExpression": condition,
                        "ExpressionAttributeValues": _ser(values),
                    }
                }
            )
        if connection.role == RECEIVER:
            items.append(
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": _room_key(connection.room_id),
                        "UpdateExpression": "SET receivers = receivers - :one",
                        "ConditionExpression": "attribute_exists(pk) AND receivers > :zero",
                        "ExpressionAttributeValues": _ser({":one": 1, ":zero": 0}),
                    }
                }
            )
        try:
            self._client.transact_write_items(TransactItems=items)
        except ClientError as error:
            if _is_conflict(error):
                return None  # a newer connection took over, it said hello, or the room is gone
            raise
        if connection.role == RECEIVER and not forget:
            self._forget_oldest_away(connection.room_id)
        return connection

    def _room_and_members(self, room_id: str) -> tuple[dict[str, Any] | None, list[Member]]:
        """The room item and its members in one query (a room holds at most
        1 + 2 * max_receivers members: one page)."""
        room: dict[str, Any] | None = None
        members: list[Member] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": _ser({":pk": f"room#{room_id}"}),
            "ConsistentRead": True,
        }
        while True:
            response = self._client.query(**kwargs)
            for raw in response.get("Items", []):
                item = _de(raw)
                if item["sk"] == ROOM_SK:
                    room = item
                elif item["sk"].startswith("peer#"):
                    members.append(_to_member(item))
            if "LastEvaluatedKey" not in response:
                return room, members
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _forget_oldest_away(self, room_id: str) -> None:
        """Keep the ``max_receivers`` away receivers that left last; forget the rest."""
        room, members = self._room_and_members(room_id)
        if room is None:
            return
        away = [m for m in members if m.role == RECEIVER and m.connection_id is None]
        away.sort(key=lambda m: m.left_at, reverse=True)
        for member in away[int(room["max_receivers"]) :]:
            try:
                self._client.delete_item(
                    TableName=self._table,
                    Key=_member_key(room_id, member.peer_id),
                    # Not if it came back meanwhile.
                    ConditionExpression="attribute_not_exists(connection_id) AND left_at = :left",
                    ExpressionAttributeValues=_ser({":left": member.left_at}),
                )
            except ClientError as error:
                if not _is_conflict(error):
                    raise

    def unready_connections(self, room_id: str, attached_before: int) -> list[str]:
        return [
            member.connection_id
            for member in self.list_members(room_id)
            if member.role == RECEIVER
            and member.connection_id is not None
            and not member.ready
            and member.attached_at < attached_before
        ]

    def mark_ready(self, room_id: str, peer_id: str, connection_id: str) -> bool:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=_member_key(room_id, peer_id),
                UpdateExpression="SET ready = :true",
                ConditionExpression="connection_id = :conn AND ready = :false",
                ExpressionAttributeValues=_ser(
                    {":conn": connection_id, ":true": True, ":false": False}
                ),
            )
        except ClientError as error:
            if _is_conflict(error):
                return False
            raise
        return True

    def sweep(self, now: int) -> int:
        """DynamoDB's TTL deletes expired items; reads already ignore them."""
        return 0


def create_table(client: Any, table_name: str) -> None:
    """Create the table as the CloudFormation template does (tests, local tooling)."""
    client.create_table(
        TableName=table_name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    client.get_waiter("table_exists").wait(TableName=table_name)
    client.update_time_to_live(
        TableName=table_name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
    )
