"""The Python-side subjects of the long-haul table: one TCP stream, the bare aiortc data
channel (one or N peer connections, in one process or in N), and `peerbeam send → receive`.

Each subject starts its sender in the link's namespace A and its receiver in B, reports the
bytes delivered over time as a `Series`, names the processes whose CPU counts for each side,
and stops everything it started (by process group, never by name).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.long_haul.measure import Series, follow_progress, poll_size, sctp_summary
from benchmarks.netlink import Link
from benchmarks.procs import PYTHON, REPO

PROBE = REPO / "benchmarks" / "sctp_probe"
MiB = 1024 * 1024


@dataclass
class Context:
    """What every subject of one link setting shares."""

    link: Link
    server_url: str
    work: Path
    env: dict[str, str]
    source: Path  # the file `peerbeam send` and the web client send
    ports: list[int] = field(default_factory=lambda: [5300])

    def next_port(self) -> int:
        self.ports[0] += 1
        return self.ports[0]


def readline(stream: Any, timeout: float) -> str:
    """A line from a process's stdout, or "" after `timeout` seconds."""
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return box[0] if box else ""


def stop_process(process: subprocess.Popen[str]) -> None:
    """End a process this benchmark started, with its whole process group."""
    if process.poll() is None:
        for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
            try:
                os.killpg(process.pid, sig)
            except OSError:
                process.send_signal(sig)
            try:
                process.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue


class Subject:
    """One way of moving bytes from A to B. Subclasses start processes or pages."""

    name = ""
    label = ""
    stack = ""  # "tcp", "aiortc" or "chromium": which baseline it is compared with

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen[str]] = []
        self.series: list[Series] = []
        self.notes: dict[str, Any] = {}

    def start(self, ctx: Context) -> None:
        raise NotImplementedError

    def sides(self) -> dict[str, list[int]]:
        """Root processes of the sender side and of the receiver side (CPU is counted over
        their process trees)."""
        raise NotImplementedError

    def loops(self) -> list[int]:
        """Processes whose main thread is an event loop that may be CPU-bound."""
        return []

    def first_byte(self) -> float | None:
        firsts = [t for s in self.series if (t := s.first_byte) is not None]
        return min(firsts) if firsts else None

    def collect(self) -> list[Series]:
        return self.series

    def finish(self, start: float, end: float) -> dict[str, Any]:
        """Stop everything; what else this run showed (early exits, SCTP state...)."""
        for process in self.processes:
            if process.poll() is not None and process.returncode not in (0, -15, -9):
                self.notes.setdefault("exited", []).append(process.returncode)
        for process in reversed(self.processes):
            stop_process(process)
        return self.notes

    def spawn(self, ctx: Context, namespace: str, argv: list[str], env: dict[str, str] | None = None,
              stderr: Path | None = None) -> subprocess.Popen[str]:
        err = open(stderr, "w") if stderr else subprocess.DEVNULL  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(
            ctx.link.command(namespace, *argv), cwd=REPO, env=env or ctx.env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, start_new_session=True)
        self.processes.append(process)
        return process


class TcpStream(Subject):
    stack = "tcp"

    def __init__(self, congestion_control: str) -> None:
        super().__init__()
        self.cc = congestion_control
        self.name = f"tcp-{congestion_control}"
        self.label = f"TCP ({congestion_control})"

    def start(self, ctx: Context) -> None:
        where = f"{ctx.link.receiver_ip}:{ctx.next_port()}"
        self.receiver = self.spawn(ctx, ctx.link.receiver_ns, [
            PYTHON, "-m", "benchmarks.tcp_stream", "receive", "--bind", where])
        assert self.receiver.stdout is not None
        if "listening" not in readline(self.receiver.stdout, 30):
            raise RuntimeError("the TCP receiver did not start")
        self.series = [Series()]
        follow_progress(self.receiver.stdout, self.series[0])
        self.sender = self.spawn(ctx, ctx.link.sender_ns, [
            PYTHON, "-m", "benchmarks.tcp_stream", "send", "--to", where, "--cc", self.cc])

    def sides(self) -> dict[str, list[int]]:
        return {"sender": [self.sender.pid], "receiver": [self.receiver.pid]}


