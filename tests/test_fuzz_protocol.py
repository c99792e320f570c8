"""The protocol's parsers under hostile input (Hypothesis): a text frame is either a
message that survives encoding and parsing again unchanged, or a refusal with one of the
protocol's codes — never another exception; a binary frame is a piece or bad_frame.
The same inputs, replayed in Chromium, must give the JavaScript parser the same outcome
(tests/browser/test_fuzz_protocol_js.py)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from peerbeam.transfer.errors import ProtocolError
from peerbeam.transfer.frames import decode_piece, encode_piece
from peerbeam.transfer.messages import encode_message, parse_message
from tests.protocol_fuzz import SEEDS, mutated_messages, outcome

CODES = {"bad_frame", "bad_manifest", "bad_version"}

scalars = (st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.floats(allow_nan=False)
           | st.text(max_size=40))
json_values = st.recursive(
    scalars,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=10), kids, max_size=4),
    max_leaves=20,
)


def check(text: str) -> None:
    try:
        message = parse_message(text)
    except ProtocolError as error:
        assert error.code in CODES, error.code
        return
    again = parse_message(encode_message(message))
    assert again == message


@given(st.sampled_from(SEEDS), st.dictionaries(st.sampled_from(
    ["t", "v", "nonce", "password", "kdf", "lanes", "transfer", "files", "file", "chunk", "size",
     "sha256", "digest", "digests", "retry", "remaining", "mac", "code", "message", "lane", "extra"]),
    json_values, max_size=3))
def test_a_valid_message_with_fields_replaced_parses_or_is_refused(
    seed: str, changes: dict[str, Any]
) -> None:
    check(json.dumps({**json.loads(seed), **changes}))


@given(st.text(max_size=200))
def test_any_text_parses_or_is_refused(text: str) -> None:
    check(text)


@given(json_values)
def test_any_json_parses_or_is_refused(value: Any) -> None:
    check(json.dumps(value))


def test_the_seeded_corpus_parses_or_is_refused() -> None:
    """The corpus Chromium replays: every case has an outcome of the protocol's kind."""
    for text in mutated_messages(seed=1, count=600):
        check(text)
        assert set(outcome(text)) <= {"code", "json"}


@given(st.binary(max_size=64))
def test_any_binary_frame_is_a_piece_or_bad_frame(data: bytes) -> None:
    try:
        piece = decode_piece(data)
    except ProtocolError as error:
        assert error.code == "bad_frame"
        return
    assert encode_piece(piece.file, piece.chunk, piece.offset, piece.payload) == data
