"""The Chromium subjects of the long-haul table: bare data channels (one, several on one
connection, several connections) and the web client, one headless Chromium in each
namespace (benchmarks/browser_agent.py), pages on the origin of the `peerbeam serve` in S.

Several connections or channels all live in one page, as the web client's would: they
share one renderer (its main thread, its WebRTC network thread).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.long_haul.measure import Series
from benchmarks.long_haul.subjects import Context, Subject, readline, stop_process
from benchmarks.procs import PYTHON, REPO

MiB = 1024 * 1024
HIGH_WATER, LOW_WATER = 8 * MiB, 2 * MiB  # as benchmarks/browser_transfer.py
MESSAGE = 256 * 1024

# Sender page: `connections` RTCPeerConnections with one ordered channel each; the offers
# once gathering is complete (no trickle: SDP goes through this benchmark, not a server).
OFFER = """
async ({ connections, low }) => {
  const state = { pcs: [], channels: [], stopped: false, buffered: [] };
  window.__blast = state;
  for (let i = 0; i < connections; i++) {
    const pc = new RTCPeerConnection({ iceServers: [] });
    state.pcs.push(pc);
    const channel = pc.createDataChannel("blast");
    channel.binaryType = "arraybuffer";
    channel.bufferedAmountLowThreshold = low;
    const opened = new Promise((resolve) => channel.addEventListener("open", resolve, { once: true }));
    state.channels.push({ channel, opened });
  }
  return Promise.all(state.pcs.map(async (pc) => {
    await pc.setLocalDescription();
    await window.__gathered(pc);
    return pc.localDescription.sdp;
  }));
}
"""

# Receiver page: one answer per offer; counts the bytes of every channel, with a
# [wall ms, bytes] mark every 250 ms from the first byte on.
ANSWER = """
async ({ offers }) => {
  const now = () => performance.timeOrigin + performance.now();
  const state = { pcs: [], bytes: 0, first: null, marks: [] };
  window.__blast = state;
  return Promise.all(offers.map(async (offer) => {
    const pc = new RTCPeerConnection({ iceServers: [] });
    state.pcs.push(pc);
    pc.addEventListener("datachannel", (event) => {
      const channel = event.channel;
      channel.binaryType = "arraybuffer";
      channel.onmessage = (message) => {
        if (state.first === null) {
          state.first = now();
          setInterval(() => state.marks.push([now(), state.bytes]), 250);
        }
        state.bytes += message.data.byteLength;
      };
    });
    await pc.setRemoteDescription({ type: "offer", sdp: offer });
    await pc.setLocalDescription();
    await window.__gathered(pc);
    return pc.localDescription.sdp;
  }));
}
"""

# Sender page: once every channel is open, each channel sends `message`-byte messages
# until stopped, pausing above the high-water mark until bufferedamountlow.
START = """
async ({ answers, message, high }) => {
  const state = window.__blast;
  await Promise.all(state.pcs.map((pc, i) => pc.setRemoteDescription({ type: "answer", sdp: answers[i] })));
  await Promise.all(state.channels.map((c) => c.opened));
  const payload = new ArrayBuffer(message);
  const pump = async (channel) => {
    while (!state.stopped && channel.readyState === "open") {
      if (channel.bufferedAmount > high) {
        await new Promise((resolve) =>
          channel.addEventListener("bufferedamountlow", resolve, { once: true }));
        continue;
      }
      channel.send(payload);
    }
  };
  state.pumps = state.channels.map((c) => pump(c.channel));
}
"""

STOP = "() => { const s = window.__blast; if (s) { s.stopped = true; s.pcs.forEach((pc) => pc.close()); } }"

# What a web-client run saved, and the records of it: a page that finds a record of a
# same-name file resumes it (docs/webclient.md, "Resume"), and its file would be gone.
CLEAR_SAVED = """
async () => {
  const root = await navigator.storage.getDirectory();
  for await (const name of root.keys()) await root.removeEntry(name, { recursive: true }).catch(() => {});
  for (const db of await indexedDB.databases()) {
    await new Promise((resolve) => {
      const request = indexedDB.deleteDatabase(db.name);
      request.onsuccess = request.onerror = request.onblocked = resolve;
    });
  }
}
"""


class Agent:
    """A browser_agent process in one namespace."""

    def __init__(self, ctx: Context, namespace: str, name: str) -> None:
        self.profile = Path(tempfile.mkdtemp(prefix=f"chromium-{name}-", dir=ctx.work))
        self.log = open(ctx.work / f"agent-{name}.err", "w")  # noqa: SIM115 - closed in close()
        origin = ctx.server_url
        self.process = subprocess.Popen(
            ctx.link.command(namespace, PYTHON, "-m", "benchmarks.browser_agent", str(self.profile), origin),
            cwd=REPO, env=ctx.env, text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self.log, start_new_session=True)
        self.pid: int = self("pid", timeout=90)

    def __call__(self, op: str, timeout: float = 120, **request: Any) -> Any:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps({"op": op, **request}) + "\n")
        self.process.stdin.flush()
        line = readline(self.process.stdout, timeout)
        if not line:
            raise RuntimeError(f"the browser agent gave no answer to {op} within {timeout} s")
        reply = json.loads(line)
        if not reply["ok"]:
            raise RuntimeError(f"{op}: {reply['error']}")
        return reply.get("value")

    def would_block(self) -> int:
        """How many UDP sends WebRTC has seen fail with EAGAIN so far (its log: "UDP send of N
        bytes … failed with error 11"): each a packet the renderer could not hand on."""
        try:
            with open(self.profile / "chrome_debug.log", errors="replace") as log:
                return sum(1 for line in log if "failed with error 11" in line)
        except OSError:
            return 0

    def version(self) -> str:
        page = self("new_page")
        try:
            return str(self("eval", page=page, js="() => navigator.userAgent"))
        finally:
            self("close_page", page=page)

    def close(self) -> None:
        try:
            self("quit", timeout=20)
        except (RuntimeError, OSError, ValueError):
            pass
        stop_process(self.process)
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)


