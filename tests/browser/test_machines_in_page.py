"""Rules of the session machines, seen through the real pages in Chromium: a corrupt chunk
is nacked and sent again (go-back-N) to a browser and to `peerbeam receive`; a `.p` link
whose sender asks for no password is refused; a hello with fewer than 600 000 PBKDF2
iterations is refused. The corruption comes from the sending page's test hook
(PEERBEAM_FAULTS, the twin of the CLI's environment variable)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.fixtures.cli import SendProcess, receive
from tests.fixtures.servers import LocalServer

from .conftest import MIB, Pages, opfs_files, sha256_file, write_file
from .test_refusals import STORED_RECORDS
from .test_transfer import create_link, wait_done

pytestmark = pytest.mark.browser

# What a page puts on its data channels: binary pieces counted per file:chunk:offset, and
# the acks and nacks it sends.
WIRE_TAP = """
window.piecesSent = {};
window.answersSent = [];
const send = RTCDataChannel.prototype.send;
RTCDataChannel.prototype.send = function (data) {
  if (typeof data === "string") {
    const message = JSON.parse(data);
    if (message.t === "ack" || message.t === "nack") window.answersSent.push(message);
  } else {
    const view = ArrayBuffer.isView(data) ? new DataView(data.buffer, data.byteOffset, data.byteLength)
      : new DataView(data);
    const key = `${view.getUint32(4)}:${view.getUint32(8)}:${view.getUint32(12)}`;
    window.piecesSent[key] = (window.piecesSent[key] ?? 0) + 1;
  }
  return send.call(this, data);
};
"""


def faulty_sender(pages: Pages, browser: Any, corrupt: str) -> Page:
    page = pages.open(browser)
    # One connection: the acks then come in chunk order, which the tests read (a slow run
    # would otherwise add a lane after 5 s; lanes under faults: test_lanes.py).
    page.context.add_init_script("window.PEERBEAM_LANES = 1;"
                                 f"window.PEERBEAM_FAULTS = {json.dumps('corrupt=' + corrupt)};" + WIRE_TAP)
    return page


def test_corrupt_chunk_is_resent_browser_to_browser(
    server: LocalServer, pages: Pages, browser_a: Any, browser_b: Any, tmp_path: Path
) -> None:
    # Large enough that more than the high-water mark waits in the send queue when the
    # nack comes: the sender is waiting to queue more pieces (the case that once failed).
    source = write_file(tmp_path / "flaky.bin", 24 * MIB + 77, seed=41)
    sender = faulty_sender(pages, browser_a, "0:1")
    receiver = pages.open(browser_b)
    receiver.context.add_init_script(WIRE_TAP)
    link = create_link(sender, server, [source])

    receiver.goto(link)
    receiver.get_by_role("button", name="Accept").click()
    wait_done(receiver, sender)
    assert opfs_files(receiver)[f"picked/{source.name}"] == [source.stat().st_size, sha256_file(source)]
    # The receiver rejected chunk 1 once, after acknowledging chunk 0, and acknowledged it
    # when it came again; the sender sent chunk 1 twice and every other chunk once.
    answers = receiver.evaluate("window.answersSent")
    assert answers[:3] == [{"t": "ack", "file": 0, "chunk": 0}, {"t": "nack", "file": 0, "chunk": 1},
                           {"t": "ack", "file": 0, "chunk": 1}], answers
    assert [a for a in answers if a["t"] == "nack"] == [{"t": "nack", "file": 0, "chunk": 1}]
    assert [a["chunk"] for a in answers if a["t"] == "ack"] == list(range(25))
    first_pieces = sender.evaluate("window.piecesSent")
    assert first_pieces["0:1:0"] == 2
    assert first_pieces["0:0:0"] == 1


def test_corrupt_chunk_is_resent_browser_to_cli(
    server: LocalServer, pages: Pages, browser_a: Any, tmp_path: Path
) -> None:
    source = write_file(tmp_path / "flaky for cli.bin", 5 * MIB + 3, seed=42)
    sender = faulty_sender(pages, browser_a, "0:2")
    link = create_link(sender, server, [source])
    result = receive(link, tmp_path / "out", timeout=120)
    assert result.returncode == 0, result.stderr + "\n".join(pages.console[-30:])
    assert sha256_file(tmp_path / "out" / source.name) == sha256_file(source)
    expect(sender.locator(".badge.done")).to_have_count(1, timeout=10_000)
    pieces = sender.evaluate("window.piecesSent")
    assert pieces["0:2:0"] == 2, pieces  # the CLI nacked it, the page sent it again
    assert pieces["0:0:0"] == pieces["0:1:0"] == 1


def test_password_link_refuses_a_sender_without_password(
    server: LocalServer, pages: Pages, browser_b: Any, tmp_path: Path
) -> None:
    """Whoever holds a link made with a password, but not the password, can play the
    sender: it asks for no password and passes its proof with the link key alone. The
    link's `p` flag tells the page to refuse that (protocol.md 3)."""
    source = write_file(tmp_path / "planted.exe", 1000, seed=43)
    sender = SendProcess(server.base, [source])  # no password: a link without flags
    try:
        assert sender.link.count(".") >= 2 and not sender.link.endswith(".p")
        receiver = pages.open(browser_b)
        receiver.goto(sender.link + ".p")
        expect(receiver.get_by_role("alert")).to_contain_text("may have been tampered with", timeout=20_000)
        expect(receiver.get_by_role("alert")).to_contain_text("did not ask for one")
        expect(receiver.get_by_role("button", name="Accept")).to_have_count(0)
        expect(receiver.get_by_text(source.name)).to_have_count(0)
        assert opfs_files(receiver) == {}
        assert receiver.evaluate(STORED_RECORDS) == 0
    finally:
        sender.stop()


