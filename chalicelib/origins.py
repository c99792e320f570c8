"""Which browser origins may use the API: CORS for REST, an Origin check on $connect.

Browsers apply no CORS to WebSockets, so ``$connect`` checks ``Origin`` itself.
A request without ``Origin`` comes from no browser page (the CLI, curl): it is
allowed, since the check protects visitors' browsers, not the API.

``allowed`` comes from ``PEERBEAM_ALLOWED_ORIGINS``: ``*`` allows every origin;
otherwise the listed origins are allowed, and so is the server's own origin
(``Origin`` naming the host the request was sent to), which is all the local
server needs: the page and the API share ``http://127.0.0.1:PORT`` or a LAN host.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

ANY = "*"
DEFAULT_PORTS = {"http": "80", "https": "443", "ws": "80", "wss": "443"}


def normalise(origin: str) -> str:
    """``scheme://host[:port]`` in lower case, without a default port; '' if malformed."""
    try:
        parts = urlsplit(origin.strip().lower())
        port = parts.port
    except ValueError:
        return ""
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/"):
        return ""
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if port is not None and str(port) != DEFAULT_PORTS[parts.scheme]:
        host = f"{host}:{port}"
    return f"{parts.scheme}://{host}"


def _authority(origin: str) -> str:
    return origin.split("://", 1)[1]


def _host_authority(host: str, scheme: str) -> str:
    host = host.strip().lower()
    default = DEFAULT_PORTS.get(scheme)
    if default and host.endswith(f":{default}"):
        host = host[: -len(default) - 1]
    return host


def origin_allowed(origin: str | None, host: str | None, allowed: tuple[str, ...]) -> bool:
    if origin is None or origin == "":
        return True
    if ANY in allowed:
        return True
    normal = normalise(origin)
    if not normal:
        return False  # "null" (sandboxed frames, file://) and garbage
    if normal in {normalise(item) for item in allowed}:
        return True
    scheme = normal.split("://", 1)[0]
    return bool(host) and _authority(normal) == _host_authority(str(host), scheme)


def header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """A header by case-insensitive name (API Gateway keeps the client's spelling)."""
    wanted = name.lower()
    for key, value in (headers or {}).items():
        if key.lower() == wanted:
            return value
    return None
