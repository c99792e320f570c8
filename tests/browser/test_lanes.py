"""Protocol v1.1 in the pages: one transfer over several peer connections (lanes), between
two browsers and between a browser and the CLI both ways; an extra connection dropped
mid-transfer (the receiver's `drop_lane` fault: PEERBEAM_FAULTS in the page, the CLI's
environment variable) costs only the chunks it had in flight; a page with lanes off
(PEERBEAM_LANES = 0, a v1 peer) still works with the CLI, over one connection."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.fixtures.cli import SendProcess, receive
from tests.fixtures.servers import LocalServer
from tests.fixtures.turn import TURN_SECRET, Coturn

from .conftest import MIB, Pages, opfs_files, sha256_file, write_file
from .test_transfer import DONE_TIMEOUT, create_link, wait_done

pytestmark = pytest.mark.browser

# What a page does with its peer connections: how many it made (and each one's ICE server
# URLs), the pieces it sent per
# file:chunk:offset, and per data channel how many binary frames arrived; per file:chunk,
# how often its first piece arrived.
TAPS = """
window.peerConnections = 0;
window.iceUrls = [];
const NativePeerConnection = RTCPeerConnection;
window.RTCPeerConnection = class extends NativePeerConnection {
  constructor(...args) {
    super(...args);
    window.peerConnections += 1;
    window.iceUrls.push((args[0]?.iceServers ?? []).flatMap((s) => [s.urls].flat()));
  }
};
window.piecesSent = {};
const send = RTCDataChannel.prototype.send;
RTCDataChannel.prototype.send = function (data) {
  if (typeof data !== "string") {
    const view = new DataView(data.buffer ?? data, data.byteOffset ?? 0, data.byteLength);
    const key = `${view.getUint32(4)}:${view.getUint32(8)}:${view.getUint32(12)}`;
    window.piecesSent[key] = (window.piecesSent[key] ?? 0) + 1;
  }
  return send.call(this, data);
};
window.framesPerChannel = [];
window.chunkStarts = {};
const slot = Object.getOwnPropertyDescriptor(RTCDataChannel.prototype, "onmessage");
Object.defineProperty(RTCDataChannel.prototype, "onmessage", {
  configurable: true,
  get() { return slot.get.call(this); },
  set(handler) {
    const index = window.framesPerChannel.push(0) - 1;
    slot.set.call(this, handler && function (event) {
      if (typeof event.data !== "string") {
        window.framesPerChannel[index] += 1;
        const view = new DataView(event.data);
        if (view.getUint32(12) === 0) {
          const key = `${view.getUint32(4)}:${view.getUint32(8)}`;
          window.chunkStarts[key] = (window.chunkStarts[key] ?? 0) + 1;
        }
      }
      return handler.call(this, event);
    });
  },
});
"""

LANES = 3
# Each of 3 lanes has max(2, 16 // 3) = 5 chunks unacknowledged at most, one more being sent
# and one read ahead: what a dropped lane can cost.
LANE_COST = 7


def page_with(pages: Pages, browser: Any, lanes: int | None = None, faults: str = "",
              picker: bool = True) -> Page:
    page = pages.open(browser, picker=picker)
    script = TAPS
    if lanes is not None:
        script = f"window.PEERBEAM_LANES = {lanes};" + script
    if faults:
        script = f"window.PEERBEAM_FAULTS = {json.dumps(faults)};" + script
    page.context.add_init_script(script)
    return page


def resent_chunks(counts: dict[str, int]) -> int:
    """Chunks whose first piece went out (or came in) more than once."""
    return sum(1 for key, n in counts.items() if key.count(":") == 1 and n > 1)


def first_pieces(pieces_sent: dict[str, int]) -> dict[str, int]:
    return {key.rsplit(":", 1)[0]: n for key, n in pieces_sent.items() if key.endswith(":0")}


def cli_path(log: str) -> str:
    """The path the CLI printed: the page must say the same (with the same rule)."""
    found = re.search(r"[Cc]onnected(?: to the sender)?: (.+)", log)
    assert found, log
    return found.group(1).strip()


def network_bytes(stderr: str) -> int:
    found = re.search(r"\((\d+) bytes\), ", stderr)
    assert found, stderr
    return int(found.group(1))


def test_three_connections_browser_to_browser_one_dropped(
    server: LocalServer, pages: Pages, browser_a: Any, browser_b: Any, tmp_path: Path
) -> None:
    size = 24 * MIB + 5
    source = write_file(tmp_path / "lanes.bin", size, seed=51)
    sender = page_with(pages, browser_a, lanes=LANES)
    receiver = page_with(pages, browser_b, faults=f"drop_lane={8 * MIB}")
    link = create_link(sender, server, [source])

    receiver.goto(link)
    receiver.get_by_role("button", name="Accept").click()
    wait_done(receiver, sender)
    assert opfs_files(receiver)[f"picked/{source.name}"] == [size, sha256_file(source)]

    # Three connections carried the chunks; the first one (lane 0) never dropped: the
    # sender made no fourth connection.
    assert sender.evaluate("window.peerConnections") == LANES
    frames = receiver.evaluate("window.framesPerChannel")
    assert len(frames) == LANES and all(n > 0 for n in frames), frames
    resent = resent_chunks(first_pieces(sender.evaluate("window.piecesSent")))
    assert 1 <= resent <= LANE_COST, resent  # the dropped lane's chunks in flight, no more
    # Both pages show the path and the connections, in the final summary too.
    expect(receiver.locator("#receive-path")).to_have_text(
        f"Path: direct, on the local network · {LANES} connections")
    expect(sender.locator(".receiver-path")).to_have_text(
        f"Path: direct, on the local network · {LANES} connections")
    assert sender.locator(".receiver .digest code").all_inner_texts() == \
        receiver.locator(".digest code").all_inner_texts()


def test_three_connections_browser_to_cli_one_dropped(
    server: LocalServer, pages: Pages, browser_a: Any, tmp_path: Path
) -> None:
    size = 20 * MIB + 7
    source = write_file(tmp_path / "to cli.bin", size, seed=52)
    sender = page_with(pages, browser_a, lanes=LANES)
    link = create_link(sender, server, [source])
    result = receive(link, tmp_path / "out", timeout=120,
                     env={"PEERBEAM_FAULTS": f"drop_lane={6 * MIB}", "PEERBEAM_LOG": "INFO"})
    assert result.returncode == 0, result.stderr + "\n".join(pages.console[-30:])
    assert sha256_file(tmp_path / "out" / source.name) == sha256_file(source)
    assert "connection lost" not in result.stderr  # the first connection never dropped
    assert sender.evaluate("window.peerConnections") == LANES
    resent = resent_chunks(first_pieces(sender.evaluate("window.piecesSent")))
    assert 1 <= resent <= LANE_COST, resent
    assert network_bytes(result.stderr) <= size + LANE_COST * MIB
    expect(sender.locator(".badge.done")).to_have_count(1, timeout=10_000)
    # The same words as the CLI's for the same pair (on loopback the page's candidate is
    # peer-reflexive: "over the internet" on both sides).
    expect(sender.locator(".receiver-path")).to_have_text(
        f"Path: {cli_path(result.stderr)} · {LANES} connections")


def test_three_connections_cli_to_browser_one_dropped(
    server: LocalServer, pages: Pages, browser_b: Any, tmp_path: Path
) -> None:
    size = 20 * MIB + 3
    source = write_file(tmp_path / "from cli.bin", size, seed=53)
    sender = SendProcess(server.base, [source], "--connections", str(LANES))
    try:
        receiver = page_with(pages, browser_b, faults=f"drop_lane={6 * MIB}")
        receiver.goto(sender.link)
        receiver.get_by_role("button", name="Accept").click()
        expect(receiver.locator("#receive-title")).to_have_text("Done", timeout=DONE_TIMEOUT)
        assert opfs_files(receiver)[f"picked/{source.name}"] == [size, sha256_file(source)]
        frames = receiver.evaluate("window.framesPerChannel")
        assert len(frames) == LANES and all(n > 0 for n in frames), frames
        assert receiver.evaluate("window.peerConnections") == LANES  # lane 0 never replaced
        resent = resent_chunks(receiver.evaluate("window.chunkStarts"))
        assert 1 <= resent <= LANE_COST, resent
        sender.wait_for_log("has everything")
        assert f"{LANES} connections" in sender.log()
        expect(receiver.locator("#receive-path")).to_have_text(
            f"Path: {cli_path(sender.log())} · {LANES} connections")
    finally:
        sender.stop()


def test_v1_page_sends_to_the_cli_over_one_connection(
    server: LocalServer, pages: Pages, browser_a: Any, tmp_path: Path
) -> None:
    source = write_file(tmp_path / "v1 to cli.bin", 6 * MIB + 1, seed=54)
    sender = page_with(pages, browser_a, lanes=0)
    link = create_link(sender, server, [source])
    result = receive(link, tmp_path / "out", timeout=120)
    assert result.returncode == 0, result.stderr + "\n".join(pages.console[-30:])
    assert sha256_file(tmp_path / "out" / source.name) == sha256_file(source)
    assert sender.evaluate("window.peerConnections") == 1
    expect(sender.locator(".receiver-path")).to_have_text(f"Path: {cli_path(result.stderr)}")


def test_v1_page_receives_from_a_cli_that_wants_lanes(
    server: LocalServer, pages: Pages, browser_b: Any, tmp_path: Path
) -> None:
    source = write_file(tmp_path / "cli to v1.bin", 6 * MIB + 2, seed=55)
    sender = SendProcess(server.base, [source], "--connections", str(LANES))
    try:
        receiver = page_with(pages, browser_b, lanes=0)
        receiver.goto(sender.link)
        receiver.get_by_role("button", name="Accept").click()
        expect(receiver.locator("#receive-title")).to_have_text("Done", timeout=DONE_TIMEOUT)
        assert opfs_files(receiver)[f"picked/{source.name}"] == [source.stat().st_size, sha256_file(source)]
        assert receiver.evaluate("window.peerConnections") == 1
        sender.wait_for_log("has everything")
        assert "connections" not in sender.log()
        expect(receiver.locator("#receive-path")).to_have_text(f"Path: {cli_path(sender.log())}")
    finally:
        sender.stop()


# Both pages gather only relayed candidates: the transfer goes through coturn.
RELAY_ONLY = """
const Tapped = window.RTCPeerConnection;
window.RTCPeerConnection = class extends Tapped {
  constructor(config, ...rest) {
    super({ ...config, iceTransportPolicy: "relay" }, ...rest);
  }
};
"""


def lanes_with_a_relay(coturn: Coturn, pages: Pages, browsers: tuple[Any, Any], tmp_path: Path,
                       turn_urls: list[str], relay_only: bool) -> tuple[str, list[list[list[str]]]]:
    """A verified transfer over LANES connections between two pages whose server offers
    coturn (STUN and `turn_urls`); the path the receiving page shows, and each page's ICE
    server URLs per connection, the first connection's first."""
    stun = f"stun:127.0.0.1:{coturn.port}"  # coturn answers STUN too
    server = LocalServer(tmp_path / "srv", env={
        "PEERBEAM_TURN_URLS": ",".join(turn_urls), "PEERBEAM_TURN_SECRET": TURN_SECRET,
        "PEERBEAM_STUN_URLS": stun})
    server.start()
    try:
        size = 6 * MIB + 9
        source = write_file(tmp_path / "lanes and relay.bin", size, seed=56)
        sender = page_with(pages, browsers[0], lanes=LANES)
        receiver = page_with(pages, browsers[1])  # the default: takes up to 8
        for page in (sender, receiver) if relay_only else ():
            page.context.add_init_script(RELAY_ONLY)
        link = create_link(sender, server, [source])
        receiver.goto(link)
        receiver.get_by_role("button", name="Accept").click()
        wait_done(receiver, sender)
        assert opfs_files(receiver)[f"picked/{source.name}"] == [size, sha256_file(source)]
        path = receiver.locator("#receive-path").inner_text()
        urls = [sender.evaluate("window.iceUrls"), receiver.evaluate("window.iceUrls")]
        for first, *_ in urls:
            assert first == [stun, *turn_urls], first
        return path, [extra for _, *extra in urls]
    finally:
        server.stop()


