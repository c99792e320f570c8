"""Nothing outlives a WebSocket connection in `peerbeam serve`: no reference cycles.

The server runs in this process (the same LocalGateway `peerbeam serve` runs) so that
the objects themselves can be inspected: with the garbage collector switched off,
anything still alive after a connection ended is held by a reference cycle, which
would keep its queued frames in memory until a full collection happens to run.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import websockets
from aiohttp import web
from aiohttp.test_utils import TestServer

import app as app_module
from peerbeam.server.config import ServeConfig
from peerbeam.server.connections import Outbox
from peerbeam.server.http import build_app
from tests import raw_clients


@pytest.fixture
async def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[TestServer]:
    monkeypatch.setenv("PEERBEAM_STORE", "sqlite")
    monkeypatch.setenv("PEERBEAM_SQLITE_PATH", str(tmp_path / "rooms.sqlite3"))
    app_module.signaling.cache_clear()
    session = app_module.app.websocket_api.session
    test_server = TestServer(build_app(app_module, config=ServeConfig(send_queue_bytes=256 * 1024)),
                             host="127.0.0.1")
    await test_server.start_server()
    yield test_server
    await test_server.close()
    app_module.signaling.cache_clear()
    app_module.app.websocket_api.session = session


def alive(*kinds: type) -> list[object]:
    return [item for item in gc.get_objects() if isinstance(item, kinds)]


async def stuck_receiver(port: int, room: str) -> asyncio.StreamWriter:
    """A receiver that says hello and then never reads (its reader's buffer stays tiny)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1024)
    writer.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET /ws?room={room}&role=receiver HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    assert b" 101 " in await reader.readuntil(b"\r\n\r\n")
    writer.write(raw_clients.frame({"type": "hello"}))
    return writer


async def test_a_cut_connection_leaves_nothing_behind(server: TestServer) -> None:
    base = f"http://127.0.0.1:{server.port}"
    gc.collect()
    gc.disable()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{base}/api/rooms", data="{}") as response:
                room = await response.json()
        sender = await websockets.connect(
            f"ws://127.0.0.1:{server.port}/ws?room={room['room']}&role=sender"
            f"&token={room['owner_token']}", max_queue=None)
        await sender.send('{"type":"hello"}')
        assert json.loads(await sender.recv())["type"] == "welcome"
        assert server.port is not None
        stuck = await stuck_receiver(server.port, room["room"])
        joined = json.loads(await asyncio.wait_for(sender.recv(), 10))
        assert joined["type"] == "peer-joined"
        big = json.dumps({"type": "signal", "to": joined["peer"], "data": {"x": "x" * 60_000}})
        for _ in range(150):
            await sender.send(big)
        while (message := json.loads(await asyncio.wait_for(sender.recv(), 20)))["type"] != "peer-left":
            assert message["code"] == "peer_not_found"
        stuck.close()
        await sender.close()
        for _ in range(50):  # the server's side of both sockets winds down
            await asyncio.sleep(0.05)
            if not alive(Outbox, web.WebSocketResponse):
                break
        assert alive(Outbox, web.WebSocketResponse) == []
    finally:
        gc.enable()
