"""Property-based fuzzing of app.py's handlers as Lambda runs them (issue 12).

REST through Chalice's test client, WebSocket through the handlers with API
Gateway-shaped events; answers go through moto's Management API. The store is
SQLite (fast; the store contract suite holds DynamoDB to the same behaviour).

For any input: no 5xx, nothing raised, a refusal is ``{"code", "message"}`` with a
code from docs/signaling.md and changes no state, and the same refusal repeated gets
the same code. `make fuzz` runs these with many more examples.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client
from hypothesis import given
from hypothesis import strategies as st
from moto import mock_aws

import app as app_module
from tests.fuzz_strategies import (
    KNOWN_CODES,
    OTHER,
    RECEIVER,
    SENDER,
    bodies,
    content_types,
    messages,
    origins,
    queries,
    room_ids,
    substitute,
    tokens,
)
from tests.test_chalice_handlers import API_ID, STAGE, posted, reset_app, ws

RECEIVER_TOKEN = "receiver-token-0123456789"


@pytest.fixture
def handlers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    database = tmp_path / "rooms.sqlite3"
    with mock_aws():
        monkeypatch.setenv("PEERBEAM_STORE", "sqlite")
        monkeypatch.setenv("PEERBEAM_SQLITE_PATH", str(database))
        monkeypatch.setenv("PEERBEAM_WS_URL", "wss://ws.example.test/api")
        monkeypatch.setenv("PEERBEAM_WEBSOCKET_API_ID", API_ID)
        monkeypatch.setenv("PEERBEAM_WEBSOCKET_STAGE", STAGE)
        reset_app()
        # Built now, from this environment: Chalice's test client would lay the stage's
        # (config.json: the DynamoDB store) over it while it runs a request.
        app_module.signaling()
        yield database
        reset_app()


def rows(database: Path) -> tuple[Any, ...]:
    """Everything the store holds, read from the side."""
    with sqlite3.connect(database) as db:
        return tuple(
            tuple(db.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall())  # noqa: S608
            for table in ("rooms", "members", "connections")
        )


def assert_refusal(status: int, headers: dict[str, str], body: Any) -> str:
    assert status < 500, (status, body)
    assert headers.get("Content-Type", "").startswith("application/json"), headers
    assert isinstance(body, dict) and set(body) - {"field"} == {"code", "message"}, body
    assert body["code"] in KNOWN_CODES, body
    return str(body["code"])


class Room:
    """A room with its sender S, a receiver R and another receiver O, all said hello."""

    def __init__(self, client: Client) -> None:
        response = client.http.post("/rooms", headers={"content-type": "application/json"},
                                    body=json.dumps({"max_receivers": 3}))
        created = response.json_body
        self.id, self.owner = created["room"], created["owner_token"]
        suffix = uuid.uuid4().hex[:8]
        self.connections = {"S": f"S{suffix}", "R": f"R{suffix}", "O": f"O{suffix}"}
        self.peers: dict[str, str] = {}
        for name, query in (("S", {"role": "sender", "token": self.owner}),
                            ("R", {"role": "receiver", "token": RECEIVER_TOKEN}),
                            ("O", {"role": "receiver"})):
            connection = self.connections[name]
            assert ws("$connect", connection, query={"room": self.id, **query})["statusCode"] == 200
            ws("$default", connection, body='{"type":"hello"}')
            self.peers[name] = posted(connection)[0]["peer"]

    def placeholders(self) -> dict[str, str]:
        return {SENDER: self.peers["S"], RECEIVER: self.peers["R"], OTHER: self.peers["O"],
                "<room>": self.id, "<owner>": self.owner}


# -- REST --------------------------------------------------------------------------------


@given(method=st.sampled_from(["GET", "POST", "DELETE", "OPTIONS", "PUT", "PATCH"]),
       target=st.sampled_from(["/rooms", "/rooms/{id}"]), room=room_ids, body=bodies,
       content_type=content_types, origin=origins,
       authorization=st.sampled_from([None, "Bearer <owner>", "Bearer nope", "<owner>"])
       | st.text(max_size=40))
def test_rest_never_fails_and_refusals_change_nothing(
    handlers: Path, method: str, target: str, room: str, body: bytes, content_type: str,
    origin: str | None, authorization: str | None,
) -> None:
    with Client(app_module.app) as client:
        existing = Room(client)
        values = existing.placeholders()
        headers = {"content-type": content_type} if content_type else {}
        if origin is not None:
            headers["origin"] = origin
        if authorization is not None:
            headers["authorization"] = substitute(authorization, values)
        headers = {k: v for k, v in headers.items() if v.isprintable() and v.isascii()}
        path = target.replace("{id}", substitute(room, values) or "x")
        before = rows(handlers)
        response = client.http.request(method, path, headers=headers, body=body)
        if response.status_code < 400:
            assert response.status_code in (200, 201, 204)
            return
        code = assert_refusal(response.status_code, response.headers, response.json_body)
        assert rows(handlers) == before, (method, path, code)
        again = client.http.request(method, path, headers=headers, body=body)
        assert (again.status_code, again.json_body["code"]) == (response.status_code, code)


# -- WebSocket ---------------------------------------------------------------------------


@given(query=queries)
def test_connect_never_fails_and_refusals_change_nothing(handlers: Path,
                                                         query: dict[str, str]) -> None:
    with Client(app_module.app) as client:
        room = Room(client)
    query = {key: substitute(value, room.placeholders()) for key, value in query.items()}
    before = rows(handlers)
    answer = ws("$connect", f"N{uuid.uuid4().hex[:8]}", query=query)
    status = answer["statusCode"]
    assert status in (200, 400, 403, 404, 409, 410, 429), answer
    if status != 200:
        error = json.loads(answer["body"])
        assert set(error) - {"field"} == {"code", "message"} and error["code"] in KNOWN_CODES
        assert rows(handlers) == before


@given(message=messages, sender=st.booleans(), token=tokens)
def test_messages_never_fail_and_refusals_change_nothing(
    handlers: Path, message: str, sender: bool, token: str
) -> None:
    with Client(app_module.app) as client:
        room = Room(client)
    connection = room.connections["S" if sender else "R"]
    text = substitute(message, room.placeholders())
    before, seen = rows(handlers), len(posted(connection))
    ws("$default", connection, body=text)
    answers = posted(connection)[seen:]
    for answer in answers:
        assert isinstance(answer, dict) and isinstance(answer.get("type"), str), answer
    errors = [a for a in answers if a["type"] == "error"]
    if not errors:
        return
    assert len(answers) == 1, answers
    (error,) = errors
    assert set(error) == {"type", "code", "message"} and error["code"] in KNOWN_CODES, error
    assert len(error["message"]) < 200
    assert rows(handlers) == before
    # The same refusal again: the same code; and the connection still works.
    ws("$default", connection, body=text)
    assert posted(connection)[-1]["code"] == error["code"]
    ws("$default", connection, body='{"type":"ping"}')
    assert posted(connection)[-1] == {"type": "pong"}
