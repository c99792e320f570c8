"""One headless Chromium driven over stdin/stdout, so that a browser can live inside a
network namespace while the benchmark that drives it runs outside.

    ip netns exec NS python -m benchmarks.browser_agent PROFILE_DIR ORIGIN [CHROMIUM_SWITCH ...]

One JSON request per stdin line, one JSON reply per stdout line: ``{"ok": true, "value": …}``
or ``{"ok": false, "error": "…"}``. Requests (``page`` is an id from ``new_page``):
``pid`` (the browser process), ``new_page`` (script: an init script for that page only),
``goto`` (url), ``eval`` (js, arg),
``upload`` (selector, files), ``click`` (name: a button's accessible name), ``value``
(selector: an input's value once visible), ``wait_enabled`` (name, timeout_ms),
``close_page``, ``quit``.

The browser tests' flags, plus: ORIGIN (the signaling server's http origin, inside the
namespaces) is treated as secure, as a user's https site would be (WebCrypto, OPFS); and
camera/microphone are granted with fake devices, because without that permission Chromium
offers only the address of the default route as ICE host candidate, and these namespaces
have no default route. The tests' save-picker stand-in hands out OPFS files, and a timing
script records, in the receiving page, the Accept click and every binary data-channel
message (``window.__bench``: first byte, bytes so far, channels that carried bytes, a
``[wall ms, bytes]`` mark every 250 ms).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import psutil
from playwright.sync_api import Page, expect, sync_playwright

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, PICKER_TO_OPFS

# --enable-logging: warnings and errors to PROFILE_DIR/chrome_debug.log, where the benchmark
# counts WebRTC's failed UDP sends (the renderer's send buffer towards the network process full).
EXTRA_ARGS = ["--no-first-run", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
              "--enable-logging"]

BYTE_MARKS = """
(() => {
  const b = (window.__bench = { accept: null, firstByte: null, bytes: 0, channels: 0, marks: [] });
  const now = () => performance.timeOrigin + performance.now();
  document.addEventListener("click", (event) => {
    const button = event.target && event.target.closest && event.target.closest("button");
    if (button && button.textContent === "Accept" && b.accept === null) b.accept = now();
  }, true);
  const carried = new WeakSet(); // channels that brought binary data (the web client's lanes)
  const count = (event) => {
    if (typeof event.data === "string") return;
    if (!carried.has(event.target)) {
      carried.add(event.target);
      b.channels += 1;
    }
    if (b.firstByte === null) {
      b.firstByte = now();
      setInterval(() => b.marks.push([now(), b.bytes]), 250);
    }
    b.bytes += event.data.byteLength !== undefined ? event.data.byteLength : event.data.size;
  };
  const slot = Object.getOwnPropertyDescriptor(RTCDataChannel.prototype, "onmessage");
  Object.defineProperty(RTCDataChannel.prototype, "onmessage", {
    configurable: true,
    get() { return slot.get.call(this); },
    set(handler) {
      slot.set.call(this, handler && function (event) { count(event); return handler.call(this, event); });
    },
  });
  const add = RTCDataChannel.prototype.addEventListener;
  RTCDataChannel.prototype.addEventListener = function (type, listener, options) {
    if (type === "message" && !this.__counted) { this.__counted = true; add.call(this, "message", count); }
    return add.call(this, type, listener, options);
  };
})();
"""

GATHERED = """
window.__gathered = (pc) => pc.iceGatheringState === "complete" ? Promise.resolve() :
  new Promise((resolve) => pc.addEventListener("icegatheringstatechange",
    () => pc.iceGatheringState === "complete" && resolve()));
"""


def handle(request: dict[str, Any], pages: dict[str, Page], context: Any, browser_pid: int) -> Any:
    op = request["op"]
    page = pages.get(request.get("page", ""))
    if op == "pid":
        return browser_pid
    if op == "new_page":
        name = f"p{len(pages) + 1}"
        while name in pages:
            name += "'"
        pages[name] = context.new_page()
        if request.get("script"):
            pages[name].add_init_script(request["script"])
        return name
    if page is None:
        raise ValueError(f"{op}: no page {request.get('page')!r}")
    if op == "goto":
        page.goto(request["url"])
    elif op == "eval":
        return page.evaluate(request["js"], request.get("arg"))
    elif op == "upload":
        page.set_input_files(request["selector"], request["files"])
    elif op == "click":
        page.get_by_role("button", name=request["name"]).click()
    elif op == "value":
        locator = page.locator(request["selector"])
        expect(locator).to_be_visible(timeout=request.get("timeout_ms", 30_000))
        return locator.input_value()
    elif op == "wait_enabled":
        expect(page.get_by_role("button", name=request["name"])).to_be_enabled(
            timeout=request["timeout_ms"])
    elif op == "close_page":
        page.close()
        pages.pop(request["page"], None)
    else:
        raise ValueError(f"unknown op {op!r}")
    return None


def main() -> None:
    profile, origin, switches = sys.argv[1], sys.argv[2], sys.argv[3:]
    marker = f"--peerbeam-bench-agent={os.getpid()}"
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, accept_downloads=True,
            permissions=["camera", "microphone"],
            args=[*CHROMIUM_ARGS, *EXTRA_ARGS, f"--unsafely-treat-insecure-origin-as-secure={origin}",
                  *switches, marker])
        for script in (PICKER_TO_OPFS, BYTE_MARKS, GATHERED):
            context.add_init_script(script)
        for page in context.pages:
            page.close()
        browser_pid = next(p.pid for p in psutil.process_iter(["cmdline"])
                           if marker in (p.info["cmdline"] or [])
                           and not any(arg.startswith("--type=") for arg in p.info["cmdline"]))
        pages: dict[str, Page] = {}
        for line in sys.stdin:
            request = json.loads(line)
            if request["op"] == "quit":
                print(json.dumps({"ok": True}), flush=True)
                break
            try:
                reply = {"ok": True, "value": handle(request, pages, context, browser_pid)}
            except Exception as error:  # noqa: BLE001 - reported to the driving benchmark
                reply = {"ok": False, "error": f"{type(error).__name__}: {str(error)[:400]}"}
            print(json.dumps(reply), flush=True)
        context.close()


if __name__ == "__main__":
    main()
