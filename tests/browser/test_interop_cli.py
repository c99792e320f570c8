"""The two implementations of docs/protocol.md against each other:
a browser sends to `peerbeam receive`, and `peerbeam send` sends to a browser."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.fixtures.cli import SendProcess, receive
from tests.fixtures.servers import LocalServer

from .conftest import MIB, Pages, opfs_files, sha256_file, write_file
from .test_transfer import DONE_TIMEOUT, create_link

pytestmark = pytest.mark.browser


def test_browser_to_cli(server: LocalServer, pages: Pages, browser_a, tmp_path: Path) -> None:
    sources = [
        write_file(tmp_path / "from browser.bin", 5 * MIB + 99, seed=21),
        write_file(tmp_path / "empty.txt", 0),
    ]
    sender = pages.open(browser_a)
    link = create_link(sender, server, sources, password="open sesame")
    result = receive(link, tmp_path / "out", "--password", "open sesame", timeout=120)
    assert result.returncode == 0, result.stderr + "\n".join(pages.console[-30:])
    for source in sources:
        assert sha256_file(tmp_path / "out" / source.name) == sha256_file(source)
    expect(sender.locator(".badge.done")).to_have_count(1, timeout=10_000)
    # Both implementations computed the same final digests.
    shown = sender.locator(".receiver .digest code").all_inner_texts()
    for digest in shown:
        assert digest in result.stderr


def test_cli_to_browser(server: LocalServer, pages: Pages, browser_b, tmp_path: Path) -> None:
    source = write_file(tmp_path / "from cli.mkv", 6 * MIB + 5, seed=22)
    sender = SendProcess(server.base, [source], "--password", "swordfish")
    try:
        receiver = pages.open(browser_b)
        receiver.goto(sender.link)
        receiver.locator("#receive-view").get_by_label("Password").fill("swordfish")
        receiver.get_by_role("button", name="Unlock").click()
        expect(receiver.get_by_role("list", name="Files")).to_contain_text("from cli.mkv")
        receiver.get_by_role("button", name="Accept").click()
        expect(receiver.locator("#receive-title")).to_have_text("Done", timeout=DONE_TIMEOUT)
        saved = opfs_files(receiver)
        assert saved["picked/from cli.mkv"] == [source.stat().st_size, sha256_file(source)]
        sender.wait_for_log("has everything")
    finally:
        sender.stop()


# The sending page closes its channels and connections 1.5 s late, and notes when it began.
LATE_CLOSE = """
window.closeAsked = null;
for (const proto of [RTCDataChannel.prototype, RTCPeerConnection.prototype]) {
  const close = proto.close;
  proto.close = function () {
    window.closeAsked ??= Date.now();
    setTimeout(() => close.call(this), 1500);
  };
}
"""


def test_cli_receiver_waits_for_the_sender_to_close(
        server: LocalServer, pages: Pages, browser_a, tmp_path: Path) -> None:
    """protocol.md §8.6: the sender closes once it has checked `complete`; `peerbeam
    receive` stays until then, because closing first could drop `complete` still queued in
    SCTP (the sending page would never learn the transfer is done)."""
    source = write_file(tmp_path / "until closed.bin", 3 * MIB + 7, seed=23)
    sender = pages.open(browser_a)
    sender.context.add_init_script(LATE_CLOSE)
    link = create_link(sender, server, [source])
    result = receive(link, tmp_path / "out", timeout=120)
    exited = time.time()
    assert result.returncode == 0, result.stderr + "\n".join(pages.console[-30:])
    assert sha256_file(tmp_path / "out" / source.name) == sha256_file(source)
    expect(sender.locator(".badge.done")).to_have_count(1, timeout=10_000)
    close_asked = sender.evaluate("window.closeAsked") / 1000
    assert exited >= close_asked + 1.4, (exited, close_asked)
