"""`peerbeam serve` under attack: its memory, and a canary user's wait, before/under/after.

    python -m benchmarks.attacks [--seconds 10]

Three attacks, each against a fresh server with its default settings, from a second
client address on the loopback interface (127.0.0.2) while a canary user on 127.0.0.1
keeps doing what a sender does (create a room, join it, hello, ping) twice a second:

- never-reading: 25 receivers that say hello and then read nothing; each sends 100
  messages with a 60 KB unknown type (answered with an error it never reads) while a
  colluding sender relays 100 signals of 60 KB to it (once with the defaults, once
  with the per-address byte budget off, so that the outbox bound alone is measured);
- many-connection: 1100 TCP connections that send nothing, opened at once and opened
  again every two seconds;
- join/leave: 5000 receivers join one room, say hello and leave (half of them with a
  reconnect token), with the join limit lifted so every cycle reaches the store; the
  room's sender says hello before and after, and the member rows are counted.

The server's RSS is sampled throughout: "before" is the median of the quiet seconds
before the attack, "peak" the highest sample under it, "after" the last sample, five
seconds after the attackers are gone. Writes benchmarks/results/attacks.json.
"""

from __future__ import annotations

import argparse
import json
import secrets
import socket
import sqlite3
import statistics
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from websockets.sync.client import connect

from benchmarks.procs import RssSampler, save_result, serving
from tests import raw_clients
from tests.fixtures.servers import LocalServer

ATTACKER = "127.0.0.2"
MIB = 2**20
QUIET_SECONDS = 3.0
SETTLE_SECONDS = 5.0


