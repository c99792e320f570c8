"""Small raw-WebSocket and REST helpers for driving the signaling server in tests."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

TIMEOUT = 10


def http(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
         ) -> tuple[int, Any]:
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(
        url, data=data, method=method,
        headers={"content-type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        raw, status = error.read(), error.code
    try:
        return status, (json.loads(raw) if raw else None)
    except ValueError:
        return status, raw.decode("utf-8", "replace")


def create_room(api: str, **body: Any) -> dict[str, Any]:
    status, room = http("POST", f"{api}/rooms", body)
    assert status == 201, room
    return room


class Peer:
    """One raw signaling connection."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.welcome: dict[str, Any] = {}

    @classmethod
    async def join(cls, ws_url: str, hello: bool = True, **query: str) -> Peer:
        query_string = urllib.parse.urlencode(query)
        socket = await websockets.connect(f"{ws_url}?{query_string}", open_timeout=TIMEOUT)
        peer = cls(socket)
        if hello:
            await peer.send({"type": "hello"})
            peer.welcome = await peer.expect("welcome")
        return peer

    @property
    def id(self) -> str:
        return str(self.welcome["peer"])

    async def send(self, message: Any) -> None:
        await self.socket.send(message if isinstance(message, str) else json.dumps(message))

    async def recv(self) -> dict[str, Any]:
        return json.loads(await asyncio.wait_for(self.socket.recv(), TIMEOUT))

    async def expect(self, kind: str) -> dict[str, Any]:
        message = await self.recv()
        assert message["type"] == kind, message
        return message

    async def error(self, message: Any) -> str:
        """Send something bad; return the error code; prove the connection still works."""
        await self.send(message)
        error = await self.expect("error")
        await self.send({"type": "ping"})
        await self.expect("pong")
        return str(error["code"])

    async def quiet(self, seconds: float = 0.3) -> bool:
        """True when nothing arrives for a while."""
        try:
            message = await asyncio.wait_for(self.socket.recv(), seconds)
        except TimeoutError:
            return True
        raise AssertionError(f"unexpected message {message!r}")

    async def close(self) -> None:
        await self.socket.close()


async def refused(ws_url: str, **query: str) -> int:
    """The HTTP status of a refused handshake."""
    query_string = urllib.parse.urlencode(query)
    try:
        socket = await websockets.connect(f"{ws_url}?{query_string}", open_timeout=TIMEOUT)
    except websockets.exceptions.InvalidStatus as error:
        return int(error.response.status_code)
    await socket.close()
    raise AssertionError("the handshake was accepted")
