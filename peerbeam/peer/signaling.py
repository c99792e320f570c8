"""Signaling client: join a room, relay signals, stay connected.

API Gateway drops idle sockets after 10 minutes and every socket after 2 hours, so
the client pings every few minutes and, when the socket drops, reconnects with the
same peer id (owner token for the sender, its own token for a receiver) and says
hello again. Callers see a stream of server messages and never the reconnects,
except as a fresh ``welcome``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from typing import Any
from urllib.parse import urlencode

import aiohttp

from .timing import TIMING

log = logging.getLogger(__name__)

RECONNECT_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0)

REFUSALS = {
    400: "The link is malformed.",
    403: "This link does not let you in (wrong token).",
    404: "This link is unknown or has expired.",
    409: "This transfer already has as many receivers as it allows.",
    410: "This one-time link has already been used.",
    421: "The server does not answer for this address (see its --public-url / --allowed-host).",
    429: "The server is busy with too many requests from this address; try again in a minute.",
    503: "The server is too busy right now; try again in a minute.",
}


class SignalingRefused(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(REFUSALS.get(status, f"The signaling server refused to connect ({status})."))
        self.status = status



class SignalingClient:
    def __init__(self, ws_url: str, room: str, role: str, token: str | None = None) -> None:
        self.ws_url = ws_url
        self.room = room
        self.role = role
        # A receiver picks its own token so it can come back as the same peer.
        self.token = token or secrets.token_urlsafe(24)
        self.peer_id: str | None = None
        self.welcome: dict[str, Any] = {}
        self.messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._session: aiohttp.ClientSession | None = None
        self._socket: aiohttp.ClientWebSocketResponse | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._connected = asyncio.Event()

    async def connect(self) -> dict[str, Any]:
        """Join and return the welcome. Raises SignalingRefused."""
        self._session = aiohttp.ClientSession()
        try:
            await self._open()
        except BaseException:
            await self._session.close()
            raise
        self._keep(asyncio.create_task(self._heartbeat()))
        return self.welcome

    def _query(self) -> str:
        query = {"room": self.room, "role": self.role, "token": self.token}
        if self.role == "receiver" and self.peer_id:
            query["peer"] = self.peer_id
        return urlencode(query)

    async def _open(self) -> None:
        assert self._session is not None
        try:
            socket = await self._session.ws_connect(
                f"{self.ws_url}?{self._query()}", timeout=aiohttp.ClientWSTimeout(ws_close=5),
                max_msg_size=1024 * 1024,
            )
        except aiohttp.WSServerHandshakeError as error:
            raise SignalingRefused(error.status) from None
        await socket.send_str(json.dumps({"type": "hello"}))
        while True:
            frame = await asyncio.wait_for(socket.receive(), 20)
            if frame.type != aiohttp.WSMsgType.TEXT:
                raise ConnectionError("signaling closed before welcome")
            message = json.loads(frame.data)
            if message.get("type") == "welcome":
                break
            await self.messages.put(message)
        self.welcome = message
        self.peer_id = message["peer"]
        self._socket = socket
        self._connected.set()
        reader = asyncio.create_task(self._read(socket))
        self._keep(reader)

    def _keep(self, task: asyncio.Task[None]) -> None:
        """Hold a reference to every running task (so it is neither collected nor lost
        at close), dropping those that ended."""
        self._tasks = [t for t in self._tasks if not t.done()] + [task]

    async def _read(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        async for frame in socket:
            if frame.type != aiohttp.WSMsgType.TEXT:
                continue
            message = json.loads(frame.data)
            if message.get("type") == "room-closed":
                self._closing = True
            await self.messages.put(message)
        if self._closing or socket is not self._socket:
            return
        self._connected.clear()
        self._keep(asyncio.create_task(self._reconnect()))

    async def _reconnect(self) -> None:
        for attempt in range(1000):
            if self._closing:
                return
            delay = RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)]
            await asyncio.sleep(delay)
            try:
                await self._open()
            except SignalingRefused as refusal:
                if refusal.status in (403, 404):
                    await self.messages.put({"type": "room-closed", "reason": str(refusal)})
                    self._closing = True
                    return
                log.info("signaling reconnect refused (%s); retrying", refusal.status)
            except (TimeoutError, OSError, ValueError, KeyError, aiohttp.ClientError) as error:
                log.info("signaling reconnect failed: %s", error)
            else:
                log.info("signaling reconnected after %d attempt(s)", attempt + 1)
                await self.messages.put({"type": "reconnected", "welcome": self.welcome})
                return

    async def _heartbeat(self) -> None:
        """Ping for as long as the client lives: a ping that cannot go out now (the
        socket is down and reconnecting) is skipped, never the end of the heartbeat."""
        while not self._closing:
            await asyncio.sleep(TIMING.heartbeat)
            if not self._connected.is_set():
                continue
            try:
                await self.send({"type": "ping"})
                log.info("signaling heartbeat sent")
            except (ConnectionError, RuntimeError, TimeoutError, aiohttp.ClientError) as error:
                log.info("signaling heartbeat not sent: %s", error)

    async def send(self, message: dict[str, Any]) -> None:
        """Send, waiting (bounded) for a reconnect if the socket is down."""
        await asyncio.wait_for(self._connected.wait(), TIMING.signaling_send_wait)
        assert self._socket is not None
        await self._socket.send_str(json.dumps(message))

    async def signal(self, to: str, data: dict[str, Any]) -> None:
        await self.send({"type": "signal", "to": to, "data": data})

    async def close(self) -> None:
        self._closing = True
        for task in self._tasks:
            task.cancel()
        if self._socket is not None:
            await self._socket.close()
        if self._session is not None:
            await self._session.close()
