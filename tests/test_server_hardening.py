"""`peerbeam serve` against hostile clients (issue 12): each test is one way to hurt it.

Real server processes, real sockets on 127.0.0.1 (127.0.0.2 plays a second client
address where a test needs one); limits and timeouts are set small through the
environment so every test runs in seconds.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import websockets

from tests import raw_clients
from tests.fixtures.servers import LocalServer
from tests.signaling_helpers import Peer, create_room, http, refused


@pytest.fixture
def server_with(tmp_path: Path) -> Iterator[object]:
    """Start `peerbeam serve` with extra environment: ``server_with(PEERBEAM_X="1")``."""
    started: list[LocalServer] = []

    def start(fd_limit: int | None = None, **env: str) -> LocalServer:
        server = LocalServer(tmp_path / f"server{len(started)}", env=env, fd_limit=fd_limit)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def wait_for(predicate: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def assert_contract_error(status: int, headers: dict[str, str], body: object, code: str) -> None:
    assert headers["content-type"].startswith("application/json"), headers
    assert isinstance(body, dict) and set(body) >= {"code", "message"}, body
    assert body["code"] == code, (status, body)


# -- memory: a client that never reads -------------------------------------------------


async def test_a_client_that_never_reads_is_cut_off(server_with: object) -> None:
    """The queue towards a socket is bounded in bytes: 200 relayed 60 KB signals to a
    receiver that reads nothing cut it off (peer-left), instead of being held for it."""
    # The sender's byte budget would only slow this down (tested on its own below).
    local_server = server_with(PEERBEAM_CLIENT_BYTES_PER_SECOND="0")  # type: ignore[operator]
    room = create_room(local_server.api)
    sender = await Peer.join(local_server.ws, room=room["room"], role="sender",
                             token=room["owner_token"])
    stuck = raw_clients.websocket(local_server.port, f"room={room['room']}&role=receiver",
                                  rcvbuf=4096)
    stuck.sendall(raw_clients.frame({"type": "hello"}))
    joined = await sender.expect("peer-joined")
    big = json.dumps({"type": "signal", "to": joined["peer"], "data": {"sdp": "x" * 60_000}})
    for _ in range(200):
        await sender.send(big)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        message = await sender.recv()
        if message["type"] == "peer-left":
            assert message["peer"] == joined["peer"]
            break
        assert message == {"type": "error", "code": "peer_not_found",
                           "message": "That peer has left the room."}
    else:
        raise AssertionError("the receiver that never reads was never cut off")
    assert raw_clients.closed_by_server(stuck, 5)
    assert "is not reading" in local_server.log()
    stuck.close()


async def test_a_flooding_client_is_slowed_and_others_are_not(server_with: object) -> None:
    """WebSocket bytes are budgeted per client address: 500 KB of messages against a budget
    of 200 KB/s (50 KB burst) take seconds to be answered, while another address is served
    at once."""
    server = server_with(PEERBEAM_CLIENT_BYTES_PER_SECOND="200000",  # type: ignore[operator]
                         PEERBEAM_CLIENT_BYTES_BURST="50000")
    room = create_room(server.api)
    flooder = raw_clients.websocket(server.port, f"room={room['room']}&role=receiver",
                                    source="127.0.0.2")
    other = await Peer.join(server.ws, room=room["room"], role="receiver")
    started = time.monotonic()
    heavy = raw_clients.frame({"type": "ping", "padding": "x" * 50_000})
    for _ in range(10):
        flooder.sendall(heavy)
    await other.send({"type": "ping"})
    await other.expect("pong")
    assert time.monotonic() - started < 1
    flooder.settimeout(15)
    answers = b""
    while answers.count(b'"pong"') < 10:
        chunk = flooder.recv(65536)
        assert chunk, "the flooder was disconnected"
        answers += chunk
    assert time.monotonic() - started > 1.5
    flooder.close()


# -- connections: caps, timeouts, descriptors -----------------------------------------


def test_connections_past_the_cap_get_a_clear_503(server_with: object) -> None:
    server = server_with(PEERBEAM_MAX_CONNECTIONS="8", PEERBEAM_HEADER_TIMEOUT="1.5")  # type: ignore[operator]
    idle = [raw_clients.connect(server.port) for _ in range(8)]
    time.sleep(0.3)
    started = time.monotonic()
    status, headers, body = raw_clients.request(server.port, "GET", "/config.json",
                                                source="127.0.0.2")
    assert time.monotonic() - started < 2
    assert status == 503 and headers["retry-after"] == "5"
    assert_contract_error(status, headers, body, "server_busy")
    # The idle connections never sent their headers: cut at the header timeout.
    assert all(raw_clients.closed_by_server(sock, 5) for sock in idle)
    assert raw_clients.request(server.port, "GET", "/config.json")[0] == 200
    for sock in idle:
        sock.close()


def test_one_address_cannot_take_every_connection(server_with: object) -> None:
    server = server_with(PEERBEAM_MAX_CONNECTIONS_PER_CLIENT="4")  # type: ignore[operator]
    idle = [raw_clients.connect(server.port, source="127.0.0.2") for _ in range(4)]
    time.sleep(0.3)
    status, headers, body = raw_clients.request(server.port, "GET", "/config.json",
                                                source="127.0.0.2")
    assert_contract_error(status, headers, body, "server_busy")
    assert "your address" in body["message"]
    assert raw_clients.request(server.port, "GET", "/config.json")[0] == 200  # someone else
    for sock in idle:
        sock.close()


def test_running_out_of_descriptors_is_avoided(server_with: object) -> None:
    """With 256 file descriptors, 400 half-open connections: the server keeps answering
    (503 while they last, 200 once they are cut) and its log stays short."""
    server = server_with(fd_limit=256, PEERBEAM_HEADER_TIMEOUT="2")  # type: ignore[operator]
    log_before = len(server.log())
    attackers = raw_clients.flood(server.port, 400, source="127.0.0.2")
    time.sleep(0.5)
    started = time.monotonic()
    status, headers, body = raw_clients.request(server.port, "GET", "/config.json", timeout=8)
    assert time.monotonic() - started < 5
    assert status in (200, 503), (status, body)
    assert wait_for(lambda: raw_clients.request(server.port, "GET", "/config.json")[0] == 200, 10)
    for sock in attackers:
        sock.close()
    log = server.log()[log_before:]
    assert "Too many open files" not in log
    assert log.count("\n") < 200, log[-3000:]


def test_slow_headers_are_cut_at_the_header_timeout(server_with: object) -> None:
    server = server_with(PEERBEAM_HEADER_TIMEOUT="1")  # type: ignore[operator]
    silent = raw_clients.connect(server.port)
    slow = raw_clients.connect(server.port)
    started = time.monotonic()
    for byte in b"GET /config.json HTTP/1.1\r\nHost: 127.0.0.1\r\n":
        try:
            slow.send(bytes([byte]))
        except OSError:
            break
        time.sleep(0.05)
        if time.monotonic() - started > 3:
            break
    assert raw_clients.closed_by_server(slow, 3)
    assert raw_clients.closed_by_server(silent, 3)
    assert time.monotonic() - started < 5
    silent.close()
    slow.close()


async def test_an_open_websocket_outlives_the_header_timeout(server_with: object) -> None:
    """The header timeout is for requests, not for a WebSocket that is talking."""
    server = server_with(PEERBEAM_HEADER_TIMEOUT="1")  # type: ignore[operator]
    room = create_room(server.api)
    peer = await Peer.join(server.ws, room=room["room"], role="receiver")
    await asyncio.sleep(2.5)
    await peer.send({"type": "ping"})
    assert await peer.expect("pong") == {"type": "pong"}


def test_a_slow_request_body_times_out(server_with: object) -> None:
    server = server_with(PEERBEAM_HEADER_TIMEOUT="1")  # type: ignore[operator]
    sock = raw_clients.connect(server.port)
    sock.sendall(b"POST /api/rooms HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
                 b"\r\nContent-Length: 100\r\n\r\n{")
    status, headers, _ = raw_clients.read_head(sock)
    assert status == 408 and headers["content-type"].startswith("application/json")
    sock.close()
    assert http("GET", f"{server.api}/rooms/none")[0] == 404  # still serving


# -- rooms: squatting --------------------------------------------------------------------


async def test_a_receiver_that_never_says_hello_is_closed_and_frees_its_slot(
    server_with: object,
) -> None:
    server = server_with(PEERBEAM_HELLO_TIMEOUT="1")  # type: ignore[operator]
    room = create_room(server.api, one_time=True)
    squatter = await websockets.connect(f"{server.ws}?room={room['room']}&role=receiver")
    assert await refused(server.ws, room=room["room"], role="receiver") == 409
    await asyncio.wait_for(squatter.wait_closed(), 5)
    assert squatter.close_code == 1008
    receiver = await Peer.join(server.ws, room=room["room"], role="receiver")
    assert receiver.welcome["role"] == "receiver"


# -- rate limits -------------------------------------------------------------------------


async def test_room_creation_and_joins_are_rate_limited_per_client(server_with: object) -> None:
    server = server_with(  # type: ignore[operator]
        PEERBEAM_ROOMS_BURST="2", PEERBEAM_ROOMS_PER_MINUTE="1",
        PEERBEAM_JOINS_BURST="2", PEERBEAM_JOINS_PER_MINUTE="1",
    )
    rooms = [create_room(server.api), create_room(server.api)]
    status, headers, body = raw_clients.request(
        server.port, "POST", "/api/rooms", body=b"{}", headers={"Content-Type": "application/json"})
    assert status == 429 and 1 <= int(headers["retry-after"]) <= 60
    assert_contract_error(status, headers, body, "rate_limited")
    # Another address has its own bucket; reading a room is not limited.
    assert raw_clients.request(server.port, "POST", "/api/rooms", body=b"{}", source="127.0.0.2",
                               headers={"Content-Type": "application/json"})[0] == 201
    for _ in range(5):
        assert http("GET", f"{server.api}/rooms/{rooms[0]['room']}")[0] == 200

    rid = rooms[0]["room"]
    peers = [await Peer.join(server.ws, room=rid, role="receiver", hello=False) for _ in range(2)]
    assert await refused(server.ws, room=rid, role="receiver") == 429
    assert http("GET", f"{server.api}/rooms/{rid}")[1]["receivers"] == 2  # nothing changed
    for peer in peers:
        await peer.close()


# -- the contract everywhere -------------------------------------------------------------


def test_every_error_is_contract_json(local_server: LocalServer) -> None:
    port = local_server.port
    cases = [
        (("GET", "/%00"), 404, "not_found"),
        (("GET", "/js/%00.js"), 404, "not_found"),
        (("GET", "/" + "a" * 5000), 404, "not_found"),
        (("GET", "/api/nothing/here"), 404, "not_found"),
        (("PUT", "/config.json"), 405, "method_not_allowed"),
        (("PUT", "/api/rooms"), 405, "method_not_allowed"),
        (("GET", "/api/rooms/unknownRoom"), 404, "room_not_found"),
    ]
    for (method, path), status, code in cases:
        got, headers, body = raw_clients.request(port, method, path)
        assert got == status, (path, got, body)
        assert_contract_error(got, headers, body, code)
    json_headers = {"Content-Type": "application/json"}
    got, headers, body = raw_clients.request(port, "POST", "/api/rooms", body=b"x" * (2 << 20),
                                             headers=json_headers)
    assert got == 413
    assert_contract_error(got, headers, body, "request_too_large")
    got, headers, body = raw_clients.request(port, "POST", "/api/rooms", body=b"<x/>",
                                             headers={"Content-Type": "application/xml"})
    assert got == 415
    assert_contract_error(got, headers, body, "unsupported_media_type")
    got, headers, body = raw_clients.request(port, "POST", "/api/rooms", body=b"{}",
                                             headers=json_headers)
    assert got == 201 and headers["content-type"].startswith("application/json")
    got, headers, body = raw_clients.request(port, "GET", "/", headers={"X-Big": "a" * 20_000})
    assert got == 400
    assert_contract_error(got, headers, body, "bad_request")
    assert "Traceback" not in local_server.log()


async def test_deep_json_is_bad_json_and_logs_nothing(local_server: LocalServer) -> None:
    deep = "[" * 30_000 + "]" * 30_000
    status, error = http("POST", f"{local_server.api}/rooms", deep.encode())
    assert (status, error["code"]) == (400, "bad_json")
    room = create_room(local_server.api)
    peer = await Peer.join(local_server.ws, room=room["room"], role="sender",
                           token=room["owner_token"])
    size = len(local_server.log())
    for _ in range(50):
        assert await peer.error(deep) == "bad_json"  # answered, and the socket still works
    assert "Traceback" not in local_server.log()
    assert len(local_server.log()) - size < 2000  # the access log line comes on close only


# -- Host: DNS rebinding ----------------------------------------------------------------


async def test_a_rebound_name_is_refused(local_server: LocalServer) -> None:
    evil = f"evil.example:{local_server.port}"
    for path in ("/config.json", "/", "/api/rooms/abc"):
        status, headers, body = raw_clients.request(local_server.port, "GET", path, host=evil)
        assert status == 421
        assert_contract_error(status, headers, body, "host_not_allowed")
        assert "--allowed-host" in body["message"] and "--public-url" in body["message"]
    status, headers, body = raw_clients.request(
        local_server.port, "POST", "/api/rooms", body=b"{}", host=evil,
        headers={"Origin": f"http://{evil}", "Content-Type": "text/plain"})
    assert status == 421
    with pytest.raises(ConnectionRefusedError, match="421"):
        raw_clients.websocket(local_server.port, "room=abc&role=receiver",
                              headers={"Host": evil, "Origin": f"http://{evil}"})
    for host in (f"127.0.0.1:{local_server.port}", f"localhost:{local_server.port}",
                 f"{socket.gethostname()}:{local_server.port}"):
        assert raw_clients.request(local_server.port, "GET", "/config.json", host=host)[0] == 200


def test_allowed_hosts_and_a_public_url(server_with: object) -> None:
    server = server_with(  # type: ignore[operator]
        PEERBEAM_ALLOWED_HOSTS="peerbeam.lan", PEERBEAM_PUBLIC_URL="https://files.example.com/",
    )
    assert raw_clients.request(server.port, "GET", "/config.json",
                               host="peerbeam.lan:8000")[0] == 200
    assert raw_clients.request(server.port, "GET", "/config.json",
                               host="evil.example")[0] == 421
    status, _, config = raw_clients.request(server.port, "GET", "/config.json")
    assert config == {"api_url": "https://files.example.com/api",
                      "ws_url": "wss://files.example.com/ws"}
    # Behind a proxy that passes Host on, or rewrites it: the public origin is the page's.
    for host in ("files.example.com", f"127.0.0.1:{server.port}"):
        status, _, room = raw_clients.request(
            server.port, "POST", "/api/rooms", body=b"{}", host=host,
            headers={"Origin": "https://files.example.com", "Content-Type": "text/plain"})
        assert status == 201 and room["ws_url"] == "wss://files.example.com/ws"


# -- logs --------------------------------------------------------------------------------


def test_one_client_cannot_flood_the_log(local_server: LocalServer) -> None:
    before = local_server.log().count("\n")
    for _ in range(300):
        raw_clients.request(local_server.port, "GET", "/no/such/page")
    wait_for(lambda: False, 0.3)
    lines = local_server.log().count("\n") - before
    assert lines < 100, lines
    raw_clients.request(local_server.port, "GET", "/config.json", source="127.0.0.2")
    assert wait_for(lambda: '127.0.0.2 "GET /config.json" 200' in local_server.log(), 3)