class Canary:
    """A sender going through its first steps every half second; each round timed."""

    def __init__(self, server: LocalServer) -> None:
        self.server = server
        self.rounds: list[tuple[float, float | None]] = []  # (when, seconds or None: failed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._start = time.monotonic()
        self._thread.start()

    def once(self) -> float:
        started = time.monotonic()
        request = urllib.request.Request(f"{self.server.api}/rooms", data=b"{}", method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            room = json.loads(response.read())
        url = f"{self.server.ws}?room={room['room']}&role=sender&token={room['owner_token']}"
        with connect(url, open_timeout=10) as ws:
            ws.send('{"type":"hello"}')
            assert json.loads(ws.recv(10))["type"] == "welcome"
            ws.send('{"type":"ping"}')
            assert json.loads(ws.recv(10))["type"] == "pong"
        return time.monotonic() - started

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic() - self._start
            try:
                self.rounds.append((now, self.once()))
            except Exception:  # noqa: BLE001 - a failed round is a figure, not a crash
                self.rounds.append((now, None))
            self._stop.wait(0.5)

    def clock(self) -> float:
        return time.monotonic() - self._start

    def summary(self, start: float, end: float) -> dict[str, Any]:
        window = [seconds for when, seconds in self.rounds if start <= when <= end]
        done = sorted(s for s in window if s is not None)
        return {
            "rounds": len(window),
            "failures": len(window) - len(done),
            "p50_s": statistics.median(done) if done else None,
            "max_s": max(done) if done else None,
        }

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@contextmanager
def watched(env: dict[str, str] | None = None) -> Iterator[tuple[LocalServer, RssSampler, Canary]]:
    with serving("peerbeam-attack-", env) as (server, _):
        sampler = RssSampler(server.pid, interval=0.2)
        canary = Canary(server)
        try:
            yield server, sampler, canary
        finally:
            canary.stop()
            sampler.stop()


def measure(server: LocalServer, sampler: RssSampler, canary: Canary,
            attack: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Quiet, attack, settle: RSS, canary and log growth of each phase."""
    time.sleep(QUIET_SECONDS)
    quiet_end, log_before = canary.clock(), len(server.log())
    figures = attack()
    attack_end, log_under = canary.clock(), len(server.log())
    time.sleep(SETTLE_SECONDS)
    samples = sampler.samples
    before = statistics.median(rss for when, rss in samples if when <= quiet_end)
    peak = max(rss for when, rss in samples if quiet_end <= when <= attack_end)
    return {
        **figures,
        "attack_s": attack_end - quiet_end,
        "rss_mib": {"before": before / MIB, "peak": peak / MIB, "after": samples[-1][1] / MIB},
        "canary_before": canary.summary(0, quiet_end),
        "canary_under": canary.summary(quiet_end, attack_end),
        "canary_after": canary.summary(attack_end, canary.clock()),
        "log_bytes_under": log_under - log_before,
        "samples": [[when, rss] for when, rss in samples],
    }


def post_room(server: LocalServer) -> dict[str, Any]:
    status, _, room = raw_clients.request(server.port, "POST", "/api/rooms", body=b"{}",
                                          source=ATTACKER,
                                          headers={"Content-Type": "application/json"})
    assert status == 201, room
    return room


# -- the attacks -------------------------------------------------------------------------


def never_reading(server: LocalServer, clients: int = 25, messages: int = 100) -> dict[str, Any]:
    big_type = json.dumps({"type": "x" * 60_000})
    with ExitStack() as stack:
        pairs = []
        for _ in range(clients):
            room = post_room(server)
            sender = stack.enter_context(connect(
                f"{server.ws}?room={room['room']}&role=sender&token={room['owner_token']}",
                sock=raw_clients.connect(server.port, source=ATTACKER),
                max_size=None, max_queue=None))
            sender.send('{"type":"hello"}')
            sender.recv(10)
            stuck = raw_clients.websocket(server.port, f"room={room['room']}&role=receiver",
                                          source=ATTACKER, rcvbuf=4096)
            stack.callback(stuck.close)
            stuck.sendall(raw_clients.frame({"type": "hello"}))
            peer = json.loads(sender.recv(10))["peer"]
            pairs.append((sender, stuck, peer))

        def pump(sender: Any, stuck: socket.socket, peer: str) -> None:
            signal = json.dumps({"type": "signal", "to": peer, "data": {"sdp": "x" * 60_000}})
            frame = raw_clients.frame(big_type)
            for _ in range(messages):
                try:
                    stuck.sendall(frame)
                    sender.send(signal)
                except OSError:
                    return  # cut off by the server
            # the sender drains what came back (peer-left, errors) so that it is no victim
            try:
                while sender.recv(0.2):
                    pass
            except Exception:  # noqa: BLE001 - drained
                return

        threads = [threading.Thread(target=pump, args=pair) for pair in pairs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        cut = sum(raw_clients.closed_by_server(stuck, 0.5) for _, stuck, _ in pairs)
    return {"clients": clients, "messages_each": messages, "cut_off": cut}


def many_connections(server: LocalServer, count: int = 1100, seconds: float = 10.0) -> dict[str, Any]:
    opened = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sockets = raw_clients.flood(server.port, count, source=ATTACKER)
        opened += len(sockets)
        time.sleep(2)
        for sock in sockets:
            sock.close()
    return {"connections": count, "opened": opened}


def join_leave(server: LocalServer, cycles: int = 5000, workers: int = 8) -> dict[str, Any]:
    room = post_room(server)
    sender_url = f"{server.ws}?room={room['room']}&role=sender&token={room['owner_token']}"

    def sender_hello_ms() -> float:
        with connect(sender_url, sock=raw_clients.connect(server.port, source=ATTACKER),
                     max_size=None, max_queue=None) as ws:
            times = []
            for _ in range(20):
                started = time.perf_counter()
                ws.send('{"type":"hello"}')
                while json.loads(ws.recv(10))["type"] != "welcome":
                    pass
                times.append((time.perf_counter() - started) * 1000)
            return statistics.median(times)

    before = sender_hello_ms()
    done = [0]
    lock = threading.Lock()

    def cycle_many(count: int) -> None:
        for index in range(count):
            token = f"&token={secrets.token_urlsafe(24)}" if index % 2 else ""
            while True:
                try:
                    sock = raw_clients.websocket(
                        server.port, f"room={room['room']}&role=receiver{token}", source=ATTACKER)
                    break
                except ConnectionRefusedError:
                    time.sleep(0.01)  # room full for a moment: the slots of leavers come back
            sock.sendall(raw_clients.frame({"type": "hello"}))
            sock.recv(65536)
            sock.close()
            with lock:
                done[0] += 1

    threads = [threading.Thread(target=cycle_many, args=(cycles // workers,)) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    time.sleep(1)  # the last $disconnects
    after = sender_hello_ms()
    with sqlite3.connect(server.data_dir / "rooms.sqlite3") as db:
        rows = db.execute("SELECT COUNT(*) FROM members WHERE room_id = ?", (room["room"],)).fetchone()[0]
    return {"cycles": done[0], "member_rows_after": rows,
            "sender_hello_ms": {"before": before, "after": after}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0, help="many-connection attack length")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with watched() as (server, sampler, canary):
        results["never_reading"] = measure(server, sampler, canary, lambda: never_reading(server))
    # The same with the per-address byte budget off: the outbox bound alone must hold.
    with watched({"PEERBEAM_CLIENT_BYTES_PER_SECOND": "0"}) as (server, sampler, canary):
        results["never_reading_unbudgeted"] = measure(
            server, sampler, canary, lambda: never_reading(server))
    with watched() as (server, sampler, canary):
        results["many_connections"] = measure(
            server, sampler, canary, lambda: many_connections(server, seconds=args.seconds))
    # Lift the join limit: every one of the 5000 cycles must reach the store.
    with watched({"PEERBEAM_JOINS_BURST": "1000000"}) as (server, sampler, canary):
        results["join_leave"] = measure(server, sampler, canary, lambda: join_leave(server))
    save_result("attacks", {"attacks": results})
    print(json.dumps({name: {k: v for k, v in figures.items() if k != "samples"}
                      for name, figures in results.items()}, indent=1))


if __name__ == "__main__":
    main()
