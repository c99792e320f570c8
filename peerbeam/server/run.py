"""Start the local server: SQLite store in a data directory, app.py handlers, web client."""

from __future__ import annotations

import importlib
import logging
import os
import socket
import sys
from pathlib import Path

from aiohttp import web

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


def serve(host: str, port: int, data_dir: Path, tls: bool) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    data_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PEERBEAM_STORE", "sqlite")
    os.environ["PEERBEAM_SQLITE_PATH"] = str(data_dir / "rooms.sqlite3")
    app_module = importlib.import_module("app")
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
    web.run_app(
        build_app(app_module, scheme=scheme),
        host=host,
        port=port,
        ssl_context=ssl_context,
        access_log_class=PathOnlyAccessLogger,
        print=None,
    )
