"""The SCTP sender state of any aiortc process, for the long-haul benchmark.

Loaded through ``PYTHONPATH=benchmarks/sctp_probe`` (Python imports ``sitecustomize`` at
start-up), so `peerbeam send` and benchmarks/blast.py are measured as they are. With
``PEERBEAM_BENCH_SCTP_TRACE=FILE`` every association appends a JSON line to FILE at most
every 0.25 s while SACKs arrive:

    {"t": monotonic, "pid", "assoc", "cwnd", "flight", "ssthresh", "srtt", "peer_rwnd",
     "fast_recoveries", "t3_expiries"}  (the last two: counts so far)

These are aiortc's private attributes (aiortc/rtcsctptransport.py); if they change, the
probe writes nothing and the benchmark reports no SCTP state, never a wrong one.
"""

import os
from typing import Any

if os.environ.get("PEERBEAM_BENCH_SCTP_TRACE"):
    try:
        import json
        import time

        from aiortc import rtcsctptransport

        _path = os.environ["PEERBEAM_BENCH_SCTP_TRACE"]
        _transport = rtcsctptransport.RTCSctpTransport
        _receive_sack = _transport._receive_sack_chunk
        _t3_expired = _transport._t3_expired

        def _state(transport: Any) -> dict[str, Any]:
            return transport.__dict__.setdefault(
                "_bench_probe", {"last": 0.0, "fast_recoveries": 0, "t3_expiries": 0})

        async def _traced_sack(self: Any, chunk: Any) -> None:
            recovering = self._fast_recovery_exit is not None
            await _receive_sack(self, chunk)
            state = _state(self)
            if not recovering and self._fast_recovery_exit is not None:
                state["fast_recoveries"] += 1
            now = time.monotonic()
            if now - state["last"] >= 0.25:
                state["last"] = now
                with open(_path, "a") as trace:
                    trace.write(json.dumps({
                        "t": now, "pid": os.getpid(), "assoc": id(self), "cwnd": self._cwnd,
                        "flight": self._flight_size, "ssthresh": self._ssthresh, "srtt": self._srtt,
                        "peer_rwnd": chunk.advertised_rwnd,
                        "fast_recoveries": state["fast_recoveries"],
                        "t3_expiries": state["t3_expiries"]}) + "\n")

        def _traced_t3(self: Any) -> None:
            _state(self)["t3_expiries"] += 1
            _t3_expired(self)

        setattr(_transport, "_receive_sack_chunk", _traced_sack)  # noqa: B010 - mypy: no method assignment
        setattr(_transport, "_t3_expired", _traced_t3)  # noqa: B010
    except Exception:  # noqa: BLE001 - a probe must never break the program it watches
        pass
