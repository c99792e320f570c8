"""Firefox ESR (Debian's, through puppeteer-core over WebDriver BiDi) against the other
implementations: a Firefox receiver of a Chromium sender, and a Firefox sender to
`peerbeam receive`. Firefox has no save picker, so the receiver takes the origin private
file system path (a worker with a sync access handle) and then hands the file over as a
streamed download, which Firefox saves into this module's download directory. (Firefox's
storage plans: test_firefox_storage.py.)

One Firefox process for the module; every test has its own browser context.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.fixtures.cli import PEERBEAM, receive
from tests.fixtures.firefox import Firefox, FirefoxPage, wait_for_file
from tests.fixtures.servers import LocalServer

from .conftest import MIB, OPFS_FILES, Pages, sha256_file, write_file
from .test_transfer import DONE_TIMEOUT, create_link

pytestmark = pytest.mark.browser

ACCEPT = "::-p-aria([name='Accept'][role='button'])"
CREATE_LINK = "::-p-aria([name='Create link'][role='button'])"
RECEIVE_DONE = "() => document.querySelector('#receive-title')?.textContent === 'Done'"
SEND_DONE = "() => document.querySelectorAll('.badge.done').length === 1"
TEXTS = "(s) => [...document.querySelectorAll(s)].map((e) => e.textContent)"


@pytest.fixture(scope="module")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("firefox-downloads")


@pytest.fixture(scope="module")
def firefox(downloads: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Firefox]:
    with Firefox(download_dir=downloads, log=tmp_path_factory.mktemp("firefox") / "driver.log") as browser:
        yield browser


@pytest.fixture
def fx_pages(firefox: Firefox, request: pytest.FixtureRequest) -> Iterator[list[FirefoxPage]]:
    """Pages opened by a test; their console is printed when the test fails."""
    opened: list[FirefoxPage] = []
    yield opened
    report = getattr(request.node, "rep_call", None)
    for page in opened:
        if report is not None and report.failed:
            print("\n".join(page.logs()[-40:]))
        firefox.call("closeContext", context=page.context)


def test_firefox_receives_from_chromium(
    server: LocalServer, pages: Pages, browser_a, firefox: Firefox, fx_pages: list[FirefoxPage],
    downloads: Path, tmp_path: Path,
) -> None:
    source = write_file(tmp_path / "to firefox.bin", 3 * MIB + 7, seed=31)
    sender = pages.open(browser_a)
    link = create_link(sender, server, [source])

    receiver = firefox.new_page()
    fx_pages.append(receiver)
    receiver.goto(link)
    receiver.click(ACCEPT)
    receiver.wait_for(RECEIVE_DONE, timeout=DONE_TIMEOUT / 1000)
    expect(sender.locator(".badge.done")).to_have_count(1, timeout=10_000)

    # The download Firefox saved; the private copy it was made from is gone.
    saved = wait_for_file(downloads / source.name, source.stat().st_size, timeout=30)
    assert sha256_file(saved) == sha256_file(source)
    assert receiver.evaluate(OPFS_FILES) == {}
    assert receiver.evaluate(TEXTS, "#saved-files .where") == [
        "downloaded by the browser (see its downloads); no copy kept here"]
    shown = receiver.evaluate(TEXTS, ".digest code")
    assert shown == sender.locator(".receiver .digest code").all_inner_texts()
    # Named for what it is, and `peerbeam digest` prints the same value for the source.
    assert receiver.evaluate(TEXTS, ".digest + .hint")[0].startswith("SHA-256 over each file's 1 MiB chunk")
    printed = subprocess.run([*PEERBEAM, "digest", str(source)], capture_output=True, text=True, check=True)
    assert f"peerbeam-digest ({source}) = {shown[0]}" in printed.stdout.splitlines()


def test_firefox_sends_to_cli(
    server: LocalServer, firefox: Firefox, fx_pages: list[FirefoxPage], tmp_path: Path
) -> None:
    sources = [write_file(tmp_path / "from firefox.mkv", 4 * MIB + 3, seed=32),
               write_file(tmp_path / "empty.txt", 0)]
    sender = firefox.new_page()
    fx_pages.append(sender)
    sender.goto(server.base + "/")
    sender.upload("#file-input", sources)
    sender.fill("#password", "firefox pass")
    sender.click(CREATE_LINK)
    link = sender.wait_for("() => document.querySelector('#share-link')?.value")

    result = receive(link, tmp_path / "out", "--password", "firefox pass", timeout=120)
    assert result.returncode == 0, result.stderr
    for source in sources:
        assert sha256_file(tmp_path / "out" / source.name) == sha256_file(source)
    sender.wait_for(SEND_DONE, timeout=10)
    shown = sender.evaluate(TEXTS, ".receiver .digest code")
    assert len(shown) == 2
    for digest in shown:
        assert digest in result.stderr
