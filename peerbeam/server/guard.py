"""Connection caps for `peerbeam serve`: degrade with a clear 503, never run out of fds.

Every accepted TCP connection costs a file descriptor until it closes. Without a
cap, a client holding ~1000 idle connections exhausts the common limit of 1024,
after which ``accept()`` fails for everyone (and asyncio logs each failure). Here:

- at most ``max_connections`` connections are served at once, at most
  ``max_connections_per_client`` from one client address;
- a connection over either cap is answered ``503 server_busy`` (JSON, with
  ``Retry-After``) as soon as its request headers arrive, and closed; it is held
  at most ``REFUSAL_GRACE`` seconds. Refusals have caps of their own (in all, and
  ``REFUSALS_PER_CLIENT`` per address): past them a connection is dropped at once,
  so a flood from one address costs others nothing but their share;
- the caps are clamped to what the process's fd limit allows (``fd_budget``);
- headers (and TLS handshakes, and idle keep-alive connections) have
  ``header_timeout`` seconds: aiohttp's keep-alive timer, armed when a connection
  opens, closes a connection whose first request has not fully arrived by then.

aiohttp's own answers to unreadable requests (bad request line, headers too large)
are JSON here too, like every other error.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from chalicelib.addresses import client_key
from chalicelib.errors import ServerBusy, excerpt, for_status

log = logging.getLogger("peerbeam.server")

# The kernel's queue of connections not yet accepted: deep, so that a burst waits there
# (costing us no descriptor) instead of having its SYNs dropped along with everyone's.
KERNEL_BACKLOG = 4096
REFUSAL_GRACE = 2.0
REFUSALS_PER_CLIENT = 8
RETRY_AFTER_SECONDS = 5
# Descriptors kept for everything that is not a client connection (the store, logs,
# the event loop, worker threads' files).
FD_RESERVE = 64


def raise_fd_limit() -> int:
    """Raise the soft fd limit to the hard one (as servers do); the resulting soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        wanted = 65536 if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    return soft


def busy_response(message: str) -> bytes:
    body = json.dumps(ServerBusy(message).to_dict()).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nRetry-After: {RETRY_AFTER_SECONDS}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


SERVER_FULL = busy_response("The server is serving as many connections as it can; try again shortly.")
CLIENT_FULL = busy_response("Too many open connections from your address; close some and try again.")


