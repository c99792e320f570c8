"""Render docs/benchmarks.md (and its plots) from benchmarks/results/*.json."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from benchmarks.procs import REPO

RESULTS = REPO / "benchmarks" / "results"
DOC = REPO / "docs" / "benchmarks.md"
PLOTS = REPO / "docs" / "img"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}")


def svg_plot(samples: list[list[float]], title: str, path: Path) -> None:
    """A small line chart of RSS (MiB) over time, with no plotting library."""
    width, height, pad = 640, 240, 40
    xs = [s[0] for s in samples]
    ys = [s[1] / 2**20 for s in samples]
    x_max = max(xs) or 1.0
    y_max = max(ys) * 1.15 or 1.0

    def point(x: float, y: float) -> str:
        left = pad + x / x_max * (width - 2 * pad)
        top = height - pad - y / y_max * (height - 2 * pad)
        return f"{left:.1f},{top:.1f}"

    line = " ".join(point(x, y) for x, y in zip(xs, ys, strict=True))
    ticks = "".join(
        f'<text x="{pad - 6}" y="{height - pad - v / y_max * (height - 2 * pad) + 4:.0f}" '
        f'text-anchor="end">{v:.0f}</text>'
        for v in (0, y_max / 2, y_max / 1.15)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="11">'
        f'<rect width="100%" height="100%" fill="white"/>'
        f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="13">{title}</text>'
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#888"/>'
        f'<line x1="{pad}" y1="{pad / 2}" x2="{pad}" y2="{height - pad}" stroke="#888"/>{ticks}'
        f'<text x="{width / 2}" y="{height - 8}" text-anchor="middle">seconds (0 … {x_max:.0f})</text>'
        f'<text x="12" y="{height / 2}" transform="rotate(-90 12 {height / 2})" '
        f'text-anchor="middle">RSS MiB</text>'
        f'<polyline fill="none" stroke="#2563eb" stroke-width="1.5" points="{line}"/></svg>\n'
    )


def load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def verdict(ok: bool) -> str:
    return "meets the target" if ok else "**misses the target**"


def cli_section(result: dict[str, Any]) -> str:
    memory = result["memory"]
    svg_plot(memory["samples"], f"peerbeam receive, RSS during a {memory['transfer_mib']} MiB transfer",
             PLOTS / "memory-cli.svg")
    rounds = "\n".join(
        f"| {i + 1} | {r['blast_s']:.1f} | {r['cli_s']:.1f} | {r['ratio']:.2f} |"
        for i, r in enumerate(result["rounds"])
    )
    return f"""## CLI transfer vs bare aiortc data channel

`python -m benchmarks.cli_transfer` — {result['when']}. A {result['size_mib']} MiB file, sent
by `peerbeam send` and received by `peerbeam receive` (authentication, SHA-256 per chunk,
acknowledgements after the disk write, resume journal) against `benchmarks/blast.py`: the
same two-process aiortc data channel with the same signaling, message size (64 KiB, aiortc's
limit) and buffered-amount flow control, and nothing else. Both timed from the receiving
process's start to its exit; rounds interleaved.

| round | bare channel (s) | peerbeam (s) | ratio |
|---|---|---|---|
{rounds}

Mean ratio **{result['ratio']:.2f}** (target ≥ 0.90: {verdict(result['ratio'] >= 0.9)}); best
round: bare {result['blast_mb_s']:.1f} MB/s, peerbeam {result['cli_mb_s']:.1f} MB/s.

### Receiver memory

A {memory['transfer_mib']} MiB transfer: RSS {memory['baseline_mib']:.1f} MiB once connected,
peak {memory['peak_mib']:.1f} MiB, growth **{memory['growth_mib']:.1f} MiB** (target < 64 MiB:
{verdict(memory['growth_mib'] < 64)}).

