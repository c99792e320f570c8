"""Playwright fixtures for the web client: Debian's Chromium, two browser processes,
the local server, and a stand-in for the save picker (headless Chromium rejects it).

Browsers are launched once for this package of tests (launching costs seconds); every
test gets fresh contexts, so storage (OPFS, IndexedDB, sessionStorage) never leaks between
tests. Package scope, not session: Playwright's sync API keeps an event loop running in the
main thread while it is open, and the asyncio tests that run after this package need it gone.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.fixtures.servers import LocalServer

CHROMIUM = os.environ.get("PEERBEAM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    # Lets Chromium pair with the Python peer, which offers only 127.0.0.1 in tests.
    "--allow-loopback-in-peer-connection",
]
MIB = 1024 * 1024

# showSaveFilePicker / showDirectoryPicker answered with OPFS handles under /picked.
PICKER_TO_OPFS = """
(() => {
  const picked = async () =>
    (await navigator.storage.getDirectory()).getDirectoryHandle("picked", { create: true });
  window.showSaveFilePicker = async (options = {}) =>
    (await picked()).getFileHandle(options.suggestedName || "download", { create: true });
  window.showDirectoryPicker = async () => picked();
})();
"""
# No pickers at all: the web client must take the OPFS worker path.
NO_PICKER = """
(() => {
  for (const name of ["showSaveFilePicker", "showDirectoryPicker"]) {
    delete window[name];
    if (name in window) Object.defineProperty(window, name, { value: undefined, configurable: true });
  }
})();
"""

# Every file in this origin's OPFS: path -> [size, sha256 hex], hashed in the page.
OPFS_FILES = """
async () => {
  const out = {};
  const hex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");
  async function walk(dir, prefix) {
    for await (const [name, handle] of dir.entries()) {
      const path = prefix + name;
      if (handle.kind === "directory") await walk(handle, path + "/");
      else {
        const file = await handle.getFile();
        out[path] = [file.size, hex(await crypto.subtle.digest("SHA-256", await file.arrayBuffer()))];
      }
    }
  }
  await walk(await navigator.storage.getDirectory(), "");
  return out;
}
"""


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    instance = LocalServer(tmp_path_factory.mktemp("browser-server"))
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


def _launch(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


@pytest.fixture(scope="package")
def browser_a(playwright: Playwright) -> Iterator[Browser]:
    """The sender's browser process."""
    browser = _launch(playwright)
    yield browser
    browser.close()


@pytest.fixture(scope="package")
def browser_b(playwright: Playwright) -> Iterator[Browser]:
    """The receiver's browser: a second, separate process."""
    browser = _launch(playwright)
    yield browser
    browser.close()


class Pages:
    """Opens pages in fresh contexts and collects console errors for failure reports."""

    def __init__(self) -> None:
        self.contexts: list[BrowserContext] = []
        self.console: list[str] = []

    def open(self, browser: Browser, picker: bool = True, **context_args: Any) -> Page:
        context = browser.new_context(accept_downloads=True, **context_args)
        context.add_init_script(PICKER_TO_OPFS if picker else NO_PICKER)
        self.contexts.append(context)
        page = context.new_page()
        page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        return page

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def pages(request: pytest.FixtureRequest) -> Iterator[Pages]:
    opened = Pages()
    yield opened
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print("\n".join(opened.console[-60:]))
    opened.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def write_file(path: Path, size: int, seed: int = 0) -> Path:
    """A file of `size` deterministic, non-repeating-looking bytes."""
    block = hashlib.sha256(f"peerbeam-{seed}".encode()).digest() * (MIB // 32)
    with open(path, "wb") as out:
        remaining, counter = size, 0
        while remaining:
            piece = bytes([counter & 0xFF]) + block[1 : min(MIB, remaining)]
            out.write(piece[:remaining])
            remaining -= min(MIB, remaining)
            counter += 1
    return path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        for block in iter(lambda: source.read(MIB), b""):
            digest.update(block)
    return digest.hexdigest()


@pytest.fixture(scope="package")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """64 MiB + 3 bytes: at least 64 MiB, and not a multiple of the chunk size."""
    return write_file(tmp_path_factory.mktemp("big") / "big-video.mkv", 64 * MIB + 3, seed=64)


def opfs_files(page: Page) -> dict[str, list[Any]]:
    return page.evaluate(OPFS_FILES)
