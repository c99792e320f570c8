"""What would a standard, streamed SHA-256 of each file cost? (docs/protocol.md 8.5)

    python -m benchmarks.digest_cost [--size-mib 256] [--rounds 3]

Today both sides show the *peerbeam digest*: SHA-256 over the raw 1 MiB chunk SHA-256s,
which WebCrypto computes one chunk at a time (it has no streaming digest). A standard
SHA-256 of the file needs an incremental SHA-256: in the browser, our own JavaScript
(the web client's webclient/js/protocol/sha256.js, run in a worker), in Python, hashlib. This measures:

1. speed, per core: the JavaScript SHA-256 streamed over N MiB in a worker, in Chromium and
   in Firefox ESR, beside WebCrypto's per-chunk digest of the same bytes (today's cost),
   and hashlib. The JavaScript is first checked against the FIPS 180-4 example vectors
   and against hashlib on the same bytes;
2. what it costs a transfer: the web client Chromium -> Chromium (the setup of
   benchmarks/browser_transfer.py), rounds interleaved, as it is and with every binary
   data-channel message also hashed by the JavaScript SHA-256 in a worker at both ends
   (a copy posted to the worker: what a streamed file digest would add). The ratio of
   the two throughputs is the cost. Both browsers' CPU seconds are counted too.

Writes benchmarks/results/digest_cost.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

from benchmarks.browser_transfer import CpuMeter, Side, load, webclient
from benchmarks.procs import REPO, save_result
from tests.browser.conftest import write_file
from tests.fixtures.firefox import Firefox
from tests.fixtures.servers import LocalServer

MiB = 1024 * 1024
# The web client's own incremental SHA-256, as a classic script body for a worker: the
# module's `export` keywords dropped (it imports nothing).
SHA256_JS = re.sub(r"^export ", "", (REPO / "webclient" / "js" / "protocol" / "sha256.js")
                   .read_text("utf-8"), flags=re.M)
FLAG = "peerbeam-bench-hash"

# The same 1 MiB in the page and here: byte i = (i ^ i >> 8 ^ i >> 16) * 31 mod 256.
PATTERN_JS = "(i) => ((i ^ (i >>> 8) ^ (i >>> 16)) * 31) & 255"


def pattern() -> bytes:
    return bytes(((i ^ (i >> 8) ^ (i >> 16)) * 31) & 255 for i in range(MiB))


# Runs in a worker: checks the vectors, then times the streamed hash and WebCrypto.
MICRO_WORKER = SHA256_JS + """
const hex = (u) => Array.from(u, (b) => b.toString(16).padStart(2, "0")).join("");
const text = (s) => new TextEncoder().encode(s);
self.onmessage = ({ data: { chunks } }) => run(chunks).then(
  (result) => self.postMessage(result), (error) => self.postMessage({ error: String(error) }));
