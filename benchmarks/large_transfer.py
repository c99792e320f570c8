"""Large files: throughput over time, stalls, disk bytes written, extra disk space, memory.

    python -m benchmarks.large_transfer [--only NAME ...] [--browser-gib 8] [--cli-gib 20]

`make bench-large` (not part of `make bench`: at full size it needs about an hour and
≥ 60 GB free). Scenarios, each on one `peerbeam serve` on 127.0.0.1:

* ``chromium-staged``: the web client, Chromium → Chromium, saved through the save picker
  (docs/webclient.md, "Picker path at 100 GB"): received into the origin private file
  system through the worker's sync access handle, then copied once into the picked file.
  Headless Chromium cannot answer a picker, and a handle to an arbitrary local file (from a
  drop) needs a write-permission prompt it cannot answer either, so the picker returns a
  handle to a file in the receiver's origin private file system (the tests' stand-in).
  Its `FileSystemWritableFileStream` behaves as for a local file (swap file, rename on
  close) except that Chrome skips, for private files, the Safe Browsing hash of the whole
  file it computes on every close of a local one.
* ``chromium-picker``: the same, written straight into the picked file with checkpoints
  (the plan's path for files the private file system cannot stage: an init script makes
  `navigator.storage.estimate()` report no free quota, so the plan takes it here).
* ``firefox-persist``: Chromium → Firefox ESR with persistent storage granted by a profile
  preference (Firefox's testing prefs answer its question): the web client writes the
  origin private file system past the ~10 GiB a site gets without it, then hands the file
  to the downloads by a stream and deletes its copy.
* ``firefox-page-stream``: Chromium → Firefox ESR with persistent storage refused: a file
  over the site's quota goes to the streamed download as it arrives.
* ``firefox-opfs``: Chromium → Firefox ESR with its default prefs (a file that fits the
  quota): private file system, then the downloads.
* ``firefox-stream``: the streamed download alone (`js/storage/stream-sink.js`): a Firefox
  page feeds N GiB through the Service Worker into Firefox's downloads as fast as they are
  taken.
* ``cli``: `peerbeam send` → `peerbeam receive`.

Recorded per scenario, sampled every 0.5 s: bytes received (browsers: counted in the page
on every binary data-channel message; CLI and stream: the file on disk), disk space used by
everything the receiver keeps (browser profile and downloads; the CLI's output folder) and
the extra beyond the bytes received, `write_bytes` and `cancelled_write_bytes` of
/proc/PID/io summed over the receiving process tree (each process's last value, so
processes that exit still count), and memory (PSS of the receiving tree's processes; the
CLI's RSS). In the browser pages also: every gap over 200 ms between two binary messages
(the longest is the longest stall: the sender's window is 16 chunks, so a receiver that
cannot write stops the stream within 16 MiB), and, for the picker, the duration of every
`FileSystemWritableFileStream.close()` and `createWritable()` (a checkpoint is one of
each). Every received file is checked byte for byte. Writes
benchmarks/results/large_transfer.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import psutil
from playwright.sync_api import expect, sync_playwright

from benchmarks.browser_transfer import Side, smaps
from benchmarks.procs import ENV, PYTHON, REPO, RESULTS, save_result
from tests.browser.conftest import write_file
from tests.fixtures.firefox import Firefox
from tests.fixtures.servers import LocalServer

MiB = 1024 * 1024
GiB = 1024 * MiB
SCENARIOS = ("chromium-staged", "chromium-picker", "firefox-persist", "firefox-page-stream", "firefox-opfs",
             "firefox-stream", "cli")
# `make bench-large`: the paths the receiving page takes for large files.
DEFAULT = ("chromium-staged", "firefox-persist", "firefox-page-stream", "cli")
# Firefox answers its persistent-storage question itself (its testing prefs).
PERSIST = {"dom.storageManager.prompt.testing": True, "dom.storageManager.prompt.testing.allow": True}
REFUSE = {"dom.storageManager.prompt.testing": True, "dom.storageManager.prompt.testing.allow": False}
# The plan stages a picked file only when the private file system can hold it: "no room".
NO_QUOTA = """
(() => {
  navigator.storage.estimate = async () => ({ quota: 1, usage: 1 });
})();
"""
SAMPLE_S = 0.5
GAP_MS = 200

# In the receiving page: bytes of binary data-channel messages, gaps between them, and
# the time taken by writable-stream commits (close) and re-opens (createWritable).
PROBE = """
(() => {
  const p = (window.__probe = { bytes: 0, last: null, gaps: [], commits: [], opens: [] });
  const now = () => performance.timeOrigin + performance.now();
  const slot = Object.getOwnPropertyDescriptor(RTCDataChannel.prototype, "onmessage");
  Object.defineProperty(RTCDataChannel.prototype, "onmessage", {
    configurable: true,
    get() { return slot.get.call(this); },
    set(handler) {
      slot.set.call(this, handler && function (event) {
        if (typeof event.data !== "string") {
          const t = now();
          if (p.last !== null && t - p.last > GAP_MS) p.gaps.push([Math.round(t - p.last), p.bytes]);
          p.last = t;
          p.bytes += event.data.byteLength;
        }
        return handler.call(this, event);
      });
    },
  });
  const timed = (proto, name, into) => {
    if (!proto || !proto[name]) return;
    const original = proto[name];
    proto[name] = async function (...args) {
      const start = now();
      try { return await original.apply(this, args); }
      finally { into.push([Math.round(now() - start), p.bytes]); }
    };
  };
  timed(self.FileSystemWritableFileStream?.prototype, "close", p.commits);
  timed(self.FileSystemFileHandle?.prototype, "createWritable", p.opens);
})();
""".replace("GAP_MS", str(GAP_MS))
PROBE_STATE = ("() => ({ ...window.__probe, done: document.querySelector('#receive-title')?.textContent, "
               "now: performance.timeOrigin + performance.now() })")

# Feeds a StreamSink as fast as the download takes it; progress in window.__fed.
STREAM_FEED = """
({ name, size }) => {
  const p = (window.__fed = { bytes: 0, last: null, gaps: [], outcome: null });
  const now = () => performance.timeOrigin + performance.now();
  (async () => {
    const { StreamSink } = await import("/js/storage/stream-sink.js");
    const block = new Uint8Array(1 << 20);
    for (let j = 0; j < block.length; j++) block[j] = (j * 131 + (j >> 9)) & 255;
    const sink = new StreamSink(name, size);
    try {
      await sink.open();
      for (let k = 0, at = 0; at < size; k++, at += block.length) {
        const chunk = block.slice(0, Math.min(block.length, size - at));
        for (let i = 0; i < Math.min(4, chunk.length); i++) chunk[i] = (k >>> (8 * i)) & 255;
        await sink.write(at, chunk);
        const t = now();
        if (p.last !== null && t - p.last > GAP_MS) p.gaps.push([Math.round(t - p.last), p.bytes]);
        p.last = t;
        p.bytes = at + chunk.length;
      }
      await sink.finish();
      p.outcome = "ok";
    } catch (error) {
      p.outcome = `${error.code}: ${error.message}`;
    } finally {
      await sink.release();
    }
  })();
}
""".replace("GAP_MS", str(GAP_MS))


def fed_block() -> bytearray:
    return bytearray((j * 131 + (j >> 9)) & 255 for j in range(MiB))


def fed_sha256(size: int) -> str:
    data, digest = fed_block(), hashlib.sha256()
    for k, at in enumerate(range(0, size, MiB)):
        data[0:4] = k.to_bytes(4, "little")
        digest.update(data[: min(MiB, size - at)])
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while block := source.read(8 * MiB):
            digest.update(block)
    return digest.hexdigest()


def usage(paths: Iterable[Path]) -> int:
    """Disk space taken by every file under `paths` (allocated blocks)."""
    total = 0
    for root in paths:
        for directory, _, files in os.walk(root):
            for name in files:
                try:
                    total += os.lstat(os.path.join(directory, name)).st_blocks * 512
                except OSError:
                    pass
    return total


def tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


class TreeMeter:
    """/proc/PID/io and memory of a process tree; each process's last reading counts."""

    def __init__(self, pid: int, memory: str = "pss") -> None:
        self.pid = pid
        self.memory = memory
        self.first: dict[int, tuple[int, int]] = {}
        self.last: dict[int, tuple[int, int]] = {}
        self.sample()
        self.first = dict(self.last)

    def sample(self) -> int:
        """Reads every process's I/O counters; returns the tree's memory now (bytes)."""
        memory = 0
        for process in tree(self.pid):
            try:
                with open(f"/proc/{process.pid}/io") as io:
                    fields = dict(line.split(": ") for line in io.read().splitlines())
                self.last[process.pid] = (int(fields["write_bytes"]), int(fields["cancelled_write_bytes"]))
                memory += (smaps(process.pid)[self.memory] if self.memory == "pss"
                           else process.memory_info().rss)
            except (OSError, psutil.Error, KeyError):
                pass
        return memory

    def written(self) -> tuple[int, int]:
        """(write_bytes, cancelled_write_bytes) since the meter was made."""
        write = sum(v[0] - self.first.get(pid, (0, 0))[0] for pid, v in self.last.items())
        cancelled = sum(v[1] - self.first.get(pid, (0, 0))[1] for pid, v in self.last.items())
        return write, cancelled


