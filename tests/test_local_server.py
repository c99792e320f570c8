"""`peerbeam serve` as a real process, driven by real WebSocket clients: the whole contract."""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from peerbeam import website
from peerbeam.server.run import lan_address
from tests.fixtures.servers import REPO, LocalServer, free_port
from tests.signaling_helpers import Peer, create_room, http, refused

RECEIVER_TOKEN = "receiver-token-0123456789"


def room_state(server: LocalServer, room: str) -> dict[str, Any]:
    status, state = http("GET", f"{server.api}/rooms/{room}")
    assert status == 200, state
    return state


def test_config_and_static_page(local_server: LocalServer) -> None:
    status, config = http("GET", f"{local_server.base}/config.json")
    assert status == 200
    assert config == {"api_url": local_server.api, "ws_url": local_server.ws}
    with urllib.request.urlopen(f"{local_server.base}/", timeout=5) as response:
        assert response.headers["Content-Type"].startswith("text/html")
        for name, value in website.security_headers().items():
            assert response.headers[name] == value, name
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        assert b"peerbeam" in response.read()
    assert http("GET", f"{local_server.base}/../pyproject.toml")[0] == 404
    assert http("GET", f"{local_server.api}/nothing/here")[0] == 404


def test_rest_contract(local_server: LocalServer) -> None:
    room = create_room(local_server.api, expires_in=120, max_receivers=2)
    assert room["ws_url"] == local_server.ws
    state = room_state(local_server, room["room"])
    assert state["max_receivers"] == 2 and state["receivers"] == 0
    assert room["owner_token"] not in str(state)
    status, error = http("POST", f"{local_server.api}/rooms", {"max_receivers": 999})
    assert (status, error["code"], error["field"]) == (400, "invalid_parameter", "max_receivers")
    status, error = http("POST", f"{local_server.api}/rooms", b"{not json")
    assert (status, error["code"]) == (400, "bad_json")
    status, error = http("GET", f"{local_server.api}/rooms/unknownRoom")
    assert (status, error["code"]) == (404, "room_not_found")
    url = f"{local_server.api}/rooms/{room['room']}"
    assert http("DELETE", url)[0] == 403
    assert http("DELETE", url, headers={"authorization": "Bearer wrong"})[0] == 403
    assert room_state(local_server, room["room"])["room"] == room["room"]
    assert http("DELETE", url, headers={"authorization": f"Bearer {room['owner_token']}"})[0] == 204
    assert http("GET", url)[0] == 404


async def test_handshake_refusals(local_server: LocalServer) -> None:
    ws = local_server.ws
    room = create_room(local_server.api, max_receivers=1)
    rid = room["room"]
    assert await refused(ws, room="unknownRoom", role="receiver") == 404
    assert await refused(ws, room="bad room!", role="receiver") == 404
    assert await refused(ws, room=rid, role="admin") == 400
    assert await refused(ws, room=rid, role="sender", token="wrong") == 403
    assert await refused(ws, room=rid, role="sender") == 403
    assert await refused(ws, room=rid, role="receiver", token="short") == 400
    assert await refused(ws, room=rid, role="receiver", peer="nobody", token=RECEIVER_TOKEN) == 403
    first = await Peer.join(ws, room=rid, role="receiver", token=RECEIVER_TOKEN)
    assert await refused(ws, room=rid, role="receiver") == 409
    assert await refused(
        ws, room=rid, role="receiver", peer=first.id, token="x" * 20
    ) == 403
    assert room_state(local_server, rid)["receivers"] == 1
    await first.close()


async def test_relay_announce_and_leave(local_server: LocalServer) -> None:
    room = create_room(local_server.api)
    ws, rid = local_server.ws, room["room"]
    sender = await Peer.join(ws, room=rid, role="sender", token=room["owner_token"])
    assert sender.welcome["role"] == "sender" and sender.welcome["peers"] == []
    receiver = await Peer.join(ws, room=rid, role="receiver")
    assert receiver.welcome["peers"] == [{"peer": sender.id, "role": "sender"}]
    assert await sender.expect("peer-joined") == {
        "type": "peer-joined", "peer": receiver.id, "role": "receiver"
    }
    other = await Peer.join(ws, room=rid, role="receiver")
    assert other.welcome["peers"] == [{"peer": sender.id, "role": "sender"}]
    await sender.expect("peer-joined")
    assert await receiver.quiet()  # receivers never hear of each other

    offer = {"sdp": "v=0 offer", "kind": "offer"}
    await receiver.send({"type": "signal", "to": sender.id, "data": offer})
    assert await sender.expect("signal") == {"type": "signal", "from": receiver.id, "data": offer}
    await sender.send({"type": "signal", "to": receiver.id, "data": {"kind": "answer"}})
    assert (await receiver.expect("signal"))["from"] == sender.id
    assert await other.quiet()

    await sender.send({"type": "ping"})
    assert await sender.expect("pong") == {"type": "pong"}
    await sender.send({"type": "hello"})  # again: fresh welcome, no second announcement
    assert (await sender.expect("welcome"))["peers"] == [
        {"peer": receiver.id, "role": "receiver"}, {"peer": other.id, "role": "receiver"}
    ]
    assert await receiver.quiet()

    await receiver.close()
    assert await sender.expect("peer-left") == {"type": "peer-left", "peer": receiver.id}
    await sender.send({"type": "close"})
    assert await other.expect("room-closed") == {"type": "room-closed"}
    assert await sender.expect("room-closed") == {"type": "room-closed"}
    assert http("GET", f"{local_server.api}/rooms/{rid}")[0] == 404


