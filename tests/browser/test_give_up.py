"""Giving up, and trying again, in the pages (docs/webclient.md "Time"): a receiver that no
connection reaches says so (no_path) with a Try again button, and so does the sender's row
for it; a receiver whose sender vanished mid-transfer gives up (gave_up) and, on Try again,
resumes what it holds without asking again. Timers shrunk through PEERBEAM_TIMING.

No path, deterministically on 127.0.0.1: an init script in the *sending* page (the page under
test is the receiving one) rewrites every candidate of its offers to a UDP port that the test
holds open and never reads (no answer, no ICMP), and drops the candidates of the answers it
applies, until the test lets ICE through again.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.fixtures.servers import LocalServer

from .conftest import MIB, Pages, opfs_files, sha256_file, write_file
from .test_transfer import DONE_TIMEOUT, create_link

pytestmark = pytest.mark.browser

BLOCK_ICE = """
(() => {
  window.iceBlocked = true;
  window.peerConnections = [];
  window.dataChannels = [];
  const hole = `a=candidate:1 1 udp 2130706431 127.0.0.1 ${window.HOLE_PORT} typ host`;
  const nowhere = (sdp) => sdp.split("\\r\\n").filter((l) => !l.startsWith("a=candidate:"))
    .map((l) => (l.startsWith("m=") ? `${l}\\r\\n${hole}` : l)).join("\\r\\n");
  const none = (sdp) => sdp.split("\\r\\n").filter((l) => !l.startsWith("a=candidate:")).join("\\r\\n");
  const Native = RTCPeerConnection;
  window.RTCPeerConnection = class extends Native {
    constructor(...args) {
      super(...args);
      this.blocked = window.iceBlocked;
      window.peerConnections.push(this);
    }
    get localDescription() {
      const description = super.localDescription;
      if (!this.blocked || !description) return description;
      return { type: description.type, sdp: nowhere(description.sdp) };
    }
    setRemoteDescription(description) {
      return super.setRemoteDescription(
        this.blocked ? { type: description.type, sdp: none(description.sdp) } : description);
    }
    createDataChannel(...args) {
      const channel = super.createDataChannel(...args);
      window.dataChannels.push(channel);
      return channel;
    }
  };
  // How often the first piece of file 0 chunk 0 went out.
  window.firstChunkSent = 0;
  const send = RTCDataChannel.prototype.send;
  RTCDataChannel.prototype.send = function (data) {
    if (typeof data !== "string") {
      const view = new DataView(data.buffer ?? data, data.byteOffset ?? 0, data.byteLength);
      if (view.getUint32(4) === 0 && view.getUint32(8) === 0 && view.getUint32(12) === 0)
        window.firstChunkSent += 1;
    }
    return send.call(this, data);
  };
  // Every connection breaks at once, as a network that goes away, once `acks` chunks arrived.
  window.cutAfterAcks = (acks) => {
    let seen = 0;
    const slot = Object.getOwnPropertyDescriptor(RTCDataChannel.prototype, "onmessage");
    Object.defineProperty(RTCDataChannel.prototype, "onmessage", {
      configurable: true,
      get() { return slot.get.call(this); },
      set(handler) {
        slot.set.call(this, handler && function (event) {
          if (typeof event.data === "string" && JSON.parse(event.data).t === "ack" && ++seen === acks) {
            window.iceBlocked = true;
            for (const channel of window.dataChannels) channel.close();
            for (const pc of window.peerConnections) pc.close();
            return undefined;
          }
          return handler.call(this, event);
        });
      },
    });
  };
})();
"""

FAST = {"connectTimeoutMs": 4000, "giveUpAfterMs": 3000}
GIVE_UP_TIMEOUT = 30_000


@pytest.fixture
def hole() -> Iterator[int]:
    """A UDP port on 127.0.0.1 that swallows whatever is sent to it."""
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    yield sink.getsockname()[1]
    sink.close()


def blocking_sender(pages: Pages, browser: Any, port: int) -> Page:
    page = pages.open(browser)
    page.context.add_init_script(f"window.HOLE_PORT = {port}; window.PEERBEAM_TIMING = {json.dumps(FAST)};"
                                 + BLOCK_ICE)
    return page


def fast_receiver(pages: Pages, browser: Any, picker: bool = True) -> Page:
    page = pages.open(browser, picker=picker)
    page.context.add_init_script(f"window.PEERBEAM_TIMING = {json.dumps(FAST)};")
    return page


def test_no_path_is_said_and_try_again_works(
    server: LocalServer, pages: Pages, browser_a: Any, browser_b: Any, hole: int, tmp_path: Path
) -> None:
    source = write_file(tmp_path / "far away.bin", 2 * MIB + 11, seed=61)
    sender = blocking_sender(pages, browser_a, hole)
    receiver = fast_receiver(pages, browser_b)
    link = create_link(sender, server, [source])

    receiver.goto(link)
    alert = receiver.get_by_role("alert")
    expect(alert).to_contain_text("No connection to the sender could be made", timeout=GIVE_UP_TIMEOUT)
    expect(alert).to_contain_text("no relay (TURN) helped")
    expect(receiver.get_by_role("button", name="Accept")).to_have_count(0)
    # The sender says the same about this receiver, with its own Try again: a new offer.
    row = sender.locator(".receiver")
    expect(row).to_contain_text("No connection to them could be made", timeout=GIVE_UP_TIMEOUT)
    offers = sender.evaluate("window.peerConnections.length")
    row.get_by_role("button", name="Try again").click()
    expect(row.locator(".badge")).to_have_text("Connecting…")
    assert sender.evaluate("window.peerConnections.length") == offers + 1

    # The network lets ICE through again; the receiver tries again without a reload.
    sender.evaluate("window.iceBlocked = false")
    receiver.get_by_role("button", name="Try again").click()
    receiver.get_by_role("button", name="Accept").click(timeout=GIVE_UP_TIMEOUT)
    expect(receiver.locator("#receive-title")).to_have_text("Done", timeout=DONE_TIMEOUT)
    assert opfs_files(receiver)[f"picked/{source.name}"] == [source.stat().st_size, sha256_file(source)]
    # The pages open their connections at once; a small file may finish before all are up.
    expect(receiver.locator("#receive-path")).to_have_text(
        re.compile(r"^Path: direct, on the local network( · [2-8] connections)?$"))


def test_gave_up_mid_transfer_and_try_again_resumes(
    server: LocalServer, pages: Pages, browser_a: Any, browser_b: Any, hole: int, tmp_path: Path
) -> None:
    source = write_file(tmp_path / "interrupted.bin", 40 * MIB + 3, seed=62)
    sender = blocking_sender(pages, browser_a, hole)
    sender.context.add_init_script("window.iceBlocked = false; window.cutAfterAcks(6);")
    # The private file system holds every chunk written (a picked file only what its last
    # checkpoint committed, none for the first 64 MiB).
    receiver = fast_receiver(pages, browser_b, picker=False)
    link = create_link(sender, server, [source])

    receiver.goto(link)
    receiver.get_by_role("button", name="Accept").click()
    alert = receiver.get_by_role("alert")
    expect(alert).to_contain_text("was lost and did not come back", timeout=GIVE_UP_TIMEOUT)
    expect(alert).to_contain_text("What arrived is kept: Try again to resume")

    sender.evaluate("window.iceBlocked = false")
    with receiver.expect_download(timeout=DONE_TIMEOUT) as download:
        receiver.get_by_role("button", name="Try again").click()
        # Accepted before, so it resumes by itself (no Accept again), from what it held: the
        # first chunk went out once.
        expect(receiver.locator("#receive-title")).to_have_text("Done", timeout=DONE_TIMEOUT)
    assert sha256_file(Path(download.value.path())) == sha256_file(source)
    assert opfs_files(receiver) == {}  # handed to the downloads, then deleted
    assert sender.evaluate("window.firstChunkSent") == 1
    expect(sender.locator(".badge.done")).to_have_count(1, timeout=10_000)