class Run:
    """The samples of one scenario."""

    def __init__(self, meter: TreeMeter, dirs: list[Path]) -> None:
        self.meter = meter
        self.dirs = dirs
        self.start = time.monotonic()
        self.base_usage = usage(dirs)
        self.base_memory = meter.sample()
        self.samples: list[list[float]] = []  # [t, received, extra disk, memory]

    def sample(self, received: int) -> None:
        memory = self.meter.sample()
        extra = usage(self.dirs) - self.base_usage - received
        self.samples.append([round(time.monotonic() - self.start, 2), received, extra, memory])

    def until(self, progress: Callable[[], tuple[int, bool]], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            received, finished = progress()
            self.sample(received)
            if finished:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"not done after {timeout:.0f} s ({received} bytes)")
            time.sleep(SAMPLE_S)

    def report(self, size: int, seconds: float, gaps: list[list[float]]) -> dict[str, Any]:
        write, cancelled = self.meter.written()
        gaps = sorted(gaps, reverse=True)
        return {
            "size_bytes": size,
            "seconds": round(seconds, 1),
            "mb_s": round(size / 1e6 / seconds, 2),
            "longest_stall_ms": gaps[0][0] if gaps else 0,
            "stalls": gaps[:10],  # [ms, bytes received when it ended]
            "write_bytes": write,
            "cancelled_write_bytes": cancelled,
            # Dirtied in the page cache ÷ size; and net of what was deleted or truncated
            # before it reached the disk (a small file's superseded copies never do).
            "amplification": round(write / size, 3),
            "net_amplification": round((write - cancelled) / size, 3),
            "peak_extra_disk_bytes": max(s[2] for s in self.samples),
            **memory_growth(self.samples),
            "samples": self.samples,
        }