async def test_bad_input_gets_stable_codes_and_changes_nothing(local_server: LocalServer) -> None:
    room = create_room(local_server.api)
    ws, rid = local_server.ws, room["room"]
    sender = await Peer.join(ws, room=rid, role="sender", token=room["owner_token"])
    receiver = await Peer.join(ws, room=rid, role="receiver")
    await sender.expect("peer-joined")
    other = await Peer.join(ws, room=rid, role="receiver")
    await sender.expect("peer-joined")
    before = room_state(local_server, rid)

    assert await receiver.error("{not json") == "bad_json"
    assert await receiver.error("[1, 2, 3]") == "bad_message"
    assert await receiver.error({"no": "type"}) == "bad_message"
    assert await receiver.error({"type": 7}) == "bad_message"
    assert await receiver.error({"type": "teleport"}) == "unknown_type"
    assert await receiver.error({"type": "signal", "to": sender.id}) == "bad_message"
    assert await receiver.error({"type": "signal", "to": sender.id, "data": "x"}) == "bad_message"
    assert await receiver.error({"type": "signal", "to": "ghostPeer", "data": {}}) == "peer_not_found"
    assert await receiver.error({"type": "signal", "to": receiver.id, "data": {}}) == "peer_not_found"
    assert await receiver.error({"type": "signal", "to": other.id, "data": {}}) == "peer_not_found"
    assert await receiver.error({"type": "lock"}) == "not_allowed"
    assert await receiver.error({"type": "close"}) == "not_allowed"
    big = {"type": "signal", "to": sender.id, "data": {"sdp": "x" * (64 * 1024)}}
    assert await receiver.error(big) == "message_too_large"
    assert await sender.error(b"\xff\xfe binary".decode("latin-1")) == "bad_json"

    assert room_state(local_server, rid) == before
    assert await sender.quiet() and await other.quiet()


async def test_one_time_room_locks(local_server: LocalServer) -> None:
    room = create_room(local_server.api, one_time=True, max_receivers=5)
    assert room["max_receivers"] == 1
    ws, rid = local_server.ws, room["room"]
    sender = await Peer.join(ws, room=rid, role="sender", token=room["owner_token"])
    receiver = await Peer.join(ws, room=rid, role="receiver", token=RECEIVER_TOKEN)
    await sender.expect("peer-joined")
    await sender.send({"type": "lock"})
    await sender.expect("locked")
    assert room_state(local_server, rid)["locked"] is True
    await receiver.close()
    await sender.expect("peer-left")
    assert await refused(ws, room=rid, role="receiver") == 410
    # The receiver that used the link can still come back (resume).
    back = await Peer.join(ws, room=rid, role="receiver", peer=receiver.id, token=RECEIVER_TOKEN)
    assert back.id == receiver.id
    assert await sender.expect("peer-joined") == {
        "type": "peer-joined", "peer": receiver.id, "role": "receiver"
    }


async def test_reconnect_keeps_peer_ids(local_server: LocalServer) -> None:
    room = create_room(local_server.api, max_receivers=1)
    ws, rid = local_server.ws, room["room"]
    sender = await Peer.join(ws, room=rid, role="sender", token=room["owner_token"])
    receiver = await Peer.join(ws, room=rid, role="receiver", token=RECEIVER_TOKEN)
    await sender.expect("peer-joined")

    # A second connection for the same receiver replaces the first, which is told and closed.
    again = await Peer.join(ws, room=rid, role="receiver", peer=receiver.id, token=RECEIVER_TOKEN)
    assert again.id == receiver.id
    assert (await receiver.expect("error"))["code"] == "connection_replaced"
    await asyncio.wait_for(receiver.socket.wait_closed(), 5)
    assert (await sender.expect("peer-joined"))["peer"] == receiver.id
    assert room_state(local_server, rid)["receivers"] == 1

    # The sender reconnects with its owner token and keeps its id; signals still flow.
    new_sender = await Peer.join(ws, room=rid, role="sender", token=room["owner_token"])
    assert new_sender.id == sender.id
    assert new_sender.welcome["peers"] == [{"peer": receiver.id, "role": "receiver"}]
    assert (await again.expect("peer-joined"))["peer"] == sender.id
    await again.send({"type": "signal", "to": sender.id, "data": {"n": 1}})
    assert (await new_sender.expect("signal"))["data"] == {"n": 1}