class ConnectionGuard:
    """Counts open connections in all and per client; decides who is served."""

    def __init__(self, max_connections: int, max_per_client: int, fd_limit: int) -> None:
        budget = max(64, fd_limit - FD_RESERVE)
        # asyncio accepts up to ``backlog`` connections in one go, before any of them is
        # looked at, and closing a dropped one takes two more loop turns: at worst three
        # batches are open at once besides the served connections and the refusals.
        # Half the budget is served, an eighth refused, three sixteenths in flight.
        self.max_connections = max(1, min(max_connections, budget // 2))
        self.max_per_client = max(1, max_per_client)
        self.max_refusals = budget // 8
        self.backlog = min(128, budget // 16)
        self.open = 0
        self.refusing = 0
        self._served: dict[str, int] = {}
        self._refused: dict[str, int] = {}

    def admit(self, client: str) -> bytes | None:
        """None if served (counted), else the 503 to answer with."""
        if self.open >= self.max_connections:
            return SERVER_FULL
        if self._served.get(client, 0) >= self.max_per_client:
            return CLIENT_FULL
        self.open += 1
        _add(self._served, client, 1)
        return None

    def release(self, client: str) -> None:
        self.open -= 1
        _add(self._served, client, -1)

    def may_refuse(self, client: str) -> bool:
        """Whether there is room to answer one more refusal (else: drop the connection)."""
        return (self.refusing < self.max_refusals
                and self._refused.get(client, 0) < REFUSALS_PER_CLIENT)

    def refusal(self, client: str, delta: int) -> None:
        self.refusing += delta
        _add(self._refused, client, delta)


def _add(counts: dict[str, int], key: str, delta: int) -> None:
    value = counts.get(key, 0) + delta
    if value:
        counts[key] = value
    else:
        counts.pop(key, None)


class Refusal:
    """Answers one request on a connection over a cap with a 503, then closes it."""

    def __init__(self, transport: asyncio.Transport, response: bytes, guard: ConnectionGuard,
                 client: str, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._response = response
        self._guard = guard
        self._client = client
        self._seen = bytearray()
        self._answered = False
        guard.refusal(client, +1)
        self._timer = loop.call_later(REFUSAL_GRACE, self.answer)

    def data_received(self, data: bytes) -> None:
        if self._answered:
            return
        self._seen += data[:8192]
        if b"\r\n\r\n" in self._seen or len(self._seen) >= 8192:
            self.answer()

    def answer(self) -> None:
        """Answer once the request is read (so closing does not reset it), or at the deadline."""
        if self._answered:
            self._transport.close()
            return
        self._answered = True
        self._transport.write(self._response)
        if self._transport.can_write_eof():
            self._transport.write_eof()
        self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(REFUSAL_GRACE, self._transport.close)

    def lost(self) -> None:
        self._timer.cancel()
        self._guard.refusal(self._client, -1)


class GuardedHandler(RequestHandler):
    """aiohttp's connection handler, counted against the caps, with JSON for its own errors."""

    def __init__(self, manager: web.Server, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = guard
        self._client = ""
        self._served = False
        self._dropped = False
        self._refusal: Refusal | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        self._client = client_key(peer[0] if isinstance(peer, tuple) else None)
        refusal = self._guard.admit(self._client)
        if refusal is None:
            self._served = True
            super().connection_made(transport)
            return
        if not self._guard.may_refuse(self._client):
            self._dropped = True
            transport.abort()  # type: ignore[attr-defined]
            return
        log.info("refused a connection from %s: over the connection cap", self._client,
                 extra={"client": self._client})
        self._refusal = Refusal(transport, refusal, self._guard,  # type: ignore[arg-type]
                                self._client, asyncio.get_running_loop())

    def data_received(self, data: bytes) -> None:
        if self._refusal is not None:
            self._refusal.data_received(data)
        elif not self._dropped:
            super().data_received(data)

    def eof_received(self) -> None:
        if self._refusal is not None:
            self._refusal.answer()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._refusal is not None:
            self._refusal.lost()
            return
        if self._dropped:
            return
        if self._served:
            self._served = False
            self._guard.release(self._client)
        super().connection_lost(exc)

    def handle_error(self, request: Any, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        extra = {"client": self._client}
        if status >= 500:
            log.error("request from %s failed", self._client, exc_info=exc, extra=extra)
        else:
            log.info("unreadable request from %s: %s", self._client,
                     excerpt(message or str(exc or ""), 80), extra=extra)
        if request.writer.output_size > 0:
            raise ConnectionError("a response was already under way")
        text = "The server failed; try again." if status >= 500 else "The request could not be read."
        response = web.json_response(for_status(status, text).to_dict(), status=status)
        response.force_close()
        return response


class GuardedSite(web.BaseSite):
    """Like aiohttp's TCPSite, with our handler per connection and a TLS handshake timeout."""

    def __init__(self, runner: web.AppRunner, host: str, port: int, *, guard: ConnectionGuard,
                 header_timeout: float, ssl_context: Any = None) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=guard.backlog)
        self._host = host
        self._port = port
        self._guard = guard
        self._header_timeout = header_timeout

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{self._host}:{self._port}"

    def _protocol(self) -> asyncio.BaseProtocol:
        server = self._runner.server
        assert server is not None
        # What web.Server.__call__ does, with our handler class.
        return GuardedHandler(server, self._guard, loop=server._loop, **server._kwargs)  # noqa: SLF001

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._protocol, self._host, self._port, ssl=self._ssl_context, backlog=self._backlog,
            reuse_address=True,
            ssl_handshake_timeout=self._header_timeout if self._ssl_context else None,
        )
        # asyncio accepts up to ``backlog`` connections per turn and passes the same number
        # to listen(); deepen only the kernel's queue (on a duplicate of the socket).
        for listening in self._server.sockets:
            duplicate = listening.dup()
            try:
                duplicate.listen(KERNEL_BACKLOG)
            finally:
                duplicate.close()
