"""The streamed download (webclient/js/storage/stream-sink.js + download-sw.js), in Chromium
and Firefox ESR: a page feeds a StreamSink, the Service Worker answers a download
navigation with that stream, and the browser saves the file into the test's download
directory. Checked: the saved bytes, the browsers' memory while 512 MiB go through, that
the page never runs ahead of what the download has consumed (a reader of our own that
reads slowly), and a clean error when the download is cancelled.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.fixtures.firefox import Firefox, wait_for_file
from tests.fixtures.servers import LocalServer

from .conftest import MIB, Pages

pytestmark = pytest.mark.browser

# Chunk k of a fed file: one fixed 1 MiB block with k in its first 4 bytes (little endian).
BLOCK_JS = """(() => {
  const b = new Uint8Array(1 << 20);
  for (let j = 0; j < b.length; j++) b[j] = (j * 131 + (j >> 9)) & 255;
  return b;
})()"""


def block() -> bytearray:
    return bytearray((j * 131 + (j >> 9)) & 255 for j in range(MIB))


def fed_digest(size: int) -> str:
    data, digest = block(), hashlib.sha256()
    for k, at in enumerate(range(0, size, MIB)):
        data[0:4] = k.to_bytes(4, "little")
        digest.update(data[: min(MIB, size - at)])
    return digest.hexdigest()


# Feeds `size` bytes into a StreamSink and finishes it; window.__feed holds the outcome
# ("ok" or the error message) so a test can act while it runs.
FEED = """
({ name, size }) => {
  window.__feed = (async () => {
    const { StreamSink } = await import("/js/storage/stream-sink.js");
    const block = BLOCK;
    const sink = new StreamSink(name, size);
    try {
      await sink.open();
      for (let k = 0, at = 0; at < size; k++, at += block.length) {
        const chunk = block.slice(0, Math.min(block.length, size - at));
        for (let i = 0; i < Math.min(4, chunk.length); i++) chunk[i] = (k >>> (8 * i)) & 255;
        await sink.write(at, chunk);
      }
      await sink.finish();
      return "ok";
    } catch (error) {
      return `${error.code}: ${error.message}`;
    } finally {
      await sink.release();
    }
  })();
}
""".replace("BLOCK", BLOCK_JS)

# Our own consumer instead of the browser's download: a frame inside the worker's scope
# (a client it controls) fetches the download URL and at first reads nothing. Once the
# page's writes have stopped moving (unchanged for 500 ms), or have passed `until` bytes,
# it either cancels the read, or reads everything. Returns where the writes stalled, the
# SHA-256 of every 1 MiB of what was read, and the writer's outcome.
SLOW_READER = """
async ({ size, cancel, until }) => {
  const { StreamSink, downloadWorker } = await import("/js/storage/stream-sink.js");
  await downloadWorker();
  const probe = document.createElement("iframe");
  probe.hidden = true;
  probe.src = "/js/storage/downloads/probe";
  await new Promise((resolve) => { probe.onload = resolve; document.body.append(probe); });
  let fetchIt;
  const started = new Promise((resolve) => {
    fetchIt = (url) => { probe.contentWindow.fetch(url).then(resolve); return () => probe.remove(); };
  });
  const sink = new StreamSink("slow.bin", size, fetchIt);
  const block = BLOCK;
  let fed = 0;
  const writer = (async () => {
    await sink.open();
    for (let k = 0, at = 0; at < size; k++, at += block.length) {
      const chunk = block.slice(0, Math.min(block.length, size - at));
      for (let i = 0; i < Math.min(4, chunk.length); i++) chunk[i] = (k >>> (8 * i)) & 255;
      await sink.write(at, chunk);
      fed = at + chunk.length;
    }
    await sink.finish();
  })().then(() => "ok", (error) => `${error.code}: ${error.message}`);
  const reader = (await started).body.getReader();
  let stalled = -1;
  for (let still = 0; still < 10 && fed < Math.min(size, until); ) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    still = fed === stalled ? still + 1 : 0;
    stalled = fed;
  }
  stalled = fed;
  const digests = [];
  if (cancel) {
    await reader.cancel("stop");
  } else {
    const hex = (b) => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, "0")).join("");
    const chunk = new Uint8Array(block.length);
    let filled = 0;
    for (;;) {
      const { done, value } = await reader.read();
      for (let at = 0; value && at < value.length; ) {
        const take = Math.min(chunk.length - filled, value.length - at);
        chunk.set(value.subarray(at, at + take), filled);
        filled += take;
        at += take;
        if (filled === chunk.length) {
          digests.push(hex(await crypto.subtle.digest("SHA-256", chunk)));
          filled = 0;
        }
      }
      if (done) break;
    }
    if (filled) digests.push(hex(await crypto.subtle.digest("SHA-256", chunk.subarray(0, filled))));
  }
  const outcome = await writer;
  await sink.release();
  return { stalled, digests, outcome };
}
""".replace("BLOCK", BLOCK_JS)

# With nobody reading, the page must stop: it may only fill what Chromium buffers between
# the worker and a fetch() reader (about 56 MiB) plus the worker's 2 queued chunks.
# Without the credits it would write the whole file. (Firefox's fetch() reads a response
# body into memory whether or not anyone reads it, so there only the cancel is checked.)
SLOW_SIZE = 128 * MIB + 3
STALL_LIMIT = 96 * MIB
# Fed as fast as the browser takes it (70-200 MB/s): every chunk is a 1 MiB buffer that
# becomes garbage once the download has it, and the JavaScript engines collect it in
# steps: the browsers' private memory peaks 100-180 MiB higher, a sawtooth that does not
# grow with the file (1 GiB peaked no higher). A page that did not wait for the download
# ran 536 MiB up in Firefox.
BIG = 512 * MIB + 5
MEMORY_LIMIT = 320 * MIB


def chunk_digests(size: int) -> list[str]:
    data, out = block(), []
    for k, at in enumerate(range(0, size, MIB)):
        data[0:4] = k.to_bytes(4, "little")
        out.append(hashlib.sha256(data[: min(MIB, size - at)]).hexdigest())
    return out


CANCELLED = "storage_error: the download of slow.bin was cancelled"


def private_bytes(pid: int) -> int:
    """USS: the process's private memory (clean + dirty), from smaps_rollup."""
    total = 0
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        for line in rollup:
            parts = line.split()
            if parts[0] in ("Private_Clean:", "Private_Dirty:"):
                total += int(parts[1]) * 1024
    return total


