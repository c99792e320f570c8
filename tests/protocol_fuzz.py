"""Hostile inputs for the protocol parsers, shared by the Python properties
(tests/test_fuzz_protocol.py) and the JavaScript replay in Chromium
(tests/browser/test_fuzz_protocol_js.py).

`mutated_messages(seed, count)` derives, deterministically, texts that are almost valid
messages: a field dropped, retyped, pushed past a bound, a code point the other
language reads differently, unknown fields, nesting, duplicate keys, number spellings.
Each one's outcome with the Python parser — the error code, or the message re-encoded —
is what the JavaScript parser must produce too.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from peerbeam.transfer.errors import ProtocolError
from peerbeam.transfer.messages import encode_message, parse_message

VECTORS = json.loads((Path(__file__).resolve().parents[1] / "docs" / "protocol-vectors.json").read_text())
SEEDS: list[str] = VECTORS["messages"]["valid"]

ODD_VALUES: list[Any] = [
    None, True, False, 0, -1, 1, 2**31, 2**32, 2**53 - 1, 2**53, 2**53 + 1, -(2**53), 1.5, 1e3,
    "", "x", "A" * 300, "\u00e9", "\ud800", "\u202e", [], [1], {}, {"a": 1}, "0", "1e3",
]
NUMBER_SPELLINGS = ["1.0", "1e0", "-0", "0.0", "1E3", "100000000000000000000", "1e400", "-1e400"]


def outcome(text: str) -> dict[str, Any]:
    """What a peer must make of `text`: {"code"} for a refusal, {"json"} for a message."""
    try:
        message = parse_message(text)
    except ProtocolError as error:
        return {"code": error.code}
    return {"json": json.loads(encode_message(message))}


def _mutate(rng: random.Random, obj: dict[str, Any]) -> str:
    keys = list(obj)
    kind = rng.randrange(10)
    target = dict(obj)
    if kind == 0 and keys:
        del target[rng.choice(keys)]
    elif kind in (1, 2) and keys:
        target[rng.choice(keys)] = rng.choice(ODD_VALUES)
    elif kind == 3:
        target[rng.choice(["extra", "v", "t", "lanes", "kdf", "files", "prefix"])] = rng.choice(ODD_VALUES)
    elif kind == 4 and keys:
        key = rng.choice(keys)
        value = target[key]
        if isinstance(value, list) and value:
            items = list(value)
            index = rng.randrange(len(items))
            items[index] = rng.choice(ODD_VALUES) if rng.random() < 0.5 else _nested(rng, items[index])
            target[key] = items
        elif isinstance(value, dict):
            target[key] = _nested(rng, value)
    elif kind == 5:
        depth = rng.choice([5, 50, 400])
        return json.dumps(target)[:-1] + ', "deep": ' + "[" * depth + "]" * depth + "}"
    elif kind == 6 and keys:
        # A duplicate key: both parsers take the last one.
        key = rng.choice(keys)
        return json.dumps(target)[:-1] + f', "{key}": ' + json.dumps(rng.choice(ODD_VALUES)) + "}"
    elif kind == 7:
        ints = [k for k, v in target.items() if isinstance(v, int) and not isinstance(v, bool)]
        if ints:
            key = rng.choice(ints)
            text = json.dumps(target)
            return text.replace(f'"{key}": {target[key]}', f'"{key}": {rng.choice(NUMBER_SPELLINGS)}', 1)
    elif kind == 8:
        text = json.dumps(target, ensure_ascii=rng.random() < 0.5)
        cut = rng.randrange(1, len(text))
        if rng.random() < 0.5:
            return text[:cut]
        return text[:cut] + rng.choice(["\x00", "\ufeff", " ", "\\"]) + text[cut:]
    elif kind == 9:
        return rng.choice(["[]", "null", "1", '"hello"', "{}", '{"t":1}', '{"t":"HELLO"}', " " * 3,
                           '{"t":"join"}', '{"t":"ping","t":"pong"}'])
    return json.dumps(target, ensure_ascii=rng.random() < 0.5)


def _nested(rng: random.Random, value: Any) -> Any:
    if isinstance(value, dict) and value:
        copy = dict(value)
        copy[rng.choice(list(copy))] = rng.choice(ODD_VALUES)
        return copy
    return rng.choice(ODD_VALUES)


def mutated_messages(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        base = json.loads(rng.choice(SEEDS))
        texts.append(_mutate(rng, base))
    return texts
