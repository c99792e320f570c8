"""The Chalice handlers as Lambda runs them: DynamoDB and the Management API via moto."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from chalice.test import Client
from moto import mock_aws
from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends
from moto.core.models import DEFAULT_ACCOUNT_ID

import app as app_module
from chalicelib import turn_secret
from chalicelib.ice import turn_credentials
from chalicelib.store_dynamodb import create_table
from peerbeam.server.events import websocket_event

API_ID = "abc123"
STAGE = "api"


class FakeContext:
    function_name = "handler"
    memory_limit_in_mb = 128
    aws_request_id = "req"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with mock_aws():
        create_table(boto3.client("dynamodb"), "rooms")
        monkeypatch.setenv("PEERBEAM_STORE", "dynamodb")
        monkeypatch.setenv("PEERBEAM_TABLE", "rooms")
        monkeypatch.setenv("PEERBEAM_WS_URL", "wss://ws.example.test/api")
        monkeypatch.setenv("PEERBEAM_WEBSOCKET_API_ID", API_ID)
        monkeypatch.setenv("PEERBEAM_WEBSOCKET_STAGE", STAGE)
        monkeypatch.setenv("PEERBEAM_TURN_URLS", "turn:127.0.0.1:3478")
        monkeypatch.setenv("PEERBEAM_TURN_SECRET", "s3cret")
        reset_app()
        yield
        reset_app()


def reset_app() -> None:
    """A fresh 'cold start': settings, store and Management API client built anew."""
    app_module.signaling.cache_clear()
    app_module.connect_limiter.cache_clear()
    turn_secret.clear_cache()
    websocket_api = app_module.app.websocket_api
    websocket_api.session = boto3.session.Session()
    websocket_api._endpoint = None  # noqa: SLF001 - Chalice caches these per container
    websocket_api._client = None  # noqa: SLF001


def ws(route: str, connection_id: str, **kwargs: Any) -> dict[str, Any]:
    event = websocket_event(route, connection_id, f"{API_ID}.execute-api.us-east-1.amazonaws.com", **kwargs)
    event["requestContext"]["apiId"] = API_ID
    event["requestContext"]["stage"] = STAGE
    handler = app_module.WEBSOCKET_HANDLERS[route]
    # Chalice annotates the Lambda context as a dict; Lambda passes an object like this one.
    return handler(event, FakeContext())  # type: ignore[arg-type]


def connect(connection_id: str, **query: str) -> dict[str, Any]:
    return ws("$connect", connection_id, query=query)


def send(connection_id: str, message: Any) -> None:
    body = message if isinstance(message, str) else json.dumps(message)
    ws("$default", connection_id, body=body)


def management_backend() -> Any:
    return apigatewaymanagementapi_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]


def posted(connection_id: str) -> list[dict[str, Any]]:
    """Everything the handlers posted to a connection through moto's Management API."""
    return decode_frames(management_backend().connections[connection_id].data)


def decode_frames(raw: bytes) -> list[dict[str, Any]]:
    data = raw.decode("utf-8")
    decoder, messages, index = json.JSONDecoder(), [], 0
    while index < len(data):
        message, index = decoder.raw_decode(data, index)
        messages.append(message)
    return messages


def create_room(client: Client, **body: Any) -> dict[str, Any]:
    response = client.http.post(
        "/rooms", headers={"content-type": "application/json"}, body=json.dumps(body)
    )
    assert response.status_code == 201, response.body
    return response.json_body


def test_create_room_returns_the_contract_fields(aws: None) -> None:
    with Client(app_module.app) as client:
        room = create_room(client, expires_in=600, max_receivers=3)
        assert set(room) >= {"room", "owner_token", "expires_at", "ws_url"}
        assert room["ws_url"] == "wss://ws.example.test/api"
        assert room["max_receivers"] == 3
        state = client.http.get(f"/rooms/{room['room']}").json_body
        assert "owner_token" not in json.dumps(state)
        assert state["receivers"] == 0 and state["locked"] is False


