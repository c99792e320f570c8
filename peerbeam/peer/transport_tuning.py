"""aiortc's transport, tuned for bulk data: two CPU costs of its SCTP receiver removed
(docs/benchmarks.md, "CLI transfer vs bare aiortc data channel" and "Long-haul links").

aiortc is pure Python and one core carries a whole peer, so the receiver's cost per
packet sets the speed on a fast link, and a busy receiver drops datagrams on a long one.
A profile of `peerbeam receive` on loopback showed two costs that do no work:

1. **Reassembly rescans every message's fragments at every fragment.** After each DATA
   chunk, `InboundStream.pop_messages` walks the reassembly list from its start, so a
   64 KiB message (≈ 55 fragments) costs ≈ 1,500 steps instead of 55: a fifth of the
   receiver's CPU. A fragment appended after all the others (the usual in-order case)
   that does not end a message cannot complete one (a message is delivered once its
   fragments from FIRST to LAST are all there, and an ordered one once those before it
   were delivered, which this fragment changes neither), so the scan is skipped for it.
2. **A SACK for every packet.** RFC 9260 §6.2 asks for a SACK for at least every second
   packet; aiortc sends one for each, and each costs a DTLS record and a system call at
   the receiver and a parse at the sender: a quarter of the receiver's CPU. Here a
   packet's SACK waits for the next packet or for the end of the burst being read
   (whichever is first: the flush is scheduled with `call_soon`, and aiortc reads queued
   datagrams without yielding), and goes at once whenever it reports a gap or a
   duplicate, so loss recovery (fast retransmit after three reports) is as before.

Both are applied once, to the aiortc series they were written against (`SUPPORTED`); with
another, aiortc runs as shipped and a warning says so. `benchmarks/blast.py --tuned`
measures a bare channel with the same tuning.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import aiortc
from aiortc import rtcsctptransport as sctp
from aiortc.utils import uint32_gt

log = logging.getLogger(__name__)

SUPPORTED = ("1.16.",)  # aiortc versions whose InboundStream and SACK code this matches

_applied = False
_flushes: set[asyncio.Future[None]] = set()


def apply() -> bool:
    """Tune aiortc's SCTP receiver (idempotent); returns whether it is tuned."""
    global _applied
    if _applied:
        return True
    if not aiortc.__version__.startswith(SUPPORTED):
        log.warning("aiortc %s: transport tuning not applied (written for %s)", aiortc.__version__,
                    ", ".join(SUPPORTED))
        return False
    _skip_needless_reassembly_scans(sctp.InboundStream)
    _sack_every_second_packet(sctp.RTCSctpTransport)
    _applied = True
    return True


def _skip_needless_reassembly_scans(stream_class: Any) -> None:
    add_chunk: Callable[[Any, Any], None] = stream_class.add_chunk
    pop_messages: Callable[[Any], Iterator[tuple[int, int, bytes]]] = stream_class.pop_messages

    def add_chunk_noting_whether_a_message_may_complete(self: Any, chunk: Any) -> None:
        appended = not self.reassembly or uint32_gt(chunk.tsn, self.reassembly[-1].tsn)
        add_chunk(self, chunk)
        self._pb_nothing_to_pop = appended and not chunk.flags & sctp.SCTP_DATA_LAST_FRAG

    def pop_messages_when_one_may_be_complete(self: Any) -> Iterator[tuple[int, int, bytes]]:
        if getattr(self, "_pb_nothing_to_pop", False):
            self._pb_nothing_to_pop = False
            return iter(())
        return pop_messages(self)

    stream_class.add_chunk = add_chunk_noting_whether_a_message_may_complete
    stream_class.pop_messages = pop_messages_when_one_may_be_complete


def _sack_every_second_packet(transport_class: Any) -> None:
    send_sack: Callable[[Any], Coroutine[Any, Any, None]] = transport_class._send_sack

    async def send_sack_or_hold_it(self: Any) -> None:
        if self._sack_misordered or self._sack_duplicates or getattr(self, "_pb_sack_held", False):
            self._pb_sack_held = False
            await send_sack(self)
            return
        self._pb_sack_held = True
        asyncio.get_running_loop().call_soon(_flush_held_sack, self)

    def _flush_held_sack(self: Any) -> None:
        held, self._pb_sack_held = self._pb_sack_held, False
        if held and self._sack_needed:
            task = asyncio.ensure_future(send_sack(self))
            _flushes.add(task)  # asyncio keeps only a weak reference to a task
            task.add_done_callback(_flush_done)

    transport_class._send_sack = send_sack_or_hold_it


def _flush_done(task: asyncio.Future[None]) -> None:
    _flushes.discard(task)
    if not task.cancelled() and task.exception() is not None:
        # As a SACK from _handle_data would: the association is closing or gone.
        log.debug("held SACK not sent: %r", task.exception())
