"""The aiohttp application behind `peerbeam serve`.

| path           | what                                                          |
|----------------|---------------------------------------------------------------|
| ``/``          | the static web client (``webclient/``)                        |
| ``/config.json``| where the web client finds the API and the WebSocket         |
| ``/api/...``   | REST: API Gateway-shaped events into the app.py handlers      |
| ``/ws``        | WebSocket: $connect / $default / $disconnect into app.py      |
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web
from aiohttp.abc import AbstractAccessLogger
from chalice.local import LambdaContext

from chalicelib.addresses import client_key
from chalicelib.errors import (
    HostNotAllowed,
    InternalError,
    PeerbeamError,
    RateLimited,
    RequestTimeout,
    excerpt,
    for_status,
)
from chalicelib.settings import Settings

from ..website import INDEX, WEBCLIENT_DIR, content_type, security_headers
from .config import ServeConfig
from .connections import LocalConnections, LocalManagementSession
from .events import LOCAL_STAGE, RestEvents, new_connection_id, websocket_event
from .hosts import HostPolicy
from .limits import ByteBudget, TokenBuckets
from .memory import Trimmer

log = logging.getLogger("peerbeam.server")

# Frames above the relay's own 64 KiB limit must reach the handler so it can
# answer with message_too_large; far larger ones are cut off like API Gateway does.
MAX_FRAME_BYTES = 1024 * 1024
MAX_BODY_BYTES = 1024 * 1024
HANDLER_THREADS = 16
# How long a close handshake may take before the socket is cut.
CLOSE_SECONDS = 2.0

# Our wording for aiohttp's own refusals (routing, body size).
HTTP_ERROR_MESSAGES = {
    400: "The request could not be read.",
    404: "No such page or API resource.",
    405: "This resource does not allow that method.",
    413: f"Request bodies may be at most {MAX_BODY_BYTES} bytes.",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(error: PeerbeamError, status: int | None = None,
                   headers: dict[str, str] | None = None) -> web.Response:
    """The contract's error shape: ``{"code", "message"}`` as application/json."""
    extra = dict(headers or {})
    if isinstance(error, RateLimited):
        extra["Retry-After"] = str(error.retry_after)
    return web.json_response(error.to_dict(), status=status or error.status, headers=extra)


@web.middleware
async def contract_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every refusal, ours or aiohttp's, and every failure as contract JSON."""
    try:
        return await handler(request)
    except PeerbeamError as error:
        return error_response(error)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = HTTP_ERROR_MESSAGES.get(exc.status, "The request was refused.")
        kept = {name: exc.headers[name] for name in ("Allow", "Retry-After") if name in exc.headers}
        return error_response(for_status(exc.status, message), exc.status, kept)
    except asyncio.CancelledError:
        raise
    except Exception:
        client = client_key(request.remote)
        log.exception("%s %s from %s failed", request.method, request.path, client,
                      extra={"client": client})
        return error_response(InternalError("The server failed; try again."))


SECURITY_HEADERS = security_headers()


