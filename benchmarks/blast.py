"""Baseline: a bare aiortc data channel between two processes, no protocol at all.

Same signaling, same message size and the same buffered-amount flow control as the
real transfer, but no authentication, hashing, acknowledgements or disk: what the
WebRTC stack itself can move. `peerbeam send/receive` is measured against it.

    python -m benchmarks.blast send BYTES --server URL   # prints a rooms line on stdout
    python -m benchmarks.blast receive ROOMS --server URL --bytes BYTES

``--connections N`` (sender): N peer connections in this one process (one room, one
signaling client and one channel each; the receiver takes every room of the line), BYTES
split between them: the single-threaded event loop then carries N SCTP associations.
BYTES 0 on both sides: send until stopped.
``--tuned`` (both sides): with peerbeam's SCTP tuning (peerbeam/peer/transport_tuning.py), which
every peerbeam connection has; without it, aiortc as shipped.
``--progress S`` (receiver): a ``{"t": monotonic, "bytes": n}`` line every S seconds, all
connections together.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from aiortc import RTCDataChannel, RTCPeerConnection, RTCSessionDescription

from peerbeam.peer import api, transport_tuning
from peerbeam.peer.commands import use_uvloop
from peerbeam.peer.rtc import CLOSED, Channel, ice_configuration
from peerbeam.peer.signaling import SignalingClient

MESSAGE = 65536  # aiortc's max-message-size: the real transfer's piece size towards aiortc


async def open_room(server: str) -> tuple[dict[str, str], SignalingClient]:
    config = await api.discover(server)
    room = await api.create_room(config.api_url, {})
    signaling = SignalingClient(room["ws_url"], room["room"], "sender", room["owner_token"])
    await signaling.connect()
    return {"room": room["room"], "ws_url": room["ws_url"]}, signaling


async def send(total: int, server: str, connections: int) -> None:
    opened = [await open_room(server) for _ in range(connections)]
    print(json.dumps({"rooms": [room for room, _ in opened]}), flush=True)
    share = total // connections
    parts = [share + (total - share * connections if i == 0 else 0) for i in range(connections)]
    await asyncio.gather(*(send_one(signaling, part, endless=total == 0)
                           for (_, signaling), part in zip(opened, parts, strict=True)))


async def send_one(signaling: SignalingClient, total: int, endless: bool) -> None:
    while True:
        message = await signaling.messages.get()
        if message.get("type") == "peer-joined":
            break
    receiver = message["peer"]
    pc = RTCPeerConnection(ice_configuration([], None))
    channel = Channel(pc.createDataChannel("blast", ordered=True))
    await pc.setLocalDescription(await pc.createOffer())
    await signaling.signal(receiver, {"kind": "offer", "sdp": pc.localDescription.sdp})
    while True:
        message = await signaling.messages.get()
        if message.get("type") == "signal":
            break
    await pc.setRemoteDescription(RTCSessionDescription(message["data"]["sdp"], "answer"))
    await channel.opened.wait()
    payload = bytes(MESSAGE)
    sent = 0
    while endless or sent < total:
        size = MESSAGE if endless else min(MESSAGE, total - sent)
        await channel.send_binary(payload[:size])
        sent += size
    assert await channel.recv() == "done"
    await pc.close()
    await signaling.close()


class Counter:
    """Bytes received over all connections, and when the first one came."""

    def __init__(self) -> None:
        self.bytes = 0
        self.first: float | None = None

    def add(self, n: int) -> None:
        self.first = self.first or time.monotonic()
        self.bytes += n


async def receive(rooms: list[dict[str, str]], total: int, progress: float | None) -> None:
    counter = Counter()
    reporter = asyncio.ensure_future(report(counter, progress)) if progress else None
    share = total // len(rooms)
    parts = [share + (total - share * len(rooms) if i == 0 else 0) for i in range(len(rooms))]
    await asyncio.gather(*(receive_one(room["room"], room["ws_url"], part, counter, endless=total == 0)
                           for room, part in zip(rooms, parts, strict=True)))
    if reporter:
        reporter.cancel()
    print(json.dumps({"bytes": counter.bytes, "seconds": time.monotonic() - (counter.first or 0)}),
          flush=True)


async def report(counter: Counter, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        print(json.dumps({"t": time.monotonic(), "bytes": counter.bytes}), flush=True)


async def receive_one(room: str, ws_url: str, total: int, counter: Counter, endless: bool) -> None:
    signaling = SignalingClient(ws_url, room, "receiver")
    await signaling.connect()
    while True:
        message = await signaling.messages.get()
        if message.get("type") == "signal":
            break
    pc = RTCPeerConnection(ice_configuration([], None))
    opened: asyncio.Future[Channel] = asyncio.get_running_loop().create_future()

    @pc.on("datachannel")
    def on_datachannel(channel: RTCDataChannel) -> None:
        if not opened.done():
            opened.set_result(Channel(channel))

    await pc.setRemoteDescription(RTCSessionDescription(message["data"]["sdp"], "offer"))
    await pc.setLocalDescription(await pc.createAnswer())
    await signaling.signal(message["from"], {"kind": "answer", "sdp": pc.localDescription.sdp})
    channel = await opened
    received = 0
    while endless or received < total:
        data = await channel.recv()
        if data is CLOSED:
            raise SystemExit("channel closed early")
        received += len(data)
        counter.add(len(data))
    channel.send_text("done")
    await channel.drain()
    await pc.close()
    await signaling.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["send", "receive"])
    parser.add_argument("arg")
    parser.add_argument("--server", required=True)
    parser.add_argument("--bytes", type=int)
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--progress", type=float)
    parser.add_argument("--tuned", action="store_true")
    args = parser.parse_args()
    use_uvloop()
    if args.tuned:
        transport_tuning.apply()
    if args.role == "send":
        asyncio.run(send(int(args.arg), args.server, args.connections))
    else:
        asyncio.run(receive(json.loads(args.arg)["rooms"], args.bytes, args.progress))
    sys.exit(0)


if __name__ == "__main__":
    main()
