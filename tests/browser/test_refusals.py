"""Links and passwords that must not work, and what the server must never see."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, WebSocket, expect

from tests.fixtures.servers import LocalServer

from .conftest import MIB, Pages, opfs_files, sha256_file, write_file
from .test_transfer import create_link, wait_done

pytestmark = pytest.mark.browser

STORED_RECORDS = """
async () => {
  const db = await new Promise((resolve, reject) => {
    const r = indexedDB.open("peerbeam");
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
  if (!db.objectStoreNames.contains("files")) return 0;
  return new Promise((resolve) => {
    const r = db.transaction("files").objectStore("files").count();
    r.onsuccess = () => resolve(r.result);
  });
}
"""


class Wiretap:
    """Everything a page sends to any server: requests (URL without the fragment, which
    HTTP never transmits, headers, body) and every WebSocket frame it sends."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def attach(self, page: Page) -> None:
        page.on("request", self._request)
        page.on("websocket", self._websocket)

    def _request(self, request: Any) -> None:
        self.sent.append(request.url.split("#", 1)[0])
        self.sent.extend(f"{k}: {v}" for k, v in request.headers.items())
        body = request.post_data_buffer
        if body:
            self.sent.append(body.decode("utf-8", "replace"))

    def _websocket(self, socket: WebSocket) -> None:
        self.sent.append(socket.url)
        socket.on("framesent", lambda payload: self.sent.append(
            payload if isinstance(payload, str) else payload.decode("utf-8", "replace")))

    def leaks(self, *secrets: str) -> list[str]:
        return [text[:200] for text in self.sent for s in secrets if s in text]


def tamper(link: str) -> str:
    """Change one character in the middle of the key: still a well-formed link."""
    position = len(link) - 8
    return link[:position] + ("B" if link[position] != "B" else "C") + link[position + 1:]


def test_tampered_link_is_refused_and_nothing_saved(
    server: LocalServer, pages: Pages, browser_a, browser_b, tmp_path: Path
) -> None:
    source = write_file(tmp_path / "contract.pdf", MIB, seed=5)
    sender = pages.open(browser_a)
    receiver = pages.open(browser_b)
    link = create_link(sender, server, [source])

    receiver.goto(tamper(link))
    expect(receiver.get_by_role("alert")).to_contain_text("Wrong password or link", timeout=20_000)
    expect(receiver.get_by_role("button", name="Accept")).to_have_count(0)
    expect(receiver.get_by_text("contract.pdf")).to_have_count(0)  # no file name before auth
    assert opfs_files(receiver) == {}
    assert receiver.evaluate(STORED_RECORDS) == 0
    expect(sender.locator(".badge.failed")).to_have_count(1)


def test_cut_off_link_explained(
    server: LocalServer, pages: Pages, browser_a, browser_b, tmp_path: Path
) -> None:
    sender = pages.open(browser_a)
    link = create_link(sender, server, [write_file(tmp_path / "a.txt", 10)])
    receiver = pages.open(browser_b)
    receiver.goto(link[:-3])
    expect(receiver.get_by_role("alert")).to_contain_text("cut off")


def test_unknown_room_gets_a_clear_page(server: LocalServer, pages: Pages, browser_b) -> None:
    receiver = pages.open(browser_b)
    receiver.goto(server.base + "/#NoSuchRoom1.AAECAwQFBgcICQoLDA0ODw")
    expect(receiver.get_by_role("alert")).to_contain_text("expired or does not exist")


def test_wrong_password_then_right_one_and_nothing_leaks(
    server: LocalServer, pages: Pages, browser_a, browser_b, tmp_path: Path
) -> None:
    password = "correct horse battery"
    source = write_file(tmp_path / "tax-return-7f3a9.pdf", MIB + 17, seed=6)
    wiretap = Wiretap()
    sender = pages.open(browser_a)
    receiver = pages.open(browser_b)
    wiretap.attach(sender)
    wiretap.attach(receiver)
    link = create_link(sender, server, [source], password=password)

    receiver.goto(link)
    receiver.locator("#receive-view").get_by_label("Password").fill("incorrect pony")
    receiver.get_by_role("button", name="Unlock").click()
    expect(receiver.locator("#receive-status")).to_contain_text("Wrong password (4 tries left)")
    assert opfs_files(receiver) == {}
    expect(receiver.get_by_text(source.name)).to_have_count(0)

    receiver.locator("#receive-view").get_by_label("Password").fill(password)
    receiver.get_by_role("button", name="Unlock").click()
    receiver.get_by_role("button", name="Accept").click()
    wait_done(receiver, sender)
    assert opfs_files(receiver)[f"picked/{source.name}"] == [source.stat().st_size, sha256_file(source)]

    assert link.endswith(".p")  # the link says a password is set (protocol.md 3)
    key = link.split("#", 1)[1].split(".")[1]
    assert len(wiretap.sent) > 10  # the tap saw the signaling traffic
    assert any("signal" in text for text in wiretap.sent)
    secrets = [key, base64.urlsafe_b64decode(key + "==").hex(), password, "incorrect pony",
               source.name, source.stem, "tax-return"]
    assert wiretap.leaks(*secrets) == []
