"""Long-haul throughput: what one association, N associations, the CLI and the web client
move across an emulated wide-area link, against a TCP stream on the same link.

    python -m benchmarks.long_haul [--cell RTT[:LOSS[:SECONDS[:ROUNDS]]][=NAME,...] ... --subjects NAME,...]
                                   [--rounds N] [--out long_haul]

Needs root (network namespaces) and netem-lite (benchmarks/netlink.py). For each link
setting ("cell": RTT in ms, random loss in % each way) the link comes up (sender in
namespace A, receiver in B, `peerbeam serve` in S, whose traffic is not delayed), one
headless Chromium starts in A and one in B when the cell has browser subjects, and every
subject runs in turn, interleaved (the order reversed in every other round), each for a
fixed time: SECONDS from its first byte, of which the first half is warm-up (set-up, slow
start, and the lanes the CLI and the web client add) and the rest is measured.
Each run records the rate in that window, MB/s second by second, the CPU of each side, the
busiest Python event loop, the machine's load, UDP receive-buffer drops in each namespace,
the emulator's counters and, for aiortc senders, their SCTP state (benchmarks/sctp_probe).
A cell may also send one whole file with the CLI (":finish MIB"), waited for and verified.

Writes benchmarks/results/<out>.json; benchmarks/report.py renders it into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import hashlib
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
from benchmarks.long_haul.measure import between, snapshot
from benchmarks.long_haul.subjects import AiortcBlast, Context, PeerbeamCli, Subject, TcpStream, stop_process
from benchmarks.netlink import Link, emulated_link, unavailable
from benchmarks.procs import ENV, PYTHON, REPO, save_result
from tests.fixtures.cli import random_file

MiB = 1024 * 1024

# Every subject the benchmark knows, by name.
FACTORIES: dict[str, Callable[[], Subject]] = {
    subject().name: subject for subject in (
        lambda: TcpStream("cubic"),
        lambda: AiortcBlast(),
        lambda: AiortcBlast(tuned=True),
        lambda: AiortcBlast(4, 1),
        lambda: AiortcBlast(2, 1),
        lambda: AiortcBlast(2, 2),
        PeerbeamCli,
        lambda: PeerbeamCli(1),
        lambda: PeerbeamCli(4),
        lambda: ChromiumBlast(),
        lambda: ChromiumBlast(4),
        lambda: ChromiumBlast(8),
        WebClient,
        lambda: WebClient(4),
        lambda: WebClient(8),
    )
}

# The long-haul table (`make bench-long`), per link setting the subjects side by side.
# Python peers: a TCP stream, the bare channel ×1 (aiortc as shipped, and with the SCTP
# tuning every peerbeam connection has) and ×4 (one process, as the CLI's lanes), the CLI
# as users get it and with one connection; where the bars are (120 ms, loss), the CLI with
# 4 connections from the start shows what the growth rule costs. Browsers at 0, 60 and
# 120 ms. On loopback also two bare associations in one process against two processes:
# would lanes in separate processes help the Python peer? Long and lossy links run longer:
# the growth rule judges an interval only once it holds 8 acknowledged chunks, which at
# 0.3 MB/s per connection takes about 30 s, and the first half of a run is warm-up.
PYTHON_PEERS = ["aiortc", "cli", "tcp-cubic", "aiortc-x4-1p", "cli-c1", "aiortc-tuned"]
BROWSERS = ["chromium", "web", "chromium-x4"]
PROCESSES = ["aiortc-x2-1p", "aiortc-x2-np"]
TABLE: list[tuple[str, list[str]]] = [
    ("0:0:24:2", PYTHON_PEERS + PROCESSES + BROWSERS),
    ("20:0:24:1", PYTHON_PEERS),
    ("60:0:40:1", PYTHON_PEERS + BROWSERS),
    ("120:0:40:1", PYTHON_PEERS + ["cli-c4"] + BROWSERS),
    ("200:0:40:1", PYTHON_PEERS),
    ("60:0.5:120:1", PYTHON_PEERS + ["cli-c4"]),
    ("60:2:40:1:16", PYTHON_PEERS),
]


@dataclass(frozen=True)
class Cell:
    rtt_ms: float
    loss_pct: float
    seconds: float
    rounds: int
    finish_mib: int = 0  # then one whole file of this size through the CLI, verified

    @classmethod
    def parse(cls, text: str) -> Cell:
        parts = [float(x) for x in text.split(":")]
        rtt, loss = parts[0], parts[1] if len(parts) > 1 else 0.0
        seconds = parts[2] if len(parts) > 2 else 30.0
        rounds = int(parts[3]) if len(parts) > 3 else 1
        finish = int(parts[4]) if len(parts) > 4 else 0
        return cls(rtt, loss, seconds, rounds, finish)

    @property
    def warmup(self) -> float:
        return self.seconds / 2


def wait_for_server(link: Link, url: str, timeout: float = 40) -> None:
    probe = f"import urllib.request; urllib.request.urlopen({url!r}, timeout=2).read()"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if subprocess.run(link.command(link.sender_ns, PYTHON, "-c", probe),
                          capture_output=True).returncode == 0:
            return
        time.sleep(0.3)
    raise RuntimeError(f"the signaling server did not answer at {url}")


def sleep_until(t: float) -> None:
    while (left := t - time.monotonic()) > 0:
        time.sleep(min(left, 0.5))


def run_subject(subject: Subject, ctx: Context, cell: Cell, setup_timeout: float = 90) -> dict[str, Any]:
    """One subject for `cell.seconds` from its first byte; the figures of its window."""
    result: dict[str, Any] = {"subject": subject.name, "label": subject.label, "stack": subject.stack}
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
        if not delivered:
            raise RuntimeError("nothing arrived in the measured window")
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


def whole_file(ctx: Context, size_mib: int, timeout: float = 900) -> dict[str, Any]:
    """One whole file through `peerbeam send → receive` (default lanes), waited for: the
    receiver's exit status, the time from its start to its end, and whether the saved file
    has the source's SHA-256."""
    source = random_file(ctx.work / f"whole-{size_mib}.bin", size_mib * MiB, seed=size_mib)
    cli = PeerbeamCli()
    result: dict[str, Any] = {"subject": "cli-whole", "size_mib": size_mib}
    started = time.monotonic()
    try:
        cli.start(ctx, source)
        exit_code = cli.receiver.wait(timeout)
        result["seconds"] = round(time.monotonic() - started, 1)
        result["mb_s"] = round(size_mib * MiB / 1e6 / result["seconds"], 3)
        result["exit"] = exit_code
        saved = cli.out / source.name
        result["verified"] = exit_code == 0 and saved.exists() and \
            hashlib.sha256(saved.read_bytes()).digest() == hashlib.sha256(source.read_bytes()).digest()
    except (subprocess.TimeoutExpired, RuntimeError) as error:
        result["error"] = f"{type(error).__name__}: {str(error)[:300]}"
        result["verified"] = False
    finally:
        result.update(cli.finish(started, time.monotonic()))
        source.unlink(missing_ok=True)
    return result


