"""Which ``Host`` names `peerbeam serve` answers for: a defence against DNS rebinding.

A page on ``http://evil.example:8000`` can make its own name resolve to 127.0.0.1
(or a LAN address) after it loaded; the browser then sends that page's requests,
with ``Host: evil.example:8000`` and ``Origin: http://evil.example:8000``, to us.
``Origin`` naming ``Host`` makes it look like our own page, so the origin check
alone lets it through. The Host check closes that: a name is answered only if it
names this server as it was started.

Allowed without configuration:
- an IP address literal: when listening on all interfaces any of them (a page whose
  origin is an address we answer on *is* served by us: an address cannot be
  rebound), otherwise the listen address and loopback addresses;
- ``localhost``, the listen host when it is a name, and the machine's own names
  (``hostname``, its FQDN, ``hostname.local``).

``--public-url URL`` adds the URL's host (and fixes the URLs the server hands out);
``--allowed-host NAME`` / ``PEERBEAM_ALLOWED_HOSTS`` add names; ``*`` allows any.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

ANY = "*"
WILDCARDS = ("", "0.0.0.0", "::")


def host_name(host_header: str) -> str | None:
    """The host part of a ``Host`` header, lower case, without brackets; None if malformed."""
    try:
        parts = urlsplit(f"//{host_header.strip()}")
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return None
    name = parts.hostname
    if not name or parts.username is not None or parts.path or parts.query:
        return None
    return name.rstrip(".")


def machine_names() -> set[str]:
    names = {"localhost"}
    try:
        hostname = socket.gethostname().lower()
        names |= {hostname, f"{hostname}.local", socket.getfqdn().lower()}
    except OSError:
        pass
    return {name.rstrip(".") for name in names if name}


class HostPolicy:
    def __init__(self, listen_host: str, public_url: str = "", extra: Iterable[str] = ()) -> None:
        self._any_address = listen_host in WILDCARDS
        self._names = machine_names()
        self._addresses: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
        self._any = False
        for item in [listen_host, *extra] + ([urlsplit(public_url).hostname or ""] if public_url else []):
            item = item.strip().lower().strip("[]").rstrip(".")
            if item == ANY:
                self._any = True
            elif item and item not in WILDCARDS:
                try:
                    self._addresses.add(ipaddress.ip_address(item))
                except ValueError:
                    self._names.add(item)

    def allows(self, host_header: str | None) -> bool:
        if self._any or host_header is None:
            return True  # no Host at all: HTTP/1.0 tools, never a browser
        name = host_name(host_header)
        if name is None:
            return False
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            return name in self._names
        return self._any_address or address.is_loopback or address in self._addresses