class TreeMemory:
    """Peak private memory of a set of process trees (sum), sampled every 0.1 s in a thread."""

    def __init__(self, roots: list[psutil.Process]) -> None:
        self.roots = roots
        self.start = self.sample()
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def sample(self) -> int:
        total = 0
        for root in self.roots:
            try:
                processes = [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
            for process in processes:
                try:
                    total += private_bytes(process.pid)
                except OSError:
                    pass
        return total

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self.peak = max(self.peak, self.sample())

    def growth(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak - self.start


def chromium_roots() -> list[psutil.Process]:
    """Every Chromium browser process started under this test run."""
    roots = []
    for process in psutil.Process().children(recursive=True):
        try:  # a renderer of a context just closed may be a zombie not yet reaped
            if process.name().startswith("chrom") and "--type=" not in " ".join(process.cmdline()):
                roots.append(process)
        except psutil.Error:
            pass
    return roots


# -- Chromium (Playwright) -----------------------------------------------------------------


def test_chromium_streams_512_mib_to_the_downloads(server: LocalServer, pages: Pages, browser_b) -> None:
    page = pages.open(browser_b, picker=False)
    page.goto(server.base + "/")
    memory = TreeMemory(chromium_roots())
    with page.expect_download(timeout=60_000) as info:
        page.evaluate(FEED, {"name": "streamed é.bin", "size": BIG})
    assert page.evaluate("() => window.__feed") == "ok"
    download = info.value
    saved = Path(download.path())
    growth = memory.growth()
    assert download.suggested_filename == "streamed é.bin"
    assert saved.stat().st_size == BIG
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == fed_digest(BIG)
    assert growth < MEMORY_LIMIT, f"browsers grew by {growth / MIB:.0f} MiB"


def test_chromium_cancelled_download_fails_the_writes(server: LocalServer, pages: Pages, browser_b) -> None:
    page = pages.open(browser_b, picker=False)
    page.goto(server.base + "/")
    with page.expect_download(timeout=60_000) as info:
        page.evaluate(FEED, {"name": "cancelled.bin", "size": 4096 * MIB})
    info.value.cancel()
    outcome = page.evaluate("() => window.__feed")
    assert outcome == "storage_error: the download of cancelled.bin was cancelled"


def test_chromium_page_waits_for_the_reader(server: LocalServer, pages: Pages, browser_b) -> None:
    page = pages.open(browser_b, picker=False)
    page.goto(server.base + "/")
    result = page.evaluate(SLOW_READER, {"size": SLOW_SIZE, "cancel": False, "until": SLOW_SIZE})
    assert result["outcome"] == "ok"
    assert 0 < result["stalled"] <= STALL_LIMIT, f"the page wrote {result['stalled'] / MIB:.1f} MiB unread"
    assert result["digests"] == chunk_digests(SLOW_SIZE)
    result = page.evaluate(SLOW_READER, {"size": SLOW_SIZE, "cancel": True, "until": SLOW_SIZE})
    assert result["stalled"] < SLOW_SIZE and result["outcome"] == CANCELLED


def test_unknown_download_is_a_plain_404(server: LocalServer, pages: Pages, browser_b) -> None:
    """A download URL outlives nothing: after a reload, or used twice, it is refused."""
    page = pages.open(browser_b, picker=False)
    page.goto(server.base + "/")
    page.evaluate("async () => (await import('/js/storage/stream-sink.js')).downloadWorker()")
    response = page.goto(server.base + "/js/storage/downloads/nope/file.bin")
    assert response is not None and response.status == 404
    assert "no longer available" in page.content()


# -- Firefox ESR (puppeteer-core over WebDriver BiDi) ------------------------------------------


@pytest.fixture(scope="module")
def fx_downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stream-downloads")


# Firefox stops a Service Worker after this long without an event (30 s by default; a
# stream it is answering does not count, nor do messages on its MessagePort). Shortened
# so that a test can outlast it: the page's keepalive (every 5 s) must hold the worker.
SW_IDLE_MS = 8000


@pytest.fixture(scope="module")
def firefox(fx_downloads: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Firefox]:
    with Firefox(download_dir=fx_downloads, log=tmp_path_factory.mktemp("ff") / "driver.log",
                 prefs={"dom.serviceWorkers.idle_timeout": SW_IDLE_MS}) as browser:
        yield browser


def fx_page(firefox: Firefox, server: LocalServer) -> Any:
    page = firefox.new_page()
    page.goto(server.base + "/")
    return page


def test_firefox_streams_512_mib_to_the_downloads(
    server: LocalServer, firefox: Firefox, fx_downloads: Path
) -> None:
    page = fx_page(firefox, server)
    memory = TreeMemory(firefox.processes()[:1])
    page.evaluate(FEED, {"name": "streamed in firefox.bin", "size": BIG})
    assert page.evaluate("() => window.__feed", timeout=120) == "ok", page.logs()
    saved = wait_for_file(fx_downloads / "streamed in firefox.bin", BIG, timeout=60)
    growth = memory.growth()
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == fed_digest(BIG)
    assert growth < MEMORY_LIMIT, f"Firefox grew by {growth / MIB:.0f} MiB"
    firefox.call("closeContext", context=page.context)


def test_firefox_reader_cancel_reaches_the_page(server: LocalServer, firefox: Firefox) -> None:
    """A 4 GiB download cancelled by its reader after 8 MiB: the page's next write fails."""
    page = fx_page(firefox, server)
    result = page.evaluate(SLOW_READER, {"size": 4096 * MIB, "cancel": True, "until": 8 * MIB})
    assert result["stalled"] < 4096 * MIB and result["outcome"] == CANCELLED, page.logs()
    firefox.call("closeContext", context=page.context)


# One 1 MiB chunk a second (of byte k for chunk k), for `seconds` seconds.
SLOW_FEED = """
({ seconds }) => {
  window.__slow = (async () => {
    const { StreamSink } = await import("/js/storage/stream-sink.js");
    const sink = new StreamSink("kept alive.bin", seconds << 20);
    try {
      await sink.open();
      for (let k = 0; k < seconds; k++) {
        await new Promise((resolve) => setTimeout(resolve, 1000));
        await sink.write(k << 20, new Uint8Array(1 << 20).fill(k));
      }
      await sink.finish();
      return "ok";
    } catch (error) {
      return `${error.code}: ${error.message}`;
    } finally {
      await sink.release();
    }
  })();
}
"""


def test_firefox_download_outlives_the_worker_idle_timeout(
    server: LocalServer, firefox: Firefox, fx_downloads: Path
) -> None:
    """A download fed slowly for longer than the worker's idle timeout completes."""
    seconds = SW_IDLE_MS // 1000 + 4
    page = fx_page(firefox, server)
    page.evaluate(SLOW_FEED, {"seconds": seconds})
    assert page.evaluate("() => window.__slow", timeout=60) == "ok"
    saved = wait_for_file(fx_downloads / "kept alive.bin", seconds * MIB, timeout=30)
    assert saved.read_bytes() == b"".join(bytes([k]) * MIB for k in range(seconds))
    firefox.call("closeContext", context=page.context)
