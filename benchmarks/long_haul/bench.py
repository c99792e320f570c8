"""Long-haul throughput: what one association, N associations, the CLI and the web client
move across an emulated wide-area link, against a TCP stream on the same link.

    python -m benchmarks.long_haul [--cell RTT[:LOSS[:SECONDS[:ROUNDS]]] ...]
                                   [--subjects NAME,...] [--out long_haul]

Needs root (network namespaces) and netem-lite (benchmarks/netlink.py). For each link
setting ("cell": RTT in ms, random loss in % each way) the link comes up (sender in
namespace A, receiver in B, `peerbeam serve` in S, whose traffic is not delayed), one
headless Chromium starts in A and one in B, and every subject runs in turn, interleaved
(baselines between the subjects, the order reversed in every other round), each for a
fixed time: SECONDS from its first byte, of which the first quarter is warm-up (set-up and
slow start) and the rest is measured. Each run records the rate in that window, the CPU of
each side, the busiest Python event loop, the machine's load, UDP receive-buffer drops in
each namespace, the emulator's counters (bytes on the wire, random drops) and, for aiortc
senders, their SCTP state (benchmarks/sctp_probe).

Writes benchmarks/results/<out>.json; benchmarks/report.py renders it into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.long_haul.browsers import Agent, BrowserSubject, ChromiumBlast, WebClient
from benchmarks.long_haul.measure import between, machine_jiffies, snapshot
from benchmarks.long_haul.subjects import AiortcBlast, Context, PeerbeamCli, Subject, TcpStream, stop_process
from benchmarks.netlink import Link, emulated_link, unavailable
from benchmarks.procs import ENV, PYTHON, REPO, save_result
from tests.fixtures.cli import random_file

MiB = 1024 * 1024

# Every subject the benchmark knows, by name.
FACTORIES: dict[str, Callable[[], Subject]] = {
    subject().name: subject for subject in (
        lambda: TcpStream("cubic"),
        lambda: TcpStream("bbr"),
        lambda: AiortcBlast(),
        lambda: AiortcBlast(rcvbuf=4 * MiB),
        lambda: AiortcBlast(2, 1),
        lambda: AiortcBlast(4, 1),
        lambda: AiortcBlast(2, 2),
        lambda: AiortcBlast(4, 4),
        lambda: AiortcBlast(8, 8),
        lambda: AiortcBlast(4, 4, rcvbuf=4 * MiB),
        PeerbeamCli,
        lambda: ChromiumBlast(),
        lambda: ChromiumBlast(channels=4),
        lambda: ChromiumBlast(connections=4),
        lambda: ChromiumBlast(message=64 * 1024),
        lambda: ChromiumBlast(ordered=False),
        lambda: ChromiumBlast(window=MiB),
        lambda: ChromiumBlast(video=True),
        lambda: ChromiumBlast(receive_buffer=4 * MiB),
        lambda: ChromiumBlast(connections=4, video=True),
        *(lambda window=window: ChromiumBlast(video=True, window=window)
          for window in (256 * 1024, 512 * 1024, MiB, 2 * MiB)),
        *(lambda n=n: ChromiumBlast(connections=n, video=True, window=MiB) for n in (2, 4, 8)),
        WebClient,
    )
}

# The long-haul table: baselines spread between the subjects, so that drift in the
# machine's load hits all alike. The Chromium "video, 1 MiB window" rows are the bare
# channel with the two changes the diagnosis below found (see docs/benchmarks.md).
TABLE_SUBJECTS = [
    "aiortc", "cli", "tcp-cubic", "aiortc-x2-np", "chromium", "web", "aiortc-x4-np",
    "chromium-video-win1024k", "aiortc-x4-1p", "chromium-pc4", "aiortc-rcvbuf4m",
    "chromium-pc2-video-win1024k", "aiortc-x8-np", "chromium-ch4", "tcp-bbr",
    "chromium-pc4-video-win1024k", "chromium-pc8-video-win1024k",
]
TABLE_CELLS = ["0:0:15:2", "20:0:25:1", "60:0:25:1", "120:0:30:1", "200:0:30:1", "60:0.5:40:1", "60:2:40:1"]

# The diagnosis: one long link, the single association changed one thing at a time.
DIAGNOSIS_SUBJECTS = [
    "aiortc", "aiortc-rcvbuf4m", "chromium", "chromium-64k", "chromium-unordered",
    "chromium-win1024k", "chromium-video", "chromium-video-rcvbuf4m", "chromium-video-win256k",
    "chromium-video-win512k", "chromium-video-win1024k", "chromium-video-win2048k",
    "chromium-pc4", "chromium-pc4-video", "chromium-pc4-video-win1024k", "aiortc-x4-np-rcvbuf4m",
]
DIAGNOSIS_CELLS = ["120:0:30:2"]

PRESETS = {"table": (TABLE_SUBJECTS, TABLE_CELLS), "diagnosis": (DIAGNOSIS_SUBJECTS, DIAGNOSIS_CELLS)}


@dataclass(frozen=True)
class Cell:
    rtt_ms: float
    loss_pct: float
    seconds: float
    rounds: int

    @classmethod
    def parse(cls, text: str) -> Cell:
        parts = [float(x) for x in text.split(":")]
        rtt, loss = parts[0], parts[1] if len(parts) > 1 else 0.0
        seconds = parts[2] if len(parts) > 2 else 25.0
        rounds = int(parts[3]) if len(parts) > 3 else 1
        return cls(rtt, loss, seconds, rounds)

    @property
    def warmup(self) -> float:
        return self.seconds / 4



def wait_for_server(link: Link, url: str, timeout: float = 40) -> None:
    probe = f"import urllib.request; urllib.request.urlopen({url!r}, timeout=2).read()"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if subprocess.run(link.command(link.sender_ns, PYTHON, "-c", probe),
                          capture_output=True).returncode == 0:
            return
        time.sleep(0.3)
    raise RuntimeError(f"the signaling server did not answer at {url}")


def wait_for_quiet(busy_below: float, longest: float) -> float:
    """Wait (at most `longest` s) until the machine was less than `busy_below` busy over the
    last 2 s, so that a run does not start in the middle of another job's burst; how busy it
    was when the run starts."""
    deadline = time.monotonic() + longest
    while True:
        before = machine_jiffies()
        time.sleep(2)
        after = machine_jiffies()
        busy = 1 - (after[1] - before[1]) / max(1, after[0] - before[0])
        if busy < busy_below or time.monotonic() > deadline:
            return round(busy, 2)


def sleep_until(t: float) -> None:
    while (left := t - time.monotonic()) > 0:
        time.sleep(min(left, 0.5))


def run_subject(subject: Subject, ctx: Context, cell: Cell, setup_timeout: float = 90) -> dict[str, Any]:
    """One subject for `cell.seconds` from its first byte; the figures of its window."""
    result: dict[str, Any] = {"subject": subject.name, "label": subject.label, "stack": subject.stack,
                              "busy_before": wait_for_quiet(ctx.quiet_busy, ctx.quiet_wait)}
    started = time.monotonic()
    window = (started, started)
    try:
        subject.start(ctx)
        first = None
        while first is None:
            if time.monotonic() - started > setup_timeout:
                raise RuntimeError(f"no byte within {setup_timeout:.0f} s")
            time.sleep(0.2)
            first = subject.first_byte()
        result["setup_s"] = round(first - started, 2)
        sleep_until(first + cell.warmup)
        before = snapshot(ctx.link, subject.sides(), subject.loops())
        sleep_until(first + cell.seconds)
        after = snapshot(ctx.link, subject.sides(), subject.loops())
        window = (before.t, after.t)
        series = subject.collect()
        delivered = sum(s.at(after.t) - s.at(before.t) for s in series)
        result["mb_s"] = round(delivered / (after.t - before.t) / 1e6, 3)
        # MB/s in each second from the first byte: a ramp shows a window still opening
        result["per_second"] = [round(sum(s.at(first + i + 1) - s.at(first + i) for s in series) / 1e6, 2)
                                for i in range(int(cell.seconds))]
        result.update(between(before, after))
    except Exception as error:  # noqa: BLE001 - one failed run must not end the table
        result["error"] = f"{type(error).__name__}: {str(error)[:300]}"
    finally:
        try:
            result.update(subject.finish(*window))
        except Exception as error:  # noqa: BLE001
            result.setdefault("error", f"stopping: {type(error).__name__}: {str(error)[:200]}")
    return result


def run_cell(cell: Cell, names: list[str], work: Path, source: Path, prefix: str,
             quiet: tuple[float, float]) -> dict[str, Any]:
    env = {k: v for k, v in ENV.items() if k != "PEERBEAM_ICE_LOOPBACK"}  # the namespaces' own addresses
    runs: list[dict[str, Any]] = []
    out: dict[str, Any] = {"rtt_ms": cell.rtt_ms, "loss_pct": cell.loss_pct, "seconds": cell.seconds,
                           "warmup_s": cell.warmup, "rounds": cell.rounds, "runs": runs}
    with emulated_link(rtt_ms=cell.rtt_ms, loss_pct=cell.loss_pct, prefix=prefix, subnet="198.18.81") as link:
        data = work / "server"
        data.mkdir(exist_ok=True)
        url = f"http://{link.server_ip}:8000"
        server = subprocess.Popen(
            link.command(link.server_ns, PYTHON, "-m", "peerbeam.cli", "serve", "--host", link.server_ip,
                         "--port", "8000", "--data-dir", str(data)),
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        agents: dict[tuple[str, ...], tuple[Agent, Agent]] = {}  # by extra Chromium switches
        try:
            wait_for_server(link, url + "/config.json")
            ctx = Context(link, url, work, env, source, *quiet)
            for round_index in range(cell.rounds):
                order = names if round_index % 2 == 0 else names[::-1]
                for name in order:
                    subject = FACTORIES[name]()
                    if isinstance(subject, BrowserSubject):
                        if subject.flags not in agents:
                            agents[subject.flags] = (Agent(ctx, link.sender_ns, "A", subject.flags),
                                                     Agent(ctx, link.receiver_ns, "B", subject.flags))
                            out.setdefault("chromium", agents[subject.flags][0].version())
                        subject.use(*agents[subject.flags])
                    result = run_subject(subject, ctx, cell)
                    result["round"] = round_index + 1
                    runs.append(result)
                    print(json.dumps({"rtt_ms": cell.rtt_ms, "loss_pct": cell.loss_pct, **result}),
                          flush=True)
            out["emulator"] = link.emulator_stats()
        finally:
            for pair in agents.values():
                for agent in pair:
                    agent.close()
            stop_process(server)  # type: ignore[arg-type]
    return out


def median_rates(cell: dict[str, Any]) -> dict[str, float]:
    rates: dict[str, list[float]] = {}
    for run in cell["runs"]:
        if "mb_s" in run:
            rates.setdefault(run["subject"], []).append(run["mb_s"])
    return {name: statistics.median(values) for name, values in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=PRESETS, default="table",
                        help="table: the long-haul table; diagnosis: one link, one thing changed at a time")
    parser.add_argument("--cell", action="append",
                        help="RTT_MS[:LOSS_PCT[:SECONDS[:ROUNDS]]] (repeatable; default: the preset's)")
    parser.add_argument("--subjects", help=f"comma list, in run order (default: the preset's); known: "
                                           f"{', '.join(FACTORIES)}")
    parser.add_argument("--out", help="results name: benchmarks/results/NAME.json (default: long_haul, "
                                      "long_haul_diagnosis)")
    parser.add_argument("--quiet-busy", type=float, default=0.6,
                        help="before each run, wait until the machine is less busy than this (0..1)")
    parser.add_argument("--quiet-wait", type=float, default=20, help="... but at most this many seconds")
    args = parser.parse_args()
    reason = unavailable()
    if reason:
        sys.exit(f"long-haul benchmark cannot run: {reason}")
    subjects, cell_texts = PRESETS[args.preset]
    names = args.subjects.split(",") if args.subjects else subjects
    unknown = [name for name in names if name not in FACTORIES]
    if unknown:
        sys.exit(f"unknown subjects: {', '.join(unknown)} (known: {', '.join(FACTORIES)})")
    cells = [Cell.parse(text) for text in (args.cell or cell_texts)]
    out = args.out or ("long_haul" if args.preset == "table" else "long_haul_diagnosis")
    estimate = sum(c.rounds * len(names) * (c.seconds + 8) for c in cells) / 60
    print(f"{len(cells)} link settings × {len(names)} subjects: about {estimate:.0f} minutes",
          file=sys.stderr)
    started, load = time.monotonic(), os.getloadavg()[0]
    prefix = f"pblh{os.getpid() % 100000}"
    with tempfile.TemporaryDirectory(prefix="peerbeam-long-haul-") as tmp:
        work = Path(tmp)
        os.chmod(work, 0o755)
        # Big enough that no CLI or web-client run reaches its end (48 MB/s is above both).
        size = int(48e6 * (max(c.seconds for c in cells if not c.loss_pct) + 10) // MiB * MiB) \
            if any(not c.loss_pct for c in cells) else 256 * MiB
        source = random_file(work / "long-haul.bin", size, seed=11)
        quiet = (args.quiet_busy, args.quiet_wait)
        results = [run_cell(cell, names, work, source, prefix, quiet) for cell in cells]
    result = {
        "preset": args.preset,
        "cells": results,
        "subjects": {name: {"label": subject.label, "stack": subject.stack}
                     for name in names if (subject := FACTORIES[name]())},
        "load": [round(load, 2), round(os.getloadavg()[0], 2)],
        "duration_min": round((time.monotonic() - started) / 60, 1),
        "cpus": os.cpu_count(),
        "quiet_gate": {"busy_below": args.quiet_busy, "longest_wait_s": args.quiet_wait},
    }
    save_result(out, result)
    for cell in results:
        rates = median_rates(cell)
        print(f"{cell['rtt_ms']:g} ms {cell['loss_pct']:g} %: "
              + ", ".join(f"{name} {rate:.2f}" for name, rate in rates.items()), file=sys.stderr)
