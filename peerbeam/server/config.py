"""Settings of `peerbeam serve` itself: who it answers, how much it holds, how fast.

The room rules live in ``chalicelib.settings`` (shared with AWS); these knobs exist
only where peerbeam is its own web server. Each comes from an environment variable
(README, "Configuration"); `peerbeam serve --public-url/--allowed-host` override two.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

MIB = 1024 * 1024


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "")
    if raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {raw!r}")
    return value


def public_origin(url: str) -> str:
    """``scheme://host[:port]`` of a public URL; ValueError unless it is http(s) with a host."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"--public-url must be an http:// or https:// URL, not {url!r}")
    return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True)
class ServeConfig:
    # The URL users reach this server at (a reverse proxy, a DNS name): config.json,
    # ws_url and the own-origin check follow it instead of the request's Host.
    public_url: str = ""
    # More names Host may carry besides the server's own (see hosts.py); "*": any.
    allowed_hosts: tuple[str, ...] = ()
    # Open connections in all (clamped to what the fd limit allows) and per client address.
    max_connections: int = 1024
    max_connections_per_client: int = 128
    # Seconds for a TLS handshake, for a request's headers and body, and for an idle
    # keep-alive connection: a client that is slow on purpose is cut off.
    header_timeout: float = 10.0
    # Messages waiting for a WebSocket client that does not read: past this, it is closed.
    send_queue_bytes: int = MIB
    # Seconds a WebSocket may stay silent (API Gateway's idle timeout is 10 minutes).
    idle_timeout: float = 600.0
    # Seconds a WebSocket may live at all (API Gateway's limit is 2 hours).
    max_life: float = 7200.0
    # Token buckets per client address: room creations and WebSocket joins.
    rooms_per_minute: float = 60.0
    rooms_burst: int = 60
    joins_per_minute: float = 120.0
    joins_burst: int = 120
    # WebSocket message bytes one client address may make the relay handle per second (and
    # in a burst); past that its sockets are read more slowly. Signaling is a few KB per
    # transfer: this only ever slows a flood.
    client_bytes_per_second: float = float(MIB)
    client_bytes_burst: float = 4.0 * MIB

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServeConfig:
        env = os.environ if env is None else env
        base = cls()
        return cls(
            public_url=env.get("PEERBEAM_PUBLIC_URL", ""),
            allowed_hosts=tuple(
                item.strip().lower()
                for item in env.get("PEERBEAM_ALLOWED_HOSTS", "").split(",")
                if item.strip()
            ),
            max_connections=int(_number(env, "PEERBEAM_MAX_CONNECTIONS", base.max_connections)),
            max_connections_per_client=int(
                _number(env, "PEERBEAM_MAX_CONNECTIONS_PER_CLIENT", base.max_connections_per_client)
            ),
            header_timeout=_number(env, "PEERBEAM_HEADER_TIMEOUT", base.header_timeout),
            send_queue_bytes=int(_number(env, "PEERBEAM_SEND_QUEUE_BYTES", base.send_queue_bytes)),
            idle_timeout=_number(env, "PEERBEAM_IDLE_TIMEOUT", base.idle_timeout),
            max_life=_number(env, "PEERBEAM_WS_MAX_LIFE", base.max_life),
            rooms_per_minute=_number(env, "PEERBEAM_ROOMS_PER_MINUTE", base.rooms_per_minute),
            rooms_burst=int(_number(env, "PEERBEAM_ROOMS_BURST", base.rooms_burst)),
            joins_per_minute=_number(env, "PEERBEAM_JOINS_PER_MINUTE", base.joins_per_minute),
            joins_burst=int(_number(env, "PEERBEAM_JOINS_BURST", base.joins_burst)),
            client_bytes_per_second=_number(
                env, "PEERBEAM_CLIENT_BYTES_PER_SECOND", base.client_bytes_per_second
            ),
            client_bytes_burst=_number(env, "PEERBEAM_CLIENT_BYTES_BURST", base.client_bytes_burst),
        )

    def with_options(self, public_url: str | None, allowed_hosts: list[str] | None) -> ServeConfig:
        """The command line wins over the environment."""
        config = self
        if public_url is not None:
            config = replace(config, public_url=public_url)
        if allowed_hosts:
            config = replace(
                config, allowed_hosts=config.allowed_hosts + tuple(h.lower() for h in allowed_hosts)
            )
        if config.public_url:
            public_origin(config.public_url)  # refuse a malformed URL at start-up
        return config
