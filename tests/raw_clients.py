"""Clients that misbehave on purpose, with plain sockets: half-open connections, slow
headers, WebSockets that never read. Shared by the hostile-client tests and
benchmarks/attacks.py. Everything connects to 127.0.0.1 (a source address on the
loopback interface, e.g. 127.0.0.2, can be chosen to act as another client)."""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
from typing import Any

TIMEOUT = 10


def connect(port: int, *, source: str = "127.0.0.1", rcvbuf: int | None = None,
            timeout: float = TIMEOUT) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        # Before connect, so the receive window starts (and stays) small.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(timeout)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def flood(port: int, count: int, *, source: str = "127.0.0.1") -> list[socket.socket]:
    """``count`` connections opened at once (non-blocking connects) that never send a byte."""
    sockets = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.bind((source, 0))
        sock.connect_ex(("127.0.0.1", port))
        sockets.append(sock)
    return sockets


def read_head(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names) and whatever followed them."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError(f"closed after {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, rest


def request(port: int, method: str, path: str, *, body: bytes = b"", host: str | None = None,
            source: str = "127.0.0.1", headers: dict[str, str] | None = None,
            timeout: float = TIMEOUT) -> tuple[int, dict[str, str], Any]:
    """One HTTP/1.1 request on a fresh connection; the body parsed as JSON when it is."""
    sock = connect(port, source=source, timeout=timeout)
    try:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host or f'127.0.0.1:{port}'}",
                 "Connection: close", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        status, got, rest = read_head(sock)
        length = int(got.get("content-length", "-1"))
        while length < 0 or len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
    finally:
        sock.close()
    try:
        return status, got, json.loads(rest) if rest else None
    except ValueError:
        return status, got, rest


def websocket(port: int, query: str, *, source: str = "127.0.0.1", rcvbuf: int | None = None,
              headers: dict[str, str] | None = None) -> socket.socket:
    """A WebSocket handshake by hand; the socket, positioned after the 101 response."""
    sock = connect(port, source=source, rcvbuf=rcvbuf)
    key = base64.b64encode(os.urandom(16)).decode()
    headers = {"Host": f"127.0.0.1:{port}", **(headers or {})}
    lines = [f"GET /ws?{query} HTTP/1.1", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    status, _, _ = read_head(sock)
    if status != 101:
        sock.close()
        raise ConnectionRefusedError(f"handshake answered {status}")
    return sock


def frame(message: Any) -> bytes:
    """One masked text frame, as a client must send it."""
    payload = (message if isinstance(message, str) else json.dumps(message)).encode()
    mask = os.urandom(4)
    length = len(payload)
    if length < 126:
        head = struct.pack("!BB", 0x81, 0x80 | length)
    elif length < 65536:
        head = struct.pack("!BBH", 0x81, 0x80 | 126, length)
    else:
        head = struct.pack("!BBQ", 0x81, 0x80 | 127, length)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def closed_by_server(sock: socket.socket, within: float) -> bool:
    """True when the server ends the connection (EOF or reset) within ``within`` seconds;
    anything it still sends is read and dropped."""
    sock.settimeout(within)
    try:
        while sock.recv(65536):
            pass
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False
    return True
