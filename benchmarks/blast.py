"""Baseline: a bare aiortc data channel between two processes, no protocol at all.

Same signaling, same message size and the same buffered-amount flow control as the
real transfer, but no authentication, hashing, acknowledgements or disk: what the
WebRTC stack itself can move. `peerbeam send/receive` is measured against it.

    python -m benchmarks.blast send BYTES --server URL   # prints a room line on stdout
    python -m benchmarks.blast receive ROOM --server URL
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from aiortc import RTCDataChannel, RTCPeerConnection, RTCSessionDescription

from peerbeam.peer import api
from peerbeam.peer.commands import use_uvloop
from peerbeam.peer.rtc import CLOSED, Channel, ice_configuration
from peerbeam.peer.signaling import SignalingClient

MESSAGE = 65536  # aiortc's max-message-size: the real transfer's piece size towards aiortc


async def send(total: int, server: str) -> None:
    config = await api.discover(server)
    room = await api.create_room(config.api_url, {})
    print(json.dumps({"room": room["room"], "ws_url": room["ws_url"]}), flush=True)
    signaling = SignalingClient(room["ws_url"], room["room"], "sender", room["owner_token"])
    await signaling.connect()
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
    while sent < total:
        size = min(MESSAGE, total - sent)
        await channel.send_binary(payload[:size])
        sent += size
    assert await channel.recv() == "done"
    await pc.close()
    await signaling.close()


async def receive(room: str, ws_url: str, total: int) -> None:
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
    first = None
    while received < total:
        data = await channel.recv()
        if data is CLOSED:
            raise SystemExit("channel closed early")
        first = first or time.monotonic()
        received += len(data)
    channel.send_text("done")
    await channel.drain()
    print(json.dumps({"bytes": received, "seconds": time.monotonic() - (first or 0)}), flush=True)
    await pc.close()
    await signaling.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["send", "receive"])
    parser.add_argument("arg")
    parser.add_argument("--server", required=True)
    parser.add_argument("--bytes", type=int)
    args = parser.parse_args()
    use_uvloop()
    if args.role == "send":
        asyncio.run(send(int(args.arg), args.server))
    else:
        info = json.loads(args.arg)
        asyncio.run(receive(info["room"], info["ws_url"], args.bytes))
    sys.exit(0)


if __name__ == "__main__":
    main()
