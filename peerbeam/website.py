"""The web client as a website: where its files are, their content types, and the
security headers every page is served with.

The one source for both ways the site is served: `peerbeam serve`
(``peerbeam/server/http.py``) and the AWS deploy (S3 objects from
``peerbeam/deploy/site.py``, CloudFront's response headers policy rendered by
``peerbeam/deploy/headers.py``).
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

# The web client ships inside the package: `webclient/` at the top of the repository is
# linked here (peerbeam/webclient), and `pip install .` copies it into the wheel as package
# data, so an installed peerbeam serves the page from wherever it runs.
WEBCLIENT_DIR = Path(__file__).resolve().parent / "webclient"
INDEX = "index.html"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".webp": "image/webp",
    ".ico": "image/x-icon",
    ".webmanifest": "application/manifest+json",
    ".wasm": "application/wasm",
    ".woff2": "font/woff2",
}

# Where the page may connect when it is served by `peerbeam serve`: its own origin, over
# ws:/wss: on whatever host name or LAN address the browser used. The AWS deploy names its
# API Gateway endpoints instead (peerbeam/deploy/headers.py).
LOCAL_CONNECT_SRC = "'self' ws: wss:"

REFERRER_POLICY = "no-referrer"
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=()"
FRAME_OPTIONS = "DENY"  # for browsers that predate CSP's frame-ancestors

# Strict-Transport-Security only where the site is HTTPS with a real certificate (the
# CloudFront deploy): `peerbeam serve --tls` uses a self-signed one for the LAN, and
# pinning a LAN host name to HTTPS would outlive it.
HSTS_MAX_AGE = 2 * 365 * 24 * 3600
HSTS_INCLUDE_SUBDOMAINS = True


def content_type(name: str) -> str:
    """The Content-Type of a web client file, by its name."""
    suffix = Path(name).suffix.lower()
    if suffix in CONTENT_TYPES:
        return CONTENT_TYPES[suffix]
    guessed, _ = mimetypes.guess_type(name)
    return guessed or "application/octet-stream"


def content_security_policy(connect_src: str = LOCAL_CONNECT_SRC) -> str:
    """No inline script or style, nothing from another origin, no framing, no plugins."""
    directives = {
        "default-src": "'self'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": "'self' data: blob:",
        "connect-src": connect_src,
        "worker-src": "'self'",
        "object-src": "'none'",
        "base-uri": "'none'",
        "form-action": "'none'",
        "frame-ancestors": "'none'",
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def security_headers(connect_src: str = LOCAL_CONNECT_SRC) -> dict[str, str]:
    """The headers every response of the site carries, HTTP or HTTPS."""
    return {
        "Content-Security-Policy": content_security_policy(connect_src),
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": FRAME_OPTIONS,
        "Referrer-Policy": REFERRER_POLICY,
        "Permissions-Policy": PERMISSIONS_POLICY,
    }
