"""`--max-rate`: keep a transfer under a bandwidth limit (a shared uplink, a metered link).

A token bucket refilled at `rate` bytes per second, holding at most a quarter second of
bytes, so a paused flow does not burst far above the limit when it resumes.
"""

from __future__ import annotations

import asyncio
import re
import time

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)\s*$")
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_rate(text: str) -> float:
    """Bytes per second from ``"800K"``, ``"2M"``, ``"1.5G"`` (binary units, like curl's
    --limit-rate) or a plain number of bytes."""
    match = _RATE.match(text)
    if not match:
        raise ValueError(f"not a rate: {text!r} (examples: 500K, 2M, 1.5G bytes per second)")
    rate = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if rate < 1024:
        raise ValueError(f"a rate below 1K per second would take forever: {text!r}")
    return rate


class Pacer:
    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self._burst = (rate or 0) / 4
        self._tokens = self._burst
        self._last = time.monotonic()

    async def take(self, count: int) -> None:
        """Wait until `count` more bytes fit under the limit (at once when unlimited)."""
        if self.rate is None:
            return
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self.rate) - count
        self._last = now
        if self._tokens < 0:
            await asyncio.sleep(-self._tokens / self.rate)
