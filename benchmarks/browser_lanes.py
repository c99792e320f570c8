"""Chromium -> Chromium over several peer connections (protocol v1.1 lanes): the bare single
data channel against the web client with 1, 2, 3 and 4 connections (PEERBEAM_LANES) and
with its default plan (growing, up to js/lanes.js DEFAULT_LANES), side by side in each
round, on a plain link and across an emulated wide-area link (needs root).

    sudo .venv/bin/python -m benchmarks.browser_lanes [--rtt-ms 0 60] [--size-mib 64] [--rounds 2]

Each link is made with netem-lite (benchmarks/netlink.py): the sending Chromium in
namespace A, the receiving one in B, `peerbeam serve` in S; only A<->B traffic is delayed.
RTT 0 means the same namespaces without the emulator (plain veth and a bridge). Chromium
runs inside its namespace through a wrapper that Playwright launches as the browser
(`ip netns exec NS chromium "$@"`: the driver's pipes are inherited); the page origin is
treated as secure (WebCrypto, OPFS) as a user's https site would be, and camera/microphone
are granted with fake devices, because without that permission Chromium gathers host
candidates only on the default route, and these namespaces have none.

Per run: bare = one RTCPeerConnection with one channel (256 KiB messages, 8 MiB
high-water), timed from the first send to the last byte; web client = Create link, Accept,
"Done" (saved through the tests' save-picker stand-in into OPFS), timed from the first
binary message to "Done" (the streaming time; Accept -> Done is kept too). Both browsers'
CPU seconds are counted per run. Writes benchmarks/results/browser_lanes.json.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from playwright.sync_api import BrowserContext, Page, Playwright, sync_playwright

from benchmarks.browser_transfer import GATHERED, TIMING, CpuMeter, blast, load, webclient
from benchmarks.netlink import Link, emulated_link, unavailable
from benchmarks.procs import PYTHON, REPO
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, PICKER_TO_OPFS, write_file

RESULTS = REPO / "benchmarks" / "results"
MiB = 1024 * 1024
PORT = 8000
LANE_COUNTS = (1, 2, 3, 4)
MEDIA_ARGS = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]


@dataclass
class Origin:
    """What browser_transfer's runs need of a server: its base URL."""

    base: str


class NetnsSide:
    """One Chromium with a persistent profile, running inside a network namespace.
    `lanes`: PEERBEAM_LANES for the pages opened from now on (None: the page's default)."""

    def __init__(self, playwright: Playwright, namespace: str, origin: str, work: Path) -> None:
        wrapper = work / f"chromium-{namespace}"
        wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {namespace} {CHROMIUM} "$@"\n')
        wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
        self.marker = f"--peerbeam-bench={namespace}-{os.getpid()}"
        self.context: BrowserContext = playwright.chromium.launch_persistent_context(
            str(work / f"profile-{namespace}"), executable_path=str(wrapper), headless=True,
            accept_downloads=True, permissions=["camera", "microphone"],
            args=[*CHROMIUM_ARGS, *MEDIA_ARGS, f"--unsafely-treat-insecure-origin-as-secure={origin}",
                  self.marker],
        )
        for script in (PICKER_TO_OPFS, TIMING, GATHERED):
            self.context.add_init_script(script)
        for page in self.context.pages:
            page.close()
        self.pid = next(p.pid for p in psutil.process_iter(["cmdline"])
                        if self.marker in (p.info["cmdline"] or [])
                        and not any(arg.startswith("--type=") for arg in p.info["cmdline"]))
        self.lanes: int | None = None

    def page(self) -> Page:
        page = self.context.new_page()
        if self.lanes is not None:
            page.add_init_script(f"window.PEERBEAM_LANES = {self.lanes};")
        return page

    def close(self) -> None:
        self.context.close()


def start_server(link: Link, work: Path) -> subprocess.Popen[bytes]:
    log = open(work / "server.log", "ab")
    process = subprocess.Popen(
        link.command(link.server_ns, PYTHON, "-m", "peerbeam.cli", "serve", "--host", link.server_ip,
                     "--port", str(PORT), "--data-dir", str(work / "server")),
        cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://{link.server_ip}:{PORT}/config.json"
    probe = link.command(link.server_ns, PYTHON, "-c",
                         f"import urllib.request; urllib.request.urlopen({url!r}, timeout=1)")
    deadline = time.monotonic() + 30
    while subprocess.run(probe, capture_output=True).returncode != 0:
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"peerbeam serve did not start: {(work / 'server.log').read_text()}")
        time.sleep(0.3)
    return process