def wall_to_monotonic(marks: list[list[float]]) -> Series:
    """A page's [wall ms, bytes] marks as a Series on the monotonic clock."""
    offset = time.monotonic() - time.time()
    series = Series()
    for wall_ms, count in marks:
        series.add(wall_ms / 1000 + offset, count)
    return series


class BrowserSubject(Subject):
    stack = "chromium"

    def __init__(self) -> None:
        super().__init__()
        self.sender_agent: Agent | None = None
        self.receiver_agent: Agent | None = None
        self.pages: list[tuple[Agent, str]] = []
        self.receive_page = ""  # set by start()

    def use(self, sender: Agent, receiver: Agent) -> None:
        self.sender_agent, self.receiver_agent = sender, receiver
        self.would_block_before = (sender.would_block(), receiver.would_block())

    def count_would_block(self) -> None:
        assert self.sender_agent and self.receiver_agent
        self.notes["udp_send_would_block"] = {
            "A": self.sender_agent.would_block() - self.would_block_before[0],
            "B": self.receiver_agent.would_block() - self.would_block_before[1]}

    def sides(self) -> dict[str, list[int]]:
        assert self.sender_agent and self.receiver_agent
        return {"sender": [self.sender_agent.pid], "receiver": [self.receiver_agent.pid]}

    def open_page(self, agent: Agent, url: str) -> str:
        page = agent("new_page")
        self.pages.append((agent, page))
        agent("goto", page=page, url=url)
        return str(page)

    def page_first_byte(self, js: str) -> float | None:
        """The receiving page's first-byte wall time (ms, from `js`) on the monotonic clock."""
        assert self.receiver_agent
        first = self.receiver_agent("eval", page=self.receive_page, js=js)
        return None if first is None else first / 1000 + time.monotonic() - time.time()

    def close_pages(self) -> None:
        for agent, page in reversed(self.pages):  # the receiver's first: no reconnect attempts
            try:
                agent("close_page", page=page)
            except (RuntimeError, OSError):
                pass
        self.pages = []


