"""Where a Firefox receiver puts files too large for its storage, and a private window
(docs/webclient.md, "Where the files go"). Firefox allows a site a share of its storage
(about 10 GiB) unless the site is granted persistent storage; these tests shrink that
limit with `dom.quotaManager.temporaryStorage.fixedLimit` (200 MiB: 40 MiB for a site
without persistent storage, 200 MiB with it) and answer Firefox's persistent-storage
question with its testing prefs (`dom.storageManager.prompt.testing[.allow]`), so a 50 MiB
file plays the part of a 12 GiB one. Each test has its own Firefox (prefs are set at launch);
the sender is Chromium, with its default connections (chunks arrive out of order).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.fixtures.firefox import Firefox, FirefoxPage, wait_for_file
from tests.fixtures.servers import LocalServer

from .conftest import MIB, OPFS_FILES, Pages, sha256_file, write_file
from .test_firefox import ACCEPT, RECEIVE_DONE, TEXTS
from .test_transfer import DONE_TIMEOUT, create_link

pytestmark = pytest.mark.browser

SMALL_QUOTA = {"dom.quotaManager.temporaryStorage.fixedLimit": 200 * 1024}  # KiB
SIZE = 50 * MIB + 5  # over the 40 MiB a site gets without persistent storage
PLAN = "() => document.querySelector('#receive-plan')?.textContent"
ACCEPT_DISABLED = "() => document.querySelector('.actions .primary')?.disabled"


class Run:
    """One Firefox with `prefs`, downloading into its own folder."""

    def __init__(self, tmp: Path, prefs: dict[str, Any]) -> None:
        self.downloads = tmp / "downloads"
        self.downloads.mkdir()
        self.firefox = Firefox(download_dir=self.downloads, prefs=prefs, log=tmp / "driver.log")
        self.pages: list[FirefoxPage] = []

    def page(self) -> FirefoxPage:
        page = self.firefox.new_page()
        self.pages.append(page)
        return page


@pytest.fixture
def firefox_with(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    runs: list[Run] = []

    def launch(prefs: dict[str, Any]) -> Run:
        run = Run(tmp_path, prefs)
        runs.append(run)
        return run

    yield launch
    report = getattr(request.node, "rep_call", None)
    for run in runs:
        if report is not None and report.failed:
            for page in run.pages:
                print("\n".join(page.logs()[-40:]))
        run.firefox.close()


def receive(run: Run, sender: Any, link: str, plan: str) -> FirefoxPage:
    receiver = run.page()
    receiver.goto(link)
    shown = receiver.wait_for(PLAN, timeout=30)
    assert plan in shown, shown
    receiver.click(ACCEPT)
    receiver.wait_for(RECEIVE_DONE, timeout=DONE_TIMEOUT / 1000)
    expect(sender.locator(".badge.done")).to_have_count(1, timeout=10_000)
    return receiver


def test_persistent_storage_takes_a_file_over_the_quota(
    server: LocalServer, pages: Pages, browser_a: Any, firefox_with: Any, tmp_path: Path
) -> None:
    """Too large for the site's share: the page says before Accept that it will ask for
    persistent storage; granted, the file goes through the private file system (resumable),
    is handed to the downloads, and no copy stays."""
    run = firefox_with({**SMALL_QUOTA, "dom.storageManager.prompt.testing": True,
                        "dom.storageManager.prompt.testing.allow": True})
    source = write_file(tmp_path / "over the quota.bin", SIZE, seed=41)
    sender = pages.open(browser_a)
    receiver = receive(run, sender, create_link(sender, server, [source]),
                       "unless you allow it to keep data permanently. Accept asks for that")
    assert receiver.evaluate("() => navigator.storage.persisted()") is True
    saved = wait_for_file(run.downloads / source.name, SIZE, timeout=30)
    assert sha256_file(saved) == sha256_file(source)
    assert receiver.evaluate(OPFS_FILES) == {}
    assert receiver.evaluate(TEXTS, "#saved-files .where") == [
        "downloaded by the browser (see its downloads); no copy kept here"]


def test_refused_persistent_storage_streams_the_download(
    server: LocalServer, pages: Pages, browser_a: Any, firefox_with: Any, tmp_path: Path
) -> None:
    """Persistent storage refused: the file is streamed into the downloads as it arrives
    (chunks of several connections put in order), nothing is kept in the browser."""
    run = firefox_with({**SMALL_QUOTA, "dom.storageManager.prompt.testing": True,
                        "dom.storageManager.prompt.testing.allow": False})
    source = write_file(tmp_path / "streamed.bin", SIZE, seed=42)
    sender = pages.open(browser_a)
    receiver = receive(run, sender, create_link(sender, server, [source]),
                       "Otherwise they are downloaded as they arrive")
    saved = wait_for_file(run.downloads / source.name, SIZE, timeout=30)
    assert sha256_file(saved) == sha256_file(source)
    assert receiver.evaluate(OPFS_FILES) == {}
    assert receiver.evaluate(TEXTS, "#saved-files .where") == [
        "downloaded by the browser (see its downloads)"]


def test_private_window_streams_and_says_so_before_accept(
    server: LocalServer, pages: Pages, browser_a: Any, firefox_with: Any, tmp_path: Path
) -> None:
    """A private window (Firefox in permanent private browsing) refuses the private file
    system (SecurityError); the page says before Accept that the file is downloaded as it
    arrives and cannot resume after a reload, then receives it."""
    run = firefox_with({"browser.privatebrowsing.autostart": True})
    source = write_file(tmp_path / "private.bin", 3 * MIB + 1, seed=43)
    sender = pages.open(browser_a)
    receive(run, sender, create_link(sender, server, [source]),
            "this window does not let the site store files). This cannot resume after a reload")
    saved = wait_for_file(run.downloads / source.name, source.stat().st_size, timeout=30)
    assert sha256_file(saved) == sha256_file(source)


def test_private_window_without_service_workers_is_told_before_accept(
    server: LocalServer, pages: Pages, browser_a: Any, firefox_with: Any, tmp_path: Path
) -> None:
    """Neither storage nor Service Workers: said before Accept, which stays disabled."""
    run = firefox_with({"browser.privatebrowsing.autostart": True, "dom.serviceWorkers.enabled": False})
    source = write_file(tmp_path / "nowhere.bin", MIB, seed=44)
    sender = pages.open(browser_a)
    receiver = run.page()
    receiver.goto(create_link(sender, server, [source]))
    shown = receiver.wait_for(PLAN, timeout=30)
    assert shown.startswith("This window cannot save the file") and "normal window" in shown
    assert receiver.evaluate(ACCEPT_DISABLED) is True