def run_cell(cell: Cell, names: list[str], work: Path, source: Path, prefix: str) -> dict[str, Any]:
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
        agents: tuple[Agent, Agent] | None = None
        try:
            wait_for_server(link, url + "/config.json")
            ctx = Context(link, url, work, env, source)
            for round_index in range(cell.rounds):
                order = names if round_index % 2 == 0 else names[::-1]
                for name in order:
                    subject = FACTORIES[name]()
                    if isinstance(subject, BrowserSubject):
                        if agents is None:
                            agents = (Agent(ctx, link.sender_ns, "A"), Agent(ctx, link.receiver_ns, "B"))
                            out["chromium"] = agents[0].version()
                        subject.use(*agents)
                    result = run_subject(subject, ctx, cell)
                    result["round"] = round_index + 1
                    runs.append(result)
                    print(json.dumps({"rtt_ms": cell.rtt_ms, "loss_pct": cell.loss_pct, **result}),
                          flush=True)
            if cell.finish_mib:
                out["whole_file"] = whole_file(ctx, cell.finish_mib)
                print(json.dumps({"rtt_ms": cell.rtt_ms, "loss_pct": cell.loss_pct, **out["whole_file"]}),
                      flush=True)
            out["emulator"] = link.emulator_stats()
        finally:
            for agent in agents or ():
                agent.close()
            stop_process(server)  # type: ignore[arg-type]
    return out


