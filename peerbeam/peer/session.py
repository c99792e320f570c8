"""What both ends of a transfer do alike on the data channel: JSON control messages
out, and in: answer pings, raise on the peer's errors, on closing and on silence."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ..transfer import FrameError
from ..transfer.messages import ErrorMessage, Ping, Pong, encode_message, parse_message
from .rtc import CLOSED, Channel
from .timing import TIMING


class PeerError(Exception):
    """The other peer reported an error or broke the protocol."""


class ConnectionLost(Exception):
    """The data channel closed, or the peer went silent."""


class ProtocolSession:
    #: the other side, for messages ("sender" / "receiver")
    peer_role = "peer"
    #: only the sender sends binary frames (protocol.md §8.2)
    binary_allowed = False

    def __init__(self, channel: Channel) -> None:
        self.channel = channel

    def send(self, message: Any) -> None:
        self.channel.send_text(encode_message(message))

    async def recv(self) -> Any:
        """The next control message or binary frame.

        Keepalive (protocol.md §11): after `ping_after` seconds without a message, ping;
        a peer silent for `dead_after` seconds since its last message is gone. Silence
        counts from the last message received (pongs included, which the channel answers
        and notes by itself), never from when this call started.
        """
        while True:
            try:
                raw = await asyncio.wait_for(self.channel.recv(), TIMING.ping_after)
            except TimeoutError:
                if time.monotonic() - self.channel.last_received >= TIMING.dead_after:
                    raise ConnectionLost(f"the {self.peer_role} stopped answering") from None
                self.send(Ping())
                continue
            if raw is CLOSED:
                raise ConnectionLost(f"the {self.peer_role}'s connection closed")
            if isinstance(raw, bytes):
                if not self.binary_allowed:
                    raise FrameError(f"a {self.peer_role} never sends binary frames")
                return raw
            message = parse_message(raw)
            if isinstance(message, Ping):
                self.send(Pong())
            elif isinstance(message, ErrorMessage):
                raise PeerError(f"{self.peer_role}: {message.message or message.code}")
            elif not isinstance(message, Pong):
                return message

    async def expect(self, *kinds: type) -> Any:
        message = await self.recv()
        if not isinstance(message, kinds):
            raise FrameError(f"unexpected {type(message).__name__}")
        return message
