"""An aiortc swarm: many real peers at once through one signaling server.

- N concurrent sender/receiver pairs, each its own room and file;
- one sender fanning out to K receivers of the same link.

Every peer is the real thing (peerbeam.peer's Sender and Receiver: authentication,
hashing, acks, disk), all in this process, loopback only, bounded in peers and time.

    python -m loadtests.swarm --server http://127.0.0.1:8000 --pairs 4 --fanout 3 --size-mib 16

Prints (and with --json writes) per-transfer and aggregate throughput, failures and
peak memory.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from peerbeam.peer import api
from peerbeam.peer.commands import use_uvloop
from peerbeam.peer.receiver import Receiver
from peerbeam.peer.sender import Offer, Sender
from peerbeam.peer.signaling import SignalingClient
from peerbeam.peer.source import SourceFile
from peerbeam.transfer import new_link_key

MAX_PEERS = 64
MAX_RECEIVERS = 50  # the server's upper bound per room
MiB = 1024 * 1024


def make_file(path: Path, size: int) -> str:
    data = os.urandom(size)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


async def serve(server: str, source: Path) -> tuple[Sender, SignalingClient, str, bytes, asyncio.Task[None]]:
    config = await api.discover(server)
    room = await api.create_room(config.api_url, {"max_receivers": MAX_RECEIVERS})
    key = new_link_key()
    signaling = SignalingClient(room["ws_url"], room["room"], "sender", room["owner_token"])
    await signaling.connect()
    sender = Sender(Offer([SourceFile.open(source)], room["room"], key), signaling, lambda r: None)
    return sender, signaling, room["room"], key, asyncio.create_task(sender.run())


async def fetch(server: str, room: str, key: bytes, out: Path, expected: str) -> dict[str, Any]:
    config = await api.discover(server)
    signaling = SignalingClient(config.ws_url, room, "receiver")
    started = time.monotonic()
    try:
        await signaling.connect()
        result = await Receiver(signaling, room, key, out).run()
        elapsed = time.monotonic() - started
        path = result.files[0]
        ok = hashlib.sha256(path.read_bytes()).hexdigest() == expected
        size = path.stat().st_size
        return {"ok": ok, "bytes": size, "seconds": elapsed, "mb_s": size / 1e6 / elapsed,
                "first_byte_s": result.accept_to_first_byte,
                "error": None if ok else "content differs"}
    except Exception as error:  # noqa: BLE001 - a failed transfer is a result, not a crash
        return {"ok": False, "bytes": 0, "seconds": time.monotonic() - started, "mb_s": 0.0,
                "first_byte_s": None, "error": f"{type(error).__name__}: {error}"}
    finally:
        await signaling.close()


async def scenario(server: str, work: Path, senders: int, receivers_each: int, size: int,
                   timeout: float) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    served = []
    jobs = []
    for s in range(senders):
        source = work / f"source-{s}.bin"
        digest = make_file(source, size)
        sender, signaling, room, key, task = await serve(server, source)
        served.append((sender, signaling, task))
        for r in range(receivers_each):
            jobs.append(fetch(server, room, key, work / f"out-{s}-{r}", digest))
    try:
        results = await asyncio.wait_for(asyncio.gather(*jobs), timeout)
    finally:
        for sender, signaling, task in served:
            sender.finished.set()
            await task
            await signaling.close()
    wall = time.monotonic() - started
    moved = sum(r["bytes"] for r in results)
    return {
        "senders": senders, "receivers_per_sender": receivers_each, "size_mib": size / MiB,
        "transfers": len(results), "failures": sum(not r["ok"] for r in results),
        "bytes_moved": moved, "bytes_expected": size * len(results),
        "aggregate_mb_s": moved / 1e6 / wall, "wall_s": wall,
        "per_transfer_mb_s": [round(r["mb_s"], 2) for r in results],
        "per_transfer_s": [round(r["seconds"], 2) for r in results],
        "accept_to_first_byte_s": [r["first_byte_s"] and round(r["first_byte_s"], 3) for r in results],
        "errors": [r["error"] for r in results if r["error"]],
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="peerbeam-swarm-") as tmp:
        work = Path(tmp)
        size = int(args.size_mib * MiB)
        pairs = await scenario(args.server, work / "pairs", args.pairs, 1, size, args.timeout)
        fanout = await scenario(args.server, work / "fanout", 1, args.fanout, size, args.timeout)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"pairs": pairs, "fanout": fanout, "peak_rss_mib": peak_kib / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="http://127.0.0.1:8000")
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--fanout", type=int, default=3)
    parser.add_argument("--size-mib", type=float, default=16)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()
    if not 1 <= args.pairs * 2 <= MAX_PEERS or not 1 <= args.fanout <= MAX_RECEIVERS:
        parser.error(f"at most {MAX_PEERS} peers")
    os.environ.setdefault("PEERBEAM_ICE_LOOPBACK", "1")
    use_uvloop()
    report = asyncio.run(run(args))
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text)
    if report["pairs"]["failures"] or report["fanout"]["failures"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
