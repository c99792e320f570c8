"""Start the local server: SQLite store in a data directory, app.py handlers, web client."""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import socket
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

from . import logs
from .config import ServeConfig, public_origin
from .guard import ConnectionGuard, GuardedSite, raise_fd_limit
from .hosts import HostPolicy
from .http import PathOnlyAccessLogger, build_app
from .tls import ensure_certificate, server_context


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "peerbeam"


def lan_address() -> str | None:
    """The address other devices on the LAN reach us at (no packet is sent)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        # connect() on UDP only picks the outgoing interface from the routing table.
        probe.connect(("192.0.2.1", 9))
        address = probe.getsockname()[0]
    except OSError:
        return None
    finally:
        probe.close()
    return None if address.startswith("127.") else address


def public_url_environment(config: ServeConfig) -> None:
    """With a public URL, app.py hands out its WebSocket URL and accepts its origin."""
    if not config.public_url:
        return
    origin = public_origin(config.public_url)
    scheme, rest = config.public_url.rstrip("/").split("://", 1)
    os.environ["PEERBEAM_WS_URL"] = f"{'wss' if scheme == 'https' else 'ws'}://{rest}/ws"
    allowed = os.environ.get("PEERBEAM_ALLOWED_ORIGINS", "")
    os.environ["PEERBEAM_ALLOWED_ORIGINS"] = ",".join(filter(None, [allowed, origin]))


async def start(application: web.Application, host: str, port: int, ssl_context: Any,
                config: ServeConfig) -> web.AppRunner:
    runner = web.AppRunner(
        application, handle_signals=True, access_log_class=PathOnlyAccessLogger,
        # aiohttp arms this when a connection opens: it is also the header timeout.
        keepalive_timeout=config.header_timeout,
    )
    await runner.setup()
    guard = ConnectionGuard(config.max_connections, config.max_connections_per_client,
                            raise_fd_limit())
    site = GuardedSite(runner, host, port, guard=guard, header_timeout=config.header_timeout,
                       ssl_context=ssl_context)
    await site.start()
    logging.getLogger("peerbeam.server").info(
        "serving at most %d connections, %d per client address",
        guard.max_connections, guard.max_per_client,
    )
    return runner


def serve(host: str, port: int, data_dir: Path, tls: bool, config: ServeConfig | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    config = config or ServeConfig.from_env()
    data_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PEERBEAM_STORE", "sqlite")
    os.environ["PEERBEAM_SQLITE_PATH"] = str(data_dir / "rooms.sqlite3")
    public_url_environment(config)
    app_module = importlib.import_module("app")
    # Chalice's app logger (named after the app, so the parent of ours) does not propagate.
    logs.install(app_module.app.app_name)
    scheme = "https" if tls else "http"
    ssl_context = None
    lan = lan_address() if host in ("0.0.0.0", "::") else None
    if tls:
        hosts = ["localhost", "127.0.0.1"] + ([lan] if lan else [])
        if host not in ("0.0.0.0", "::"):
            hosts.append(host)
        ssl_context = server_context(*ensure_certificate(data_dir, hosts))
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    print(f"peerbeam is serving at {scheme}://{shown}:{port}/", file=sys.stderr, flush=True)
    if lan:
        print(f"on your network: {scheme}://{lan}:{port}/", file=sys.stderr, flush=True)
    if config.public_url:
        print(f"public URL: {config.public_url}", file=sys.stderr, flush=True)
    application = build_app(
        app_module, scheme=scheme, config=config,
        hosts=HostPolicy(host, config.public_url, config.allowed_hosts),
    )
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    runner = None
    try:
        runner = loop.run_until_complete(start(application, host, port, ssl_context, config))
        loop.run_forever()
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        if runner is not None:
            loop.run_until_complete(runner.cleanup())
        loop.close()
