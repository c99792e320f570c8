"""The aiohttp application behind `peerbeam serve`.

| path           | what                                                          |
|----------------|---------------------------------------------------------------|
| ``/``          | the static web client (``peerbeam.website``)                  |
| ``/config.json``| where the web client finds the API and the WebSocket         |
| ``/api/...``   | REST: API Gateway-shaped events into the app.py handlers      |
| ``/ws``        | WebSocket: $connect / $default / $disconnect into app.py      |
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web
from aiohttp.abc import AbstractAccessLogger
from chalice.local import LambdaContext

from ..website import INDEX, WEBCLIENT_DIR, content_type, security_headers
from .connections import LocalConnections, LocalManagementSession
from .events import LOCAL_STAGE, RestEvents, new_connection_id, websocket_event

log = logging.getLogger("peerbeam.server")

# Frames above the relay's own 64 KiB limit must reach the handler so it can
# answer with message_too_large; far larger ones are cut off like API Gateway does.
MAX_FRAME_BYTES = 1024 * 1024
HANDLER_THREADS = 16


@dataclass(frozen=True)
class SocketLimits:
    """API Gateway's WebSocket limits, which clients must live with, applied locally too
    so that every run of the product exercises the reconnects they cause. Tests shorten
    them (PEERBEAM_WS_MAX_LIFE, PEERBEAM_WS_IDLE_TIMEOUT, seconds)."""

    max_life: float = 2 * 3600.0  # every connection is closed after 2 hours
    idle_timeout: float = 600.0  # ... and after 10 minutes without a frame from the client

    @classmethod
    def from_env(cls) -> SocketLimits:
        base = cls()
        return cls(float(os.environ.get("PEERBEAM_WS_MAX_LIFE") or base.max_life),
                   float(os.environ.get("PEERBEAM_WS_IDLE_TIMEOUT") or base.idle_timeout))


SECURITY_HEADERS = security_headers()


class PathOnlyAccessLogger(AbstractAccessLogger):
    """Logs method, path and status, never the query string: it carries owner tokens."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            '%s "%s %s" %s %.1fms',
            request.remote, request.method, request.path, response.status, time * 1000,
        )


