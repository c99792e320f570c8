"""A receiver tab reloaded in the middle of a transfer resumes into the same file."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.fixtures.servers import LocalServer

from .conftest import Pages, opfs_files, sha256_file
from .test_transfer import DONE_TIMEOUT, create_link

pytestmark = pytest.mark.browser

RELOAD_AT = """(percent) => {
  const timer = setInterval(() => {
    if ((document.querySelector('#receive-progress')?.value ?? 0) >= percent) {
      clearInterval(timer);
      location.reload();
    }
  }, 2);
}"""

# A function, not an expression: the page's CSP (no 'unsafe-eval') refuses eval'd strings.
AT_LEAST = "(percent) => (document.querySelector('#receive-progress')?.value ?? 0) >= percent"


def test_receiver_reload_midway_resumes(
    server: LocalServer, pages: Pages, browser_a, browser_b, big_file: Path
) -> None:
    sender = pages.open(browser_a)
    # The OPFS worker path flushes every chunk, so every acknowledged chunk survives.
    receiver = pages.open(browser_b, picker=False)
    link = create_link(sender, server, [big_file], one_time=True)

    receiver.goto(link)
    # Loopback is fast: the page reloads itself the moment 20 % are saved, which a
    # round trip through Playwright would overshoot.
    receiver.evaluate(RELOAD_AT, 20)
    with receiver.expect_navigation(timeout=30_000):
        receiver.get_by_role("button", name="Accept").click()

    # The reloaded tab knows the partial file and offers to resume it (same peer id, so
    # even this one-time link lets it back in).
    expect(receiver.locator("#receive-status")).to_contain_text("Accept to resume", timeout=20_000)
    with receiver.expect_download(timeout=DONE_TIMEOUT) as download_info:
        receiver.get_by_role("button", name="Accept").click()
        # It continued from what it held instead of starting over.
        receiver.wait_for_function(AT_LEAST, arg=5, timeout=10_000)
        expect(receiver.locator("#receive-title")).to_have_text("Done", timeout=DONE_TIMEOUT)
    assert sha256_file(Path(download_info.value.path())) == sha256_file(big_file)
    # Handed to the downloads: the browser's own copy is gone.
    assert opfs_files(receiver) == {}
    expect(sender.locator(".badge.done")).to_have_count(1, timeout=10_000)


def test_picked_file_staged_resumes_after_a_reload(
    server: LocalServer, pages: Pages, browser_a, browser_b, big_file: Path
) -> None:
    """A picked file is received into the private file system first (every written chunk
    is held, no checkpoint to wait for), so a reload at 20 % of 64 MiB resumes, and the
    end copies it into the picked file once and deletes the staged copy. (Written straight
    with checkpoints, nothing of it would be held before 64 MiB.)"""
    sender = pages.open(browser_a)
    receiver = pages.open(browser_b)  # the save picker answers with /picked/<name>
    link = create_link(sender, server, [big_file])

    receiver.goto(link)
    expect(receiver.locator("#receive-plan")).to_contain_text("then copied to the place you pick")
    receiver.evaluate(RELOAD_AT, 20)
    with receiver.expect_navigation(timeout=30_000):
        receiver.get_by_role("button", name="Accept").click()

    expect(receiver.locator("#receive-status")).to_contain_text("Accept to resume", timeout=20_000)
    receiver.get_by_role("button", name="Accept").click()
    expect(receiver.locator("#receive-title")).to_have_text("Done", timeout=DONE_TIMEOUT)
    expect(receiver.locator("#saved-files li")).to_have_text([f"{big_file.name}saved to the file you picked"])
    assert opfs_files(receiver) == {
        f"picked/{big_file.name}": [big_file.stat().st_size, sha256_file(big_file)]}
