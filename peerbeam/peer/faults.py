"""Fault injection for tests, switched on by the PEERBEAM_FAULTS environment variable.

``PEERBEAM_FAULTS="corrupt=0:2,drop=20000000"``:

- ``corrupt=F:C`` — the sender flips one byte of file F chunk C, once (the receiver
  must detect it and the sender re-send it);
- ``drop=N`` — the receiver closes its peer connection once after N bytes arrived
  (the transfer must resume by itself);
- ``drop_lane=N`` — the receiver closes its first extra connection (a v1.1 lane) once
  after N bytes arrived (only that lane's chunks in flight are re-sent);
- ``slow_read=S`` — every chunk the sender reads from disk takes S seconds more (a slow
  disk: the peer must stay alive while the sender hashes a long resumed prefix).

Unset, every check here is a constant-time no-op.
"""

from __future__ import annotations

import os


def _parse(spec: str) -> dict[str, str]:
    faults = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, value = item.partition("=")
        faults[name] = value
    return faults


_FAULTS = _parse(os.environ.get("PEERBEAM_FAULTS", ""))


def corrupt_once(file: int, chunk: int, data: bytes) -> bytes:
    target = _FAULTS.get("corrupt")
    if target is None or target != f"{file}:{chunk}":
        return data
    del _FAULTS["corrupt"]
    return bytes([data[0] ^ 0xFF]) + data[1:]


def drop_now(received: int, fault: str = "drop") -> bool:
    threshold = _FAULTS.get(fault)
    if threshold is None or received < int(threshold):
        return False
    del _FAULTS[fault]
    return True


def slow_read() -> float:
    """Extra seconds per chunk read (0.0 unless injected)."""
    return float(_FAULTS.get("slow_read", 0.0))