class LocalGateway:
    """Invokes app.py the way API Gateway and Lambda would, one request at a time per socket."""

    def __init__(self, app_module: Any, webclient_dir: Path, scheme: str,
                 limits: SocketLimits | None = None) -> None:
        self.app_module = app_module
        self.limits = limits or SocketLimits.from_env()
        self.webclient_dir = webclient_dir
        self.scheme = scheme
        self.connections: LocalConnections | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self._pool = ThreadPoolExecutor(HANDLER_THREADS, thread_name_prefix="lambda")
        self._rest = RestEvents(list(app_module.app.routes))

    async def start(self, _app: web.Application) -> None:
        self.connections = LocalConnections(asyncio.get_running_loop())
        websocket_api = self.app_module.app.websocket_api
        websocket_api.session = LocalManagementSession(self.connections)
        websocket_api.configure("127.0.0.1", LOCAL_STAGE)

    async def shutdown(self, _app: web.Application) -> None:
        """Close open sockets (1001 going away) so clients reconnect to the next server."""
        await asyncio.gather(
            *(ws.close(code=WSCloseCode.GOING_AWAY) for ws in set(self._sockets)),
            return_exceptions=True,
        )

    async def stop(self, _app: web.Application) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def invoke(self, handler: Callable[..., Any], event: dict[str, Any]) -> Any:
        context = LambdaContext(getattr(handler, "__name__", "handler"), memory_size=128)
        return await asyncio.get_running_loop().run_in_executor(
            self._pool, handler, event, context
        )

    # -- REST -------------------------------------------------------------------

    async def rest(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["tail"]
        if request.query_string:
            path += "?" + request.query_string
        headers = {key.lower(): value for key, value in request.headers.items()}
        headers.setdefault("x-forwarded-proto", self.scheme)
        body = await request.read()
        try:
            event = self._rest.build(request.method, path, headers, body)
        except ValueError:
            return web.json_response(
                {"code": "not_found", "message": "No such API resource."}, status=404
            )
        result = await self.invoke(self.app_module.app, event)
        response = web.Response(status=result["statusCode"], body=result.get("body") or b"")
        for name, value in (result.get("headers") or {}).items():
            response.headers[name] = value
        return response

    # -- WebSocket ----------------------------------------------------------------

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        assert self.connections is not None
        connection_id = new_connection_id()
        domain = request.host
        queue = self.connections.open(connection_id)
        connect = websocket_event(
            "$connect", connection_id, domain,
            query=dict(request.query), headers=dict(request.headers),
            source_ip=request.remote or "127.0.0.1",
        )
        result = await self.invoke(self.app_module.websocket_connect, connect)
        status = int(result.get("statusCode", 200))
        if status >= 300:
            # API Gateway refuses the handshake with the status $connect returned.
            self.connections.forget(connection_id)
            return web.Response(
                status=status, body=result.get("body", ""), content_type="application/json"
            )
        ws = web.WebSocketResponse(max_msg_size=MAX_FRAME_BYTES, autoping=True)
        self._sockets.add(ws)
        loop = asyncio.get_running_loop()
        end_of_life = loop.time() + self.limits.max_life
        try:
            await ws.prepare(request)
            writer = asyncio.create_task(self.connections.pump(queue, ws))
            while True:
                wait = min(self.limits.idle_timeout, end_of_life - loop.time())
                try:
                    frame = await ws.receive(timeout=max(wait, 0.001))
                except TimeoutError:
                    # Idle for too long, or at the end of its life: API Gateway closes it.
                    await ws.close(code=WSCloseCode.GOING_AWAY)
                    break
                if frame.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                    break
                if frame.type == WSMsgType.TEXT:
                    body = frame.data
                elif frame.type == WSMsgType.BINARY:
                    body = frame.data.decode("utf-8", "replace")
                else:
                    continue
                event = websocket_event("$default", connection_id, domain, body=body)
                await self.invoke(self.app_module.websocket_message, event)
            writer.cancel()
        finally:
            self._sockets.discard(ws)
            self.connections.forget(connection_id)
            # $disconnect, like API Gateway's, runs after the socket is gone.
            disconnect = websocket_event("$disconnect", connection_id, domain)
            await asyncio.shield(self.invoke(self.app_module.websocket_disconnect, disconnect))
        return ws

    # -- static -------------------------------------------------------------------

    async def config(self, request: web.Request) -> web.Response:
        ws_scheme = "wss" if self.scheme == "https" else "ws"
        body = {
            "api_url": f"{self.scheme}://{request.host}/api",
            "ws_url": f"{ws_scheme}://{request.host}/ws",
        }
        return web.json_response(body, headers={"Cache-Control": "no-store"})

    async def static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info.get("path") or INDEX
        root = self.webclient_dir.resolve()
        target = (root / name).resolve()
        if root not in target.parents or not target.is_file():
            raise web.HTTPNotFound(text="Not found")
        headers = {
            "Content-Type": content_type(target.name), "Cache-Control": "no-cache", **SECURITY_HEADERS
        }
        return web.FileResponse(target, headers=headers)


def build_app(
    app_module: Any, *, scheme: str = "http", webclient_dir: Path = WEBCLIENT_DIR
) -> web.Application:
    gateway = LocalGateway(app_module, webclient_dir, scheme)
    application = web.Application(client_max_size=1024 * 1024)
    application.on_startup.append(gateway.start)
    application.on_shutdown.append(gateway.shutdown)
    application.on_cleanup.append(gateway.stop)
    application["gateway"] = gateway
    application.router.add_get("/config.json", gateway.config)
    application.router.add_route("*", "/api/{tail:.*}", gateway.rest)
    application.router.add_get("/ws", gateway.websocket)
    application.router.add_get("/", gateway.static)
    application.router.add_get("/{path:.+}", gateway.static)
    return application