class PathOnlyAccessLogger(AbstractAccessLogger):
    """Logs method, path and status, never the query string: it carries owner tokens.

    The path is quoted as a short escaped excerpt (it is the client's text), and each
    line names its client so that logs.py can cap what one client makes us write."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        client = client_key(request.remote)
        self.logger.info(
            '%s "%s %s" %s %.1fms', client, request.method, excerpt(request.path, 80)[1:-1],
            response.status, time * 1000, extra={"client": client},
        )


class LocalGateway:
    """Invokes app.py the way API Gateway and Lambda would, one request at a time per socket."""

    def __init__(self, app_module: Any, webclient_dir: Path, scheme: str, config: ServeConfig,
                 hosts: HostPolicy) -> None:
        self.app_module = app_module
        self.webclient_dir = webclient_dir
        self.scheme = scheme
        self.config = config
        self.hosts = hosts
        self.hello_timeout = Settings.from_env().hello_timeout
        self.rooms_limit = TokenBuckets(config.rooms_per_minute, config.rooms_burst)
        self.joins_limit = TokenBuckets(config.joins_per_minute, config.joins_burst)
        self.input_budget = ByteBudget(config.client_bytes_per_second, config.client_bytes_burst)
        self.trimmer = Trimmer()
        self.connections: LocalConnections | None = None
        # Open sockets and their transports (to cut those that will not close).
        self._sockets: dict[web.WebSocketResponse, asyncio.BaseTransport | None] = {}
        self._pool = ThreadPoolExecutor(HANDLER_THREADS, thread_name_prefix="lambda")
        self._rest = RestEvents(list(app_module.app.routes))

    async def start(self, _app: web.Application) -> None:
        self.connections = LocalConnections(asyncio.get_running_loop(), self.config.send_queue_bytes)
        websocket_api = self.app_module.app.websocket_api
        websocket_api.session = LocalManagementSession(self.connections)
        websocket_api.configure("127.0.0.1", LOCAL_STAGE)

    async def shutdown(self, _app: web.Application) -> None:
        """Close open sockets (1001 going away) so clients reconnect to the next server."""
        await asyncio.gather(
            *(self._close(ws, transport, WSCloseCode.GOING_AWAY, b"server restarting")
              for ws, transport in list(self._sockets.items())),
            return_exceptions=True,
        )

    async def stop(self, _app: web.Application) -> None:
        self.trimmer.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def invoke(self, handler: Callable[..., Any], event: dict[str, Any]) -> Any:
        context = LambdaContext(getattr(handler, "__name__", "handler"), memory_size=128)
        return await asyncio.get_running_loop().run_in_executor(
            self._pool, handler, event, context
        )

    # -- what every request passes ------------------------------------------------

    @web.middleware
    async def check_host(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """DNS rebinding: answer only for the names this server was started with (hosts.py)."""
        host = request.headers.get("Host")
        if not self.hosts.allows(host):
            raise HostNotAllowed(
                f"This server does not answer for the host {excerpt(host or '')}. To allow it, "
                "start peerbeam serve with --public-url URL or --allowed-host NAME "
                "(or set PEERBEAM_PUBLIC_URL / PEERBEAM_ALLOWED_HOSTS)."
            )
        return await handler(request)

    @web.middleware
    async def rate_limits(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Per-client token buckets on room creation and WebSocket joins (limits.py)."""
        if request.method == "POST" and request.path == "/api/rooms":
            bucket, what = self.rooms_limit, "rooms"
        elif request.method == "GET" and request.path == "/ws":
            bucket, what = self.joins_limit, "connections"
        else:
            return await handler(request)
        wait = bucket.take(client_key(request.remote), asyncio.get_running_loop().time())
        if wait:
            raise RateLimited(
                f"Too many new {what} from your address; try again in {wait} s.", retry_after=wait
            )
        return await handler(request)

    # -- REST -------------------------------------------------------------------

    async def rest(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["tail"]
        if request.query_string:
            path += "?" + request.query_string
        headers = {key.lower(): value for key, value in request.headers.items()}
        # The scheme the client used is ours to say, not the client's.
        headers["x-forwarded-proto"] = self.scheme
        try:
            body = await asyncio.wait_for(request.read(), self.config.header_timeout)
        except TimeoutError:
            raise RequestTimeout("The request body did not arrive in time.") from None
        try:
            event = self._rest.build(request.method, path, headers, body)
        except ValueError:
            return error_response(for_status(404, HTTP_ERROR_MESSAGES[404]), 404)
        result = await self.invoke(self.app_module.app, event)
        response = web.Response(status=result["statusCode"], body=(result.get("body") or "").encode())
        # API Gateway's default for a Lambda proxy answer without a Content-Type.
        response.headers["Content-Type"] = "application/json"
        for name, value in (result.get("headers") or {}).items():
            response.headers[name] = value
        for name, values in (result.get("multiValueHeaders") or {}).items():
            response.headers.popall(name, None)
            for value in values:
                response.headers.add(name, value)
        return response

    # -- WebSocket ----------------------------------------------------------------

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        assert self.connections is not None
        connection_id = new_connection_id()
        domain = request.host
        transport = request.transport
        outbox = self.connections.open(
            connection_id, transport.abort if transport is not None else lambda: None
        )
        connect = websocket_event(
            "$connect", connection_id, domain,
            query=dict(request.query), headers=dict(request.headers),
            source_ip=request.remote or "127.0.0.1",
        )
        try:
            result = await self.invoke(self.app_module.websocket_connect, connect)
        except BaseException:
            self.connections.forget(connection_id)
            raise
        status = int(result.get("statusCode", 200))
        if status >= 300:
            # API Gateway refuses the handshake with the status $connect returned.
            self.connections.forget(connection_id)
            return web.Response(
                status=status, body=result.get("body", ""), content_type="application/json",
                headers=result.get("headers") or {},
            )
        # No permessage-deflate: API Gateway offers none, and a compressed frame of 100 bytes
        # can inflate to 1 MiB, so one TCP read could queue hundreds of MiB of messages.
        ws = web.WebSocketResponse(max_msg_size=MAX_FRAME_BYTES, autoping=True, compress=False)
        self._sockets[ws] = transport
        writer: asyncio.Task[None] | None = None
        try:
            await ws.prepare(request)
            writer = asyncio.create_task(self.connections.pump(outbox, ws))
            await self._read_frames(ws, transport, connection_id, domain,
                                    client_key(request.remote))
        finally:
            self._sockets.pop(ws, None)
            self.trimmer.soon()
            self.connections.forget(connection_id)
            if writer is not None:
                # Nothing may keep the writer (and the frames it holds) alive after the socket.
                writer.cancel()
                await asyncio.wait([writer])
            # $disconnect, like API Gateway's, runs after the socket is gone.
            disconnect = websocket_event("$disconnect", connection_id, domain)
            await asyncio.shield(self.invoke(self.app_module.websocket_disconnect, disconnect))
        return ws

    async def _read_frames(self, ws: web.WebSocketResponse, transport: asyncio.BaseTransport | None,
                           connection_id: str, domain: str, client: str) -> None:
        """Feed frames to $default until the socket ends. The first frame (hello) must come
        within the hello timeout and later ones within the idle timeout (API Gateway's).
        A client over its byte budget waits before its next frame is handled (limits.py)."""
        loop = asyncio.get_running_loop()
        timeout: float = self.hello_timeout
        # API Gateway ends every connection after 2 hours: so does this server, so that every
        # run of the product lives through the reconnects that causes (tests shorten it).
        end_of_life = loop.time() + self.config.max_life
        while True:
            left = end_of_life - loop.time()
            try:
                frame = await ws.receive(timeout=max(0.001, min(timeout, left)))
            except TimeoutError:
                if left <= timeout:
                    await self._close(ws, transport, WSCloseCode.GOING_AWAY, b"connection lifetime over")
                    return
                reason = b"say hello first" if timeout == self.hello_timeout else b"idle"
                await self._close(ws, transport, WSCloseCode.POLICY_VIOLATION, reason)
                return
            if frame.type == WSMsgType.TEXT:
                body = frame.data
            elif frame.type == WSMsgType.BINARY:
                body = frame.data.decode("utf-8", "replace")
            elif frame.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                return
            else:
                continue
            timeout = self.config.idle_timeout
            wait = self.input_budget.charge(client, len(body), loop.time())
            if wait:
                await asyncio.sleep(wait)
                if transport is not None and transport.is_closing():
                    return  # a flooding client that left: its backlog is not worth handling
            event = websocket_event("$default", connection_id, domain, body=body)
            try:
                await self.invoke(self.app_module.websocket_message, event)
            except Exception:
                # As in Lambda: a failed invocation does not end the connection.
                log.exception("message handler failed for connection %s", connection_id)

    @staticmethod
    async def _close(ws: web.WebSocketResponse, transport: asyncio.BaseTransport | None,
                     code: int, reason: bytes) -> None:
        """A close handshake, or a cut connection if the client does not take part."""
        try:
            await asyncio.wait_for(ws.close(code=code, message=reason), CLOSE_SECONDS)
        except (TimeoutError, ConnectionError, RuntimeError):
            if transport is not None:
                transport.abort()  # type: ignore[attr-defined]

    # -- static -------------------------------------------------------------------

    def public_urls(self, request: web.Request) -> dict[str, str]:
        """Where the web client finds the API and the WebSocket: the public URL when one
        is configured, else the (checked) Host the request came to."""
        if self.config.public_url:
            base = self.config.public_url.rstrip("/")
            scheme, rest = base.split("://", 1)
        else:
            scheme, rest = self.scheme, request.host
            base = f"{scheme}://{rest}"
        ws_scheme = "wss" if scheme == "https" else "ws"
        return {"api_url": f"{base}/api", "ws_url": f"{ws_scheme}://{rest}/ws"}

    async def config_json(self, request: web.Request) -> web.Response:
        return web.json_response(self.public_urls(request), headers={"Cache-Control": "no-store"})

    async def static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info.get("path") or INDEX
        root = self.webclient_dir.resolve()
        try:
            if "\0" in name or "\\" in name:
                raise ValueError(name)
            target = (root / name).resolve()
            found = root in target.parents and target.is_file()
        except (ValueError, OSError):
            found = False  # NUL bytes, names too long for the file system, ...
        if not found:
            raise web.HTTPNotFound()
        headers = {
            "Content-Type": content_type(target.name), "Cache-Control": "no-cache", **SECURITY_HEADERS
        }
        return web.FileResponse(target, headers=headers)


GATEWAY = web.AppKey("gateway", LocalGateway)


def build_app(
    app_module: Any, *, scheme: str = "http", webclient_dir: Path = WEBCLIENT_DIR,
    config: ServeConfig | None = None, hosts: HostPolicy | None = None,
) -> web.Application:
    config = config or ServeConfig()
    gateway = LocalGateway(app_module, webclient_dir, scheme, config,
                           hosts or HostPolicy("127.0.0.1", config.public_url, config.allowed_hosts))
    application = web.Application(
        client_max_size=MAX_BODY_BYTES,
        middlewares=[contract_errors, gateway.check_host, gateway.rate_limits],
    )
    application.on_startup.append(gateway.start)
    application.on_shutdown.append(gateway.shutdown)
    application.on_cleanup.append(gateway.stop)
    application[GATEWAY] = gateway
    application.router.add_get("/config.json", gateway.config_json)
    application.router.add_route("*", "/api/{tail:.*}", gateway.rest)
    application.router.add_get("/ws", gateway.websocket)
    application.router.add_get("/", gateway.static)
    application.router.add_get("/{path:.+}", gateway.static)
    return application
