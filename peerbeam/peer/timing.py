"""Every interval and deadline of the Python peer, in one place.

Transfers of 2–100 GB run for hours, through many signaling heartbeats, reconnects and
keepalives. Tests make that clock short instead of the file large: `PEERBEAM_TIMING`
overrides any of these (seconds), e.g. ``PEERBEAM_TIMING="heartbeat=1,sender_wait=3"``.

The rule every timer here follows: a deadline counts from the last sign of progress
(a message, a byte, an ack), never from the start of a run, a session or a chunk.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from typing import cast

from ..transfer.machine import SessionTiming

# The session machines own the defaults of the timers they share with the peer.
_SESSION = SessionTiming()


@dataclass(frozen=True)
class Timing:
    #: signaling ping; API Gateway closes WebSockets idle for 10 minutes
    heartbeat: float = 240.0
    #: the signaling socket may be down this long before a send gives up (it reconnects)
    signaling_send_wait: float = 60.0
    #: receiver, while no session runs: how long to wait for the sender to (re)appear
    sender_wait: float = cast(float, _SESSION.sender_wait)
    #: data channel: ping after this much silence (protocol.md §11)
    ping_after: float = _SESSION.ping_after
    #: data channel: silence after which the peer counts as gone (protocol.md §11)
    dead_after: float = _SESSION.dead_after
    #: a new peer connection's data channel must open within this
    open_timeout: float = _SESSION.open_timeout
    #: never connected yet: give up this long after the first attempt (`--give-up-after`
    #: covers the other case)
    connect_timeout: float = _SESSION.connect_timeout
    #: connected before: give up this long after the last sign of progress
    give_up_after: float = _SESSION.give_up_after


def parse_timing(spec: str, base: Timing | None = None) -> Timing:
    """``"name=seconds,..."`` over the defaults; unknown names and bad numbers are errors."""
    timing = base or Timing()
    known = {field.name for field in fields(Timing)}
    changes: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, value = item.partition("=")
        name = name.strip()
        if name not in known:
            raise ValueError(f"PEERBEAM_TIMING: unknown timer {name!r} (known: {', '.join(sorted(known))})")
        try:
            seconds = float(value)
        except ValueError:
            raise ValueError(f"PEERBEAM_TIMING: {name} needs a number of seconds, not {value!r}") from None
        if not seconds > 0:
            raise ValueError(f"PEERBEAM_TIMING: {name} must be positive")
        changes[name] = seconds
    return replace(timing, **changes)


def _from_environment() -> tuple[Timing, str | None]:
    try:
        return parse_timing(os.environ.get("PEERBEAM_TIMING", "")), None
    except ValueError as error:
        return Timing(), str(error)


#: the timers in force; TIMING_ERROR says why PEERBEAM_TIMING was refused (the CLI exits 2)
TIMING, TIMING_ERROR = _from_environment()


def session_timing(give_up_after: float | None = None) -> SessionTiming:
    """The session machines' deadlines, from the timers in force."""
    return SessionTiming(ping_after=TIMING.ping_after, dead_after=TIMING.dead_after,
                         open_timeout=TIMING.open_timeout, sender_wait=TIMING.sender_wait,
                         connect_timeout=TIMING.connect_timeout,
                         give_up_after=give_up_after or TIMING.give_up_after)
