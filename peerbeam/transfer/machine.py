"""What the sender and receiver session machines share: events in, actions out, time.

A session machine holds every rule of its role (docs/protocol.md §14) and does no I/O:
a driver (the aiortc peer, the web page) feeds it events — a message arrived, a chunk
was read, the user clicked Accept, time passed — and carries out the actions it returns —
send this message, read that chunk, ask the user, close this connection, wake me at T.
The JavaScript twin is webclient/js/protocol/machine.js; docs/protocol-traces.json holds
scripted event sequences with the exact actions both must produce.

Events and actions are plain dicts with a ``type``. Every event may carry ``at``: the
driver's monotonic clock in seconds. Machines never read a clock: deadlines are computed
from ``at`` (always from the last sign of progress), and a machine asks to be woken with
``{"type": "wake", "at": T}``; the driver then sends ``{"type": "tick", "at": ...}``.
Only the latest wake counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .errors import ProtocolError

Event = dict[str, Any]
Action = dict[str, Any]


@dataclass(frozen=True)
class SessionTiming:
    """The deadlines of a session, in seconds (protocol.md §11 and §14)."""

    #: ping a peer after this much silence
    ping_after: float = 15.0
    #: a peer silent this long since its last message is gone
    dead_after: float = 45.0
    #: a new connection's data channel must open within this
    open_timeout: float = 30.0
    #: receiver: how long to wait, while no session runs, for the sender to (re)appear;
    #: None waits for ever (the web page, which says so to its user)
    sender_wait: float | None = 60.0
    #: receiver: close a finished connection the sender has not closed after this
    close_after_complete: float = 5.0
    #: never connected yet: give up this long after the first attempt (no path, no relay);
    #: with the time it takes to get there, a user hears why within a minute
    connect_timeout: float = 50.0
    #: connected before: give up this long after the last sign of progress
    give_up_after: float = 600.0
    #: asking for a new connection again: after retry_min, doubling up to retry_max
    retry_min: float = 1.0
    retry_max: float = 30.0
    #: sender, v1.1: how often to decide whether another connection (lane) helps, and by
    #: how much the last one must have raised the throughput for another to be added.
    #: 0: added unless the last one made it slower. Acknowledgements come a whole MiB
    #: chunk at a time, so an interval is judged only once it holds `grow_chunks` of them
    #: (it is extended until it does): on a slow, lossy link a 5 s interval held one or
    #: two, and a rate from those was noise that stopped the growth at 2
    #: (docs/benchmarks.md, "Long-haul links").
    grow_interval: float = 5.0
    grow_gain: float = 0.0
    grow_chunks: int = 8

    @classmethod
    def from_json(cls, obj: dict[str, Any] | None) -> SessionTiming:
        return cls(**(obj or {}))


class Machine:
    """Event dispatch, the action list, and the one wake-up timer."""

    def __init__(self, timing: SessionTiming) -> None:
        self.timing = timing
        self.now = 0.0
        self._wake_at: float | None = None
        self._out: list[Action] = []
        self._handlers: dict[str, Callable[[Event], None]] = {}

    def handle(self, event: Event) -> list[Action]:
        """Feed one event; returns the actions to carry out, in order."""
        at = event.get("at")
        if at is not None:
            self.now = max(self.now, float(at))
        self._out = []
        kind = event.get("type")
        if kind == "tick":
            self._wake_at = None  # that timer fired
            self.on_tick()
        else:
            handler = self._handlers.get(str(kind))
            if handler is None:
                raise ValueError(f"{type(self).__name__}: unknown event {kind!r}")
            handler(event)
        self._schedule()
        out, self._out = self._out, []
        return out

    def emit(self, action_type: str, **fields: Any) -> None:
        self._out.append({"type": action_type, **fields})

    # -- time --------------------------------------------------------------------

    def on_tick(self) -> None:
        """Deadlines that are due now."""

    def deadlines(self) -> Iterable[float]:
        """Every pending deadline (absolute, in the driver's clock)."""
        return ()

    def _schedule(self) -> None:
        due = min(self.deadlines(), default=None)
        if due is None:
            return
        if self._wake_at is None or due < self._wake_at:
            self._wake_at = due
            self.emit("wake", at=due)


class Keepalive:
    """protocol.md §11 for one connection: ping after `ping_after` of silence, the peer is
    gone after `dead_after` since its last message. Silence counts from the last message
    received, whatever the session is doing."""

    def __init__(self, timing: SessionTiming, now: float) -> None:
        self.timing = timing
        self.last_received = now
        self.last_ping = now

    def received(self, now: float) -> None:
        self.last_received = now

    def deadline(self) -> float:
        quiet_since = max(self.last_received, self.last_ping)
        return min(quiet_since + self.timing.ping_after, self.last_received + self.timing.dead_after)

    def due(self, now: float) -> str | None:
        """"dead", "ping" (and remember it was sent), or None."""
        if now >= self.last_received + self.timing.dead_after:
            return "dead"
        if now >= max(self.last_received, self.last_ping) + self.timing.ping_after:
            self.last_ping = now
            return "ping"
        return None


def error_fields(error: ProtocolError) -> dict[str, str]:
    return {"code": error.code, "message": str(error)}