@pytest.mark.parametrize(
    "body, field",
    [
        ({"expires_in": 5}, "expires_in"),
        ({"expires_in": 10**9}, "expires_in"),
        ({"expires_in": "600"}, "expires_in"),
        ({"max_receivers": 0}, "max_receivers"),
        ({"max_receivers": True}, "max_receivers"),
        ({"one_time": "yes"}, "one_time"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_invalid_room_requests_are_refused(aws: None, body: dict[str, Any], field: str) -> None:
    with Client(app_module.app) as client:
        response = client.http.post(
            "/rooms", headers={"content-type": "application/json"}, body=json.dumps(body)
        )
        assert response.status_code == 400
        assert response.json_body["code"] == "invalid_parameter"
        assert response.json_body["field"] == field
        table = boto3.client("dynamodb").scan(TableName="rooms")
        assert table["Count"] == 0


def test_malformed_body_is_bad_json(aws: None) -> None:
    with Client(app_module.app) as client:
        for body in ("{nope", "[1, 2]"):
            response = client.http.post(
                "/rooms", headers={"content-type": "application/json"}, body=body
            )
            assert response.status_code == 400
            assert response.json_body["code"] == "bad_json"


def test_unknown_and_expired_rooms_are_the_same_404(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    with Client(app_module.app) as client:
        room = create_room(client, expires_in=60)
        unknown = client.http.get("/rooms/doesNotExist")
        assert unknown.status_code == 404 and unknown.json_body["code"] == "room_not_found"
        rooms = app_module.signaling().rooms
        monkeypatch.setattr(rooms, "_clock", lambda: room["expires_at"] + 1)
        expired = client.http.get(f"/rooms/{room['room']}")
        assert (expired.status_code, expired.json_body) == (unknown.status_code, unknown.json_body)


def test_websocket_relay_through_the_management_api(aws: None) -> None:
    with Client(app_module.app) as client:
        room = create_room(client)
    assert connect("S", room=room["room"], role="sender", token=room["owner_token"]) == {
        "statusCode": 200
    }
    send("S", {"type": "hello"})
    sender_welcome = posted("S")[0]
    assert sender_welcome["type"] == "welcome" and sender_welcome["peers"] == []
    assert connect("R", room=room["room"], role="receiver")["statusCode"] == 200
    send("R", {"type": "hello"})
    welcome = posted("R")[0]
    assert welcome["peers"] == [{"peer": sender_welcome["peer"], "role": "sender"}]
    turn = next(server for server in welcome["ice_servers"] if "username" in server)
    assert turn["urls"] == ["turn:127.0.0.1:3478"] and turn["username"].endswith(welcome["peer"])
    assert posted("S")[1] == {"type": "peer-joined", "peer": welcome["peer"], "role": "receiver"}
    send("R", {"type": "signal", "to": sender_welcome["peer"], "data": {"sdp": "v=0"}})
    assert posted("S")[2] == {"type": "signal", "from": welcome["peer"], "data": {"sdp": "v=0"}}
    ws("$disconnect", "R")
    assert posted("S")[3] == {"type": "peer-left", "peer": welcome["peer"]}


def test_refused_connect_returns_the_status(aws: None) -> None:
    with Client(app_module.app) as client:
        room = create_room(client)
    refused = connect("X", room=room["room"], role="sender", token="wrong")
    assert refused["statusCode"] == 403
    assert json.loads(refused["body"])["code"] == "forbidden"
    assert connect("Y", room="nope", role="receiver")["statusCode"] == 404
    assert connect("Z", room=room["room"], role="admin")["statusCode"] == 400


def test_delete_room_tells_members(aws: None) -> None:
    with Client(app_module.app) as client:
        room = create_room(client)
        connect("R", room=room["room"], role="receiver")
        send("R", {"type": "hello"})
        receiver_connection = management_backend().connections["R"]
        wrong = client.http.delete(
            f"/rooms/{room['room']}", headers={"authorization": "Bearer nope"}
        )
        assert wrong.status_code == 403
        deleted = client.http.delete(
            f"/rooms/{room['room']}", headers={"authorization": f"Bearer {room['owner_token']}"}
        )
        assert deleted.status_code == 204
        assert decode_frames(receiver_connection.data)[-1] == {"type": "room-closed"}
        assert "R" not in management_backend().connections  # closed by the server
        assert client.http.get(f"/rooms/{room['room']}").status_code == 404


def test_gone_connection_is_cleaned_up(aws: None) -> None:
    """API Gateway answers 410 Gone for a connection whose $disconnect never arrived."""
    with Client(app_module.app) as client:
        room = create_room(client)
    connect("S", room=room["room"], role="sender", token=room["owner_token"])
    send("S", {"type": "hello"})
    sender_peer = posted("S")[0]["peer"]
    connect("R", room=room["room"], role="receiver")
    send("R", {"type": "hello"})

    websocket_api = app_module.app.websocket_api
    management = websocket_api._get_client()  # noqa: SLF001 - the client Chalice posts with
    with Stubber(management) as stubber:
        stubber.add_client_error(
            "post_to_connection", service_error_code="GoneException", http_status_code=410,
            expected_params={"ConnectionId": "S", "Data": _ANY},
        )
        stubber.add_response("post_to_connection", {}, {"ConnectionId": "R", "Data": _ANY})
        stubber.add_response("post_to_connection", {}, {"ConnectionId": "R", "Data": _ANY})
        send("R", {"type": "signal", "to": sender_peer, "data": {"sdp": "v=0"}})
        stubber.assert_no_pending_responses()
    store = app_module.signaling().rooms.store
    sender = store.get_member(room["room"], sender_peer)
    assert sender is not None and sender.connection_id is None
    assert store.get_connection("S", 0) is None


class _Anything:
    def __eq__(self, other: object) -> bool:
        return True


_ANY = _Anything()


# -- the rest of the signaling contract, as Lambda runs it ------------------------------

RECEIVER_TOKEN = "receiver-token-0123456789"


def joined_room(client: Client, **body: Any) -> tuple[dict[str, Any], str, str]:
    """A room with a sender (connection S) and a receiver (connection R) who said hello."""
    room = create_room(client, **body)
    connect("S", room=room["room"], role="sender", token=room["owner_token"])
    send("S", {"type": "hello"})
    connect("R", room=room["room"], role="receiver", token=RECEIVER_TOKEN)
    send("R", {"type": "hello"})
    return room, posted("S")[0]["peer"], posted("R")[0]["peer"]


def test_bad_messages_get_stable_codes_and_change_nothing(aws: None) -> None:
    with Client(app_module.app) as client:
        room, sender, receiver = joined_room(client)
        before = client.http.get(f"/rooms/{room['room']}").json_body
        cases = [
            ("{not json", "bad_json"),
            ("[1, 2, 3]", "bad_message"),
            ({"type": 7}, "bad_message"),
            ({"type": "teleport"}, "unknown_type"),
            ({"type": "signal", "to": sender}, "bad_message"),
            ({"type": "signal", "to": "ghostPeer", "data": {}}, "peer_not_found"),
            ({"type": "signal", "to": receiver, "data": {}}, "peer_not_found"),
            ({"type": "lock"}, "not_allowed"),
            ({"type": "close"}, "not_allowed"),
            ({"type": "signal", "to": sender, "data": {"sdp": "x" * 65536}}, "message_too_large"),
        ]
        for message, code in cases:
            send("R", message)
            assert posted("R")[-1]["type"] == "error" and posted("R")[-1]["code"] == code, message
        assert client.http.get(f"/rooms/{room['room']}").json_body == before
        assert [m["type"] for m in posted("S")] == ["welcome", "peer-joined"]


def test_one_time_room_locks_and_its_receiver_comes_back(aws: None) -> None:
    with Client(app_module.app) as client:
        room, sender, receiver = joined_room(client, one_time=True)
        send("S", {"type": "lock"})
        assert posted("S")[-1] == {"type": "locked"}
        ws("$disconnect", "R")
        assert posted("S")[-1] == {"type": "peer-left", "peer": receiver}
        assert connect("N", room=room["room"], role="receiver")["statusCode"] == 410
        back = connect(
            "R2", room=room["room"], role="receiver", peer=receiver, token=RECEIVER_TOKEN
        )
        assert back["statusCode"] == 200
        send("R2", {"type": "hello"})
        assert posted("R2")[0]["peer"] == receiver
        assert posted("S")[-1] == {"type": "peer-joined", "peer": receiver, "role": "receiver"}


def test_reconnect_replaces_the_old_connection(aws: None) -> None:
    with Client(app_module.app) as client:
        room, sender, receiver = joined_room(client, max_receivers=1)
        old = management_backend().connections["R"]
        again = connect(
            "R2", room=room["room"], role="receiver", peer=receiver, token=RECEIVER_TOKEN
        )
        assert again["statusCode"] == 200
        assert decode_frames(old.data)[-1]["code"] == "connection_replaced"
        assert "R" not in management_backend().connections  # closed by the server
        send("R2", {"type": "hello"})
        send("R2", {"type": "signal", "to": sender, "data": {"n": 1}})
        assert posted("S")[-1] == {"type": "signal", "from": receiver, "data": {"n": 1}}
        assert client.http.get(f"/rooms/{room['room']}").json_body["receivers"] == 1


def test_turn_secret_comes_from_ssm_parameter_store(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As deployed: only the parameter's name is configured; the secret is read at run time."""
    monkeypatch.delenv("PEERBEAM_TURN_SECRET")
    monkeypatch.setenv("PEERBEAM_TURN_SECRET_PARAMETER", "/peerbeam/dev/turn-secret")
    boto3.client("ssm").put_parameter(
        Name="/peerbeam/dev/turn-secret", Value="from-ssm", Type="SecureString"
    )
    reset_app()
    with Client(app_module.app) as client:
        room = create_room(client)
    connect("S", room=room["room"], role="sender", token=room["owner_token"])
    send("S", {"type": "hello"})
    (turn,) = [s for s in posted("S")[0]["ice_servers"] if "username" in s]
    expiry, _, peer = turn["username"].partition(":")
    expected = turn_credentials("from-ssm", peer, int(expiry) - 43200, 43200)
    assert (turn["username"], turn["credential"]) == expected


def test_unreadable_turn_secret_leaves_stun_only(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PEERBEAM_TURN_SECRET")
    monkeypatch.setenv("PEERBEAM_TURN_SECRET_PARAMETER", "/peerbeam/dev/missing")
    monkeypatch.setenv("PEERBEAM_STUN_URLS", "stun:127.0.0.1:3478")
    reset_app()
    with Client(app_module.app) as client:
        room = create_room(client)
    connect("S", room=room["room"], role="sender", token=room["owner_token"])
    send("S", {"type": "hello"})
    servers = posted("S")[0]["ice_servers"]
    assert all("username" not in server for server in servers)


# -- hostile clients (issue 12), as Lambda runs the handlers -----------------------------


def clock_at(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    monkeypatch.setattr(app_module.signaling().rooms, "_clock", lambda: seconds)


def test_a_receiver_that_never_says_hello_loses_its_slot(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Knowing the room id is not enough to hold the only slot of a one-time room."""
    with Client(app_module.app) as client:
        room = create_room(client, one_time=True)
        start = room["expires_at"] - 86400
        clock_at(monkeypatch, start)
        assert connect("SQUAT", room=room["room"], role="receiver")["statusCode"] == 200
        squatter = management_backend().connections["SQUAT"]
        clock_at(monkeypatch, start + 5)
        assert connect("R", room=room["room"], role="receiver")["statusCode"] == 409
        assert client.http.get(f"/rooms/{room['room']}").json_body["full"] is True
        clock_at(monkeypatch, start + 11)
        # The receiver's page asks first: the squatted slot is reclaimed, not shown as full.
        state = client.http.get(f"/rooms/{room['room']}").json_body
        assert (state["receivers"], state["full"]) == (0, False)
        assert decode_frames(squatter.data)[-1]["code"] == "hello_timeout"
        assert "SQUAT" not in management_backend().connections  # closed by the server
        assert connect("R", room=room["room"], role="receiver")["statusCode"] == 200
        send("R", {"type": "hello"})
        assert posted("R")[0]["type"] == "welcome"
        send("SQUAT", {"type": "hello"})
        assert posted("SQUAT")[-1]["code"] == "not_joined"


def test_a_squatted_slot_is_reclaimed_by_the_next_join(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Client(app_module.app) as client:
        room = create_room(client, max_receivers=1)
    start = room["expires_at"] - 86400
    clock_at(monkeypatch, start)
    connect("SQUAT", room=room["room"], role="receiver")
    squatter = management_backend().connections["SQUAT"]
    clock_at(monkeypatch, start + 11)
    assert connect("R", room=room["room"], role="receiver")["statusCode"] == 200
    assert decode_frames(squatter.data) == [{
        "type": "error", "code": "hello_timeout",
        "message": "Say hello within 10 s of connecting.",
    }]
    assert "SQUAT" not in management_backend().connections


def test_turn_credentials_never_outlive_the_room(aws: None) -> None:
    with Client(app_module.app) as client:
        room = create_room(client, expires_in=60)
    connect("S", room=room["room"], role="sender", token=room["owner_token"])
    send("S", {"type": "hello"})
    (turn,) = [s for s in posted("S")[0]["ice_servers"] if "username" in s]
    assert int(turn["username"].split(":")[0]) <= room["expires_at"]


def test_chalice_errors_have_the_contract_shape(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Client(app_module.app) as client:
        responses = {
            405: client.http.put("/rooms", body="{}"),
            415: client.http.post("/rooms", headers={"content-type": "application/xml"},
                                  body="<x/>"),
        }
        monkeypatch.setattr(app_module.signaling().rooms, "create",
                            lambda body: (_ for _ in ()).throw(RuntimeError("bug")))
        responses[500] = client.http.post("/rooms", body="{}")
    codes = {405: "method_not_allowed", 415: "unsupported_media_type", 500: "internal_error"}
    for status, response in responses.items():
        assert response.status_code == status
        assert response.headers["Content-Type"] == "application/json"
        assert set(response.json_body) == {"code", "message"}, response.json_body
        assert response.json_body["code"] == codes[status]
        assert "xml" not in response.json_body["message"]  # no echo of the request
    assert "POST" in responses[405].headers["Allow"]


DEEP = "[" * 30_000 + "]" * 30_000  # under the 64 KiB frame limit


@pytest.mark.parametrize("body", [
    DEEP,
    '{"expires_in": ' + "[" * 40 + "]" * 40 + "}",  # valid JSON, but nested 41 deep
    '{"expires_in": NaN}',
    '{"expires_in": 1e999}',
])
def test_deep_or_unrepresentable_json_is_bad_json(aws: None, body: str) -> None:
    with Client(app_module.app) as client:
        response = client.http.post("/rooms", headers={"content-type": "application/json"},
                                    body=body)
        assert (response.status_code, response.json_body["code"]) == (400, "bad_json")
        room, sender, _ = joined_room(client)
    send("R", body)
    assert posted("R")[-1]["code"] == "bad_json"
    send("R", {"type": "ping"})
    assert posted("R")[-1] == {"type": "pong"}


def test_error_messages_quote_at_most_a_short_excerpt(aws: None) -> None:
    with Client(app_module.app) as client:
        response = client.http.post("/rooms", headers={"content-type": "application/json"},
                                    body=json.dumps({"\x1b]0;owned\x07" + "k" * 20_000: 1}))
        error = response.json_body
        assert error["code"] == "invalid_parameter" and len(error["message"]) < 120
        assert "\x1b" not in error["message"] and len(error["field"]) <= 32
        joined_room(client)
    send("R", {"type": "\x1b[2J" + "x" * 60_000})
    error = posted("R")[-1]
    assert error["code"] == "unknown_type" and len(error["message"]) < 120
    assert "\x1b" not in error["message"]


def test_an_internal_failure_answers_and_keeps_the_connection(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Client(app_module.app) as client:
        joined_room(client)
    rooms = app_module.signaling().rooms
    monkeypatch.setattr(rooms, "lock", lambda connection: (_ for _ in ()).throw(OSError("down")))
    send("S", {"type": "lock"})
    assert posted("S")[-1]["code"] == "internal_error"
    send("S", {"type": "ping"})
    assert posted("S")[-1] == {"type": "pong"}


def test_connects_are_capped_per_address(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    with Client(app_module.app) as client:
        room = create_room(client)
    # Chalice's test client lays the stage's environment (config.json) over ours while it
    # runs a request: build the app again outside it, with the limit under test.
    monkeypatch.setenv("PEERBEAM_CONNECTS_PER_MINUTE", "2")
    reset_app()
    for name in ("A", "B"):
        assert ws("$connect", name, query={"room": room["room"], "role": "receiver"},
                  source_ip="198.51.100.7")["statusCode"] == 200
    refused = ws("$connect", "C", query={"room": room["room"], "role": "receiver"},
                 source_ip="198.51.100.7")
    assert refused["statusCode"] == 429
    assert json.loads(refused["body"])["code"] == "rate_limited"
    assert 1 <= int(refused["headers"]["Retry-After"]) <= 60
    with Client(app_module.app) as client:
        assert client.http.get(f"/rooms/{room['room']}").json_body["receivers"] == 2
    assert ws("$connect", "D", query={"room": room["room"], "role": "receiver"},
              source_ip="203.0.113.9")["statusCode"] == 200
