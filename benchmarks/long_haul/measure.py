"""What one run of one subject measures, inside a window of time: the bytes delivered, the
CPU of each side, the machine's load and the link's counters.

Times are CLOCK_MONOTONIC seconds, which every process on the machine shares (the network
namespaces do not change clocks), so progress lines printed by processes inside the
namespaces line up with the driver's own clock.
"""

from __future__ import annotations

import bisect
import json
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from benchmarks.netlink import Link

TICK = os.sysconf("SC_CLK_TCK")


class Series:
    """Bytes delivered so far, sampled over time; read at any time by interpolation."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.counts: list[float] = []
        self._lock = threading.Lock()

    def add(self, t: float, count: float) -> None:
        with self._lock:
            if self.times and t <= self.times[-1]:
                return
            self.times.append(t)
            self.counts.append(count)

    @property
    def first_byte(self) -> float | None:
        """When the first bytes had arrived (the first sample that shows any)."""
        with self._lock:
            return next((t for t, n in zip(self.times, self.counts, strict=True) if n > 0), None)

    def at(self, t: float) -> float:
        with self._lock:
            if not self.times or t <= self.times[0]:
                return self.counts[0] if self.times and t >= self.times[0] else 0.0
            if t >= self.times[-1]:
                return self.counts[-1]
            i = bisect.bisect_right(self.times, t)
            t0, t1 = self.times[i - 1], self.times[i]
            n0, n1 = self.counts[i - 1], self.counts[i]
            return n0 + (n1 - n0) * (t - t0) / (t1 - t0)

    @property
    def last_time(self) -> float | None:
        with self._lock:
            return self.times[-1] if self.times else None


def follow_progress(stream: IO[str], series: Series, sink: list[str] | None = None) -> threading.Thread:
    """Read ``{"t", "bytes"}`` lines from a process's stdout into `series` (other lines to `sink`)."""

    def run() -> None:
        for line in stream:
            try:
                row = json.loads(line)
            except ValueError:
                row = None
            if isinstance(row, dict) and "t" in row and "bytes" in row:
                series.add(float(row["t"]), float(row["bytes"]))
            elif sink is not None:
                sink.append(line)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def poll_size(count: Callable[[], int], series: Series, stop: threading.Event,
              interval: float = 0.25) -> threading.Thread:
    """Sample `count()` (the bytes a receiver has written) into `series`."""

    def run() -> None:
        while not stop.is_set():
            series.add(time.monotonic(), count())
            stop.wait(interval)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def tree(roots: Iterable[int]) -> list[int]:
    """The processes `roots` and all their descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields:
                children.setdefault(int(fields[1]), []).append(int(entry))
    out: list[int] = []
    todo = list(roots)
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def cpu_seconds(pids: Iterable[int]) -> dict[int, float]:
    out = {}
    for pid in pids:
        fields = _stat(pid)
        if fields:
            out[pid] = (int(fields[11]) + int(fields[12])) / TICK
    return out


def main_thread(pid: int) -> tuple[float, float] | None:
    """(seconds on a CPU, seconds runnable but waiting for one) of a process's main thread:
    for a Python peer, its event loop."""
    try:
        with open(f"/proc/{pid}/schedstat") as handle:
            run, wait, _ = handle.read().split()
        return int(run) / 1e9, int(wait) / 1e9
    except (OSError, ValueError):
        return None


def machine_jiffies() -> tuple[int, int]:
    with open("/proc/stat") as handle:
        values = [int(x) for x in handle.readline().split()[1:]]
    return sum(values), values[3] + values[4]  # total, idle + iowait


@dataclass
class Snapshot:
    t: float
    cpu: dict[str, dict[int, float]]
    loops: dict[int, tuple[float, float]]
    machine: tuple[int, int]
    load: float
    udp: dict[str, dict[str, int]] = field(default_factory=dict)
    receive_buffers: list[int] = field(default_factory=list)
    emulator: dict[str, dict[str, Any]] = field(default_factory=dict)


def snapshot(link: Link, sides: dict[str, list[int]], loops: list[int]) -> Snapshot:
    """CPU of each side's process trees, the Python peers' event loops, the machine, and the
    link's counters, now."""
    t = time.monotonic()
    cpu = {side: cpu_seconds(tree(roots)) for side, roots in sides.items()}
    loop_times = {pid: times for pid in loops if (times := main_thread(pid))}
    shot = Snapshot(t, cpu, loop_times, machine_jiffies(), os.getloadavg()[0])
    shot.udp = {"A": link.udp_counters(link.sender_ns), "B": link.udp_counters(link.receiver_ns)}
    shot.receive_buffers = link.udp_receive_buffers(link.receiver_ns)
    shot.emulator = link.emulator_stats()
    return shot