def median_rates(cell: dict[str, Any]) -> dict[str, float]:
    rates: dict[str, list[float]] = {}
    for run in cell["runs"]:
        if "mb_s" in run:
            rates.setdefault(run["subject"], []).append(run["mb_s"])
    return {name: statistics.median(values) for name, values in rates.items()}


def plan(cells: list[str] | None, subjects: str | None, rounds: int | None) -> list[tuple[Cell, list[str]]]:
    """The cells to run and their subjects: the table's, or the ones given (with their own
    subjects after "=", else the given subjects, else the table's for the same link)."""
    table = [(Cell.parse(text), names) for text, names in TABLE]

    def table_subjects(cell: Cell) -> list[str]:
        link = (cell.rtt_ms, cell.loss_pct)
        return next((names for known, names in table if (known.rtt_ms, known.loss_pct) == link), PYTHON_PEERS)

    def given(text: str) -> tuple[Cell, list[str]]:  # "CELL" or "CELL=SUBJECT,SUBJECT"
        cell_text, _, own = text.partition("=")
        cell = Cell.parse(cell_text)
        return cell, own.split(",") if own else subjects.split(",") if subjects else table_subjects(cell)

    chosen = table if not cells else [given(text) for text in cells]
    if subjects and not cells:
        chosen = [(cell, subjects.split(",")) for cell, _ in chosen]
    if rounds:
        chosen = [(Cell(c.rtt_ms, c.loss_pct, c.seconds, rounds, c.finish_mib), names) for c, names in chosen]
    unknown = {name for _, names in chosen for name in names if name not in FACTORIES}
    if unknown:
        raise ValueError(f"unknown subjects: {', '.join(sorted(unknown))} (known: {', '.join(FACTORIES)})")
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cell", action="append",
                        help="RTT_MS[:LOSS_PCT[:SECONDS[:ROUNDS[:WHOLE_FILE_MIB]]]][=SUBJECT,...] "
                             "(repeatable; default: the table's)")
    parser.add_argument("--subjects", help=f"comma list, in run order (default: the table's); known: "
                                           f"{', '.join(FACTORIES)}")
    parser.add_argument("--rounds", type=int, help="rounds in every cell (default: the table's)")
    parser.add_argument("--out", default="long_haul", help="results name: benchmarks/results/NAME.json")
    args = parser.parse_args()
    reason = unavailable()
    if reason:
        sys.exit(f"long-haul benchmark cannot run: {reason}")
    try:
        cells = plan(args.cell, args.subjects, args.rounds)
    except ValueError as error:
        sys.exit(str(error))
    estimate = sum(c.rounds * len(names) * (c.seconds + 10) + c.finish_mib * 4 for c, names in cells) / 60
    print(f"{len(cells)} link settings: about {estimate:.0f} minutes", file=sys.stderr)
    started, load = time.monotonic(), os.getloadavg()
    prefix = f"pblh{os.getpid() % 100000}"
    with tempfile.TemporaryDirectory(prefix="peerbeam-long-haul-") as tmp:
        work = Path(tmp)
        os.chmod(work, 0o755)
        # Big enough that no run reaches its end (40 MB/s is above every subject on this machine).
        size = int(40e6 * max(c.seconds for c, _ in cells)) // MiB * MiB
        source = random_file(work / "long-haul.bin", size, seed=11)
        results = [run_cell(cell, names, work, source, prefix) for cell, names in cells]
    names_run = list(dict.fromkeys(name for _, names in cells for name in names))
    result = {
        "cells": results,
        "subjects": {name: {"label": subject.label, "stack": subject.stack}
                     for name in names_run if (subject := FACTORIES[name]())},
        "load": [round(load[0], 2), round(os.getloadavg()[0], 2)],
        "duration_min": round((time.monotonic() - started) / 60, 1),
        "cpus": os.cpu_count(),
    }
    save_result(args.out, result)
    for cell in results:
        rates = median_rates(cell)
        print(f"{cell['rtt_ms']:g} ms {cell['loss_pct']:g} %: "
              + ", ".join(f"{name} {rate:.2f}" for name, rate in rates.items()), file=sys.stderr)
