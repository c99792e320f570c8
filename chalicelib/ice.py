"""ICE servers for room members, with TURN REST API ephemeral credentials.

coturn's ``use-auth-secret`` scheme: ``username = "<expiry>:<id>"`` and
``credential = base64(HMAC-SHA1(secret, username))``. The secret stays here;
peers only ever see credentials that stop working at ``expiry``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from . import turn_secret
from .settings import Settings


def turn_credentials(secret: str, user_id: str, now: int, ttl: int) -> tuple[str, str]:
    username = f"{now + ttl}:{user_id}"
    digest = hmac.new(secret.encode("utf-8"), username.encode("utf-8"), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")


def ice_servers(
    settings: Settings, peer_id: str, now: int, room_expires_at: int
) -> list[dict[str, Any]]:
    """STUN and TURN for a member who said hello. TURN credentials never outlive the
    room: a room creator must not get a relay it can use for longer than its room."""
    servers: list[dict[str, Any]] = []
    if settings.stun_urls:
        servers.append({"urls": list(settings.stun_urls)})
    secret = ""
    if settings.turn_urls:
        secret = settings.turn_secret or turn_secret.load(settings.turn_secret_parameter)
    if secret:
        ttl = min(settings.turn_ttl, max(0, room_expires_at - now))
        username, credential = turn_credentials(secret, peer_id, now, ttl)
        servers.append(
            {"urls": list(settings.turn_urls), "username": username, "credential": credential}
        )
    return servers