async def test_many_rooms_without_cross_talk(local_server: LocalServer) -> None:
    async def pair(index: int) -> None:
        room = create_room(local_server.api)
        rid = room["room"]
        sender = await Peer.join(local_server.ws, room=rid, role="sender", token=room["owner_token"])
        receiver = await Peer.join(local_server.ws, room=rid, role="receiver")
        await sender.expect("peer-joined")
        for n in range(5):
            await receiver.send({"type": "signal", "to": sender.id, "data": {"room": rid, "n": n}})
            await sender.send({"type": "signal", "to": receiver.id, "data": {"room": rid, "n": n}})
        for n in range(5):
            assert (await sender.expect("signal"))["data"] == {"room": rid, "n": n}
            assert (await receiver.expect("signal"))["data"] == {"room": rid, "n": n}
        assert await sender.quiet(0.2) and await receiver.quiet(0.2)
        await sender.close()
        await receiver.close()

    await asyncio.wait_for(asyncio.gather(*(pair(i) for i in range(25))), 60)


async def test_restart_keeps_rooms(local_server: LocalServer) -> None:
    room = create_room(local_server.api, max_receivers=3)
    local_server.restart()
    state = room_state(local_server, room["room"])
    assert state["max_receivers"] == 3
    sender = await Peer.join(
        local_server.ws, room=room["room"], role="sender", token=room["owner_token"]
    )
    receiver = await Peer.join(local_server.ws, room=room["room"], role="receiver")
    assert receiver.welcome["peers"] == [{"peer": sender.id, "role": "sender"}]


def test_server_log_never_holds_tokens(local_server: LocalServer) -> None:
    room = create_room(local_server.api)

    async def join() -> None:
        peer = await Peer.join(
            local_server.ws, room=room["room"], role="sender", token=room["owner_token"]
        )
        await peer.close()

    asyncio.run(join())
    deadline = time.monotonic() + 5
    while "GET /ws" not in local_server.log() and time.monotonic() < deadline:
        time.sleep(0.05)  # the access log line is written once the socket has closed
    log = local_server.log()
    assert "GET /ws" in log
    assert room["owner_token"] not in log


@pytest.mark.parametrize("expires_in", [60])
async def test_expired_room_refuses_everything(local_server: LocalServer, expires_in: int) -> None:
    """Expiry is checked on read: move the server's clock past expires_at."""
    local_server.stop()
    local_server.env["PEERBEAM_MIN_EXPIRES_IN"] = "1"
    local_server.start()
    room = create_room(local_server.api, expires_in=1)
    await asyncio.sleep(2.1)
    assert http("GET", f"{local_server.api}/rooms/{room['room']}")[0] == 404
    assert await refused(local_server.ws, room=room["room"], role="receiver") == 404
    assert await refused(
        local_server.ws, room=room["room"], role="sender", token=room["owner_token"]
    ) == 404


def test_tls_serves_https_and_wss(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "peerbeam.cli", "serve", "--port", str(port), "--tls",
         "--data-dir", str(tmp_path)],
        cwd=REPO, stderr=subprocess.PIPE,
    )
    try:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(
                    f"https://127.0.0.1:{port}/config.json", context=context, timeout=2
                ) as response:
                    config = json.loads(response.read())
                break
            except OSError:
                assert time.monotonic() < deadline, "TLS server did not come up"
                time.sleep(0.2)
        assert config["api_url"] == f"https://127.0.0.1:{port}/api"
        assert config["ws_url"] == f"wss://127.0.0.1:{port}/ws"
        assert (tmp_path / "tls-cert.pem").exists()
    finally:
        process.terminate()
        process.wait(10)


def test_listening_on_all_interfaces_prints_the_lan_url(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "peerbeam.cli", "serve", "--host", "0.0.0.0", "--port", str(port),
         "--data-dir", str(tmp_path)],
        cwd=REPO, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stderr is not None
        first = process.stderr.readline()
        assert first.strip() == f"peerbeam is serving at http://127.0.0.1:{port}/"
        lan = lan_address()
        if lan:  # a machine with a network interface: its address is printed for phones
            assert process.stderr.readline().strip() == f"on your network: http://{lan}:{port}/"
    finally:
        process.terminate()
        process.wait(10)

