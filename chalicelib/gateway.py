"""How the relay reaches WebSocket connections: API Gateway's Management API.

Chalice's ``app.websocket_api`` posts to connections and turns API Gateway's
GoneException into ``WebsocketDisconnectedError``; this adapter narrows that to
the two calls the relay needs. The local server plugs its own connections in
underneath (as the boto3 client of ``websocket_api``), so the same code path runs.
"""

from __future__ import annotations

import logging
from typing import Protocol

from chalice.app import WebsocketAPI, WebsocketDisconnectedError

log = logging.getLogger(__name__)


class ConnectionGone(Exception):
    """The connection no longer exists (API Gateway answered 410 Gone)."""


class Transport(Protocol):
    def send(self, connection_id: str, text: str) -> None:
        """Deliver one text frame; raise ConnectionGone if the connection is gone."""

    def close(self, connection_id: str) -> None:
        """Close a connection; gone already is fine."""


class ApiGatewayTransport:
    def __init__(self, websocket_api: WebsocketAPI) -> None:
        self._api = websocket_api

    def send(self, connection_id: str, text: str) -> None:
        try:
            self._api.send(connection_id, text)
        except WebsocketDisconnectedError:
            raise ConnectionGone(connection_id) from None

    def close(self, connection_id: str) -> None:
        try:
            self._api.close(connection_id)
        except WebsocketDisconnectedError:
            log.debug("connection %s already gone", connection_id)
