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


def main() -> None:
    sections = []
    cli = load("cli_transfer")
    if cli:
        sections.append(cli_section(cli))
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
