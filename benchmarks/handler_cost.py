"""The relay's cost per message as Lambda would run it.

Figures for a relayed `signal`:
- time per message in the relay core (chalicelib.Signaling) and through app.py's
  $default handler fed an API Gateway event (Chalice's event handling included), with an
  in-memory SQLite store and a counting Management API: the Python work Lambda bills
  for, minus the network round trips;
- DynamoDB requests per message type with the DynamoDB store (moto), the figure that
  drives latency and cost in AWS (each is one network round trip from Lambda).

    python -m benchmarks.handler_cost [--messages 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from typing import Any

import boto3
from moto import mock_aws

from benchmarks.procs import save_result
from chalicelib.gateway import Transport
from chalicelib.rooms import RoomService
from chalicelib.settings import Settings
from chalicelib.signaling import Signaling
from chalicelib.store_dynamodb import DynamoRoomStore, create_table
from chalicelib.store_sqlite import SqliteRoomStore


class CountingTransport(Transport):
    def __init__(self) -> None:
        self.sent = 0

    def send(self, connection_id: str, text: str) -> None:
        self.sent += 1

    def close(self, connection_id: str) -> None:
        pass


def room_with_pair(signaling: Signaling) -> tuple[str, str]:
    created = signaling.rooms.create({})
    room = created.room.room_id
    signaling.connect("S", {"room": room, "role": "sender", "token": created.owner_token})
    signaling.connect("R", {"room": room, "role": "receiver"})
    signaling.message("S", '{"type":"hello"}')
    signaling.message("R", '{"type":"hello"}')
    return created.room.sender_peer, room


def time_relay(signaling: Signaling, messages: int) -> float:
    sender_peer, _ = room_with_pair(signaling)
    body = json.dumps({"type": "signal", "to": sender_peer,
                       "data": {"kind": "answer", "session": "s", "sdp": "v=0" + "x" * 2000}})
    started = time.perf_counter()
    for _ in range(messages):
        signaling.message("R", body)
    return (time.perf_counter() - started) / messages


class CountingManagementApi:
    """Stands in for boto3's session and apigatewaymanagementapi client under app.py."""

    region_name = "us-east-1"

    class exceptions:  # noqa: N801 - mirrors botocore
        class GoneException(Exception):
            pass

    def __init__(self) -> None:
        self.posts = 0

    def client(self, service_name: str, endpoint_url: str | None = None) -> CountingManagementApi:
        return self

    def post_to_connection(self, ConnectionId: str, Data: Any) -> None:  # noqa: N803
        self.posts += 1


def time_lambda_handler(messages: int) -> float:
    """Through app.py's $default handler, with an API Gateway event, as Lambda calls it."""
    os.environ["PEERBEAM_STORE"] = "sqlite"
    os.environ["PEERBEAM_SQLITE_PATH"] = ":memory:"
    import app as app_module
    from peerbeam.server.events import websocket_event

    management = CountingManagementApi()
    app_module.app.websocket_api.session = management
    app_module.app.websocket_api.configure("bench.example", "api")
    signaling = app_module.signaling()
    sender_peer, _ = room_with_pair(signaling)
    body = json.dumps({"type": "signal", "to": sender_peer,
                       "data": {"kind": "answer", "session": "s", "sdp": "v=0" + "x" * 2000}})
    event = websocket_event("$default", "R", "bench.example", body=body)

    class Context:
        function_name, memory_limit_in_mb, aws_request_id = "websocket_message", 128, "bench"

    started = time.perf_counter()
    for _ in range(messages):
        app_module.websocket_message(event, Context())
    elapsed = (time.perf_counter() - started) / messages
    assert management.posts >= messages
    return elapsed


def dynamodb_calls() -> dict[str, int]:
    """DynamoDB requests per operation, counted at botocore's event hook."""
    calls: Counter[str] = Counter()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client, "rooms")
        client.meta.events.register("before-call.dynamodb.*",
                                    lambda event_name, **_: calls.update([event_name]))
        signaling = Signaling(RoomService(DynamoRoomStore(client, "rooms"), Settings()),
                              CountingTransport())
        counts: dict[str, int] = {}

        def measure(name: str, action: Any) -> None:
            before = sum(calls.values())
            action()
            counts[name] = sum(calls.values()) - before

        measure("POST /rooms", lambda: signaling.rooms.create({}))
        created = signaling.rooms.create({})
        room = created.room.room_id
        measure("$connect sender", lambda: signaling.connect(
            "S", {"room": room, "role": "sender", "token": created.owner_token}))
        measure("$connect receiver", lambda: signaling.connect(
            "R", {"room": room, "role": "receiver"}))
        measure("hello", lambda: signaling.message("S", '{"type":"hello"}'))
        signaling.message("R", '{"type":"hello"}')
        body = json.dumps({"type": "signal", "to": created.room.sender_peer, "data": {}})
        measure("signal", lambda: signaling.message("R", body))
        measure("ping", lambda: signaling.message("R", '{"type":"ping"}'))
        measure("$disconnect", lambda: signaling.disconnect("R"))
    return counts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args()
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "testing")
    sqlite = Signaling(RoomService(SqliteRoomStore(":memory:"), Settings()), CountingTransport())
    per_message = time_relay(sqlite, args.messages)
    result = {
        "messages": args.messages,
        "relay_us_per_signal": per_message * 1e6,
        "lambda_handler_us_per_signal": time_lambda_handler(args.messages) * 1e6,
        "dynamodb_requests": dynamodb_calls(),
    }
    save_result("handler_cost", result)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
