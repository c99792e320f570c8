"""The web client through a transfer that is long in clock time: dozens of signaling
heartbeats and keepalive pings, a signaling outage with reconnects, and another receiver
joining and leaving, while one session keeps running (the Python peer's twin of this test
is tests/test_long_clock.py). Timers are shrunk through PEERBEAM_TIMING in both peers."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, WebSocket, expect

from tests.fixtures.cli import SendProcess
from tests.fixtures.servers import LocalServer
from tests.test_long_clock import LONG_CLOCK, SOCKET_LIFE, LoggedReceive, interrupt, wait_for_bytes

from .conftest import MIB, Pages, opfs_files, sha256_file, write_file
from .test_transfer import DONE_TIMEOUT, create_link

pytestmark = pytest.mark.browser

@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """Signaling sockets that live 2.5 s (API Gateway: 2 hours): reconnects all the time."""
    instance = LocalServer(tmp_path_factory.mktemp("short-lived-sockets"), env=SOCKET_LIFE)
    instance.start()
    yield instance
    instance.stop()


PAGE_TIMING = {"heartbeatMs": 500, "pingAfterMs": 500, "deadAfterMs": 15000, "maxBackoffMs": 1000}


# Counts the peer connections a page makes: one transfer, one connection, however many
# heartbeats, signaling reconnects and other receivers come and go.
COUNT_CONNECTIONS = """
window.peerConnections = 0;
window.RTCPeerConnection = class extends window.RTCPeerConnection {
  constructor(...args) { super(...args); window.peerConnections += 1; }
};
"""


def long_clock_page(pages: Pages, browser: Browser) -> tuple[Page, list[str], list[WebSocket]]:
    """A page with short timers; returns it, the signaling pings it sends, its sockets."""
    page = pages.open(browser)
    page.context.add_init_script(f"window.PEERBEAM_TIMING = {json.dumps(PAGE_TIMING)};" + COUNT_CONNECTIONS)
    pings: list[str] = []
    sockets: list[WebSocket] = []

    def watch(socket: WebSocket) -> None:
        sockets.append(socket)
        def sent(frame: bytes | str) -> None:
            if '"ping"' in str(frame):
                pings.append(str(frame))

        socket.on("framesent", sent)

    page.on("websocket", watch)
    return page, pings, sockets


def wait_for_sockets(page: Page, sockets: list[WebSocket], count: int, timeout: float = 60) -> None:
    """Until the page has opened `count` signaling sockets (a reconnect opens another)."""
    deadline = time.monotonic() + timeout
    while len(sockets) < count:
        assert time.monotonic() < deadline, f"the page opened {len(sockets)} sockets"
        page.wait_for_timeout(100)


def test_cli_sender_to_browser_through_heartbeats_and_reconnects(
    server: LocalServer, pages: Pages, browser_b: Browser, tmp_path: Path
) -> None:
    source = write_file(tmp_path / "slow to browser.bin", 10 * MIB + 7, seed=31)
    # One connection by choice (no lanes added): the page's count then shows that the
    # transfer never needed a new one.
    sender = SendProcess(server.base, [source], "--max-rate", "500K", "--connections", "1", env=LONG_CLOCK)
    try:
        receiver, pings, sockets = long_clock_page(pages, browser_b)
        started = time.monotonic()
        receiver.goto(sender.link)
        receiver.get_by_role("button", name="Accept").click()
        expect(receiver.locator("#receive-title")).to_have_text("Receiving", timeout=DONE_TIMEOUT)

        def reconnected() -> None:
            sender.wait_for_log("signaling reconnected")
            wait_for_sockets(receiver, sockets, 2)

        interrupt(server, sender.link, tmp_path, reconnected)
        expect(receiver.locator("#receive-title")).to_have_text("Done", timeout=DONE_TIMEOUT)
        assert time.monotonic() - started > 8
        assert opfs_files(receiver)[f"picked/{source.name}"] == [source.stat().st_size, sha256_file(source)]
        assert len(pings) >= 8, pings
        assert receiver.evaluate("window.peerConnections") == 1  # one connection throughout
        assert len(sockets) >= 4 and sender.log().count("signaling reconnected") >= 3
    finally:
        sender.stop()


def test_browser_sender_to_cli_through_heartbeats_and_reconnects(
    server: LocalServer, pages: Pages, browser_a: Browser, tmp_path: Path
) -> None:
    source = write_file(tmp_path / "slow from browser.bin", 10 * MIB + 9, seed=32)
    sender, pings, sockets = long_clock_page(pages, browser_a)
    link = create_link(sender, server, [source])
    started = time.monotonic()
    first = LoggedReceive(link, tmp_path / "out", "--max-rate", "500K", env=LONG_CLOCK)
    wait_for_bytes(tmp_path / "out" / f"{source.name}.peerbeam-part", MIB, first.process)

    def reconnected() -> None:
        first.wait_for_log("signaling reconnected")
        wait_for_sockets(sender, sockets, 2)

    interrupt(server, link, tmp_path, reconnected)
    assert first.process.poll() is None, "the transfer ended before the interruptions did"
    assert first.process.wait(DONE_TIMEOUT / 1000) == 0, first.log() + "\n".join(pages.console[-30:])
    assert time.monotonic() - started > 8
    assert sha256_file(tmp_path / "out" / source.name) == sha256_file(source)
    assert "connection lost" not in first.log()
    assert "replaces the running session" not in first.log()
    expect(sender.locator(".badge.done")).to_have_count(1, timeout=10_000)
    assert len(pings) >= 8, pings
    assert len(sockets) >= 4 and first.log().count("signaling reconnected") >= 3