class AiortcBlast(Subject):
    """benchmarks/blast.py: `connections` peer connections, one channel each, spread over
    `processes` sender processes (and as many receiver processes)."""

    stack = "aiortc"

    def __init__(self, connections: int = 1, processes: int = 1, tuned: bool = False) -> None:
        super().__init__()
        self.connections, self.process_count, self.tuned = connections, processes, tuned
        where = "" if connections == 1 else (" in 1 process" if processes == 1 else " in N processes")
        self.label = f"aiortc bare ×{connections}{where}" + (", peerbeam's SCTP tuning" if tuned else "")
        spread = f"-x{connections}-{'1p' if processes == 1 else 'np'}" if connections > 1 else ""
        self.name = "aiortc" + spread + ("-tuned" if tuned else "")

    def start(self, ctx: Context) -> None:
        self.trace = ctx.work / f"sctp-{self.name}-{time.monotonic_ns()}.jsonl"
        send_env = {**ctx.env, "PYTHONPATH": str(PROBE), "PEERBEAM_BENCH_SCTP_TRACE": str(self.trace)}
        per_process = self.connections // self.process_count
        self.senders, self.receivers = [], []
        for _ in range(self.process_count):
            sender = self.spawn(ctx, ctx.link.sender_ns, [
                PYTHON, "-m", "benchmarks.blast", "send", "0", "--server", ctx.server_url,
                "--connections", str(per_process), *self.tuning()], env=send_env)
            self.senders.append(sender)
        for sender in self.senders:
            assert sender.stdout is not None
            rooms = readline(sender.stdout, 60).strip()
            if not rooms:
                raise RuntimeError("blast sender printed no rooms")
            receiver = self.spawn(ctx, ctx.link.receiver_ns, [
                PYTHON, "-m", "benchmarks.blast", "receive", rooms, "--server", ctx.server_url,
                "--bytes", "0", "--progress", "0.25", *self.tuning()])
            self.receivers.append(receiver)
            series = Series()
            assert receiver.stdout is not None
            follow_progress(receiver.stdout, series)
            self.series.append(series)

    def tuning(self) -> list[str]:
        return ["--tuned"] if self.tuned else []

    def sides(self) -> dict[str, list[int]]:
        return {"sender": [p.pid for p in self.senders], "receiver": [p.pid for p in self.receivers]}

    def loops(self) -> list[int]:
        return [p.pid for p in self.senders + self.receivers]

    def finish(self, start: float, end: float) -> dict[str, Any]:
        notes = super().finish(start, end)
        if (sctp := sctp_summary(self.trace, start, end)) is not None:
            notes["sctp"] = sctp
        self.trace.unlink(missing_ok=True)
        return notes


def held_bytes(directory: Path) -> int:
    """Bytes a `peerbeam receive` has written into `directory`: the blocks its files occupy
    (chunks of several connections land at their offsets, so a partial file's size says
    only how far the furthest one reached)."""
    total = 0
    for path in directory.iterdir():
        try:
            if path.is_file():
                total += min(path.stat().st_blocks * 512, path.stat().st_size)
        except OSError:
            pass
    return total


class PeerbeamCli(Subject):
    """`peerbeam send FILE` in A, `peerbeam receive LINK` in B, as they are on this branch.
    `connections`: `--connections N`; None: the default (lanes added while they help)."""

    stack = "aiortc"

    def __init__(self, connections: int | None = None) -> None:
        super().__init__()
        self.connections = connections
        self.name = "cli" if connections is None else f"cli-c{connections}"
        fixed = "" if connections is None else f" --connections {connections}"
        self.label = f"peerbeam send → receive{fixed}"

    def start(self, ctx: Context, source: Path | None = None) -> None:
        self.ctx = ctx
        self.trace = ctx.work / f"sctp-{self.name}-{time.monotonic_ns()}.jsonl"
        self.out = ctx.work / f"cli-out-{time.monotonic_ns()}"
        self.out.mkdir()
        send_env = {**ctx.env, "PYTHONPATH": str(PROBE), "PEERBEAM_BENCH_SCTP_TRACE": str(self.trace)}
        self.stderr = ctx.work / "cli-receive.err"
        fixed = [] if self.connections is None else ["--connections", str(self.connections)]
        self.sender = self.spawn(ctx, ctx.link.sender_ns, [
            PYTHON, "-m", "peerbeam.cli", "send", str(source or ctx.source), "--server", ctx.server_url,
            *fixed], env=send_env, stderr=ctx.work / "cli-send.err")
        assert self.sender.stdout is not None
        link = readline(self.sender.stdout, 60).strip()
        if not link.startswith("http"):
            raise RuntimeError("peerbeam send printed no link")
        self.receiver = self.spawn(ctx, ctx.link.receiver_ns, [
            PYTHON, "-m", "peerbeam.cli", "receive", link, "-o", str(self.out)], stderr=self.stderr)
        self.stop_polling = threading.Event()
        self.series = [Series()]
        poll_size(lambda: held_bytes(self.out), self.series[0], self.stop_polling)

    def sides(self) -> dict[str, list[int]]:
        return {"sender": [self.sender.pid], "receiver": [self.receiver.pid]}

    def loops(self) -> list[int]:
        return [self.sender.pid, self.receiver.pid]

    def collect(self) -> list[Series]:
        # one UDP socket per peer connection in the sender's namespace: the lanes in use
        self.notes["connections"] = len(self.ctx.link.udp_receive_buffers(self.ctx.link.sender_ns))
        return self.series

    def finish(self, start: float, end: float) -> dict[str, Any]:
        self.stop_polling.set()
        if self.receiver.poll() is not None:
            self.notes["receiver_exit"] = self.receiver.returncode
            self.notes["receiver_said"] = self.stderr.read_text(errors="replace")[-300:]
        notes = super().finish(start, end)
        if (sctp := sctp_summary(self.trace, start, end)) is not None:
            notes["sctp"] = sctp
        self.trace.unlink(missing_ok=True)
        shutil.rmtree(self.out, ignore_errors=True)
        return notes
