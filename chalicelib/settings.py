"""Settings read from environment variables (Lambda configuration or the local server)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

KIB = 1024


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from exc


def _list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    raw = env.get(name, "")
    return tuple(item.strip() for item in raw.split(",") if item.strip())


@dataclass(frozen=True)
class Settings:
    """Every knob of the signaling service. Defaults suit the local server."""

    store: str = "sqlite"
    sqlite_path: str = "peerbeam.sqlite3"
    table_name: str = "peerbeam-rooms"
    # Public WebSocket URL handed out by POST /rooms. Empty: derive it from the request.
    ws_url: str = ""
    # Room lifetime in seconds: a 100 GB transfer over a slow path takes hours,
    # and the signaling server is needed for the whole time (resume), so the
    # default is a day.
    default_expires_in: int = 24 * 3600
    min_expires_in: int = 60
    max_expires_in: int = 7 * 24 * 3600
    default_max_receivers: int = 10
    max_max_receivers: int = 50
    max_message_bytes: int = 64 * KIB
    stun_urls: tuple[str, ...] = ()
    turn_urls: tuple[str, ...] = ()
    turn_secret: str = field(default="", repr=False)
    # SSM Parameter Store SecureString holding the TURN secret (Lambda): read at
    # run time by chalicelib.turn_secret; turn_secret, when set, wins.
    turn_secret_parameter: str = ""
    turn_ttl: int = 12 * 3600
    # API Gateway WebSocket API id and stage, so REST handlers (DELETE /rooms)
    # can reach WebSocket members. Unused by the local server.
    websocket_api_id: str = ""
    websocket_stage: str = ""
    # Browser origins allowed to call the API and open WebSockets, besides the
    # server's own origin; "*" allows any. See chalicelib.origins.
    allowed_origins: tuple[str, ...] = ()
    # Seconds a new connection may hold a receiver slot before it says hello: a client
    # that only knows the room id cannot squat a slot (in a one-time room, the only one).
    hello_timeout: int = 10
    # WebSocket connections one client address may open per minute (AWS: a DynamoDB
    # counter per address; the local server limits joins itself). 0: no limit.
    connects_per_minute: int = 0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        base = cls()
        return cls(
            store=env.get("PEERBEAM_STORE", base.store),
            sqlite_path=env.get("PEERBEAM_SQLITE_PATH", base.sqlite_path),
            table_name=env.get("PEERBEAM_TABLE", base.table_name),
            ws_url=env.get("PEERBEAM_WS_URL", base.ws_url),
            default_expires_in=_int(env, "PEERBEAM_DEFAULT_EXPIRES_IN", base.default_expires_in),
            min_expires_in=_int(env, "PEERBEAM_MIN_EXPIRES_IN", base.min_expires_in),
            max_expires_in=_int(env, "PEERBEAM_MAX_EXPIRES_IN", base.max_expires_in),
            default_max_receivers=_int(
                env, "PEERBEAM_DEFAULT_MAX_RECEIVERS", base.default_max_receivers
            ),
            max_max_receivers=_int(env, "PEERBEAM_MAX_MAX_RECEIVERS", base.max_max_receivers),
            max_message_bytes=_int(env, "PEERBEAM_MAX_MESSAGE_BYTES", base.max_message_bytes),
            stun_urls=_list(env, "PEERBEAM_STUN_URLS"),
            turn_urls=_list(env, "PEERBEAM_TURN_URLS"),
            turn_secret=env.get("PEERBEAM_TURN_SECRET", ""),
            turn_secret_parameter=env.get("PEERBEAM_TURN_SECRET_PARAMETER", ""),
            turn_ttl=_int(env, "PEERBEAM_TURN_TTL", base.turn_ttl),
            websocket_api_id=env.get("PEERBEAM_WEBSOCKET_API_ID", ""),
            websocket_stage=env.get("PEERBEAM_WEBSOCKET_STAGE", ""),
            allowed_origins=_list(env, "PEERBEAM_ALLOWED_ORIGINS"),
            hello_timeout=_int(env, "PEERBEAM_HELLO_TIMEOUT", base.hello_timeout),
            connects_per_minute=_int(
                env, "PEERBEAM_CONNECTS_PER_MINUTE", base.connects_per_minute
            ),
        )
