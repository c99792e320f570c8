"""Local stand-in for API Gateway's Management API (``post_to_connection``).

The app's handlers run in worker threads and post through Chalice's
``app.websocket_api``; this module is the boto3 client underneath it. Each
connection has an outbox drained by one writer task on the event loop, so
frames keep the order they were posted in and a slow reader cannot block a
handler thread.

An outbox is bounded in bytes, not frames: a client that does not read (its
socket buffers full) would otherwise make the server hold everything posted to
it. Past ``limit`` bytes waiting, the connection is cut (its transport aborted)
and forgotten, as API Gateway drops a connection it cannot deliver to; later
posts answer GoneException, which makes the relay clean the member up.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from aiohttp import web

log = logging.getLogger("peerbeam.server")


class GoneException(Exception):
    """Same name as the botocore error Chalice catches on a gone connection."""


class Outbox:
    """Frames waiting for one WebSocket client, and the close request, in order."""

    def __init__(self, limit: int, cut: Callable[[], None]) -> None:
        self.limit = limit
        self._cut = cut
        self._frames: deque[str] = deque()
        self._bytes = 0
        self._closing = False
        self._ready = asyncio.Event()

    def put(self, frame: str) -> bool:
        """Queue a frame; False (and the connection is cut) when the client is too far behind."""
        self._bytes += len(frame)
        if self._bytes > self.limit:
            self._frames.clear()
            self._cut()
            return False
        self._frames.append(frame)
        self._ready.set()
        return True

    def close(self) -> None:
        """Close the socket once the frames queued before this are written."""
        self._closing = True
        self._ready.set()

    async def next(self) -> str | None:
        """The next frame to write, or None when the socket is to be closed."""
        while not self._frames:
            if self._closing:
                return None
            self._ready.clear()
            await self._ready.wait()
        frame = self._frames.popleft()
        self._bytes -= len(frame)
        return frame


class LocalConnections:
    def __init__(self, loop: asyncio.AbstractEventLoop, max_queued_bytes: int) -> None:
        self._loop = loop
        self._max_queued_bytes = max_queued_bytes
        self._outboxes: dict[str, Outbox] = {}

    def open(self, connection_id: str, cut: Callable[[], None]) -> Outbox:
        """Register before $connect runs, so posts made right after it are kept.

        ``cut`` ends the connection at once (the transport's abort)."""
        outbox = Outbox(self._max_queued_bytes, cut)
        self._outboxes[connection_id] = outbox
        return outbox

    def forget(self, connection_id: str) -> None:
        self._outboxes.pop(connection_id, None)

    def __len__(self) -> int:
        return len(self._outboxes)

    def __contains__(self, connection_id: object) -> bool:
        return connection_id in self._outboxes

    @staticmethod
    async def pump(outbox: Outbox, ws: web.WebSocketResponse) -> None:
        """Write queued frames to the socket until told to close."""
        while True:
            frame = await outbox.next()
            if frame is None:
                await ws.close()
                return
            try:
                await ws.send_str(frame)
            except (ConnectionError, RuntimeError):
                return

    def _enqueue(self, connection_id: str, frame: str) -> None:
        outbox = self._outboxes.get(connection_id)
        if outbox is not None and not outbox.put(frame):
            log.warning("connection %s is not reading (over %d bytes queued); cut it",
                        connection_id, outbox.limit)
            self.forget(connection_id)

    def _close(self, connection_id: str) -> None:
        outbox = self._outboxes.get(connection_id)
        if outbox is not None:
            outbox.close()

    # -- called from handler threads -------------------------------------------

    def post(self, connection_id: str, data: str | bytes) -> None:
        if connection_id not in self._outboxes:
            raise GoneException(connection_id)
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        self._loop.call_soon_threadsafe(self._enqueue, connection_id, text)

    def close(self, connection_id: str) -> None:
        if connection_id not in self._outboxes:
            raise GoneException(connection_id)
        self._loop.call_soon_threadsafe(self._close, connection_id)


class LocalManagementClient:
    """The subset of boto3's ``apigatewaymanagementapi`` client Chalice uses."""

    class exceptions:  # noqa: N801 - mirrors botocore's client.exceptions attribute
        GoneException = GoneException

    def __init__(self, connections: LocalConnections) -> None:
        self._connections = connections

    def post_to_connection(self, ConnectionId: str, Data: str | bytes) -> None:  # noqa: N803
        self._connections.post(ConnectionId, Data)

    def delete_connection(self, ConnectionId: str) -> None:  # noqa: N803
        self._connections.close(ConnectionId)

    def get_connection(self, ConnectionId: str) -> dict[str, Any]:  # noqa: N803
        if ConnectionId not in self._connections:
            raise GoneException(ConnectionId)
        return {"ConnectionId": ConnectionId}


class LocalManagementSession:
    """Stands in for the boto3 session on ``app.websocket_api.session``."""

    region_name = "local"

    def __init__(self, connections: LocalConnections) -> None:
        self._client = LocalManagementClient(connections)

    def client(self, service_name: str, endpoint_url: str | None = None) -> LocalManagementClient:
        if service_name != "apigatewaymanagementapi":
            raise ValueError(f"the local server only provides apigatewaymanagementapi, not {service_name}")
        return self._client