def memory_growth(samples: list[list[float]]) -> dict[str, float]:
    """Memory at the first byte received (a process that just started, like the CLI,
    is still loading before that) and its peak growth after."""
    start = next((s[3] for s in samples if s[1] > 0), samples[0][3])
    return {"memory_start_bytes": start,
            "memory_peak_growth_bytes": max(s[3] for s in samples if s[1] > 0) - start}


def receive_in_page(state: Callable[[], dict[str, Any]]) -> Callable[[], tuple[int, bool]]:
    def progress() -> tuple[int, bool]:
        now = state()
        return int(now["bytes"]), now["done"] == "Done"
    return progress


def send_from_chromium(sender: Side, server: LocalServer, source: Path) -> tuple[Any, str]:
    page = sender.page()
    page.goto(server.base + "/")
    page.set_input_files("#file-input", [str(source)])
    page.get_by_role("button", name="Create link").click()
    link = page.locator("#share-link")
    expect(link).to_be_visible()
    return page, link.input_value()


def chromium_picker(playwright: Any, server: LocalServer, work: Path, source: Path,
                    expected: str, timeout: float, staged: bool = True) -> dict[str, Any]:
    sender = Side(playwright, "sender", work / "profile-sender")
    receiver = Side(playwright, "receiver", work / "profile-receiver")
    receiver.context.add_init_script(PROBE)
    if not staged:
        receiver.context.add_init_script(NO_QUOTA)
    try:
        send_page, link = send_from_chromium(sender, server, source)
        page = receiver.page()
        page.goto(link)
        accept = page.get_by_role("button", name="Accept")
        expect(accept).to_be_enabled(timeout=60_000)
        run = Run(TreeMeter(receiver.pid), [work / "profile-receiver"])
        started = time.monotonic()
        accept.click()
        run.until(receive_in_page(lambda: page.evaluate(PROBE_STATE)), timeout)
        seconds = time.monotonic() - started
        probe = page.evaluate(PROBE_STATE)
        size = source.stat().st_size
        saved = [p for p in (work / "profile-receiver").rglob("*")
                 if p.is_file() and p.stat().st_size == size]
        if not saved or sha256_file(saved[0]) != expected:
            raise RuntimeError(f"the picked file is not the source ({len(saved)} candidates)")
        result = run.report(size, seconds, probe["gaps"])
        # A checkpoint is a commit (close) and the re-open after it, which copies the file:
        # [bytes committed, close ms, re-open ms]. The first open is the file's creation and
        # the last close the end of the file.
        commits, opens = probe["commits"], probe["opens"]
        result["checkpoints"] = [[c[1], c[0], o[0]] for c, o in zip(commits, opens[1:], strict=False)]
        result["longest_checkpoint_ms"] = max((c[1] + c[2] for c in result["checkpoints"]), default=0)
        result["final_close_ms"] = commits[-1][0] if commits else 0
        result["after_last_byte_s"] = round((probe["now"] - probe["last"]) / 1000, 1)
        send_page.close()
        return result
    finally:
        sender.close()
        receiver.close()


