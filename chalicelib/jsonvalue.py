"""Client JSON, parsed with bounds: the one place REST bodies and WebSocket frames are read.

``json.loads`` recurses once per nesting level and raises ``RecursionError`` on deep
input, which no ``except ValueError`` catches; it also accepts ``NaN``/``Infinity``,
which no JSON parser on the other side (``JSON.parse``) reads back. Everything the
server relays must round-trip, so both are refused as ``bad_json``.
"""

from __future__ import annotations

import json
import math
from typing import Any

from .errors import BadJson

# Our own messages nest 3 levels (message → data → candidate); leave plenty of room.
MAX_DEPTH = 32


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("number out of range")
    return value


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """True when arrays/objects nest more than ``limit`` levels (iteratively: no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def parse(raw: str | bytes, what: str) -> Any:
    """The JSON value in ``raw``, or BadJson naming ``what`` ("The message", "The request body")."""
    try:
        value = json.loads(raw, parse_float=_finite, parse_constant=_no_constants)
    except RecursionError:
        raise BadJson(f"{what} nests deeper than {MAX_DEPTH} levels.") from None
    except (ValueError, UnicodeDecodeError):
        raise BadJson(f"{what} is not valid JSON.") from None
    if too_deep(value):
        raise BadJson(f"{what} nests deeper than {MAX_DEPTH} levels.")
    return value
