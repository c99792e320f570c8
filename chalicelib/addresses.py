"""Which client a request comes from, for per-client limits.

An IPv4 address is one client. An IPv6 client usually holds a whole /64 (one
home or one cloud instance), so a limit keyed on the full address would be
trivially dodged: IPv6 addresses are grouped by their /64.
"""

from __future__ import annotations

import ipaddress


def client_key(address: str | None) -> str:
    """A stable key for the client at ``address`` ('' when unknown, e.g. a Unix socket)."""
    if not address:
        return ""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        if not ip.is_loopback:
            return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)
