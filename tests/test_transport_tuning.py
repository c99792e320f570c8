"""peerbeam/peer/transport_tuning.py: aiortc's SCTP receiver without its needless work (and
with nothing else about it changed).

- Reassembly: the tuned InboundStream delivers exactly what aiortc as shipped delivers,
  step by step, for fragments of ordered and unordered messages arriving in any order
  (the shipped class, loaded afresh from aiortc's own file, is the oracle).
- SACKs: one for every second packet or at the end of the burst being read, at once when
  it reports a gap or a duplicate; a real aiortc pair on 127.0.0.1 carries every byte
  with clearly fewer SACKs than packets, also across a link that drops packets.
- Sending: the tuned sender sends exactly what aiortc as shipped sends, packet by packet
  and state by state, through sends, SACKs with and without gaps and T3 expiries (the
  shipped class is the oracle), and does not walk its flight at a SACK without gaps.
- UDP receive buffers: asked for `UDP_RECEIVE_BUFFER`, granted up to the kernel's cap,
  and a warning when the cap is lower.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import logging
import os
import random
import socket
from collections import deque
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc import rtcsctptransport as sctp
from hypothesis import example, given, settings
from hypothesis import strategies as st

from peerbeam.peer import transport_tuning
from peerbeam.peer.rtc import ice_configuration

assert transport_tuning.apply(), "the installed aiortc is not the series the tuning was written for"


def shipped_sctp() -> ModuleType:
    """aiortc.rtcsctptransport as shipped: a second copy of the module, never patched."""
    spec = importlib.util.spec_from_file_location("aiortc.shipped_rtcsctptransport", sctp.__file__)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SHIPPED = shipped_sctp()


def fragments(messages: list[tuple[int, bool]], first_tsn: int) -> list[Any]:
    """DATA chunks for messages of (fragment count, ordered), in TSN order, on stream 0."""
    chunks, tsn, seq = [], first_tsn, 0
    for number, (count, ordered) in enumerate(messages):
        for k in range(count):
            chunk = sctp.DataChunk()
            chunk.tsn = tsn % sctp.SCTP_TSN_MODULO
            chunk.stream_id, chunk.protocol = 0, 53
            chunk.stream_seq = seq if ordered else 0
            chunk.flags = (sctp.SCTP_DATA_FIRST_FRAG if k == 0 else 0) | \
                (sctp.SCTP_DATA_LAST_FRAG if k == count - 1 else 0) | \
                (0 if ordered else sctp.SCTP_DATA_UNORDERED)
            chunk.user_data = f"m{number}f{k};".encode()
            chunks.append(chunk)
            tsn += 1
        if ordered:
            seq = (seq + 1) % 65536
    return chunks


@settings(max_examples=300, deadline=None)
@given(messages=st.lists(st.tuples(st.integers(1, 6), st.booleans()), min_size=1, max_size=8),
       seed=st.integers(0, 2**32 - 1), in_order=st.booleans(),
       first_tsn=st.sampled_from([0, 1000, sctp.SCTP_TSN_MODULO - 3]))
def test_reassembly_delivers_what_aiortc_as_shipped_delivers(
        messages: list[tuple[int, bool]], seed: int, in_order: bool, first_tsn: int) -> None:
    chunks = fragments(messages, first_tsn)
    arrival = list(chunks)
    if not in_order:
        random.Random(seed).shuffle(arrival)
    tuned, shipped = sctp.InboundStream(), SHIPPED.InboundStream()
    delivered = []
    for chunk in arrival:
        tuned.add_chunk(chunk)
        shipped.add_chunk(chunk)
        got, want = list(tuned.pop_messages()), list(shipped.pop_messages())
        assert got == want
        delivered += got
    assert len(delivered) == len(messages)
    assert tuned.reassembly == shipped.reassembly == []


def test_an_appended_fragment_that_ends_no_message_skips_the_scan() -> None:
    """The point of the tuning: in-order fragments cost one scan per message, not one per
    fragment (a scan is what the shipped pop_messages does on every call)."""
    scans = 0
    shipped_pop = SHIPPED.InboundStream.pop_messages

    class Counting(SHIPPED.InboundStream):  # type: ignore[name-defined,misc]
        def pop_messages(self) -> Any:
            nonlocal scans
            scans += 1
            return shipped_pop(self)

    transport_tuning._skip_needless_reassembly_scans(Counting)
    stream = Counting()
    delivered = []
    for chunk in fragments([(50, True), (50, True)], first_tsn=7):
        stream.add_chunk(chunk)
        delivered += list(stream.pop_messages())
    assert [len(m[2]) for m in delivered] == [len(b"".join(f"m{n}f{k};".encode() for k in range(50)))
                                              for n in range(2)]
    assert scans == 2


class FakeAssociation:
    """What the SACK code of RTCSctpTransport reads and calls, recording SACKs sent."""

    _send_sack: Any = sctp.RTCSctpTransport._send_sack

    def __init__(self) -> None:
        self._last_received_tsn = 100
        self._advertised_rwnd = 1 << 20
        self._sack_misordered: set[int] = set()
        self._sack_duplicates: list[int] = []
        self._sack_needed = False
        self.sacks: list[tuple[int, list[tuple[int, int]], list[int]]] = []

    async def _send_chunk(self, chunk: Any) -> None:
        self.sacks.append((chunk.cumulative_tsn, chunk.gaps, chunk.duplicates))

    async def packet(self, misordered: set[int] | None = None, duplicates: list[int] | None = None) -> None:
        """As _handle_data after a packet with DATA: a SACK is needed."""
        self._last_received_tsn += 0 if misordered else 1
        self._sack_misordered |= misordered or set()
        self._sack_duplicates += duplicates or []
        self._sack_needed = True
        await self._send_sack()


async def end_of_burst() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


async def test_sack_every_second_packet_and_at_the_end_of_a_burst() -> None:
    association = FakeAssociation()
    await association.packet()
    assert association.sacks == []  # held: another packet may be right behind it
    await association.packet()
    assert [s[0] for s in association.sacks] == [102]  # the second packet: both acknowledged
    await end_of_burst()
    assert len(association.sacks) == 1  # nothing held any more
    await association.packet()
    await end_of_burst()  # nothing else to read: the held SACK goes
    assert [s[0] for s in association.sacks] == [102, 103]


async def test_a_sack_reporting_a_gap_or_a_duplicate_goes_at_once() -> None:
    association = FakeAssociation()
    await association.packet(misordered={105})
    assert association.sacks == [(100, [(5, 5)], [])]
    await association.packet(duplicates=[99])
    assert association.sacks[-1][2] == [99]
    await end_of_burst()
    assert len(association.sacks) == 2


async def sctp_pair(loss: float, dropped: list[int]) -> tuple[RTCPeerConnection, RTCPeerConnection, Any, Any]:
    """Two aiortc peers on 127.0.0.1, offer and answer handed over directly; with `loss`,
    the receiver's side drops that share of the datagrams it would read (seeded), counting
    them in `dropped`."""
    sender, receiver = (RTCPeerConnection(ice_configuration([], None)) for _ in range(2))
    channel = sender.createDataChannel("data")
    arrived: asyncio.Queue[Any] = asyncio.Queue()
    receiver.on("datachannel", lambda ch: ch.on("message", arrived.put_nowait))
    await sender.setLocalDescription(await sender.createOffer())
    await receiver.setRemoteDescription(RTCSessionDescription(sender.localDescription.sdp, "offer"))
    await receiver.setLocalDescription(await receiver.createAnswer())
    await sender.setRemoteDescription(RTCSessionDescription(receiver.localDescription.sdp, "answer"))
    opened = asyncio.get_running_loop().create_future()
    channel.on("open", lambda: None if opened.done() else opened.set_result(None))
    await asyncio.wait_for(opened, 20)
    if loss:
        dropping = random.Random(1)
        assert receiver.sctp is not None
        dtls = receiver.sctp.transport
        recv = dtls.transport._recv

        async def lossy_recv() -> bytes:
            while True:
                data: bytes = await recv()
                if dropping.random() >= loss or data[0] not in range(20, 64):  # DTLS records only
                    return data
                dropped.append(len(data))
        dtls.transport._recv = lossy_recv
    return sender, receiver, channel, arrived


@pytest.mark.parametrize("loss", [0.0, 0.02])
async def test_a_real_pair_carries_every_byte_with_fewer_sacks_than_packets(loss: float) -> None:
    assert os.environ.get("PEERBEAM_ICE_LOOPBACK") == "1"
    dropped: list[int] = []
    sender, receiver, channel, arrived = await sctp_pair(loss, dropped)
    counts = {"data_packets": 0, "sacks": 0}
    transport: Any = receiver.sctp
    handle_data, send_chunk = transport._handle_data, transport._send_chunk

    async def counting_handle_data(data: bytes) -> None:
        counts["data_packets"] += 1
        await handle_data(data)

    async def counting_send_chunk(chunk: Any) -> None:
        counts["sacks"] += isinstance(chunk, sctp.SackChunk)
        await send_chunk(chunk)

    transport._handle_data, transport._send_chunk = counting_handle_data, counting_send_chunk
    payload = random.Random(2).randbytes(4 << 20)
    messages = [payload[i:i + 65536] for i in range(0, len(payload), 65536)]
    try:
        for message in messages:
            channel.send(message)
            while channel.bufferedAmount > 1 << 20:
                await asyncio.sleep(0.005)
        received = [await asyncio.wait_for(arrived.get(), 60) for _ in messages]
        assert hashlib.sha256(b"".join(received)).digest() == hashlib.sha256(payload).digest()
        assert counts["data_packets"] > 3000
        assert (len(dropped) > 20) == (loss > 0)
        # As shipped: one per packet. Both peers share this loop, so bursts are short and
        # end often (between processes, as the CLI runs, they are longer).
        assert counts["sacks"] < 0.8 * counts["data_packets"], counts
    finally:
        await sender.close()
        await receiver.close()



class RecordingDtls:
    """What RTCSctpTransport needs of its DTLS transport: packets it sends are kept."""

    state = "connected"

    def __init__(self) -> None:
        self.packets: list[bytes] = []

    async def _send_data(self, data: bytes) -> None:
        self.packets.append(data)


def established(transport_class: Any, first_tsn: int) -> Any:
    """An association of `transport_class` in ESTABLISHED state with TSNs from `first_tsn`."""
    transport = transport_class(RecordingDtls())
    transport._association_state = transport_class.State.ESTABLISHED
    transport._remote_port = 5000
    transport._ssthresh = 1 << 20  # from the peer's INIT: its receive window
    transport._local_tsn = first_tsn
    transport._last_sacked_tsn = transport._advanced_peer_ack_tsn = (first_tsn - 1) % sctp.SCTP_TSN_MODULO
    return transport


def sent_since(transport: Any, mark: int) -> list[tuple[int, int, int]]:
    """(chunk type, TSN, flags) of every chunk sent from packet `mark` on."""
    packets = transport._RTCSctpTransport__transport.packets[mark:]
    return [(chunk.type, getattr(chunk, "tsn", -1), chunk.flags)
            for packet in packets for chunk in sctp.parse_packet(packet)[3]]


def sender_state(transport: Any) -> tuple[Any, ...]:
    return (transport._cwnd, transport._flight_size, transport._ssthresh, transport._partial_bytes_acked,
            transport._fast_recovery_exit, transport._fast_recovery_transmit, len(transport._outbound_queue),
            [(c.tsn, c._retransmit, c._acked, c._misses, c._sent_count, c._in_flight)
             for c in transport._sent_queue])


def sack_for(received: set[int], cumulative: int) -> Any:
    """The SACK of a receiver that has every TSN up to `cumulative` and those in `received`."""
    while (cumulative + 1) % sctp.SCTP_TSN_MODULO in received:
        cumulative = (cumulative + 1) % sctp.SCTP_TSN_MODULO
    offsets = sorted((tsn - cumulative) % sctp.SCTP_TSN_MODULO for tsn in received
                     if 0 < (tsn - cumulative) % sctp.SCTP_TSN_MODULO < 1 << 16)
    gaps: list[tuple[int, int]] = []
    for offset in offsets:
        if gaps and gaps[-1][1] == offset - 1:
            gaps[-1] = (gaps[-1][0], offset)
        else:
            gaps.append((offset, offset))
    sack = sctp.SackChunk()
    sack.cumulative_tsn, sack.gaps, sack.duplicates, sack.advertised_rwnd = cumulative, gaps, [], 1 << 20
    return sack


STEPS = st.one_of(
    st.tuples(st.just("send"), st.integers(1, 12 * sctp.USERDATA_MAX_LENGTH)),
    st.tuples(st.just("sack"), st.floats(0, 0.6)),  # the share of new packets lost
    st.tuples(st.just("t3"), st.just(0.0)),
)


@settings(max_examples=150, deadline=None)
@given(steps=st.lists(STEPS, min_size=1, max_size=40), seed=st.integers(0, 2**32 - 1),
       first_tsn=st.sampled_from([1000, sctp.SCTP_TSN_MODULO - 20]))
# A fast retransmission and a T3 retransmission, always (random steps find them less often):
@example(steps=[("send", 5801), ("sack", 0.0), ("sack", 0.0), ("sack", 0.0)], seed=1, first_tsn=1000)
@example(steps=[("send", 5801), ("t3", 0.0), ("sack", 0.0)], seed=1, first_tsn=1000)
def test_the_sender_sends_what_aiortc_as_shipped_sends(
        steps: list[tuple[str, float]], seed: int, first_tsn: int) -> None:
    async def scenario() -> None:
        tuned = established(sctp.RTCSctpTransport, first_tsn)
        shipped = established(SHIPPED.RTCSctpTransport, first_tsn)
        losing, mark = random.Random(seed), 0
        received: set[int] = set()
        cumulative = (first_tsn - 1) % sctp.SCTP_TSN_MODULO
        try:
            for step, value in steps:
                for transport in (tuned, shipped):
                    if step == "send":
                        await transport._send(1, 53, bytes(int(value)))
                    elif step == "sack":
                        await transport._receive_sack_chunk(sack_for(received, cumulative))
                    else:
                        transport._t3_expired()
                        for _ in range(3):  # T3 schedules the retransmission as a task
                            await asyncio.sleep(0)
                sent = sent_since(tuned, mark)
                assert sent == sent_since(shipped, mark), step
                assert sender_state(tuned) == sender_state(shipped), step
                mark = len(tuned._RTCSctpTransport__transport.packets)
                for kind, tsn, _ in sent:  # what reaches the receiver for the next SACK
                    if kind == sctp.DataChunk.type and losing.random() >= (value if step == "sack" else 0.2):
                        received.add(tsn)
                sack = sack_for(received, cumulative)
                cumulative = sack.cumulative_tsn
                received = {tsn for tsn in received
                            if 0 < (tsn - cumulative) % sctp.SCTP_TSN_MODULO < 1 << 16}
        finally:
            for transport in (tuned, shipped):
                transport._t3_cancel()
    asyncio.run(scenario())


class CountingWalks(deque):  # type: ignore[type-arg]
    walks = 0

    def __iter__(self) -> Any:
        CountingWalks.walks += 1
        return super().__iter__()


async def test_a_sack_without_gaps_does_not_walk_the_flight() -> None:
    sender = established(sctp.RTCSctpTransport, 1000)
    sender._cwnd = 200 * sctp.USERDATA_MAX_LENGTH  # a long link's window: much in flight
    sender._sent_queue = CountingWalks()
    try:
        await sender._send(1, 53, bytes(400 * sctp.USERDATA_MAX_LENGTH))  # 4 go at once (burst limit)
        CountingWalks.walks = 0  # that first transmit walked (an empty queue): nothing was known yet
        acked = 999
        for _ in range(80):  # each SACK acknowledges 2 and lets 4 more go: the flight grows
            acked += 2
            await sender._receive_sack_chunk(sack_for(set(), acked))
        assert len(sender._sent_queue) > 150
        assert CountingWalks.walks == 0  # aiortc as shipped walks its flight at every SACK: 80 walks here
        gap = sack_for({acked + 3}, acked)  # a gap strikes chunks: then the walk runs
        await sender._receive_sack_chunk(gap)
        assert CountingWalks.walks >= 1
    finally:
        sender._t3_cancel()


def test_udp_receive_buffers_are_asked_for_and_a_lower_cap_is_told(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    cap = tmp_path / "rmem_max"
    monkeypatch.setattr(transport_tuning, "RMEM_MAX", cap)
    cap.write_text(f"{transport_tuning.UDP_RECEIVE_BUFFER}\n")
    with caplog.at_level(logging.WARNING, logger=transport_tuning.__name__):
        transport_tuning._ask_for_roomier_receive_buffers()
        assert caplog.records == []
        cap.write_text("212992\n")
        transport_tuning._ask_for_roomier_receive_buffers()
    assert ["capped at 208 KiB" in r.getMessage() and "net.core.rmem_max" in r.getMessage()
            for r in caplog.records] == [True]


async def test_a_real_connection_gets_the_roomier_buffer() -> None:
    dropped: list[int] = []
    sender, receiver, _, _ = await sctp_pair(0.0, dropped)
    try:
        cap = int(transport_tuning.RMEM_MAX.read_text())
        for peer in (sender, receiver):
            assert peer.sctp is not None
            connection = peer.sctp.transport.transport._connection
            sizes = {p.transport.get_extra_info("socket").getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
                     for p in connection._protocols}
            # Linux grants min(asked, cap) and reports twice that (its bookkeeping overhead)
            assert sizes == {2 * min(transport_tuning.UDP_RECEIVE_BUFFER, cap)}
    finally:
        await sender.close()
        await receiver.close()