# Serve a file through the page's own sender, announcing `iterations` PBKDF2 iterations
# (an option of Offer: a later release may raise the count); returns the link.
WEAK_OFFER = """
async ({ iterations, password }) => {
  const [{ Offer }, { createRoom }, { makeLink, newLinkKey }, { loadConfig }] = await Promise.all(
    ["/js/sender.js", "/js/api.js", "/js/protocol/link.js", "/js/config.js"].map((m) => import(m)));
  const config = await loadConfig();
  const room = await createRoom(config.apiUrl, {});
  const linkKey = newLinkKey();
  const files = [new File([new Uint8Array(1000)], "weak.bin")];
  window.offer = new Offer({ files, password, room: room.room, ownerToken: room.owner_token,
    wsUrl: room.ws_url || config.wsUrl, linkKey, oneTime: false, iterations });
  window.offer.addEventListener("change", () => {
    window.receiverStates = [...window.offer.receivers.values()].map((r) => r.state);
  });
  window.offer.start();
  return makeLink(location.href.split("#")[0], room.room, linkKey, true);
}
"""


def test_too_few_iterations_are_refused(
    server: LocalServer, pages: Pages, browser_a: Any, browser_b: Any
) -> None:
    """A sender announcing 100 000 iterations would receive a MAC cheap to attack offline."""
    sender = pages.open(browser_a)
    sender.goto(server.base + "/")
    link = sender.evaluate(WEAK_OFFER, {"iterations": 100_000, "password": "pw"})
    receiver = pages.open(browser_b)
    receiver.goto(link)
    expect(receiver.get_by_role("alert")).to_contain_text("cannot accept", timeout=20_000)
    expect(receiver.get_by_role("alert")).to_contain_text("600000")
    expect(receiver.locator("#receive-password")).to_have_count(0)
    expect(receiver.get_by_text("weak.bin")).to_have_count(0)
    sender.wait_for_function("(window.receiverStates ?? []).includes('failed')")


def garbling_sender(pages: Pages, browser: Any, target: str) -> Page:
    page = pages.open(browser)
    page.context.add_init_script(f"window.PEERBEAM_FAULTS = {json.dumps('garble=' + target)};")
    return page


def test_undecodable_frame_ends_the_transfer_browser_to_browser(
    server: LocalServer, pages: Pages, browser_a: Any, browser_b: Any, tmp_path: Path
) -> None:
    """A binary frame whose header does not decode (bad magic) is bad_frame for the receiving
    page's machine (event bad_piece), told to the sender; nothing is retried."""
    source = write_file(tmp_path / "garbled.bin", 4 * MIB + 1, seed=44)
    sender = garbling_sender(pages, browser_a, "0:2")
    receiver = pages.open(browser_b)
    link = create_link(sender, server, [source])
    receiver.goto(link)
    receiver.get_by_role("button", name="Accept").click()
    alert = receiver.get_by_role("alert")
    expect(alert).to_contain_text("The sender sent something this page cannot accept", timeout=20_000)
    expect(alert).to_contain_text("does not decode")
    expect(sender.locator(".receiver .badge")).to_have_text("Stopped", timeout=10_000)
    expect(sender.locator(".receiver")).to_contain_text("does not decode")
    expect(receiver.get_by_role("button", name="Try again")).to_have_count(0)


def test_undecodable_frame_ends_the_transfer_browser_to_cli(
    server: LocalServer, pages: Pages, browser_a: Any, tmp_path: Path
) -> None:
    source = write_file(tmp_path / "garbled for cli.bin", 4 * MIB + 1, seed=45)
    sender = garbling_sender(pages, browser_a, "0:1")
    link = create_link(sender, server, [source])
    result = receive(link, tmp_path / "out", timeout=60)
    assert result.returncode == 1, result.stderr
    assert "bad_frame" in result.stderr and "does not decode" in result.stderr, result.stderr
    expect(sender.locator(".receiver .badge")).to_have_text("Stopped", timeout=10_000)
