"""aiortc's transport, tuned for bulk data: three CPU costs of its SCTP code removed and
roomier UDP receive buffers (docs/benchmarks.md, "CLI transfer vs bare aiortc data channel"
and "Long-haul links").

aiortc is pure Python and one core carries a whole peer, so the cost per packet sets the
speed on a fast link, and a busy receiver drops datagrams on a long one. Profiles of
`peerbeam send` and `peerbeam receive` showed three costs that do no work:

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
3. **The sender walks everything in flight at every SACK.** `_transmit` looks through the
   whole sent queue for chunks marked for retransmission before it sends anything new:
   ≈ 1,000 chunks per SACK with a 1.2 MB window at 120 ms, which saturated the sending
   core at ≈ 18 MB/s with 4 connections. Only two things mark chunks: a SACK with gap
   blocks (fast retransmit) and the T3 timer; the walk now runs only after one of them,
   until a walk finds nothing left to send.

And one that loses data: aioice asks for 256 KiB of UDP receive buffer. With several
connections on a long link, a window's worth of packets from each can arrive while the
event loop is busy with another; what does not fit is dropped, every drop halves that
association's window, and aiortc regrows it by one packet per round trip (≈ 40 s to
regain 400 kB at 120 ms). The buffer asked for is `UDP_RECEIVE_BUFFER`; the kernel grants
at most its `net.core.rmem_max`, and a warning says so when that is lower (docs/cli.md).
(A deeper queue made loopback a quarter slower while the sender walked its whole flight
at every SACK; without that walk it costs nothing, measured.)

All are applied once, to the aiortc series they were written against (`SUPPORTED`); with
another, aiortc runs as shipped and a warning says so. `benchmarks/blast.py --tuned`
measures a bare channel with the same tuning.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import aioice.turn
import aiortc
from aiortc import rtcsctptransport as sctp
from aiortc.utils import uint32_gt

log = logging.getLogger(__name__)

SUPPORTED = ("1.16.",)  # aiortc versions whose InboundStream, SACK and transmit code this matches
UDP_RECEIVE_BUFFER = 4 * 1024 * 1024  # 4 connections' windows at 120 ms, with room to spare
RMEM_MAX = Path("/proc/sys/net/core/rmem_max")  # the most the kernel grants a socket that asks

_applied = False
_flushes: set[asyncio.Future[None]] = set()


def apply() -> bool:
    """Tune aiortc's SCTP code and the UDP sockets aioice opens from now on (idempotent);
    returns whether it is tuned."""
    global _applied
    if _applied:
        return True
    if not aiortc.__version__.startswith(SUPPORTED):
        log.warning("aiortc %s: transport tuning not applied (written for %s)", aiortc.__version__,
                    ", ".join(SUPPORTED))
        return False
    _skip_needless_reassembly_scans(sctp.InboundStream)
    _sack_every_second_packet(sctp.RTCSctpTransport)
    _walk_for_retransmissions_only_after_marking(sctp.RTCSctpTransport)
    _ask_for_roomier_receive_buffers()
    _applied = True
    return True


def _ask_for_roomier_receive_buffers() -> None:
    aioice.turn.UDP_SOCKET_BUFFER_SIZE = UDP_RECEIVE_BUFFER  # read by aioice at every socket it opens
    try:
        granted = int(RMEM_MAX.read_text())
    except (OSError, ValueError):  # not Linux: nothing to tell
        return
    if granted < UDP_RECEIVE_BUFFER:
        log.warning("UDP receive buffers are capped at %d KiB by net.core.rmem_max; long links may "
                    "lose speed to dropped packets (raise it: sysctl -w net.core.rmem_max=%d)",
                    granted // 1024, UDP_RECEIVE_BUFFER)


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


def _walk_for_retransmissions_only_after_marking(transport_class: Any) -> None:
    receive_sack: Callable[[Any, Any], Coroutine[Any, Any, None]] = transport_class._receive_sack_chunk
    t3_expired: Callable[[Any], None] = transport_class._t3_expired

    async def receive_sack_noting_strikes(self: Any, chunk: Any) -> None:
        if chunk.gaps:  # only a SACK with gap blocks strikes chunks (and may mark them)
            self._pb_may_retransmit = True
        await receive_sack(self, chunk)

    def t3_expired_noting_marks(self: Any) -> None:
        self._pb_may_retransmit = True  # it marks every chunk in flight
        t3_expired(self)

    transport_class._receive_sack_chunk = receive_sack_noting_strikes
    transport_class._t3_expired = t3_expired_noting_marks
    transport_class._transmit = _transmit


async def _transmit(self: Any) -> None:
    """aiortc 1.16's `RTCSctpTransport._transmit` as it is, except that the walk for
    chunks marked for retransmission runs only while some may be marked."""
    # send FORWARD TSN
    if self._forward_tsn_chunk is not None:
        await self._send_chunk(self._forward_tsn_chunk)
        self._forward_tsn_chunk = None

        # ensure T3 is running
        if not self._t3_handle:
            self._t3_start()

    # limit burst size
    if self._fast_recovery_exit is not None:
        burst_size = 2 * sctp.USERDATA_MAX_LENGTH
    else:
        burst_size = 4 * sctp.USERDATA_MAX_LENGTH
    cwnd = min(self._flight_size + burst_size, self._cwnd)

    # retransmit
    if getattr(self, "_pb_may_retransmit", True):
        self._pb_may_retransmit = False  # a walk to its end leaves no chunk marked
        retransmit_earliest = True
        for chunk in self._sent_queue:
            if chunk._retransmit:
                if self._fast_recovery_transmit:
                    self._fast_recovery_transmit = False
                elif self._flight_size >= cwnd:
                    self._pb_may_retransmit = True  # this chunk (and maybe more) still waits
                    return
                self._flight_size_increase(chunk)

                chunk._misses = 0
                chunk._retransmit = False
                chunk._sent_count += 1
                await self._send_chunk(chunk)
                if retransmit_earliest:
                    # restart the T3 timer as the earliest outstanding TSN
                    # is being retransmitted
                    self._t3_restart()
            retransmit_earliest = False

    while self._outbound_queue and self._flight_size < cwnd:
        chunk = self._outbound_queue.popleft()
        self._sent_queue.append(chunk)
        self._flight_size_increase(chunk)

        # update counters
        chunk._sent_count += 1
        chunk._sent_time = time.time()

        await self._send_chunk(chunk)
        if not self._t3_handle:
            self._t3_start()