def udp_receive_drops(link: Link) -> list[int]:
    """Datagrams dropped because a UDP socket's receive buffer was full, in A and B (each
    drop is a lost packet to SCTP, which then halves its window)."""
    out = []
    for namespace in (link.sender_ns, link.receiver_ns):
        lines = subprocess.run(link.command(namespace, "cat", "/proc/net/snmp"), capture_output=True,
                               text=True, check=True).stdout.splitlines()
        udp = [line.split()[1:] for line in lines if line.startswith("Udp:")]
        out.append(int(dict(zip(udp[0], udp[1], strict=True))["RcvbufErrors"]))
    return out


def measure(sender: NetnsSide, receiver: NetnsSide, origin: Origin, link: Link, source: Path,
            lanes: int | None) -> dict[str, Any]:
    sender.lanes = receiver.lanes = lanes
    before, drops = load(), udp_receive_drops(link)
    meter = CpuMeter(sender, receiver)  # type: ignore[arg-type]
    if lanes == 0:
        run = blast(sender, receiver, origin, source.stat().st_size)  # type: ignore[arg-type]
        run["connections"] = 1
    else:
        run = webclient(sender, receiver, origin, source)  # type: ignore[arg-type]
    run["cpu_s"] = meter.stop()  # [sender, receiver] browser, every process
    run["mb_s"] = source.stat().st_size / 1e6 / run["streaming_s"]
    run["load"] = [round(before, 2), round(load(), 2)]
    run["udp_drops"] = [after - was for after, was in zip(udp_receive_drops(link), drops, strict=True)]
    return run


def link_runs(playwright: Playwright, rtt_ms: float, args: argparse.Namespace, work: Path,
              source: Path) -> dict[str, Any]:
    number = os.getpid() % 250
    with emulated_link(rtt_ms=rtt_ms, prefix=f"wl{number}", subnet=f"198.19.{number + 1}") as link:
        server = start_server(link, work)
        origin = Origin(f"http://{link.server_ip}:{PORT}")
        sender = receiver = None
        try:
            sender = NetnsSide(playwright, link.sender_ns, origin.base, work)
            receiver = NetnsSide(playwright, link.receiver_ns, origin.base, work)
            # "bare": the single channel; N: the web client with exactly N connections;
            # "default": the page as users get it.
            subjects: list[tuple[str, int | None]] = [("bare", 0), *((str(n), n) for n in LANE_COUNTS),
                                                       ("default", None)]
            rounds: list[dict[str, Any]] = []
            for _ in range(args.rounds):  # interleaved, so drift hits every subject alike
                row = {}
                for name, lanes in subjects:
                    row[name] = measure(sender, receiver, origin, link, source, lanes)
                    print(json.dumps({"rtt_ms": rtt_ms, "subject": name, **row[name]}), flush=True)
                rounds.append(row)
        finally:
            for side in (sender, receiver):
                if side is not None:
                    side.close()
            server.terminate()
            server.wait(10)
    names = [name for name, _ in subjects]
    mb_s = {name: [r[name]["mb_s"] for r in rounds] for name in names}
    return {
        "rtt_ms": rtt_ms,
        "rounds": rounds,
        "mb_s": mb_s,
        # Per round, the subject over the bare channel of the same round; then their median.
        "ratio": {name: statistics.median(r[name]["mb_s"] / r["bare"]["mb_s"] for r in rounds)
                  for name in names},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rtt-ms", type=float, nargs="+", default=[0, 60])
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    why = unavailable()
    if why:
        raise SystemExit(f"browser_lanes: {why}")
    links = []
    with tempfile.TemporaryDirectory(prefix="peerbeam-lanes-") as tmp, sync_playwright() as playwright:
        work = Path(tmp)
        source = write_file(work / "lanes.bin", args.size_mib * MiB, seed=9)
        for rtt in args.rtt_ms:
            links.append(link_runs(playwright, rtt, args, work, source))
    result = {
        "size_mib": args.size_mib,
        "links": links,
        "chromium": subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True).stdout.strip(),
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "browser_lanes.json").write_text(json.dumps(result, indent=1))
    print(json.dumps([{k: v for k, v in link.items() if k != "rounds"} for link in links], indent=1))


if __name__ == "__main__":
    main()
