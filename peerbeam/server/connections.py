"""Local stand-in for API Gateway's Management API (``post_to_connection``).

The app's handlers run in worker threads and post through Chalice's
``app.websocket_api``; this module is the boto3 client underneath it. Each
connection has a queue drained by one writer task on the event loop, so
frames keep the order they were posted in and a slow reader cannot block a
handler thread.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

# A reader this far behind is treated like a dead one (API Gateway would drop it too).
MAX_QUEUED_FRAMES = 1000
_CLOSE = object()


class GoneException(Exception):
    """Same name as the botocore error Chalice catches on a gone connection."""


class LocalConnections:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queues: dict[str, asyncio.Queue[Any]] = {}

    def open(self, connection_id: str) -> asyncio.Queue[Any]:
        """Register before $connect runs, so posts made right after it are kept."""
        queue: asyncio.Queue[Any] = asyncio.Queue()
        self._queues[connection_id] = queue
        return queue

    def forget(self, connection_id: str) -> None:
        self._queues.pop(connection_id, None)

    def __len__(self) -> int:
        return len(self._queues)

    def __contains__(self, connection_id: object) -> bool:
        return connection_id in self._queues

    async def pump(self, queue: asyncio.Queue[Any], ws: web.WebSocketResponse) -> None:
        """Write queued frames to the socket until told to close."""
        while True:
            item = await queue.get()
            if item is _CLOSE:
                await ws.close()
                return
            try:
                await ws.send_str(item)
            except (ConnectionError, RuntimeError):
                return

    def _enqueue(self, connection_id: str, item: Any) -> None:
        queue = self._queues.get(connection_id)
        if queue is None:
            return
        if queue.qsize() >= MAX_QUEUED_FRAMES:
            log.warning("connection %s is not reading; closing it", connection_id)
            self.forget(connection_id)
            item = _CLOSE
        queue.put_nowait(item)

    # -- called from handler threads -------------------------------------------

    def post(self, connection_id: str, data: str | bytes) -> None:
        if connection_id not in self._queues:
            raise GoneException(connection_id)
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        self._loop.call_soon_threadsafe(self._enqueue, connection_id, text)

    def close(self, connection_id: str) -> None:
        if connection_id not in self._queues:
            raise GoneException(connection_id)
        self._loop.call_soon_threadsafe(self._enqueue, connection_id, _CLOSE)


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
