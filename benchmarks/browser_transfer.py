"""Browser -> browser: the web client vs a bare data channel, same run; renderer memory.

    python -m benchmarks.browser_transfer [--size-mib 256] [--memory-mib 2048] [--rounds 3]

Two separate Chromium processes (the browser tests' flags), both pages on the origin of
one `peerbeam serve` on 127.0.0.1. Each round, interleaved:

* blast: a plain RTCPeerConnection with one ordered, reliable channel made by
  page.evaluate in each browser, SDP handed over by Python (no trickle: complete
  gathering), 256 KiB messages, bufferedAmount high-water 8 MiB / low-water 2 MiB
  (bufferedamountlow); the receiver only counts bytes. Timed from the first send
  (sender page) to the last byte (receiver page), both on the wall clock
  (performance.timeOrigin + now()).
* web client: Create link, open it, click Accept; timed in the receiving page from the
  Accept click to "#receive-title" saying "Done", with the first binary message in
  between. Saved through the OPFS-handle save-picker stand-in of the tests.

Each round also counts the CPU seconds of both browsers' process trees, because on a
shared 2-core machine the wall-clock ratio follows CPU cost per byte.

Then one multi-GB web-client transfer while the receiving browser's renderer processes
(descendants of its browser process with --type=renderer) are sampled every 0.5 s from
/proc/PID/smaps_rollup (RSS, PSS, USS), and the same bytes through the bare channel,
sampled the same way: what the stack itself holds while receiving.

Each browser has a persistent profile in a temporary directory (not an off-the-record
context), so OPFS and IndexedDB live on disk as they do for a user. Writes
benchmarks/results/browser_transfer.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
from playwright.sync_api import BrowserContext, Page, Playwright, expect, sync_playwright

from benchmarks.procs import REPO
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, PICKER_TO_OPFS, write_file
from tests.fixtures.servers import LocalServer

RESULTS = REPO / "benchmarks" / "results"
MiB = 1024 * 1024
MESSAGE = 256 * 1024
HIGH_WATER = 8 * MiB
LOW_WATER = 2 * MiB
DONE_TIMEOUT_MS = 1_800_000

# Timing marks of the receiving page, on the wall clock so two processes compare:
# the Accept click, the first binary data-channel message, "Done" on screen.
TIMING = """
(() => {
  const b = (window.__bench = { accept: null, firstByte: null, done: null, channels: 0 });
  const now = () => performance.timeOrigin + performance.now();
  document.addEventListener("click", (event) => {
    const button = event.target && event.target.closest && event.target.closest("button");
    if (button && button.textContent === "Accept" && b.accept === null) b.accept = now();
  }, true);
  const slot = Object.getOwnPropertyDescriptor(RTCDataChannel.prototype, "onmessage");
  Object.defineProperty(RTCDataChannel.prototype, "onmessage", {
    configurable: true,
    get() { return slot.get.call(this); },
    set(handler) {
      let carried = false; // this channel brought file bytes (the web client's lanes)
      slot.set.call(this, handler && function (event) {
        if (typeof event.data !== "string") {
          if (b.firstByte === null) b.firstByte = now();
          if (!carried) {
            carried = true;
            b.channels += 1;
          }
        }
        return handler.call(this, event);
      });
    },
  });
  new MutationObserver(() => {
    if (b.done !== null) return;
    const title = document.getElementById("receive-title");
    if (title && title.textContent === "Done") b.done = now();
  }).observe(document, { subtree: true, childList: true, characterData: true });
})();
"""

GATHERED = """
window.__gathered = (pc) => pc.iceGatheringState === "complete" ? Promise.resolve() :
  new Promise((resolve) => pc.addEventListener("icegatheringstatechange",
    () => pc.iceGatheringState === "complete" && resolve()));
