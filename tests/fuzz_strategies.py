"""What the fuzzers throw at the signaling service: generated client input, and the
codes an answer may carry (docs/signaling.md lists the same)."""

from __future__ import annotations

import json
import urllib.parse

from hypothesis import strategies as st

from chalicelib import errors

# Every code a refusal may carry: our error classes, plus the one sent to a replaced connection.
KNOWN_CODES = {
    kind.code for kind in vars(errors).values()
    if isinstance(kind, type) and issubclass(kind, errors.PeerbeamError)
} | {"connection_replaced"}

# Stand-ins the tests replace with real peer ids of the room under test.
SENDER, RECEIVER, OTHER = "<sender>", "<receiver>", "<other>"

scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30))
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=16,
)
deep = (st.integers(20, 5000).map(lambda n: "[" * n + "]" * n)
        | st.integers(20, 3000).map(lambda n: '{"type":' * n + '"ping"' + "}" * n)
        | st.integers(20, 200).map(lambda n: '{"type":"signal","to":"x","data":' + "[" * n + "]" * n + "}"))
peer_ids = st.sampled_from([SENDER, RECEIVER, OTHER]) | st.text(max_size=70)
shaped = st.fixed_dictionaries(
    {"type": st.sampled_from(["hello", "signal", "ping", "lock", "close"]) | st.text(max_size=20)},
    optional={"to": peer_ids | json_values, "data": json_values, "v": json_values},
)
# One WebSocket frame's text.
messages = st.one_of(
    shaped.map(json.dumps),
    st.dictionaries(st.text(max_size=10), json_values, max_size=5).map(json.dumps),
    json_values.map(json.dumps),
    st.text(max_size=300),
    st.binary(max_size=200).map(lambda raw: raw.decode("latin-1")),
    deep,
    st.sampled_from(["NaN", '{"type":"ping","x":Infinity}', '{"type":1e999}', "\ufeff{}",
                     '{"type":"' + "x" * 70_000 + '"}', "", " "]),
)
# A REST body: JSON room options, near misses, or junk.
bodies = st.one_of(
    st.fixed_dictionaries({}, optional={
        "expires_in": json_values, "one_time": json_values, "max_receivers": json_values,
    }).map(json.dumps),
    messages,
).map(lambda text: text.encode("utf-8", "surrogatepass"))
room_ids = st.sampled_from(["<room>"]) | st.text(max_size=80).map(
    lambda text: urllib.parse.quote(text, safe=""))
tokens = st.sampled_from(["<owner>", "receiver-token-0123456789", ""]) | st.text(max_size=140)
queries = st.fixed_dictionaries({}, optional={
    "room": room_ids, "role": st.sampled_from(["sender", "receiver"]) | st.text(max_size=10),
    "token": tokens, "peer": peer_ids,
})
content_types = st.sampled_from(["application/json", "text/plain", "text/plain;charset=UTF-8",
                                 "application/xml", "multipart/form-data", ""]) | st.text(max_size=30)
origins = st.sampled_from([None, "null", "https://evil.example", "http://127.0.0.1"]) | st.text(max_size=30)


def substitute(text: str, values: dict[str, str]) -> str:
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    return text