def firefox_page(playwright: Any, server: LocalServer, work: Path, source: Path,
                 expected: str, timeout: float, prefs: dict[str, Any]) -> dict[str, Any]:
    """Chromium → Firefox; the receiving page chooses where the file goes (prefs decide)."""
    sender = Side(playwright, "sender", work / "profile-sender")
    downloads = work / "ff-downloads"
    downloads.mkdir()
    try:
        with Firefox(download_dir=downloads, profile=work / "ff-profile", prefs=prefs) as firefox:
            send_page, link = send_from_chromium(sender, server, source)
            page = firefox.new_page()
            page.add_init_script(PROBE)
            page.goto(link)
            page.wait_for("() => !!document.querySelector('button.primary:not([disabled])')", timeout=60)
            assert firefox.pid is not None
            run = Run(TreeMeter(firefox.pid), [work / "ff-profile", downloads])
            started = time.monotonic()
            page.click("::-p-aria([name='Accept'][role='button'])")
            size = source.stat().st_size
            target = downloads / source.name

            def progress() -> tuple[int, bool]:
                state = page.evaluate(PROBE_STATE)
                downloaded = target.exists() and target.stat().st_size == size and not \
                    target.with_name(target.name + ".part").exists()
                return int(state["bytes"]), state["done"] == "Done" and downloaded

            run.until(progress, timeout)
            seconds = time.monotonic() - started
            probe = page.evaluate(PROBE_STATE)
            plan = page.evaluate("() => [...document.querySelectorAll('#saved-files .where')]"
                                 ".map((e) => e.textContent)")
            if sha256_file(target) != expected:
                raise RuntimeError("the download is not the source")
            send_page.close()
            result = run.report(size, seconds, probe["gaps"])
            result["after_last_byte_s"] = round((probe["now"] - probe["last"]) / 1000, 1)
            result["where"] = plan
            return result
    finally:
        sender.close()


def firefox_stream(server: LocalServer, work: Path, size: int, timeout: float) -> dict[str, Any]:
    downloads = work / "ff-downloads"
    downloads.mkdir()
    with Firefox(download_dir=downloads, profile=work / "ff-profile") as firefox:
        page = firefox.new_page()
        page.goto(server.base + "/")
        page.evaluate("async () => { await (await import('/js/storage/stream-sink.js')).downloadWorker(); }")
        assert firefox.pid is not None
        run = Run(TreeMeter(firefox.pid), [work / "ff-profile", downloads])
        started = time.monotonic()
        page.evaluate(STREAM_FEED, {"name": "streamed.bin", "size": size})
        target = downloads / "streamed.bin"

        def progress() -> tuple[int, bool]:
            fed = page.evaluate("() => window.__fed")
            if fed["outcome"] not in (None, "ok"):
                raise RuntimeError(f"the stream failed: {fed['outcome']}")
            done = fed["outcome"] == "ok" and target.exists() and target.stat().st_size == size
            return int(fed["bytes"]), done

        run.until(progress, timeout)
        seconds = time.monotonic() - started
        fed = page.evaluate("() => window.__fed")
        if sha256_file(target) != fed_sha256(size):
            raise RuntimeError("the streamed download is not what was fed")
        return run.report(size, seconds, fed["gaps"])