def test_extra_connections_of_a_direct_transfer_gather_no_relay(
    coturn: Coturn, pages: Pages, browser_a: Any, browser_b: Any, tmp_path: Path
) -> None:
    """With a TURN relay on offer, each page's first connection gathers with it; once that
    one went direct, the extra connections get only the STUN servers (js/rtc.js
    laneIceServers): a relay allocation per connection would count against the relay's
    per-user quota (docs/deploy.md)."""
    path, extras = lanes_with_a_relay(coturn, pages, (browser_a, browser_b), tmp_path,
                                      [coturn.url], relay_only=False)
    assert path == f"Path: direct, on the local network · {LANES} connections"
    stun = f"stun:127.0.0.1:{coturn.port}"
    assert extras == [[[stun]] * (LANES - 1)] * 2, extras


def test_extra_connections_of_a_relayed_transfer_use_its_turn_url_only(
    coturn: Coturn, pages: Pages, browser_a: Any, browser_b: Any, tmp_path: Path
) -> None:
    """Relayed, each page's first connection allocates with every TURN URL on offer (here
    UDP and TCP); its extra connections use only the URL its relay candidate came from."""
    turn_urls = [coturn.url, f"turn:127.0.0.1:{coturn.port}?transport=tcp"]
    path, extras = lanes_with_a_relay(coturn, pages, (browser_a, browser_b), tmp_path,
                                      turn_urls, relay_only=True)
    assert path == f"Path: relayed through a TURN server · {LANES} connections"
    stun = f"stun:127.0.0.1:{coturn.port}"
    for extra in extras:
        assert len(extra) == LANES - 1 and extra[0][0] == stun and extra[0][1] in turn_urls, extra
        assert extra == [extra[0]] * (LANES - 1) and len(extra[0]) == 2, extra
