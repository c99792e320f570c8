"""Baseline: one TCP stream, what the kernel's transport gets on the same link.

    python -m benchmarks.tcp_stream receive --bind IP:PORT     # prints progress lines
    python -m benchmarks.tcp_stream send --to IP:PORT [--cc cubic] [--bytes N]

The receiver accepts one connection and prints ``{"t": monotonic, "bytes": n}`` every
``--progress`` seconds (and once at the end); the sender writes zeros until ``--bytes``
(0: until it is stopped). ``--cc`` picks the congestion control of the sending socket
(``cubic``, the common loss-based default; ``bbr``, model-based: it does not halve its
rate on a random loss), so the table can show what a loss-based flow gets on a lossy link.
"""

from __future__ import annotations

import argparse
import json
import socket
import threading
import time

BLOCK = 1024 * 1024


def address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def receive(bind: tuple[str, int], interval: float) -> None:
    with socket.create_server(bind) as server:
        print(json.dumps({"listening": True}), flush=True)
        connection, _ = server.accept()
    received = 0
    done = threading.Event()

    def report() -> None:
        while not done.wait(interval):
            print(json.dumps({"t": time.monotonic(), "bytes": received}), flush=True)

    reporter = threading.Thread(target=report, daemon=True)
    reporter.start()
    buffer = bytearray(BLOCK)
    with connection:
        while True:
            n = connection.recv_into(buffer)
            if not n:
                break
            received += n
    done.set()
    print(json.dumps({"t": time.monotonic(), "bytes": received}), flush=True)


def send(to: tuple[str, int], total: int, congestion_control: str | None) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if congestion_control:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, congestion_control.encode())
    sock.connect(to)
    payload = bytes(BLOCK)
    sent = 0
    with sock:
        while not total or sent < total:
            size = BLOCK if not total else min(BLOCK, total - sent)
            sock.sendall(payload[:size])
            sent += size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["send", "receive"])
    parser.add_argument("--bind", help="receive: IP:PORT to listen on")
    parser.add_argument("--to", help="send: IP:PORT of the receiver")
    parser.add_argument("--bytes", type=int, default=0, help="send: stop after N bytes (0: never)")
    parser.add_argument("--cc", help="send: TCP congestion control (cubic, bbr, reno)")
    parser.add_argument("--progress", type=float, default=0.25, help="receive: report interval (s)")
    args = parser.parse_args()
    try:
        if args.role == "receive":
            receive(address(args.bind), args.progress)
        else:
            send(address(args.to), args.bytes, args.cc)
    except (BrokenPipeError, ConnectionResetError, KeyboardInterrupt):
        pass


if __name__ == "__main__":
    main()
