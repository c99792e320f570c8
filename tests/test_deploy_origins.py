"""CORS on the REST API and the Origin check on WebSocket $connect.

As Lambda runs them (site origin configured) and as the local server runs them
(nothing configured: the page's own origin, e.g. http://127.0.0.1:PORT, is allowed).
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
import websockets
from chalice.test import Client
from websockets.typing import Origin

import app as app_module
from chalicelib.origins import normalise, origin_allowed
from tests.fixtures.servers import LocalServer
from tests.signaling_helpers import TIMEOUT, create_room, http
from tests.test_chalice_handlers import API_ID, aws, reset_app, ws  # noqa: F401 - fixture

SITE = "https://d111abcdef8.cloudfront.net"
EVIL = "https://evil.example"
HOST = f"{API_ID}.execute-api.us-east-1.amazonaws.com"


@pytest.mark.parametrize(
    "origin, host, allowed, expected",
    [
        (None, "h", (), True),  # no browser page: the CLI
        ("", "h", (), True),
        (SITE, HOST, (SITE,), True),
        (SITE + "/", HOST, (SITE,), True),
        ("HTTPS://D111ABCDEF8.cloudfront.net:443", HOST, (SITE,), True),
        (EVIL, HOST, (SITE,), False),
        (SITE + ".evil.example", HOST, (SITE,), False),
        ("http://d111abcdef8.cloudfront.net", HOST, (SITE,), False),  # scheme matters
        ("null", HOST, (SITE,), False),
        (EVIL, HOST, ("*",), True),
        # Nothing configured: only the server's own origin (the local server's pages).
        ("http://127.0.0.1:8000", "127.0.0.1:8000", (), True),
        ("https://192.168.1.20:8443", "192.168.1.20:8443", (), True),
        ("http://localhost:8000", "localhost:8000", (), True),
        ("http://127.0.0.1:9999", "127.0.0.1:8000", (), False),
        ("https://example.org", "example.org:443", (), True),
        (EVIL, "127.0.0.1:8000", (), False),
    ],
)
def test_origin_rules(origin: str | None, host: str, allowed: tuple[str, ...],
                      expected: bool) -> None:
    assert origin_allowed(origin, host, allowed) is expected


def test_normalise() -> None:
    assert normalise("HTTPS://Example.COM:443/") == "https://example.com"
    assert normalise("http://[::1]:8000") == "http://[::1]:8000"
    assert normalise("https://example.com/path") == ""
    assert normalise("null") == ""


# -- the handlers as Lambda runs them ---------------------------------------------------


@pytest.fixture
def site(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setenv("PEERBEAM_ALLOWED_ORIGINS", f"{SITE},")
    reset_app()


def post_room(client: Client, origin: str | None) -> Any:
    headers = {"content-type": "text/plain", "host": HOST}
    if origin:
        headers["origin"] = origin
    return client.http.post("/rooms", headers=headers, body="{}")


def table_items() -> int:
    return int(boto3.client("dynamodb").scan(TableName="rooms")["Count"])


def test_rest_answers_the_site_with_cors_headers(site: None) -> None:
    with Client(app_module.app) as client:
        created = post_room(client, SITE)
        assert created.status_code == 201
        assert created.headers["Access-Control-Allow-Origin"] == SITE
        assert created.headers["Vary"] == "Origin"
        room = created.json_body
        state = client.http.get(f"/rooms/{room['room']}", headers={"origin": SITE})
        assert state.status_code == 200
        assert state.headers["Access-Control-Allow-Origin"] == SITE
        preflight = client.http.options(f"/rooms/{room['room']}", headers={
            "origin": SITE, "access-control-request-method": "DELETE",
            "access-control-request-headers": "authorization",
        })
        assert preflight.status_code == 204
        assert preflight.headers["Access-Control-Allow-Origin"] == SITE
        assert "DELETE" in preflight.headers["Access-Control-Allow-Methods"]
        assert "authorization" in preflight.headers["Access-Control-Allow-Headers"]
        deleted = client.http.delete(f"/rooms/{room['room']}", headers={
            "origin": SITE, "authorization": f"Bearer {room['owner_token']}",
        })
        assert deleted.status_code == 204
        assert deleted.headers["Access-Control-Allow-Origin"] == SITE


def test_rest_refuses_other_origins(site: None) -> None:
    with Client(app_module.app) as client:
        refused = post_room(client, EVIL)
        assert refused.status_code == 403
        assert refused.json_body["code"] == "origin_not_allowed"
        assert "Access-Control-Allow-Origin" not in refused.headers
        assert table_items() == 0  # nothing was created
        room = post_room(client, None).json_body  # the CLI sends no Origin
        foreign = client.http.get(f"/rooms/{room['room']}", headers={"origin": EVIL})
        assert foreign.status_code == 403
        preflight = client.http.options("/rooms", headers={
            "origin": EVIL, "access-control-request-method": "POST",
        })
        assert preflight.status_code == 403
        assert "Access-Control-Allow-Origin" not in preflight.headers
        delete = client.http.delete(f"/rooms/{room['room']}", headers={
            "origin": EVIL, "authorization": f"Bearer {room['owner_token']}",
        })
        assert delete.status_code == 403
        assert client.http.get(f"/rooms/{room['room']}").status_code == 200  # still there


def connect_from(connection_id: str, origin: str | None, **query: str) -> dict[str, Any]:
    headers = {"Host": HOST}
    if origin:
        headers["Origin"] = origin
    return ws("$connect", connection_id, query=query, headers=headers)


def test_websocket_connect_checks_the_origin(site: None) -> None:
    with Client(app_module.app) as client:
        room = post_room(client, None).json_body
    refused = connect_from("E", EVIL, room=room["room"], role="receiver")
    assert refused["statusCode"] == 403
    assert json.loads(refused["body"])["code"] == "origin_not_allowed"
    state = app_module.signaling().rooms.public_state(room["room"])
    assert state["receivers"] == 0
    assert connect_from("S", SITE, room=room["room"], role="receiver")["statusCode"] == 200
    assert connect_from("C", None, room=room["room"], role="receiver")["statusCode"] == 200


def test_unconfigured_lambda_allows_only_its_own_origin(aws: None) -> None:  # noqa: F811
    with Client(app_module.app) as client:
        assert post_room(client, SITE).status_code == 403
        assert post_room(client, f"https://{HOST}").status_code == 201
    assert connect_from("X", SITE, room="whatever", role="receiver")["statusCode"] == 403


# -- the local server: same-origin pages work without configuration ---------------------


async def test_local_server_allows_its_own_pages_only(local_server: LocalServer) -> None:
    base = local_server.base
    status, room = http("POST", f"{local_server.api}/rooms", {}, headers={"origin": base})
    assert status == 201, room
    status, error = http("POST", f"{local_server.api}/rooms", {}, headers={"origin": EVIL})
    assert (status, error["code"]) == (403, "origin_not_allowed")
    query = f"?room={room['room']}&role=sender&token={room['owner_token']}"
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        await websockets.connect(local_server.ws + query, origin=Origin(EVIL), open_timeout=TIMEOUT)
    assert refused.value.response.status_code == 403
    socket = await websockets.connect(local_server.ws + query, origin=Origin(base), open_timeout=TIMEOUT)
    await socket.send(json.dumps({"type": "hello"}))
    assert json.loads(await socket.recv())["type"] == "welcome"
    await socket.close()
    assert create_room(local_server.api)["room"]  # no Origin: the CLI


def test_local_server_with_configured_origins(tmp_path: Any) -> None:
    server = LocalServer(tmp_path / "server", env={"PEERBEAM_ALLOWED_ORIGINS": SITE})
    server.start()
    try:
        assert http("POST", f"{server.api}/rooms", {}, headers={"origin": SITE})[0] == 201
        assert http("POST", f"{server.api}/rooms", {}, headers={"origin": server.base})[0] == 201
        assert http("POST", f"{server.api}/rooms", {}, headers={"origin": EVIL})[0] == 403
    finally:
        server.stop()