![receiver RSS over time](img/memory-cli.svg)
"""


def signaling_section(load_result: dict[str, Any] | None, cost: dict[str, Any] | None) -> str:
    parts = ["## Signaling\n"]
    if load_result:
        p99 = load_result["p99_ms"]
        p50 = load_result["p50_ms"]
        rows = "\n".join(f"| {name} | {p50[name]:.0f} | {p99[name]:.0f} |" for name in p99)
        parts.append(f"""`python -m benchmarks.signaling_load` — {load_result['when']}. Locust,
{load_result['users']} users for {load_result['seconds']} s against `peerbeam serve` (each user a
sender and a receiver holding two sockets while they exchange an offer, an answer, three
ICE-sized signals and pings: several hundred concurrent WebSocket members).

**{load_result['requests']} requests, {load_result['failures']} failures**
({verdict(load_result['failures'] == 0)}: zero); **{load_result['relayed_per_s']:.0f} relayed
signals/s**. Round trip through the server (send → the other peer has it), ms:

| exchange | p50 | p99 |
|---|---|---|
{rows}
""")
    if cost:
        calls = "\n".join(f"| {name} | {n} |" for name, n in cost["dynamodb_requests"].items())
        parts.append(f"""### Relay cost per message, as in Lambda

`python -m benchmarks.handler_cost` — {cost['when']}. A 2 KB `signal` relayed
{cost['messages']} times: **{cost['relay_us_per_signal']:.0f} µs** in the relay core and
**{cost['lambda_handler_us_per_signal']:.0f} µs** through app.py's `$default` handler with an API
Gateway event (in-memory store, Management API counted, not called). In AWS the network
round trips dominate: DynamoDB requests per operation with the DynamoDB store:

| operation | DynamoDB requests |
|---|---|
{calls}

Plus one `post_to_connection` per delivered message.
""")
    return "\n".join(parts)


def swarm_section(result: dict[str, Any]) -> str:
    rows = []
    for name in ("pairs", "fanout"):
        r = result[name]
        label = (f"{r['senders']} pairs" if name == "pairs"
                 else f"1 sender → {r['receivers_per_sender']} receivers")
        first = [t for t in r.get("accept_to_first_byte_s", []) if t is not None]
        rows.append(
            f"| {label} | {r['size_mib']:.0f} MiB each | {r['transfers']} | {r['failures']} | "
            f"{r['aggregate_mb_s']:.1f} | {min(r['per_transfer_mb_s']):.1f}–"
            f"{max(r['per_transfer_mb_s']):.1f} | {max(first) if first else float('nan'):.2f} |"
        )
    table = "\n".join(rows)
    return f"""## aiortc swarm

`python -m loadtests.swarm` — {result['when']}. Real peers (authentication, hashing, acks,
disk), all in one process on one core, through one `peerbeam serve`.

| scenario | file | transfers | failures | aggregate MB/s | per transfer MB/s | worst accept→first byte (s) |
|---|---|---|---|---|---|---|
{table}

Peak memory of the whole swarm process: {result['peak_rss_mib']:.0f} MiB.
"""


def main() -> None:
    sections = []
    cli = load("cli_transfer")
    if cli:
        sections.append(cli_section(cli))
    signaling_load, handler_cost = load("signaling_load"), load("handler_cost")
    if signaling_load or handler_cost:
        sections.append(signaling_section(signaling_load, handler_cost))
    swarm = load("swarm")
    if swarm:
        sections.append(swarm_section(swarm))
    DOC.write_text(f"""# Benchmarks

Written by `make bench` ({time.strftime('%Y-%m-%d', time.gmtime())}) on {machine()}.
Every figure is a ratio against a baseline measured in the same run, side by side, because
absolute speeds on a shared 2-core machine move with everything else it does.

Reproduce: `make bench` (all), or one module: `.venv/bin/python -m benchmarks.cli_transfer`,
then `.venv/bin/python -m benchmarks.report`.

{chr(10).join(sections)}""")
    print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
