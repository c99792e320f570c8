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
    "tcp-cubic": "TCP (cubic)", "aiortc": "aiortc bare ×1", "aiortc-tuned": "bare ×1, SCTP tuning",
    "aiortc-x4-1p": "bare ×4 (1 process)",
    "cli": "CLI (default lanes)", "cli-c1": "CLI --connections 1", "cli-c4": "CLI --connections 4",
}
CHROMIUM_COLUMNS = {
    "chromium": "Chromium bare ×1", "chromium-x4": "bare ×4", "web": "web client (default lanes)",
}
PROCESS_COLUMNS = {
    "aiortc": "bare ×1", "aiortc-x2-1p": "×2 in one process", "aiortc-x2-np": "×2 in two processes",
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
    """Per link setting, what bounds the Python peers: the bare ×1 sender's SCTP state and
    CPU, and the CLI's connections, CPU and busiest event loop, in the measured window."""
    rows = []
    for cell in result["cells"]:
        sctp = pick(cell, "aiortc", lambda r: r["sctp"]) or {}
        a_cores = pick(cell, "aiortc", lambda r: f"{r['sender_cores']:.2f} / {r['receiver_cores']:.2f}")
        a_drops = pick(cell, "aiortc", lambda r: r.get("udp_rcvbuf_drops_B"))
        lanes = pick(cell, "cli", lambda r: r.get("connections"))
        c_sctp = pick(cell, "cli", lambda r: r["sctp"]) or {}
        c_cores = pick(cell, "cli", lambda r: f"{r['sender_cores']:.2f} / {r['receiver_cores']:.2f}")
        demand = pick(cell, "cli", lambda r: r.get("loop_demand_max"))
        busy = pick(cell, "cli", lambda r: r.get("machine_busy"))
        recoveries = f"{sctp.get('fast_recoveries', '—')} / {sctp.get('t3_expiries', '—')}"
        rows.append(
            f"| {cell_name(cell)} | {sctp.get('cwnd_kB', '—')} / {sctp.get('flight_kB', '—')} | "
            f"{sctp.get('srtt_ms', '—')} | {recoveries} | {a_drops} | {a_cores} | {lanes} | "
            f"{c_sctp.get('flight_kB', '—')} | {c_cores} | {demand} | {busy} |")
    return "\n".join([
        "| link | bare ×1: cwnd / flight kB | srtt ms | fast rec. / T3 | drops at B | cores snd / rcv "
        "| CLI: connections | flight kB per conn. | cores snd / rcv | busiest loop | machine busy |",
        "|---" * 11 + "|", *rows])


def whole_file_text(result: dict[str, Any]) -> str:
    """The whole files sent through the CLI (a cell's ":finish"), one line each."""
    lines = []
    for cell in result["cells"]:
        run = cell.get("whole_file")
        if not run:
            continue
        if run.get("verified"):
            outcome = (f"finished in {run['seconds']:.0f} s ({run['mb_s']:.2f} MB/s), saved file verified "
                       f"(SHA-256 equal to the source), receiver exit {run['exit']}")
        else:
            outcome = f"**did not finish verified**: {run.get('error') or run.get('receiver_said') or run}"
        lines.append(f"- {cell_name(cell)}: {run['size_mib']} MiB through `peerbeam send → receive` "
                     f"(default lanes): {outcome}.")
    return "\n".join(lines)


def bars(result: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    """The long-link bars (docs/benchmarks.md): (bar, what was measured, met?; None: not measured)."""
    cells = {(c["rtt_ms"], c["loss_pct"]): c for c in result["cells"]}

    def ratio(link: tuple[float, float], name: str, base: str, floor: float,
              text: str) -> tuple[str, str, bool | None]:
        cell = cells.get(link)
        values = ratios(cell, name, base) if cell else []
        if not values:
            return text, "not measured", None
        value = median(values)
        assert value is not None
        return text, f"{value:.2f}×", value >= floor

    out = [
        ratio((120.0, 0.0), "cli", "aiortc", 2.0, "120 ms: CLI ≥ 2× bare aiortc ×1"),
        ratio((60.0, 0.5), "cli", "aiortc", 3.0, "60 ms, 0.5 % loss: CLI ≥ 3× bare aiortc ×1"),
        ratio((0.0, 0.0), "cli", "aiortc", 1.0, "0 ms (plain veth): CLI ≥ 1× bare aiortc ×1"),
        ratio((60.0, 0.0), "web", "chromium", 2.0, "60 ms: web client ≥ 2× bare Chromium ×1"),
    ]
    # Chromium's bare ×1 sometimes collapses (to 0.03 MB/s on a plain 60 ms link): a ratio
    # against that says nothing about the web client, so such a round is not judged.
    chromium = rates(cells[(60.0, 0.0)], "chromium") if (60.0, 0.0) in cells else []
    if chromium and max(chromium) < 1.0:
        out[-1] = (out[-1][0], f"not judgeable: bare ×1 collapsed ({max(chromium):.2f} MB/s)", None)
    whole = cells.get((60.0, 2.0), {}).get("whole_file")
    if not whole:
        finished: tuple[str, bool | None] = ("not measured", None)
    elif whole.get("verified"):
        finished = (f"{whole['size_mib']} MiB in {whole['seconds']:.0f} s", True)
    else:
        finished = ("failed", False)
    out.insert(2, ("60 ms, 2 % loss: the CLI finishes a whole file, verified", *finished))
    # For reference, not bars: against a bare channel with the SCTP tuning the CLI has, what
    # the lanes and the protocol add on their own.
    for link, text in (((120.0, 0.0), "120 ms"), ((0.0, 0.0), "0 ms")):
        measured = ratio(link, "cli", "aiortc-tuned", 0.0, "")[1]
        out.append((f"{text}: CLI ÷ bare ×1 with the same SCTP tuning (reference, no bar)", measured, None))
    return out


def load_range(result: dict[str, Any]) -> str:
    loads = [v for cell in result["cells"] for run in cell["runs"] for v in run.get("load", [])]
    return f"{min(loads):.1f}–{max(loads):.1f}" if loads else "?"


def bars_table(results: list[tuple[str, dict[str, Any]]]) -> str:
    """The bars, one column per run (name, results): each figure from one run's own rounds."""
    verdict = {True: "met", False: "**missed**", None: ""}
    judged = [bars(result) for _, result in results]
    head = "| bar | " + " | ".join(f"{name}: {result['when'][11:]}, load {load_range(result)}"
                                   for name, result in results) + " |"
    rows = []
    for i, (bar, _, _) in enumerate(judged[0]):
        cells = [f"{j[i][1]} {verdict[j[i][2]]}".strip() for j in judged]
        rows.append(f"| {bar} | " + " | ".join(cells) + " |")
    return "\n".join([head, "|---" * (len(results) + 1) + "|", *rows])


def per_second_plot(result: dict[str, Any], path: Path, plot: Callable[..., None]) -> str:
    """MB/s second by second at 120 ms (else the longest loss-free RTT): the CLI's lanes
    being added show here, not in an average."""
    cells = [c for c in result["cells"] if not c["loss_pct"]]
    if not cells:
        return ""
    cell = max(cells, key=lambda c: c["rtt_ms"] if c["rtt_ms"] <= 120 else -1)
    lines = []
    for name in ("aiortc", "aiortc-x4-1p", "cli", "cli-c1", "cli-c4"):
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