class ChromiumBlast(BrowserSubject):
    """Plain RTCPeerConnections in one page per side, one data channel each, nothing else:
    256 KiB messages, `bufferedAmount` high-water 8 MiB (as benchmarks/browser_transfer.py)."""

    def __init__(self, connections: int = 1) -> None:
        super().__init__()
        self.connections = connections
        self.name = "chromium" if connections == 1 else f"chromium-x{connections}"
        self.label = f"Chromium bare ×{connections}"

    def start(self, ctx: Context) -> None:
        assert self.sender_agent and self.receiver_agent
        origin = ctx.server_url + "/"
        self.send_page = self.open_page(self.sender_agent, origin)
        self.receive_page = self.open_page(self.receiver_agent, origin)
        offers = self.sender_agent("eval", page=self.send_page, js=OFFER, arg={
            "connections": self.connections, "low": LOW_WATER})
        answers = self.receiver_agent("eval", page=self.receive_page, js=ANSWER, arg={"offers": offers})
        self.sender_agent("eval", page=self.send_page, js=START, timeout=90, arg={
            "answers": answers, "message": MESSAGE, "high": HIGH_WATER})

    def first_byte(self) -> float | None:
        return self.page_first_byte("() => window.__blast.first")

    def collect(self) -> list[Series]:
        assert self.receiver_agent
        return [wall_to_monotonic(self.receiver_agent("eval", page=self.receive_page,
                                                      js="() => window.__blast.marks"))]

    def finish(self, start: float, end: float) -> dict[str, Any]:
        for agent, page in self.pages:
            try:
                agent("eval", page=page, js=STOP)
            except (RuntimeError, OSError):
                pass
        self.close_pages()
        self.count_would_block()
        return self.notes


PAGE_TEXT = "() => (document.querySelector('%s')?.innerText || '').replace(/\\s+/g, ' ').slice(0, 400)"
BENCH_STATE = "() => ({ marks: window.__bench.marks, channels: window.__bench.channels })"


class WebClient(BrowserSubject):
    """The web client as it is: Create link in A's page, open the link in B's, Accept;
    bytes counted as binary data-channel messages arrive in the receiving page.
    `lanes`: PEERBEAM_LANES in both pages (exactly that many connections, opened at
    once); None: the pages' default (js/lanes.js DEFAULT_LANES, also at once)."""

    def __init__(self, lanes: int | None = None) -> None:
        super().__init__()
        self.lanes = lanes
        self.name = "web" if lanes is None else f"web-c{lanes}"
        self.label = "web client" + ("" if lanes is None else f", {lanes} connection{'s' * (lanes > 1)}")

    def start(self, ctx: Context) -> None:
        assert self.sender_agent and self.receiver_agent
        sender, receiver = self.sender_agent, self.receiver_agent
        self.origin = ctx.server_url + "/"
        self.send_page = send_page = self.open_page(sender, self.origin)
        sender("upload", page=send_page, selector="#file-input", files=[str(ctx.source)])
        sender("click", page=send_page, name="Create link")
        link = sender("value", page=send_page, selector="#share-link")
        self.receive_page = self.open_page(receiver, link)
        receiver("wait_enabled", page=self.receive_page, name="Accept", timeout_ms=60_000, timeout=90)
        receiver("click", page=self.receive_page, name="Accept")

    def open_page(self, agent: Agent, url: str) -> str:
        script = "" if self.lanes is None else f"window.PEERBEAM_LANES = {self.lanes};"
        page = agent("new_page", script=script)
        self.pages.append((agent, page))
        agent("goto", page=page, url=url)
        return str(page)

    def first_byte(self) -> float | None:
        return self.page_first_byte("() => window.__bench.firstByte")

    def collect(self) -> list[Series]:
        assert self.receiver_agent
        bench = self.receiver_agent("eval", page=self.receive_page, js=BENCH_STATE)
        self.notes["connections"] = bench["channels"]  # one channel per connection carried bytes
        # what each page says (a stall or an error shows here)
        assert self.sender_agent
        pages = (("receiver_page", self.receiver_agent, self.receive_page, "#receive-view"),
                 ("sender_page", self.sender_agent, self.send_page, "#receivers"))
        for key, agent, page, selector in pages:
            self.notes[key] = agent("eval", page=page, js=PAGE_TEXT % selector)
        return [wall_to_monotonic(bench["marks"])]

    def finish(self, start: float, end: float) -> dict[str, Any]:
        assert self.receiver_agent
        self.close_pages()
        self.count_would_block()
        cleaner = self.receiver_agent("new_page")
        try:  # what was saved so far, so that the disk does not fill up over the run
            self.receiver_agent("goto", page=cleaner, url=self.origin)
            self.receiver_agent("eval", page=cleaner, js=CLEAR_SAVED)
        except RuntimeError:
            pass
        finally:
            self.receiver_agent("close_page", page=cleaner)
        return self.notes
