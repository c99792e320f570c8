"""Property-based fuzzing of a real `peerbeam serve` over HTTP and WebSocket (issue 12).

The same generated input as tests/test_fuzz_handlers.py, plus what only a real server
sees: raw request lines, odd paths (``%00``, traversal, long names), odd methods and
headers. For any input: an answer (never a dropped connection), no 5xx, refusals in
the contract's JSON, the server keeps serving and logs no traceback.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.sync.client import ClientConnection, connect

from tests import raw_clients
from tests.fixtures.servers import LocalServer
from tests.fuzz_strategies import (
    KNOWN_CODES,
    OTHER,
    RECEIVER,
    SENDER,
    bodies,
    content_types,
    messages,
    origins,
    substitute,
)
from tests.signaling_helpers import create_room

# The fuzzer is one client sending fast: lift the per-client rate limits.
GENEROUS = {"PEERBEAM_ROOMS_BURST": "100000", "PEERBEAM_JOINS_BURST": "100000",
            "PEERBEAM_CLIENT_BYTES_PER_SECOND": "0"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    instance = LocalServer(tmp_path_factory.mktemp("fuzz-server"), env=GENEROUS)
    instance.start()
    yield instance
    log = instance.log()
    instance.stop()
    assert "Traceback" not in log, log[-5000:]


# -- HTTP --------------------------------------------------------------------------------

path_parts = st.one_of(
    st.sampled_from(["", "index.html", "config.json", "api", "api/rooms", "api/rooms/abc", "ws",
                     "js", "..", "%2e%2e", "%00", "%2F", "%5C", "~", ".git", "a" * 300]),
    st.text(max_size=20).map(lambda text: urllib.parse.quote(text, safe="")),
)
paths = st.lists(path_parts, max_size=5).map(lambda parts: "/" + "/".join(parts)) | st.sampled_from(
    ["/%00", "/js/%00.js", "/../pyproject.toml", "//etc/passwd", "/api/../config.json",
     "/" + "a" * 9000, "/?x=%00", "*"])
methods = st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE",
                           "CONNECT", "PRI", "get", "G\tET", "FOO"])


@given(method=methods, path=paths, body=bodies, content_type=content_types, origin=origins,
       host=st.sampled_from([None, "localhost", "evil.example", "[::1]", "", "a" * 300, "127.0.0.1:0"]))
def test_http_always_answers_in_the_contract(
    server: LocalServer, method: str, path: str, body: bytes, content_type: str,
    origin: str | None, host: str | None,
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    if origin is not None:
        headers["Origin"] = origin
    headers = {k: v for k, v in headers.items() if v.isascii() and v.isprintable()}
    status, got, answer = raw_clients.request(server.port, method, path, body=body, host=host,
                                              headers=headers)
    assert status < 500, (method, path, status, answer)
    if status >= 400 and method.upper() != "HEAD":
        assert got["content-type"].startswith("application/json"), (method, path, got)
        assert isinstance(answer, dict) and set(answer) - {"field"} == {"code", "message"}
        assert answer["code"] in KNOWN_CODES, answer


# -- WebSocket ---------------------------------------------------------------------------


class Members:
    """A room on the fuzzed server: its sender (drained in the background, as a client that
    reads) and a receiver whose frames are the fuzzed input."""

    def __init__(self, server: LocalServer) -> None:
        self.sockets = ExitStack()
        room = create_room(server.api, max_receivers=3)
        base = f"{server.ws}?room={room['room']}"
        self.sender, sender_id = self._join(f"{base}&role=sender&token={room['owner_token']}")
        self.receiver, receiver_id = self._join(f"{base}&role=receiver")
        self.other, other_id = self._join(f"{base}&role=receiver")
        self.peers = {SENDER: sender_id, RECEIVER: receiver_id, OTHER: other_id}
        threading.Thread(target=self._drain, daemon=True).start()

    def _join(self, url: str) -> tuple[ClientConnection, str]:
        socket = self.sockets.enter_context(
            connect(url, open_timeout=10, max_size=None, max_queue=None))
        socket.send('{"type":"hello"}')
        welcome = json.loads(socket.recv(10))
        assert welcome["type"] == "welcome"
        return socket, str(welcome["peer"])

    def _drain(self) -> None:
        try:
            for _ in self.sender:
                pass
        except Exception:  # noqa: BLE001 - the socket closes at the end of the module
            return

    def exchange(self, text: str) -> list[dict[str, object]]:
        """Send a frame, then a ping; everything before the pong answers the frame."""
        self.receiver.send(text)
        self.receiver.send('{"type":"ping"}')
        answers = []
        while (message := json.loads(self.receiver.recv(10))) != {"type": "pong"}:
            answers.append(message)
        return answers


@pytest.fixture(scope="module")
def members(server: LocalServer) -> Iterator[Members]:
    room = Members(server)
    with room.sockets:
        yield room


@given(message=messages)
def test_websocket_frames_are_answered_in_the_contract(members: Members, message: str) -> None:
    text = substitute(message, members.peers)
    if text.encode("utf-8", "surrogatepass") != text.encode("utf-8", "replace"):
        text = text.encode("utf-8", "replace").decode("utf-8")  # a text frame is UTF-8
    answers = members.exchange(text)
    for answer in answers:
        assert isinstance(answer, dict) and isinstance(answer.get("type"), str), answer
        if answer["type"] == "error":
            assert set(answer) == {"type", "code", "message"}, answer
            assert answer["code"] in KNOWN_CODES and len(str(answer["message"])) < 200
    assert [a["type"] for a in answers] in ([], ["error"], ["welcome"]), answers


def test_the_server_kept_serving(server: LocalServer) -> None:
    """After the fuzzing above (same module, same server): still a normal server."""
    room = create_room(server.api)
    assert room["ws_url"] == server.ws