def between(a: Snapshot, b: Snapshot) -> dict[str, Any]:
    """What happened between two snapshots: cores used by each side (CPU seconds per second;
    processes that ended in between are not counted), the busiest event loop's demand
    (on a CPU or waiting for one: near 1.0 it is CPU-bound), the machine, the link."""
    span = b.t - a.t
    out: dict[str, Any] = {"window_s": round(span, 2)}
    for side in b.cpu:
        used = sum(b.cpu[side][pid] - a.cpu.get(side, {}).get(pid, 0.0) for pid in b.cpu[side]
                   if pid in a.cpu.get(side, {}))
        out[f"{side}_cores"] = round(used / span, 2)
    demands = []
    for pid, (run, wait) in b.loops.items():
        if pid in a.loops:
            demands.append((run - a.loops[pid][0] + wait - a.loops[pid][1]) / span)
    if demands:
        out["loop_demand_max"] = round(max(demands), 2)
    total = b.machine[0] - a.machine[0]
    out["machine_busy"] = round(1 - (b.machine[1] - a.machine[1]) / total, 2) if total else None
    out["load"] = [round(a.load, 2), round(b.load, 2)]
    for ns in ("A", "B"):
        before, after = a.udp.get(ns, {}), b.udp.get(ns, {})
        if before and after:
            out[f"udp_rcvbuf_drops_{ns}"] = after.get("RcvbufErrors", 0) - before.get("RcvbufErrors", 0)
            out[f"udp_in_{ns}"] = after.get("InDatagrams", 0) - before.get("InDatagrams", 0)
    if b.receive_buffers:  # the receiver's UDP sockets on the link, at the end of the window
        out["receiver_socket_buffer_kB"] = sorted({size // 1024 for size in b.receive_buffers})
    for direction in ("AtoB", "BtoA"):
        was, now = a.emulator.get(direction), b.emulator.get(direction)
        if was and now:
            out[f"wire_{direction}"] = {
                key: int(now[key]) - int(was[key])
                for key in ("packets", "bytes", "random_drops", "ring_full_drops", "rate_drops")}
    return out


def sctp_summary(trace: Path, start: float, end: float) -> dict[str, Any] | None:
    """The aiortc senders' SCTP state inside [start, end] (benchmarks/sctp_probe): per
    association that carried data, its mean congestion window and bytes in flight, the
    smoothed RTT, its slow-start threshold at the end, fast recoveries and T3 timeouts."""
    try:
        rows = [json.loads(line) for line in trace.read_text().splitlines() if line.strip()]
    except (OSError, ValueError):
        return None
    by_assoc: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for row in rows:
        if start <= row["t"] <= end:
            by_assoc.setdefault((row["pid"], row["assoc"]), []).append(row)
    carrying = [r for r in by_assoc.values() if sum(x["flight"] for x in r) / len(r) > 2000]
    if not carrying:
        return None

    def mean(values: list[float]) -> float:
        return sum(values) / len(values) if values else 0.0

    per = [{
        "cwnd_kB": mean([x["cwnd"] for x in r]) / 1e3,
        "flight_kB": mean([x["flight"] for x in r]) / 1e3,
        "ssthresh_kB": r[-1]["ssthresh"] / 1e3,
        "srtt_ms": mean([x["srtt"] * 1000 for x in r if x["srtt"]]),
        "fast_recoveries": r[-1]["fast_recoveries"] - r[0]["fast_recoveries"],
        "t3_expiries": r[-1]["t3_expiries"] - r[0]["t3_expiries"],
    } for r in carrying]
    return {
        "associations": len(per),
        "cwnd_kB": round(mean([p["cwnd_kB"] for p in per]), 1),
        "flight_kB": round(mean([p["flight_kB"] for p in per]), 1),
        "ssthresh_kB": round(mean([p["ssthresh_kB"] for p in per]), 1),
        "srtt_ms": round(mean([p["srtt_ms"] for p in per]), 1),
        "fast_recoveries": sum(p["fast_recoveries"] for p in per),
        "t3_expiries": sum(p["t3_expiries"] for p in per),
    }
