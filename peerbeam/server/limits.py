"""Per-client budgets: how often one client may create rooms and join, and how many
bytes of WebSocket messages it may make the server handle.

Each client key (``chalicelib.addresses.client_key``) has a bucket of ``burst``
tokens refilled at a steady rate. Room creations and joins take one token or are
refused with the seconds until the next one (HTTP 429 with ``Retry-After``).
Message bytes are charged to the sender's address after the fact and make its
connections wait until the debt is paid: backpressure, no refusal, so a client
flooding the relay slows itself, not everyone else. The tables are bounded: past
``MAX_CLIENTS`` keys the least recently seen are dropped (which only ever gives a
client a fresh, full bucket).
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict

MAX_CLIENTS = 65536


class TokenBuckets:
    def __init__(self, per_minute: float, burst: int) -> None:
        self._rate = per_minute / 60.0
        self._burst = float(max(1, burst))
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str, now: float) -> int:
        """0 if ``key`` may go ahead (a token is taken), else whole seconds to wait."""
        with self._lock:
            tokens, updated = self._buckets.pop(key, (self._burst, now))
            tokens = min(self._burst, tokens + (now - updated) * self._rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                wait = 0
            else:
                self._buckets[key] = (tokens, now)
                wait = math.ceil((1 - tokens) / self._rate) if self._rate > 0 else 3600
            while len(self._buckets) > MAX_CLIENTS:
                self._buckets.popitem(last=False)
            return wait


class ByteBudget:
    """Bytes per second per client, with a burst; spending past it means waiting."""

    def __init__(self, per_second: float, burst: float) -> None:
        self._rate = per_second
        self._burst = burst
        self._balances: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def charge(self, key: str, amount: int, now: float) -> float:
        """Spend ``amount`` bytes; the seconds to wait before handling more of this client's."""
        if self._rate <= 0:
            return 0.0
        with self._lock:
            balance, updated = self._balances.pop(key, (self._burst, now))
            balance = min(self._burst, balance + (now - updated) * self._rate) - amount
            self._balances[key] = (balance, now)
            while len(self._balances) > MAX_CLIENTS:
                self._balances.popitem(last=False)
        return max(0.0, -balance / self._rate)
