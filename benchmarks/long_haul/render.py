"""The long-haul section of docs/benchmarks.md, from benchmarks/results/long_haul.json (the
table) and long_haul_diagnosis.json (one long link, one thing changed at a time)."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

Run = dict[str, Any]
Cell = dict[str, Any]

# Column order and short headers; subjects not listed here are appended with their label.
AIORTC_COLUMNS = {
    "tcp-cubic": "TCP cubic", "tcp-bbr": "TCP BBR", "aiortc": "aiortc ×1",
    "aiortc-rcvbuf4m": "×1, 4 MiB SO_RCVBUF", "aiortc-x2-np": "×2, 2 proc.", "aiortc-x4-np": "×4, 4 proc.",
    "aiortc-x8-np": "×8, 8 proc.", "aiortc-x2-1p": "×2, 1 proc.", "aiortc-x4-1p": "×4, 1 proc.",
    "aiortc-x4-np-rcvbuf4m": "×4, 4 proc., 4 MiB SO_RCVBUF", "cli": "CLI",
}
CHROMIUM_COLUMNS = {
    "chromium": "Chromium ×1", "chromium-ch4": "4 channels, 1 conn.", "chromium-pc4": "×4 conn.",
    "chromium-video-win1024k": "×1, V+W", "chromium-pc2-video-win1024k": "×2, V+W",
    "chromium-pc4-video-win1024k": "×4, V+W", "chromium-pc8-video-win1024k": "×8, V+W",
    "web": "web client",
}


def cell_name(cell: Cell) -> str:
    name = f"{cell['rtt_ms']:g} ms"
    return name + (f", {cell['loss_pct']:g} % loss" if cell["loss_pct"] else "")


def runs(cell: Cell, name: str) -> list[Run]:
    return [run for run in cell["runs"] if run["subject"] == name]


def rates(cell: Cell, name: str) -> list[float]:
    return [run["mb_s"] for run in runs(cell, name) if "mb_s" in run]


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def ratios(cell: Cell, name: str, base: str) -> list[float]:
    """Subject / baseline, round by round (both measured in the same round of the same cell)."""
    by_round = {run["round"]: run["mb_s"] for run in runs(cell, base) if run.get("mb_s")}
    return [run["mb_s"] / by_round[run["round"]] for run in runs(cell, name)
            if "mb_s" in run and by_round.get(run["round"])]


def rate_text(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def entry(cell: Cell, name: str, base: str | None) -> str:
    """The median rate (each round's when there were several) and the ratio to `base`."""
    values = rates(cell, name)
    if not values:
        failed = [run.get("error", "") for run in runs(cell, name)]
        return "failed" if any(failed) else "—"
    text = rate_text(median(values))
    if len(values) > 1:
        text += " (" + " / ".join(rate_text(v) for v in values) + ")"
    if base and name != base and (r := ratios(cell, name, base)):
        text += f" **{median(r):.2f}×**"
    return text


def columns(result: dict[str, Any], preferred: dict[str, str], stacks: set[str]) -> list[tuple[str, str]]:
    present = [name for name, info in result["subjects"].items() if info["stack"] in stacks]
    ordered = [name for name in preferred if name in present]
    ordered += [name for name in present if name not in preferred]
    return [(name, preferred.get(name, result["subjects"][name]["label"])) for name in ordered]


def rate_table(result: dict[str, Any], cols: list[tuple[str, str]], base: str) -> str:
    """One row per link setting; ratios only against a baseline of the same stack."""
    stack = result["subjects"].get(base, {}).get("stack")
    bases = {name: base if result["subjects"][name]["stack"] == stack else None for name, _ in cols}
    head = "| link | " + " | ".join(header for _, header in cols) + " | load |"
    rule = "|---" * (len(cols) + 2) + "|"
    rows = []
    for cell in result["cells"]:
        loads = [v for run in cell["runs"] if run["subject"] in dict(cols) for v in run.get("load", [])]
        load = f"{min(loads):.1f}–{max(loads):.1f}" if loads else ""
        rows.append(f"| {cell_name(cell)} | " + " | ".join(entry(cell, name, bases[name]) for name, _ in cols)
                    + f" | {load} |")
    return "\n".join([head, rule, *rows])


def pick(cell: Cell, name: str, key: Callable[[Run], Any]) -> Any:
    """`key` of the subject's run in this cell (the first round that has it), else None."""
    for run in runs(cell, name):
        try:
            value = key(run)
        except (KeyError, TypeError):
            continue
        if value is not None:
            return value
    return None


def bounds_table(result: dict[str, Any]) -> str:
    """One association per cell: what the aiortc sender's SCTP state and the Chromium
    receiver's socket showed, and the CPU each side used."""
    rows = []
    for cell in result["cells"]:
        rtt = cell["rtt_ms"]
        sctp = pick(cell, "aiortc", lambda r: r["sctp"]) or {}
        a_cores = pick(cell, "aiortc", lambda r: f"{r['sender_cores']:.2f} / {r['receiver_cores']:.2f}")
        demand = pick(cell, "aiortc", lambda r: r.get("loop_demand_max"))
        a_drops = pick(cell, "aiortc", lambda r: r.get("udp_rcvbuf_drops_B"))
        chromium = median(rates(cell, "chromium"))
        flight = f"{chromium * rtt:.0f}" if chromium is not None and rtt else "—"
        c_drops = pick(cell, "chromium", lambda r: r.get("udp_rcvbuf_drops_B"))
        c_buffer = pick(cell, "chromium", lambda r: "/".join(map(str, r["receiver_socket_buffer_kB"])))
        eagain = pick(cell, "chromium", lambda r: r["udp_send_would_block"]["A"])
        c_cores = pick(cell, "chromium", lambda r: f"{r['sender_cores']:.2f} / {r['receiver_cores']:.2f}")
        vw = pick(cell, "chromium-video-win1024k", lambda r: f"{r.get('udp_rcvbuf_drops_B', '?')} / "
                  f"{r['udp_send_would_block']['A']}")
        rows.append(
            f"| {cell_name(cell)} | {sctp.get('cwnd_kB', '—')} / {sctp.get('flight_kB', '—')} | "
            f"{sctp.get('ssthresh_kB', '—')} | {sctp.get('srtt_ms', '—')} | "
            f"{sctp.get('fast_recoveries', '—')} / {sctp.get('t3_expiries', '—')} | {a_drops} | {a_cores} | "
            f"{demand} | {flight} | {c_drops} | {c_buffer} | {eagain} | {c_cores} | {vw} |")
    return "\n".join([
        "| link | aiortc cwnd / flight kB | ssthresh kB | srtt ms | fast rec. / T3 | drops at B "
        "| cores snd / rcv | busiest loop | Chromium MB/s×RTT kB | drops at B | socket buffer kB "
        "| EAGAIN sends | cores snd / rcv | V+W: drops / EAGAIN |",
        "|---" * 14 + "|", *rows])


def diagnosis_table(result: dict[str, Any]) -> str:
    cell = result["cells"][0]
    rows = []
    for name, info in result["subjects"].items():
        base = "aiortc" if info["stack"] == "aiortc" else "chromium"
        extra = []
        drops = [r.get("udp_rcvbuf_drops_B") for r in runs(cell, name) if "udp_rcvbuf_drops_B" in r]
        if drops:
            extra.append(f"drops at B {'/'.join(map(str, drops))}")
        if (buffers := pick(cell, name, lambda r: r["receiver_socket_buffer_kB"])):
            extra.append(f"socket buffer {'/'.join(map(str, buffers))} kB")
        eagain = [r["udp_send_would_block"]["A"] for r in runs(cell, name) if "udp_send_would_block" in r]
        if eagain:
            extra.append(f"EAGAIN sends {'/'.join(map(str, eagain))}")
        if (sctp := pick(cell, name, lambda r: r["sctp"])):
            extra.append(f"cwnd {sctp['cwnd_kB']} kB, ssthresh {sctp['ssthresh_kB']} kB, "
                         f"fast rec. {sctp['fast_recoveries']}, T3 {sctp['t3_expiries']}")
        rows.append(f"| {info['label']} | {entry(cell, name, base)} | {'; '.join(extra)} |")
    return "\n".join(["| variant | MB/s (rounds) and ratio to ×1 | what the counters showed |",
                      "|---|---|---|", *rows])


def per_second_plot(result: dict[str, Any], path: Path, plot: Callable[..., None]) -> str:
    """MB/s second by second at the longest loss-free RTT, for the single associations and the
    best Chromium set-up: collapses and slow ramps show here, not in an average."""
    cells = [c for c in result["cells"] if not c["loss_pct"]]
    if not cells:
        return ""
    cell = max(cells, key=lambda c: c["rtt_ms"] if c["rtt_ms"] <= 120 else -1)
    lines = []
    for name in ("aiortc", "aiortc-x4-np", "chromium", "chromium-video-win1024k",
                 "chromium-pc4-video-win1024k"):
        series = pick(cell, name, lambda r: r["per_second"])
        if series:
            lines.append((result["subjects"][name]["label"], [[i + 1, v] for i, v in enumerate(series)]))
    if not lines:
        return ""
    (label, first), *others = lines
    plot(first, f"MB/s each second from the first byte, {cell_name(cell)}", path, ylabel="MB/s",
         label=label, others=others, unit=1.0)
    return f"![MB/s per second at {cell_name(cell)}](img/{path.name})\n"


class Figures:
    """Medians and same-round ratios of one results file, by link setting, for the prose."""

    def __init__(self, result: dict[str, Any]) -> None:
        self.cells = {(c["rtt_ms"], c["loss_pct"]): c for c in result["cells"]}

    def rate(self, rtt: float, loss: float, name: str) -> str:
        cell = self.cells.get((rtt, loss))
        return rate_text(median(rates(cell, name))) if cell else "—"

    def ratio(self, rtt: float, loss: float, name: str, base: str) -> str:
        cell = self.cells.get((rtt, loss))
        values = ratios(cell, name, base) if cell else []
        return f"{median(values):.1f}×" if values else "—"

    def value(self, rtt: float, loss: float, name: str, key: Callable[[Run], Any]) -> Any:
        cell = self.cells.get((rtt, loss))
        return pick(cell, name, key) if cell else None