def cli(server: LocalServer, work: Path, source: Path, expected: str, timeout: float) -> dict[str, Any]:
    out = work / "cli-out"
    out.mkdir()
    sender = subprocess.Popen([PYTHON, "-m", "peerbeam.cli", "send", str(source), "--server", server.base],
                              cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert sender.stdout is not None
        link = sender.stdout.readline().strip()
        receiver = subprocess.Popen([PYTHON, "-m", "peerbeam.cli", "receive", link, "-o", str(out)],
                                    cwd=REPO, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        run = Run(TreeMeter(receiver.pid, memory="rss"), [out])
        started = time.monotonic()
        size = source.stat().st_size
        part = out / f"{source.name}.peerbeam-part"
        final = out / source.name
        gaps: list[list[float]] = []
        last = {"bytes": 0, "at": time.monotonic()}

        def progress() -> tuple[int, bool]:
            done = receiver.poll() is not None
            path = final if final.exists() else part
            held = path.stat().st_size if path.exists() else 0
            now = time.monotonic()
            if held != last["bytes"]:
                if now - last["at"] > GAP_MS / 1000 + SAMPLE_S:
                    gaps.append([round((now - last["at"]) * 1000), held])
                last.update(bytes=held, at=now)
            return held, done

        run.until(progress, timeout)
        seconds = time.monotonic() - started
        if receiver.returncode != 0:
            raise RuntimeError(f"peerbeam receive exited {receiver.returncode}")
        if sha256_file(final) != expected:
            raise RuntimeError("the received file is not the source")
        result = run.report(size, seconds, gaps)
        result["stall_resolution_ms"] = int(SAMPLE_S * 1000)
        return result
    finally:
        sender.terminate()
        sender.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", nargs="+", choices=SCENARIOS, default=list(DEFAULT))
    parser.add_argument("--browser-gib", type=float, default=8.0)
    parser.add_argument("--firefox-gib", type=float, default=12.0,
                        help="firefox-persist and firefox-page-stream: over the ~10 GiB quota")
    parser.add_argument("--cli-gib", type=float, default=20.0)
    parser.add_argument("--timeout-s", type=float, default=4 * 3600)
    args = parser.parse_args()
    browser_size = int(args.browser_gib * GiB) + 12345  # not a whole number of chunks
    firefox_size = int(args.firefox_gib * GiB) + 12345
    cli_size = int(args.cli_gib * GiB) + 12345
    results: dict[str, Any] = {}
    for name in args.only:
        with tempfile.TemporaryDirectory(prefix=f"peerbeam-large-{name}-") as tmp:
            work = Path(tmp)
            server = LocalServer(work / "server")
            server.start()
            try:
                size = (cli_size if name == "cli" else
                        firefox_size if name in ("firefox-persist", "firefox-page-stream") else browser_size)
                source = work / "large.bin"
                if name != "firefox-stream":
                    write_file(source, size, seed=13)
                    expected = sha256_file(source)
                load_before = os.getloadavg()[0]
                if name == "cli":
                    result = cli(server, work, source, expected, args.timeout_s)
                elif name == "firefox-stream":
                    result = firefox_stream(server, work, size, args.timeout_s)
                else:
                    with sync_playwright() as playwright:
                        if name.startswith("chromium"):
                            result = chromium_picker(playwright, server, work, source, expected,
                                                     args.timeout_s, staged=name == "chromium-staged")
                        else:
                            prefs = {"firefox-persist": PERSIST, "firefox-page-stream": REFUSE}.get(name, {})
                            result = firefox_page(playwright, server, work, source, expected,
                                                  args.timeout_s, prefs)
                result["load"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
                result["scenario"] = name
                result["when"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
            finally:
                server.stop()
                shutil.rmtree(work, ignore_errors=True)
        # One entry per scenario and size: runs at other sizes stay (how figures scale).
        key = f"{name}@{size / GiB:.1f}GiB"
        results[key] = result
        print(json.dumps({key: {k: v for k, v in result.items() if k != "samples"}}), flush=True)
        stored = RESULTS / "large_transfer.json"
        previous = json.loads(stored.read_text()) if stored.exists() else {}
        previous.pop("when", None)
        save_result("large_transfer", {**previous, **results})


if __name__ == "__main__":
    main()