"""

BLAST_OFFER = """
async ({ low }) => {
  const pc = new RTCPeerConnection({ iceServers: [] });
  const channel = pc.createDataChannel("blast", { ordered: true });
  channel.binaryType = "arraybuffer";
  channel.bufferedAmountLowThreshold = low;
  const opened = new Promise((resolve) => channel.addEventListener("open", resolve, { once: true }));
  window.__blast = { pc, channel, opened };
  await pc.setLocalDescription();
  await window.__gathered(pc);
  return pc.localDescription.sdp;
}
"""

BLAST_ANSWER = """
async ({ offer, total }) => {
  const pc = new RTCPeerConnection({ iceServers: [] });
  const now = () => performance.timeOrigin + performance.now();
  const state = { pc, received: 0, first: null };
  state.done = new Promise((resolve) => {
    pc.addEventListener("datachannel", (event) => {
      const channel = event.channel;
      channel.binaryType = "arraybuffer";
      channel.onmessage = (m) => {
        if (state.first === null) state.first = now();
        state.received += m.data.byteLength;
        if (state.received >= total) resolve({ first: state.first, last: now(), bytes: state.received });
      };
    });
  });
  window.__blast = state;
  await pc.setRemoteDescription({ type: "offer", sdp: offer });
  await pc.setLocalDescription();
  await window.__gathered(pc);
  return pc.localDescription.sdp;
}
"""

BLAST_SEND = """
async ({ answer, total, message, high }) => {
  const { pc, channel, opened } = window.__blast;
  await pc.setRemoteDescription({ type: "answer", sdp: answer });
  await opened;
  const payload = new ArrayBuffer(message);
  const start = performance.timeOrigin + performance.now();
  let sent = 0;
  while (sent < total) {
    while (channel.bufferedAmount > high) {
      await new Promise((resolve) => channel.addEventListener("bufferedamountlow", resolve, { once: true }));
    }
    const size = Math.min(message, total - sent);
    channel.send(size === message ? payload : payload.slice(0, size));
    sent += size;
  }
  return start;
}
"""

BLAST_CLOSE = "() => { window.__blast?.pc.close(); }"

# Size of a saved file, and removal of everything saved (keeps the disk from filling).
SAVED_SIZE = """
async (name) => {
  const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle("picked");
  return (await (await dir.getFileHandle(name)).getFile()).size;
}
"""
CLEAR_SAVED = """
async () => {
  const root = await navigator.storage.getDirectory();
  for await (const name of root.keys()) await root.removeEntry(name, { recursive: true }).catch(() => {});
}
"""


def load() -> float:
    return os.getloadavg()[0]


class Side:
    """One Chromium process with a persistent profile; a marker flag finds its process."""

    def __init__(self, playwright: Playwright, name: str, profile: Path, **context_args: Any) -> None:
        self.marker = f"--peerbeam-bench={name}-{os.getpid()}"
        self.context: BrowserContext = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, self.marker],
            headless=True, accept_downloads=True, **context_args,
        )
        self.context.add_init_script(PICKER_TO_OPFS)
        self.context.add_init_script(TIMING)
        self.context.add_init_script(GATHERED)
        for page in self.context.pages:
            page.close()
        self.pid = next(p.pid for p in psutil.process_iter(["cmdline"])
                        if self.marker in (p.info["cmdline"] or []))

    def renderers(self) -> dict[int, psutil.Process]:
        out = {}
        for child in psutil.Process(self.pid).children(recursive=True):
            try:
                if "--type=renderer" in child.cmdline():
                    out[child.pid] = child
            except psutil.Error:
                pass
        return out

    def page(self) -> Page:
        return self.context.new_page()

    def close(self) -> None:
        self.context.close()


def smaps(pid: int) -> dict[str, int]:
    """RSS, PSS and USS (private clean + dirty) in bytes, from smaps_rollup."""
    fields: dict[str, int] = {}
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        for line in rollup:
            parts = line.split()
            if len(parts) >= 3 and parts[2] == "kB":
                fields[parts[0].rstrip(":")] = int(parts[1]) * 1024
    return {"rss": fields.get("Rss", 0), "pss": fields.get("Pss", 0),
            "uss": fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)}


class RendererSampler:
    """Every `interval` s: smaps_rollup of each renderer of one browser, in a thread."""

    def __init__(self, side: Side, interval: float = 0.5) -> None:
        self.side = side
        self.interval = interval
        self.start = time.monotonic()
        self.samples: list[tuple[float, dict[int, dict[str, int]]]] = []
        self.cpu_at_accept: dict[int, float] = {}
        self.cpu_at_done: dict[int, float] = {}
        self.accepted_at = self.done_at = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic() - self.start
            row = {}
            for pid in self.side.renderers():
                try:
                    row[pid] = smaps(pid)
                except OSError:
                    pass
            self.samples.append((now, row))
            self._stop.wait(self.interval)

    def accepted(self) -> None:
        """The transfer starts now: the baseline."""
        self.accepted_at = time.monotonic() - self.start
        self.cpu_at_accept = self.cpu_times()

    def finished(self) -> None:
        self.done_at = time.monotonic() - self.start
        self.cpu_at_done = self.cpu_times()
        time.sleep(1.0)
        self.stop()

    def cpu_times(self) -> dict[int, float]:
        out = {}
        for pid, process in self.side.renderers().items():
            try:
                times = process.cpu_times()
                out[pid] = times.user + times.system
            except psutil.Error:
                pass
        return out

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class CpuMeter:
    """CPU seconds used by each browser's whole process tree (browser, renderers, network
    service, GPU...) while it runs; sampled every 0.25 s so processes that exit (a closed
    page's renderer) still count up to their last sample."""

    def __init__(self, *sides: Side) -> None:
        self.sides = sides
        self.first: list[dict[int, float]] = [{} for _ in sides]
        self.last: list[dict[int, float]] = [{} for _ in sides]
        self._stop = threading.Event()
        self._sample(initial=True)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sample(self, initial: bool = False) -> None:
        for i, side in enumerate(self.sides):
            try:
                processes = [psutil.Process(side.pid), *psutil.Process(side.pid).children(recursive=True)]
            except psutil.Error:
                continue
            for process in processes:
                try:
                    times = process.cpu_times()
                except psutil.Error:
                    continue
                used = times.user + times.system
                self.first[i].setdefault(process.pid, used if initial else 0.0)
                self.last[i][process.pid] = used

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            self._sample()

    def stop(self) -> list[float]:
        self._stop.set()
        self._thread.join()
        self._sample()
        return [round(sum(last[pid] - first[pid] for pid in last), 2)
                for first, last in zip(self.first, self.last, strict=True)]


def blast(sender: Side, receiver: Side, server: LocalServer, total: int,
          sample_memory: bool = False) -> dict[str, Any]:
    send_page, receive_page = sender.page(), receiver.page()
    sampler = None
    try:
        send_page.goto(server.base + "/")
        receive_page.goto(server.base + "/")
        offer = send_page.evaluate(BLAST_OFFER, {"low": LOW_WATER})
        answer = receive_page.evaluate(BLAST_ANSWER, {"offer": offer, "total": total})
        if sample_memory:
            sampler = RendererSampler(receiver)
            time.sleep(1.0)
            sampler.accepted()
        start = send_page.evaluate(
            BLAST_SEND, {"answer": answer, "total": total, "message": MESSAGE, "high": HIGH_WATER})
        done = receive_page.evaluate("() => window.__blast.done")
        if sampler:
            sampler.finished()
        assert done["bytes"] == total, done
        send_page.evaluate(BLAST_CLOSE)
        receive_page.evaluate(BLAST_CLOSE)
    finally:
        send_page.close()
        receive_page.close()
    result: dict[str, Any] = {"seconds": (done["last"] - start) / 1000,
                              "streaming_s": (done["last"] - done["first"]) / 1000}
    if sampler:
        result["memory"] = memory_report(sampler)
    return result


def webclient(sender: Side, receiver: Side, server: LocalServer, source: Path,
              sample_memory: bool = False) -> dict[str, Any]:
    send_page = sender.page()
    receive_page = None
    sampler = None
    try:
        send_page.goto(server.base + "/")
        send_page.set_input_files("#file-input", [str(source)])
        send_page.get_by_role("button", name="Create link").click()
        link_box = send_page.locator("#share-link")
        expect(link_box).to_be_visible()
        link = link_box.input_value()

        receive_page = receiver.page()
        receive_page.goto(link)
        accept = receive_page.get_by_role("button", name="Accept")
        expect(accept).to_be_enabled(timeout=60_000)
        if sample_memory:
            time.sleep(2.0)  # let the fresh renderer settle before the baseline
            sampler = RendererSampler(receiver)
            time.sleep(1.0)
            sampler.accepted()
        accept.click()
        expect(receive_page.locator("#receive-title")).to_have_text("Done", timeout=DONE_TIMEOUT_MS)
        if sampler:
            sampler.finished()
        expect(send_page.locator(".badge.done")).to_have_count(1, timeout=30_000)
        marks = receive_page.evaluate("() => window.__bench")
        size = receive_page.evaluate(SAVED_SIZE, source.name)
        if size != source.stat().st_size:
            raise RuntimeError(f"saved {size} bytes of {source.stat().st_size}")
        receiver_digest = receive_page.locator(".digest code").all_inner_texts()
        sender_digest = send_page.locator(".receiver .digest code").all_inner_texts()
        if receiver_digest != sender_digest:
            raise RuntimeError(f"digests differ: {receiver_digest} vs {sender_digest}")
        receive_page.evaluate(CLEAR_SAVED)
    finally:
        send_page.close()
        if receive_page:
            receive_page.close()
    result: dict[str, Any] = {
        "seconds": (marks["done"] - marks["accept"]) / 1000,
        "accept_to_first_byte_s": (marks["firstByte"] - marks["accept"]) / 1000,
        "streaming_s": (marks["done"] - marks["firstByte"]) / 1000,
        "connections": marks["channels"],  # that carried file bytes
    }
    if sampler:
        result["memory"] = memory_report(sampler)
    return result


def memory_report(sampler: RendererSampler) -> dict[str, Any]:
    """Growth from the Accept click to the peak, for the receiving page's renderer (the
    one that used the most CPU time during the transfer) and for all renderers of that
    browser together."""
    accepted_at, done_at = sampler.accepted_at, sampler.done_at
    cpu = {pid: used - sampler.cpu_at_accept.get(pid, 0.0) for pid, used in sampler.cpu_at_done.items()}
    page_pid = max(cpu, key=cpu.__getitem__)

    def series(pick: Any) -> list[tuple[float, int, int, int]]:
        out = []
        for t, row in sampler.samples:
            values = pick(row)
            if values is not None:
                out.append((round(t - accepted_at, 2), values["rss"], values["pss"], values["uss"]))
        return out

    page = series(lambda row: row.get(page_pid))
    total = series(lambda row: {k: sum(v[k] for v in row.values()) for k in ("rss", "pss", "uss")})

    def growth(points: list[tuple[float, int, int, int]]) -> dict[str, float]:
        at_accept = [p for p in points if p[0] <= 0][-1]
        during = [p for p in points if 0 <= p[0] <= done_at - accepted_at]
        out = {}
        for i, key in ((1, "rss"), (2, "pss"), (3, "uss")):
            peak = max(p[i] for p in during)
            out[f"{key}_start_mib"] = at_accept[i] / MiB
            out[f"{key}_peak_mib"] = peak / MiB
            out[f"{key}_growth_mib"] = (peak - at_accept[i]) / MiB
        return out

    return {
        "page_renderer": growth(page),
        "all_renderers": growth(total),
        "renderer_count": len({pid for _, row in sampler.samples for pid in row}),
        "transfer_s": done_at - accepted_at,
        # (seconds since Accept, rss, pss, uss) in bytes
        "samples": page,
        "samples_all": total,
    }


def memory_runs(sender: Side, receiver: Side, server: LocalServer, work: Path,
                args: argparse.Namespace) -> dict[str, Any]:
    """One big web-client transfer sampled; then the same bytes through the bare channel."""
    size = args.memory_mib * MiB
    big = write_file(work / "memory.bin", size, seed=8)
    load_before = load()
    run = webclient(sender, receiver, server, big, sample_memory=True)
    big.unlink()
    memory = run.pop("memory")
    memory.update(transfer_mib=args.memory_mib, load=[round(load_before, 2), round(load(), 2)],
                  web_mb_s=size / 1e6 / run["seconds"],
                  accept_to_first_byte_s=run["accept_to_first_byte_s"])
    print(json.dumps({k: v for k, v in memory.items() if not k.startswith("samples")}), flush=True)
    if args.memory_blast:
        # The same bytes through the bare channel: what the stack itself holds.
        load_before = load()
        bare = blast(sender, receiver, server, size, sample_memory=True)
        memory["blast"] = bare.pop("memory")
        memory["blast"].update(load=[round(load_before, 2), round(load(), 2)],
                               mb_s=size / 1e6 / bare["seconds"])
    return memory


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--memory-mib", type=int, default=2048)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-memory-blast", dest="memory_blast", action="store_false",
                        help="skip the bare-channel memory baseline")
    args = parser.parse_args()
    size = args.size_mib * MiB
    with tempfile.TemporaryDirectory(prefix="peerbeam-bench-") as tmp:
        work = Path(tmp)
        server = LocalServer(work / "server")
        server.start()
        try:
            with sync_playwright() as playwright:
                sender = Side(playwright, "sender", work / "profile-sender")
                receiver = Side(playwright, "receiver", work / "profile-receiver")
                version = sender.context.browser.version if sender.context.browser else ""
                try:
                    source = write_file(work / "bench.bin", size, seed=7)
                    rounds = []
                    for _ in range(args.rounds):  # interleaved: drift hits both alike
                        load_before = load()
                        meter = CpuMeter(sender, receiver)
                        bare = blast(sender, receiver, server, size)
                        bare_cpu = meter.stop()
                        meter = CpuMeter(sender, receiver)
                        web = webclient(sender, receiver, server, source)
                        web_cpu = meter.stop()
                        rounds.append({
                            "blast_s": bare["seconds"], "blast_streaming_s": bare["streaming_s"],
                            "web_s": web["seconds"], "web_streaming_s": web["streaming_s"],
                            "accept_to_first_byte_s": web["accept_to_first_byte_s"],
                            "ratio": bare["seconds"] / web["seconds"],
                            "streaming_ratio": bare["streaming_s"] / web["streaming_s"],
                            "load": [round(load_before, 2), round(load(), 2)],
                            # CPU seconds of [sender, receiver] browser (all processes)
                            "blast_cpu_s": bare_cpu, "web_cpu_s": web_cpu,
                        })
                        print(json.dumps(rounds[-1]), flush=True)
                    source.unlink()
                    memory = memory_runs(sender, receiver, server, work, args)
                finally:
                    sender.close()
                    receiver.close()
        finally:
            server.stop()
    best = max(rounds, key=lambda r: r["ratio"])
    result = {
        "size_mib": args.size_mib,
        "message_kib": MESSAGE // 1024,
        "rounds": rounds,
        "blast_mb_s": size / 1e6 / best["blast_s"],
        "web_mb_s": size / 1e6 / best["web_s"],
        "ratio": sum(r["ratio"] for r in rounds) / len(rounds),
        "streaming_ratio": sum(r["streaming_ratio"] for r in rounds) / len(rounds),
        "median_ratio": statistics.median(r["ratio"] for r in rounds),
        # CPU seconds, both browsers together, web client / bare channel (same bytes)
        "cpu_ratio": sum(sum(r["web_cpu_s"]) for r in rounds) / sum(sum(r["blast_cpu_s"]) for r in rounds),
        "accept_to_first_byte_s": max([r["accept_to_first_byte_s"] for r in rounds]
                                      + [memory["accept_to_first_byte_s"]]),
        "memory": memory,
        "chromium": version,
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "browser_transfer.json").write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "memory"}, indent=1))
    for part in (memory, memory.get("blast", {})):
        print(json.dumps({k: v for k, v in part.items() if not k.startswith("samples") and k != "blast"}))


if __name__ == "__main__":
    main()