async function run(chunks) {
  const vectors = [
    ["", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"],
    ["abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"],
    ["abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"],
    ["abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
     "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"],
  ];
  const failed = vectors.filter(([m, d]) => hex(new Sha256().update(text(m)).digest()) !== d).map(([m]) => m);
  const million = new Sha256();
  const a = new Uint8Array(1000).fill(97);
  for (let i = 0; i < 1000; i++) million.update(a.subarray(0, 500)).update(a.subarray(500));
  const millionA = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
  if (hex(million.digest()) !== millionA) failed.push("a x 10^6");
  const chunk = new Uint8Array(1 << 20);
  const byte = PATTERN;
  for (let i = 0; i < chunk.length; i++) chunk[i] = byte(i);
  const warm = new Sha256();
  for (let i = 0; i < 8; i++) warm.update(chunk);
  let t = performance.now();
  const stream = new Sha256();
  for (let i = 0; i < chunks; i++) stream.update(chunk);
  const streamed = hex(stream.digest());
  const streamMs = performance.now() - t;
  t = performance.now();
  for (let i = 0; i < chunks; i++) await crypto.subtle.digest("SHA-256", chunk);
  const webcryptoMs = performance.now() - t;
  return { failed, streamed, streamMs, webcryptoMs };
}
""".replace("PATTERN", PATTERN_JS)

RUN_MICRO = """
async ({ source, chunks }) => {
  const worker = new Worker(URL.createObjectURL(new Blob([source], { type: "text/javascript" })));
  const result = await new Promise((resolve, reject) => {
    worker.onmessage = (e) => resolve(e.data);
    worker.onerror = (e) => reject(new Error(e.message));
    worker.postMessage({ chunks });
  });
  worker.terminate();
  return result;
}
"""

# Installed in every page of the benchmark's Chromium; active only while the flag is set in
# the origin's localStorage: every binary message sent or received is copied to a worker
# that feeds it to a streamed SHA-256 (the page never waits for it).
HASH_HOOK = """
(() => {
  if (location.protocol !== "http:" || localStorage.getItem("FLAG") !== "1") return;
  const source = SOURCE + `
    let hash = new Sha256(), bytes = 0;
    self.onmessage = ({ data }) => {
      if (data === "report") { self.postMessage(bytes); return; }
      hash.update(new Uint8Array(data));
      bytes += data.byteLength;
    };`;
  const worker = new Worker(URL.createObjectURL(new Blob([source], { type: "text/javascript" })));
  window.__hashed = () => new Promise((resolve) => {
    worker.addEventListener("message", (e) => resolve(e.data), { once: true });
    worker.postMessage("report");
  });
  const feed = (data) => {
    const view = data instanceof ArrayBuffer ? new Uint8Array(data)
      : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const copy = view.slice();
    worker.postMessage(copy.buffer, [copy.buffer]);
  };
  const send = RTCDataChannel.prototype.send;
  RTCDataChannel.prototype.send = function (data) {
    if (typeof data !== "string") feed(data);
    return send.call(this, data);
  };
  const slot = Object.getOwnPropertyDescriptor(RTCDataChannel.prototype, "onmessage");
  Object.defineProperty(RTCDataChannel.prototype, "onmessage", {
    configurable: true,
    get() { return slot.get.call(this); },
    set(handler) {
      slot.set.call(this, handler && function (event) {
        if (typeof event.data !== "string") feed(event.data);
        return handler.call(this, event);
      });
    },
  });
})();
""".replace("FLAG", FLAG).replace("SOURCE", json.dumps(SHA256_JS))


def micro(evaluate: Any, chunks: int) -> dict[str, Any]:
    result = evaluate(RUN_MICRO, {"source": MICRO_WORKER, "chunks": chunks})
    if "error" in result:
        raise RuntimeError(f"the speed test failed in the browser: {result['error']}")
    expected = hashlib.sha256(pattern() * chunks).hexdigest()
    if result["failed"] or result["streamed"] != expected:
        raise RuntimeError(f"the JavaScript SHA-256 is wrong: {result}")
    size = chunks * MiB / 1e6
    return {"streamed_mb_s": size / (result["streamMs"] / 1000),
            "webcrypto_per_chunk_mb_s": size / (result["webcryptoMs"] / 1000)}


@contextmanager
def blank_origin() -> Iterator[str]:
    """An empty page on a loopback origin: a secure context (WebCrypto) without the site's
    Content-Security-Policy, so a worker can start from a blob: URL."""

    class Blank(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<!doctype html><title>blank</title>")

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Blank)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()


def hashlib_speed(chunks: int) -> float:
    data = pattern()
    start = time.perf_counter()
    digest = hashlib.sha256()
    for _ in range(chunks):
        digest.update(data)
    return chunks * MiB / 1e6 / (time.perf_counter() - start)


def set_hashing(side: Side, server: LocalServer, on: bool) -> None:
    page = side.page()
    page.goto(server.base + "/")
    page.evaluate(f"(on) => on ? localStorage.setItem('{FLAG}', '1') : localStorage.removeItem('{FLAG}')", on)
    page.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    size = args.size_mib * MiB
    result: dict[str, Any] = {"size_mib": args.size_mib,
                              "hashlib_mb_s": hashlib_speed(args.size_mib)}
    with tempfile.TemporaryDirectory(prefix="peerbeam-digest-") as tmp, blank_origin() as blank_url:
        work = Path(tmp)
        with Firefox() as firefox:
            page = firefox.new_page()
            page.goto(blank_url)
            result["firefox"] = micro(lambda fn, arg: page.evaluate(fn, arg, timeout=600), args.size_mib)
            result["firefox"]["version"] = firefox.version
        print(json.dumps(result), flush=True)
        server = LocalServer(work / "server")
        server.start()
        try:
            with sync_playwright() as playwright:
                # bypass_csp: the hashing hook starts its worker from a blob: URL.
                sender = Side(playwright, "sender", work / "profile-sender", bypass_csp=True)
                receiver = Side(playwright, "receiver", work / "profile-receiver", bypass_csp=True)
                sender.context.add_init_script(HASH_HOOK)
                receiver.context.add_init_script(HASH_HOOK)
                try:
                    blank = sender.page()
                    blank.goto(blank_url)
                    result["chromium"] = micro(lambda fn, arg: blank.evaluate(fn, arg), args.size_mib)
                    blank.close()
                    browser = sender.context.browser
                    result["chromium"]["version"] = browser.version if browser else ""
                    print(json.dumps(result), flush=True)
                    source = write_file(work / "digest.bin", size, seed=9)
                    rounds = []
                    for _ in range(args.rounds):
                        row: dict[str, Any] = {"load": [round(load(), 2)]}
                        for mode in ("plain", "hashed"):
                            for side in (sender, receiver):
                                set_hashing(side, server, mode == "hashed")
                            meter = CpuMeter(sender, receiver)
                            run = webclient(sender, receiver, server, source)
                            row[f"{mode}_s"] = run["seconds"]
                            row[f"{mode}_cpu_s"] = meter.stop()
                        row["load"].append(round(load(), 2))
                        row["ratio"] = row["plain_s"] / row["hashed_s"]
                        rounds.append(row)
                        print(json.dumps(row), flush=True)
                finally:
                    sender.close()
                    receiver.close()
        finally:
            server.stop()
    result["rounds"] = rounds
    result["ratio"] = sum(r["ratio"] for r in rounds) / len(rounds)
    result["cpu_ratio"] = (sum(sum(r["hashed_cpu_s"]) for r in rounds)
                           / sum(sum(r["plain_cpu_s"]) for r in rounds))
    result["plain_mb_s"] = size / 1e6 / min(r["plain_s"] for r in rounds)
    save_result("digest_cost", result)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
