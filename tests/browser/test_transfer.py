"""Browser -> browser transfers between two separate Chromium processes.

Each test drives the real pages (Create link, Accept), lets the bytes travel over a real
WebRTC data channel, then reads what the receiver saved back out of its Origin Private
File System, hashes it in the page and compares with the source file's hash.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.fixtures.servers import LocalServer

from .conftest import MIB, Pages, opfs_files, sha256_file, write_file

pytestmark = pytest.mark.browser

DONE_TIMEOUT = 90_000


def create_link(page: Page, server: LocalServer, files: list[Path], password: str = "",
                one_time: bool = False) -> str:
    page.goto(server.base + "/")
    # The send view shows once the page's script is ready for the files (config loaded,
    # listeners attached): files set before that would go unnoticed on a slow machine.
    expect(page.locator("#send-view")).to_be_visible()
    page.set_input_files("#file-input", [str(f) for f in files])
    if password:
        page.get_by_label("Password").fill(password)
    if one_time:
        page.get_by_label("One-time link").check()
    page.get_by_role("button", name="Create link").click()
    link_box = page.locator("#share-link")
    expect(link_box).to_be_visible()
    return link_box.input_value()


def wait_done(receiver: Page, sender: Page) -> None:
    expect(receiver.locator("#receive-title")).to_have_text("Done", timeout=DONE_TIMEOUT)
    expect(sender.locator(".badge.done")).to_have_count(1, timeout=10_000)


def test_several_sizes_into_a_picked_folder(
    server: LocalServer, pages: Pages, browser_a, browser_b, big_file: Path, tmp_path: Path
) -> None:
    """0 B, 1 B, a size that is no multiple of the chunk size, and >= 64 MiB, in one
    offer; the receiver saves through the (stand-in) folder picker."""
    sources = [
        write_file(tmp_path / "empty.txt", 0),
        write_file(tmp_path / "one byte.bin", 1, seed=1),
        write_file(tmp_path / "odd size.dat", 2 * MIB + 12345, seed=2),
        big_file,
    ]
    sender = pages.open(browser_a)
    receiver = pages.open(browser_b)
    link = create_link(sender, server, sources)

    receiver.goto(link)
    files = receiver.get_by_role("list", name="Files")
    for source in sources:
        expect(files).to_contain_text(source.name)
    expect(receiver.locator("#receive-view .total")).to_contain_text("4 files")
    receiver.get_by_role("button", name="Accept").click()
    wait_done(receiver, sender)

    saved = opfs_files(receiver)
    for source in sources:
        assert saved[f"picked/{source.name}"] == [source.stat().st_size, sha256_file(source)]
    # Both sides show the same final digests.
    receiver_digests = receiver.locator(".digest code").all_inner_texts()
    assert len(receiver_digests) == 4
    assert sender.locator(".receiver .digest code").all_inner_texts() == receiver_digests


def test_opfs_worker_path_without_picker(
    server: LocalServer, pages: Pages, browser_a, browser_b, tmp_path: Path
) -> None:
    """No save picker: the receiver writes into OPFS from a worker, then hands the file to
    the browser's downloads (a stream through the Service Worker) and deletes its copy; the
    page said so before Accept, and says where the file went."""
    source = write_file(tmp_path / "report 2024.pdf", 3 * MIB + 7, seed=3)
    sender = pages.open(browser_a)
    receiver = pages.open(browser_b, picker=False)
    link = create_link(sender, server, [source])

    receiver.goto(link)
    expect(receiver.locator("#receive-plan")).to_contain_text(
        "received into this browser's storage")
    with receiver.expect_download(timeout=DONE_TIMEOUT) as download_info:
        receiver.get_by_role("button", name="Accept").click()
        wait_done(receiver, sender)
    download = download_info.value
    assert download.suggested_filename == source.name
    assert sha256_file(Path(download.path())) == sha256_file(source)

    # Handed over, so no copy stays behind in the browser's storage.
    assert opfs_files(receiver) == {}
    expect(receiver.locator("#saved-files li")).to_have_text(
        [f"{source.name}downloaded by the browser (see its downloads); no copy kept here"])
