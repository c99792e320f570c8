"""Render docs/benchmarks.md (and its plots) from benchmarks/results/*.json."""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import time
from pathlib import Path
from typing import Any

from benchmarks.long_haul import render as long_haul
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


def svg_plot(samples: list[list[float]], title: str, path: Path, ylabel: str = "RSS MiB",
             others: list[tuple[str, list[list[float]]]] | None = None, label: str = "",
             unit: float = 2**20) -> None:
    """A small line chart of RSS (MiB) over time, with no plotting library.

    `others`: further (legend, samples) lines, drawn in other colours; `label` names the
    first line in the legend; `unit`: what the y values are divided by (bytes to MiB)."""
    width, height, pad = 640, 240, 40
    series = [(label, samples), *(others or [])]
    xs = [s[0] for _, line in series for s in line]
    ys = [s[1] / unit for _, line in series for s in line]
    x_min = min(0.0, min(xs))
    x_max = (max(xs) - x_min) or 1.0
    y_max = max(ys) * 1.15 or 1.0

    def point(x: float, y: float) -> str:
        left = pad + (x - x_min) / x_max * (width - 2 * pad)
        top = height - pad - y / y_max * (height - 2 * pad)
        return f"{left:.1f},{top:.1f}"

    colours = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c"]
    lines = "".join(
        f'<polyline fill="none" stroke="{colours[i % len(colours)]}" stroke-width="1.5" '
        f'points="{" ".join(point(s[0], s[1] / unit) for s in line)}"/>'
        for i, (_, line) in enumerate(series)
    )
    legend = "".join(
        f'<text x="{width - pad}" y="{pad / 2 + 14 * (i + 1)}" text-anchor="end" '
        f'fill="{colours[i % len(colours)]}">{name}</text>'
        for i, (name, _) in enumerate(series) if name
    )
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
        f'<text x="{width / 2}" y="{height - 8}" text-anchor="middle">seconds '
        f'({x_min:.0f} … {x_min + x_max:.0f})</text>'
        f'<text x="12" y="{height / 2}" transform="rotate(-90 12 {height / 2})" '
        f'text-anchor="middle">{ylabel}</text>{lines}{legend}</svg>\n'
    )


def load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def verdict(ok: bool) -> str:
    return "meets the target" if ok else "**misses the target**"


def cli_section(result: dict[str, Any]) -> str:
    memory = result["memory"]
    first_byte = max(r.get("accept_to_first_byte_s", float("nan")) for r in result["rounds"])
    svg_plot(memory["samples"], f"peerbeam receive, RSS during a {memory['transfer_mib']} MiB transfer",
             PLOTS / "memory-cli.svg")
    rounds = "\n".join(
        f"| {i + 1} | {r['blast_s']:.1f} | {r['cli_s']:.1f} | {r['ratio']:.2f} | {r['tuned_blast_s']:.1f} "
        f"| {r['tuned_ratio']:.2f} |"
        for i, r in enumerate(result["rounds"])
    )
    return f"""## CLI transfer vs bare aiortc data channel

`python -m benchmarks.cli_transfer` — {result['when']}. A {result['size_mib']} MiB file, sent
by `peerbeam send` and received by `peerbeam receive` (authentication, SHA-256 per chunk,
acknowledgements after the disk write, resume journal; the SCTP tuning of
peerbeam/peer/transport_tuning.py) against `benchmarks/blast.py`: the same two-process aiortc
data channel with the same signaling, message size (64 KiB, aiortc's limit) and
buffered-amount flow control, and nothing else — with aiortc as shipped (the baseline) and
with the same SCTP tuning (`--tuned`: what is left of the gap is the protocol's own cost).
All timed from the receiving process's start to its exit; rounds interleaved.

| round | bare channel (s) | peerbeam (s) | ratio | bare, tuned (s) | ratio to it |
|---|---|---|---|---|---|
{rounds}

Mean ratio **{result['ratio']:.2f}** (target ≥ 0.90: {verdict(result['ratio'] >= 0.9)}), to the
tuned bare channel {result['tuned_ratio']:.2f}; best round: bare {result['blast_mb_s']:.1f} MB/s,
peerbeam {result['cli_mb_s']:.1f} MB/s.

Accept → first byte (receiver's clock): **{first_byte:.3f} s** at worst
(target < 1 s: {verdict(first_byte < 1.0)}).

### Receiver memory

A {memory['transfer_mib']} MiB transfer: RSS {memory['baseline_mib']:.1f} MiB once connected,
peak {memory['peak_mib']:.1f} MiB, growth **{memory['growth_mib']:.1f} MiB** (target < 64 MiB:
{verdict(memory['growth_mib'] < 64)}).

![receiver RSS over time](img/memory-cli.svg)

### Findings

Each aiortc peer is CPU-bound on one core (its SCTP and DTLS run in Python), and on this
2-core machine the two peers take both cores, so any CPU a peer spends beyond the bare
channel costs throughput one for one. Until 2026-11-30 the CLI made 0.74–0.83 of the bare
channel here. A py-spy profile of `peerbeam receive` on loopback (quiet machine) then put
under 5 % of its samples in our own code (hashing and writes run in worker threads) and
found two costs inside aiortc's SCTP receiver that do no work: reassembly rescanning every
message's fragments after each fragment (`InboundStream.pop_messages`, about a fifth of the
receiver's CPU, quadratic in a message's 55 fragments) and a SACK for every packet (a
quarter, with its DTLS record and system call; RFC 9260 §6.2 asks for one per second
packet). `peerbeam/peer/transport_tuning.py` removes both for every peerbeam connection: the
scan runs only when a fragment may complete a message, and a SACK goes for every second
packet or at the end of the burst being read, at once when it reports a gap or a duplicate
(loss recovery unchanged). `tests/test_transport_tuning.py` checks that reassembly delivers
exactly what aiortc as shipped delivers (Hypothesis, against a fresh copy of aiortc's own
module) and that a real pair carries every byte with fewer SACKs, also across 2 % loss. The
profiled run went from 18 to 31 MB/s. The sender's tuning since (its flight walked for
retransmissions only after a SACK with gaps or a T3 expiry, 4 MiB receive buffers; docs/cli.md
"Speed") took the CLI to 40 MB/s here, 1.35–1.41× the bare channel as shipped. Against a
bare channel with all the same tuning (43 MB/s) the CLI makes 0.84–0.89 (0.95–1.10 with
the receiver's tuning alone, 2026-11-30): at this rate the sender's core is saturated, and
the protocol's own work (hashing and writes in threads, one JSON message per MiB) shows.
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


ATTACK_NAMES = {
    "never_reading": "never-reading (25 clients)",
    "never_reading_unbudgeted": "never-reading, byte budget off",
    "many_connections": "many-connection (1100 half-open)",
    "join_leave": "join/leave (5000 cycles)",
}


def attacks_section(result: dict[str, Any]) -> str:
    attacks = result["attacks"]
    rows, series = [], []
    worst = 0.0
    for key, name in ATTACK_NAMES.items():
        figures = attacks.get(key)
        if figures is None:
            continue
        rss, under = figures["rss_mib"], figures["canary_under"]
        worst = max(worst, under["max_s"] or float("inf"))
        rows.append(
            f"| {name} | {rss['before']:.0f} / {rss['peak']:.0f} / {rss['after']:.0f} | "
            f"{rss['peak'] - rss['before']:+.0f} / {rss['after'] - rss['before']:+.0f} | "
            f"{under['p50_s'] * 1000:.0f} / {under['max_s'] * 1000:.0f} | "
            f"{under['failures']} of {under['rounds']} | {figures['attack_s']:.0f} | "
            f"{figures['log_bytes_under'] / 1024:.0f} KiB |"
        )
        series.append((name, figures["samples"]))
    svg_plot(series[0][1], "peerbeam serve under attack: RSS over time (one server per attack)",
             PLOTS / "memory-attacks.svg", label=series[0][0], others=series[1:])
    table = "\n".join(rows)
    reading = attacks.get("never_reading", {})
    unbudgeted = attacks.get("never_reading_unbudgeted", {})
    joins = attacks.get("join_leave", {})
    hello = joins.get("sender_hello_ms", {})
    return f"""## Signaling server under attack

`python -m benchmarks.attacks` — {result['when']}. Each attack runs against a fresh
`peerbeam serve` with its default settings, from a second loopback address (127.0.0.2), while
a canary user on 127.0.0.1 creates a room, joins it as its sender, says hello and pings, twice a
second (one round = all four, timed). RSS: median of the quiet seconds before / highest sample
under the attack / last sample five seconds after the attackers left.

| attack | RSS MiB before/peak/after | growth peak/after | canary ms p50/max | failed rounds | s | log |
|---|---|---|---|---|---|---|
{table}

Canary under attack: at worst **{worst * 1000:.0f} ms** (target < 1 s: {verdict(worst < 1.0)}).

- **never-reading**: 25 receivers read nothing while each sends 100 messages with a 60 KB
  unknown `type` and a colluding sender relays 100 signals of 60 KB to it. With the defaults the
  per-address byte budget slows the whole flood to 1 MiB/s ({reading.get('attack_s', 0):.0f} s
  instead of a few), so the outboxes never fill ({reading.get('cut_off', 0)} of 25 cut off);
  without the budget, {unbudgeted.get('cut_off', 0)} of 25 were cut off when 1 MiB was waiting
  for them. Before these bounds: +62 MB RSS per such client, 1.69 GB for 25, kept after they left.
- **many-connection**: 1100 connections that send nothing, opened at once from one address
  and again every 2 s; the server serves 128 of them (the per-address cap) until the 10 s
  header timeout, answers a few with 503 and drops the rest at once, so the canary on
  another address never waits for a descriptor. Before these caps: with 1024 descriptors,
  everyone was shut out and the log grew 11 MB in 7 s.
- **join/leave**: {joins.get('cycles', 0)} receivers joined one room, said hello and left, half with
  a reconnect token (join limit lifted so every cycle reaches the store). The room then held
  **{joins.get('member_rows_after', '?')} member rows** (before: one per cycle, 5001), and its
  sender's `hello` took {hello.get('before', 0):.2f} ms before and {hello.get('after', 0):.2f} ms
  after (before: 0.27 → 32 ms).

What stays after the never-reading attack is not held by Python objects: with tracemalloc on,
live Python memory after the attack was within 0.4 MB of before it, and `malloc_trim(0)`, which
the server calls once connections have ended (`peerbeam/server/memory.py`), had already
returned what glibc kept free (calling it again released nothing). The rest is the C heap's
high-water mark from the peak; measured by hand, four rounds of this attack on one server left
it at 82, 101, 104 and 106 MiB: it levels off instead of growing with every round as a leak
would.

![RSS of peerbeam serve under each attack](img/memory-attacks.svg)
"""


def _quarter_trend(samples: list[list[float]]) -> float:
    """Mean PSS (MiB) of the last quarter of a transfer minus that of the first quarter."""
    during = [x for x in samples if x[0] >= 0]
    quarter = max(1, len(during) // 4)
    first, last = during[:quarter], during[-quarter:]
    return (sum(x[2] for x in last) / len(last) - sum(x[2] for x in first) / len(first)) / 2**20


def browser_section(result: dict[str, Any]) -> str:
    memory = result["memory"]
    page = memory["page_renderer"]
    bare = memory.get("blast")
    others = [("bare channel", [[x[0], x[2]] for x in bare["samples"]])] if bare else None
    svg_plot([[x[0], x[2]] for x in memory["samples"]],
             f"receiving tab's renderer, PSS during a {memory['transfer_mib']} MiB transfer",
             PLOTS / "memory-browser.svg", ylabel="PSS MiB", label="web client", others=others)
    rounds = "\n".join(
        f"| {i + 1} | {r['blast_s']:.1f} | {r['web_s']:.1f} | **{r['ratio']:.2f}** | "
        f"{r['streaming_ratio']:.2f} | {r['accept_to_first_byte_s'] * 1000:.0f} | "
        f"{sum(r['blast_cpu_s']):.0f} / {sum(r['web_cpu_s']):.0f} = "
        f"{sum(r['blast_cpu_s']) / sum(r['web_cpu_s']):.2f} | {sum(r['blast_cpu_s']) / r['blast_s']:.2f} | "
        f"{r['load'][0]:.1f}–{r['load'][1]:.1f} |"
        for i, r in enumerate(result["rounds"])
    )
    first_byte = result["accept_to_first_byte_s"]
    growth = page["pss_growth_mib"]
    bare_line = ""
    if bare:
        b = bare["page_renderer"]
        bare_line = (f" The bare channel's receiving renderer, over the same bytes in the same run: "
                     f"PSS {b['pss_start_mib']:.0f} → peak {b['pss_peak_mib']:.0f} MiB, growth "
                     f"**{b['pss_growth_mib']:.0f} MiB** (mean of the last quarter minus the first: "
                     f"{_quarter_trend(bare['samples']):+.0f} MiB).")
    return f"""## Browser → browser: web client vs bare data channel

`python -m benchmarks.browser_transfer` — {result['when']}, Chromium {result['chromium']}. Two
separate headless Chromium processes with the browser tests' flags, each with a persistent
profile in a temporary directory (OPFS and IndexedDB on disk, as for a user), pages on
`peerbeam serve`'s origin on 127.0.0.1. Per round, interleaved: a **bare channel** (plain
`RTCPeerConnection`, one ordered reliable channel, SDP handed over by Python after complete
gathering, {result['message_kib']} KiB messages, `bufferedAmount` high-water 8 MiB /
`bufferedamountlow` at 2 MiB, the receiver only counts bytes; first send → last byte), then the
**web client** (Create link, open it, Accept; saved through the tests' OPFS-handle save-picker
stand-in; Accept click → "Done" on screen, timed in the page). {result['size_mib']} MiB each.

| round | bare s | web s | ratio | from 1st byte | Accept→1st byte ms | CPU s bare/web | cores, bare | load |
|---|---|---|---|---|---|---|---|---|
{rounds}

Mean ratio **{result['ratio']:.2f}** (median {result['median_ratio']:.2f}; target ≥ 0.90:
{verdict(result['ratio'] >= 0.9)}); best round: bare {result['blast_mb_s']:.1f} MB/s, web client
{result['web_mb_s']:.1f} MB/s. Both browsers together spent **{result['cpu_ratio']:.2f}×** the CPU
time of the bare channel on the same bytes ("cores": CPU seconds of both browsers per
second of the bare run; "load": the machine's 1-minute load average before and after the round).

**Accept → first byte**: at most **{first_byte * 1000:.0f} ms** (target < 1 s: {verdict(first_byte < 1)}).

### Receiving tab's memory

A {memory['transfer_mib']} MiB transfer ({memory['web_mb_s']:.1f} MB/s), the receiving tab's
renderer sampled every 0.5 s from `/proc/PID/smaps_rollup`: PSS {page['pss_start_mib']:.0f} MiB at
Accept, peak {page['pss_peak_mib']:.0f} MiB, growth **{growth:.0f} MiB** (RSS
{page['rss_growth_mib']:.0f}, USS {page['uss_growth_mib']:.0f}; target < 64 MiB: {verdict(growth < 64)});
mean of the last quarter minus the first: {_quarter_trend(memory['samples']):+.0f} MiB.{bare_line}

![receiving renderer PSS over time](img/memory-browser.svg)

### Findings

{BROWSER_FINDINGS}
"""


# What the measurements above showed when the targets were missed (written from the
# traces and profiles of `benchmarks/browser_transfer.py` runs; see the figures above).
BROWSER_FINDINGS = """\
**Level with the bare channel since the pages open 8 connections.** In this run the web
client made 1.00–1.09 of the bare channel per round, at about the same CPU (1.02×); with one
connection per transfer (2026-11-26) it made 0.66–0.85 at 1.34× the CPU. Several
associations spread Chromium's per-connection network work, and the web client's own extra
work (below) now runs beside it rather than in turn. The analysis of that earlier gap
follows, as it was measured with one connection.

**With one connection: CPU-bound, and the ratio was the CPU ratio.** The bare channel
alone keeps both cores busy (≈ 1.9 cores: each browser's network-service I/O thread, its
renderer's WebRTC network thread and its IPC thread); in every round the wall-clock ratio
equals, within ±0.01, the ratio of CPU seconds (table above). Evidence that nothing in the web
client stalls the pipe: sampled every 10 ms, the sending channel's `bufferedAmount` was ≥ 2 MiB
in 94 % of samples (< 512 KiB in 5 %, mostly start-up), so the 16-chunk window and the
receiver's acks never starve the channel; a CDP CPU profile of the receiving tab shows its main
thread ≈ 75 % idle (JS: `crypto.subtle.digest` 1.4 s, writable-stream `write` 1.2 s, copying
pieces into the chunk 0.6 s per 256 MiB). The same transfer through the OPFS worker instead of
the save picker (no writable-stream checkpoints) was no faster (0.85 / 0.67 against the same
run's bare channel), so the checkpoint copies (`createWritable` 0.2–0.9 s each) are not the
gap either. Per-thread CPU (`/proc/PID/task`) of a 256 MiB transfer against the bare one:
receiving browser process +3.4 s (disk writes and blob IPC of the writable stream, the
IndexedDB digest record per chunk), each tab's main thread +1.6–1.9 s (SHA-256 of every chunk
at both ends, as protocol.md requires, the copies into and out of a chunk), and the stack's own
threads spend more CPU the longer the transfer runs. That extra work is what the protocol
asks for (integrity per chunk, acknowledged only after the disk write, resume records); on a
2-core machine where the bare channel already saturates both cores it can only cost
throughput, ≈ 1 / (CPU ratio). Reaching 0.90 here would need the web client to cost ≤ 1.11×
the bare channel's CPU, i.e. hashing, disk and IPC nearly free. With a spare core the extra
work runs beside the stack instead of taking turns with it. Ours, fixed: each ack and each
received chunk re-rendered the progress (the sender rebuilt its receiver rows), a style,
layout and paint per MiB plus synthetic mouse-move hit tests under the cursor (≈ 1.7 s of
main-thread time per 256 MiB in a Chromium trace, inflated by tracing); progress now repaints at
most every 250 ms, state changes at once. Measured per thread, that removed the compositor
and most GPU-process time (≈ 0.3–0.4 s CPU per side per 256 MiB); the main threads' CPU stayed
within noise: a small part of the gap.

**Renderer memory is bounded but its peaks exceed 64 MiB, and that is the stack.** The
receiving tab's PSS is a saw-tooth with no trend over the whole transfer (last quarter vs first
quarter above): nothing accumulates. The peaks come from garbage: every received message is a
fresh 256 KiB `ArrayBuffer` allocated by Chromium, which V8 frees only at its next garbage
collection, triggered by external-memory growth of tens of MiB. The bare channel's receiver,
which only counts the bytes and holds nothing, grows 140 MiB in this run; with one connection
the web client grew as much or less (78 against 131 MiB, 2026-11-26), so the bar cannot be
met by the web client's code. With 8 connections the peaks are higher (209 MiB): a faster rate
(19.9 against 11.6 MB/s), so more garbage between collections, and a chunk being assembled
per connection. What the web client itself holds is bounded by the protocol's window (≤ 16
chunks waiting for the disk, protocol.md 9) and one chunk per connection.

**Start**: Accept → first byte is one round trip (`accept` → `start`) plus opening the file,
well under the bar.\
"""


def digest_section(result: dict[str, Any]) -> str:
    chromium, firefox = result["chromium"], result["firefox"]
    ms_per_mib = 1000 / result["hashlib_mb_s"] * 1.048576
    speeds = "\n".join(
        f"| {name} | {b['streamed_mb_s']:.0f} MB/s | {b['webcrypto_per_chunk_mb_s']:.0f} MB/s |"
        for name, b in ((f"Chromium {chromium['version']}", chromium),
                        (f"Firefox {firefox['version'].split('/')[-1]}", firefox))
    )
    rounds = "\n".join(
        f"| {i + 1} | {r['plain_s']:.1f} | {r['hashed_s']:.1f} | **{r['ratio']:.2f}** | "
        f"{sum(r['plain_cpu_s']):.0f} / {sum(r['hashed_cpu_s']):.0f} | "
        f"{r['load'][0]:.1f}–{r['load'][1]:.1f} |"
        for i, r in enumerate(result["rounds"])
    )
    return f"""## Digest: what a streamed plain SHA-256 of each file would cost

`python -m benchmarks.digest_cost` — {result['when']}. The peerbeam digest (docs/protocol.md
§8.5) is SHA-256 over the 1 MiB chunk SHA-256s, which the protocol computes anyway. A
plain SHA-256 of each file needs an incremental SHA-256; in the browser our own JavaScript
(the web client's `webclient/js/protocol/sha256.js`, checked against the FIPS 180-4 examples
and hashlib first).

Speed of one core, {result['size_mib']} MiB in 1 MiB pieces, in a worker:

| | streamed SHA-256 (JavaScript) | WebCrypto, one digest per 1 MiB chunk (today) |
|---|---|---|
{speeds}

Python's hashlib (OpenSSL): {result['hashlib_mb_s']:.0f} MB/s, about {ms_per_mib:.1f} ms of CPU per
MiB against roughly 80 ms per MiB that `peerbeam receive` spends on a transfer (10 s of
CPU for 128 MiB, "CLI transfer" above): under 2 %. The CLI could afford the plain
SHA-256, but it must show what the browser shows, and its resume would still have to read
back and hash the bytes it already holds.

Cost in a transfer: the web client Chromium → Chromium, {result['size_mib']} MiB, as it is
("plain") and with every binary data-channel message also fed to the JavaScript SHA-256
in a worker at both ends ("hashed"), rounds interleaved (Accept → Done, s; CPU seconds of
both browsers; the machine's load average):

| round | plain s | hashed s | plain / hashed | CPU s plain / hashed | load |
|---|---|---|---|---|---|
{rounds}

Mean throughput ratio **{result['ratio']:.2f}**; the hashed runs used **{result['cpu_ratio']:.2f}×**
the CPU of the plain ones. Where the transfer is CPU-bound (2 cores, as here) that CPU is
throughput: the plain SHA-256 costs about {(1 - 1 / result['cpu_ratio']) * 100:.0f} % of it (the limit
was 10 %), and it would not survive resume (protocol.md §8.5). Decision: keep the peerbeam
digest, name it in both pages, and print it (beside the plain SHA-256) with
`peerbeam digest FILE`.
"""


LARGE_HEADER = ("| scenario | size | MB/s | stall s | checkpoint s | last byte → done s "
                "| writes ÷ size (dirtied / net) | extra disk | memory | load | when |\n"
                "|---|---|---|---|---|---|---|---|---|---|---|")
CHECKPOINT_BASE = 64 * 2**20  # webclient/js/storage/sinks.js MIN_CHECKPOINT


def picker_at(size: float) -> tuple[float, float]:
    """The picker path's checkpoints for a file of `size` bytes (sinks.js: commit when the
    uncommitted part reaches max(64 MiB, committed), so commits at 64 MiB x 2^k): the
    largest copy made by a re-open, and the bytes all re-opens copy."""
    largest = 0.0
    checkpoint = float(CHECKPOINT_BASE)
    while checkpoint <= size:
        largest, checkpoint = checkpoint, checkpoint * 2
    return largest, 2 * largest - CHECKPOINT_BASE if largest else 0.0


def throughput(samples: list[list[float]], window: float = 5.0) -> list[list[float]]:
    """[t, bytes/s] over sliding windows of `window` seconds, from [t, bytes, ...] samples."""
    out, start = [], 0
    for end in range(len(samples)):
        while samples[end][0] - samples[start][0] > window:
            start += 1
        span = samples[end][0] - samples[start][0]
        if span > 0:
            out.append([samples[end][0], (samples[end][1] - samples[start][1]) / span])
    return out


def large_section(result: dict[str, Any]) -> str:
    runs = sorted(((k, r) for k, r in result.items() if isinstance(r, dict)),
                  key=lambda kv: (kv[1]["scenario"], kv[1]["size_bytes"]))
    def row(r: dict[str, Any]) -> str:
        checkpoint = f"{r['longest_checkpoint_ms'] / 1000:.1f}" if "longest_checkpoint_ms" in r else "–"
        final = f"{r['after_last_byte_s']:.1f}" if "after_last_byte_s" in r else "–"
        return (f"| {r['scenario']} | {r['size_bytes'] / 2**30:.1f} GiB | {r['mb_s']:.1f} | "
                f"{r['longest_stall_ms'] / 1000:.1f} | {checkpoint} | {final} | "
                f"{r['amplification']:.2f} / {r['net_amplification']:.2f} | "
                f"{r['peak_extra_disk_bytes'] / 2**30:.2f} GiB | "
                f"{r['memory_peak_growth_bytes'] / 2**20:.0f} MiB | "
                f"{r['load'][0]:.1f}–{r['load'][1]:.1f} | {r['when']} |")

    rows = "\n".join(row(r) for _, r in runs)
    biggest: dict[str, dict[str, Any]] = {}
    for _, r in runs:
        biggest[r["scenario"]] = r  # sorted by size: the largest run of each scenario wins
    lines = [(f"{name} {r['size_bytes'] / 2**30:.0f} GiB", throughput(r["samples"]))
             for name, r in biggest.items()]
    if lines:
        svg_plot(lines[0][1], "received MiB/s over time (5 s windows)", PLOTS / "large-throughput.svg",
                 ylabel="MiB/s", label=lines[0][0], others=lines[1:])
    picker = [r for _, r in runs if r["scenario"] == "chromium-picker" and r.get("checkpoints")]
    findings = ""
    if picker:
        p = picker[-1]
        copies = [c for c in p["checkpoints"] if c[2] > 0]
        rate = max(c[0] for c in copies) / (max(copies, key=lambda c: c[0])[2] / 1000)
        rows_cp = "\n".join(f"| {c[0] / 2**20:.0f} MiB | {c[1]} | {c[2]} |" for c in p["checkpoints"])
        largest, copied = picker_at(100e9)
        findings = f"""
### The picker path's checkpoints

Checkpoints of the {p['size_bytes'] / 2**30:.1f} GiB picker run (`close()` commits, the
re-open with `keepExistingData` copies everything committed):

| committed | close ms | re-open ms |
|---|---|---|
{rows_cp}

The re-open copied the largest checkpoint at {rate / 1e6:.0f} MB/s. A checkpoint comes
whenever the uncommitted part reaches max(64 MiB, the committed part), so commits land at
64 MiB × 2^k, and each re-open copies everything committed so far: 64 MiB + 128 MiB + … + C
= 2C − 64 MiB of copies, C the largest 64 MiB × 2^k ≤ S for a file of S bytes. Writes are
therefore (S + 2C − 64 MiB) / S, between 2 and 3 times the file (3 just above a power of
two, like the 1 and 2 GiB runs here), and the last checkpoint holds the writes for a copy
of C bytes while C extra bytes sit on disk. For 100 GB: C = {largest / 2**30:.0f} GiB,
{copied / 2**30:.0f} GiB of copies (writes {(100e9 + copied) / 100e9:.2f} × the file), and a
stall of about {largest / rate:.0f} s at this copy
rate (local files add a SHA-256 of the whole file at every close, for Safe Browsing).
Both bounds (amplification ≤ 2, stall ≤ 2 s) fail by design: see docs/webclient.md,
"Picker path at 100 GB", for the redesign (`chromium-staged` above).
"""
    return f"""## Large files

`python -m benchmarks.large_transfer` (`make bench-large`; not part of `make bench`). One
file per run, not a whole number of chunks; every received file checked byte for byte.
"stall": the longest gap between two binary data-channel messages in the receiving page
(CLI: between growths of the file on disk, sampled every 0.5 s); "checkpoint": the
longest `close()` + re-open of the picker's writable stream; "writes": `write_bytes` of
the receiving process tree ÷ file size, and net of `cancelled_write_bytes` (data deleted
before it reached the disk); "extra disk": the most disk space used beyond the bytes
received; "memory": peak growth of the receiving tree's PSS (CLI: RSS); "last byte →
done": from the last binary message to the page's Done (the staged path's final copy into
the picked file; the hand-over of a private copy to the downloads). The picker runs
write to a file in the origin private file system (headless Chromium cannot grant write
access to a local file: benchmarks/large_transfer.py). `chromium-staged` is the picker
path as the page takes it now (received into the private file system, copied once into the
picked file: docs/webclient.md, "Picker path at 100 GB"); `chromium-picker` is the
straight path with checkpoints, which the page now takes only for files the private file
system cannot stage. `firefox-persist`: Chromium → Firefox with persistent storage granted
by a profile preference, a file over the ~10 GiB a site gets without it, received into the
private file system, handed to the downloads by a stream, private copy deleted.
`firefox-page-stream`: the same file with persistent storage refused: the receiving page
streams it into the downloads as it arrives. `firefox-opfs` (1 GiB, before the hand-over
by stream) kept the private copy until the next visit: its extra disk space is the whole
file. `firefox-stream` is the streamed download alone, fed by a page as fast as Firefox
takes it; its memory is the engine's uncollected chunk buffers at that rate, a sawtooth
that does not grow with the file.

{LARGE_HEADER}
{rows}

![received MiB/s over time](img/large-throughput.svg)
{findings}"""


def soak_section(result: dict[str, Any]) -> str:
    rows = []
    for run in result["runs"]:
        if "skipped" in run:
            rows.append(f"| {run['where']} | skipped: {run['skipped']} | | | | |")
            continue
        peak = run["receiver_rss_mib"][1] if run["receiver_rss_mib"] else "?"
        verified = "**yes**" if run["verified"] else f"**NO** (exit {run['exit']})"
        rows.append(
            f"| {run['where']} | {run['seconds'] / 60:.1f} min, {run['bytes'] / 2**30:.2f} GiB, "
            f"{run['mb_per_s']} MB/s | {verified} "
            f"| {run['receiver_heartbeats']} / {run['sender_heartbeats']} | {run['connection_losses']} "
            f"| {peak} |"
        )
    ok = all(r.get("verified") and r["seconds"] >= 15 * 60 for r in result["runs"] if "skipped" not in r)
    return f"""## Soak: CLI transfers that last 15 minutes

`python -m benchmarks.soak` (`make bench-soak`, not part of `make bench`) — {result['when']}.
`peerbeam send → receive` with the real timers (signaling heartbeat every 4 minutes,
keepalive after 15 s of silence), each run paced to last {result['minutes']} minutes:
on loopback with `--max-rate`, and across an emulated link whose own bottleneck sets the rate
(netem-lite, sender and receiver in separate network namespaces). Both side by side.

| run | duration, size, speed | verified | heartbeats (receiver / sender) | connections lost \
| receiver peak RSS MiB |
|---|---|---|---|---|---|
{chr(10).join(rows)}

Every run finished verified after 15 minutes or more: {verdict(ok)}.
"""


def machine_text(loads: list[float], busy: list[float]) -> str:
    return (f"During the run: load {min(loads):.1f}–{max(loads):.1f} (the peers' own processes and "
            f"threads count: a headless Chromium runs dozens), CPU {100 * statistics.median(busy):.0f} % "
            "busy in the median window. Where the peers are CPU-bound the figures move with how the two "
            "of them share the two cores: compare within a row.")


def long_haul_section(table: dict[str, Any], others: list[tuple[str, dict[str, Any]]]) -> str:
    """`table`: the long-haul table; `others`: (name, results) of further runs, for the bars."""
    aiortc_columns = long_haul.columns(table, long_haul.AIORTC_COLUMNS, {"tcp", "aiortc"})
    aiortc_columns = [c for c in aiortc_columns if c[0] not in ("aiortc-x2-1p", "aiortc-x2-np")]
    chromium_columns = long_haul.columns(table, long_haul.CHROMIUM_COLUMNS, {"chromium"})
    process_columns = [(n, h) for n, h in long_haul.PROCESS_COLUMNS.items() if n in table["subjects"]]
    process_cells = {**table, "cells": [c for c in table["cells"]
                                        if any(r["subject"] == "aiortc-x2-np" for r in c["runs"])]}
    chromium_cells = {**table, "cells": [c for c in table["cells"]
                                         if any(r["stack"] == "chromium" for r in c["runs"])]}
    plot = long_haul.per_second_plot(table, PLOTS / "long-haul-per-second.svg", svg_plot)
    loads = [v for cell in table["cells"] for run in cell["runs"] for v in run.get("load", [])]
    busy = [run["machine_busy"] for cell in table["cells"] for run in cell["runs"] if run.get("machine_busy")]
    chromium = next((c["chromium"] for c in table["cells"] if c.get("chromium")), "")
    version = re.search(r"Chrome/([\d.]+)", chromium)
    browser = f", Chromium {version.group(1)}" if version else ""
    return f"""## Long-haul links

`make bench-long` (`python -m benchmarks.long_haul`; root, netem-lite; not part of `make bench`)
— {table['when']}, {table['duration_min']:.0f} minutes{browser}.
Sender and receiver in two network namespaces joined by an emulated wide-area link
(netem-lite: each direction held for half the round trip, and dropped at random at the given
rate, by an NFQUEUE program, because this kernel has no netem; `peerbeam serve` in a third
namespace, not delayed; "0 ms" is the same namespaces with no emulator, plain veth and a
bridge). For each link setting every subject runs in turn, interleaved (the order reversed in
every other round), each for a fixed time from its first byte: the first half is warm-up
(set-up, slow start, and the connections the CLI and the web client add, protocol.md §7.4), the second
half is measured: MB/s of payload delivered in that window (where a cell had two rounds, the
median and each round). **Bold**: the ratio to the bare single channel of the same stack
measured in the same round. Load: the machine's 1-minute load average during the cell's runs.
{machine_text(loads, busy)}

### The bars

Each figure compares subjects of the same run, round by round (median over rounds), against
the bare channel as shipped (aiortc 1.16, Chromium). "table": the run whose figures follow
(this code: the CLI's sender tuning, the pages opening 8 connections); "pages with 8
connections": the Chromium bar's cells again, four more rounds of the same code
(benchmarks/results/long_haul_pages8.json); "before this change": the previous full table,
with the growth rule of protocol.md §7.4 and the SCTP receiver tuning but without the
sender's tuning and the 4 MiB receive buffers (peerbeam/peer/transport_tuning.py), same
quiet machine. Where a run has no such cell, "not measured"; where Chromium's bare ×1
collapsed below 1 MB/s, "not judgeable". The last two rows are for reference: the CLI
against a bare channel with the same SCTP tuning, i.e. what the lanes and the protocol add or cost on
their own.

{long_haul.bars_table([("table", table), *others])}

{long_haul.whole_file_text(table)}

### Python peers and TCP (MB/s)

aiortc bare: `benchmarks/blast.py`, 64 KiB messages, one channel per peer connection, ×4 = four
connections in one process (as the CLI's lanes). CLI: `peerbeam send` → `peerbeam receive` as
they are (authentication, SHA-256, acks after the disk write); default lanes (one connection,
another unless the last one made the transfer slower, judged over at least 5 s and 8
acknowledged chunks, up to 4), or
`--connections N` (exactly N from the start). TCP: `benchmarks/tcp_stream.py`, one stream, cubic.

{long_haul.rate_table(table, aiortc_columns, "aiortc")}

{plot}
### Chromium ↔ Chromium (MB/s)

One headless Chromium per namespace, each side in one page (several connections share one
renderer, as the web client's do): bare = plain `RTCPeerConnection`s with one ordered channel
each, 256 KiB messages, `bufferedAmount` high-water 8 MiB; web client = the real pages (Create
link, Accept; 8 connections opened at once, js/lanes.js `DEFAULT_LANES`: see the findings),
bytes counted as binary
messages arrive in the receiving page.

{long_haul.rate_table(chromium_cells, chromium_columns, "chromium")}

### What bounds the Python peers

Per link setting: the bare ×1 sender's SCTP state in the measured window (`benchmarks/
sctp_probe`: mean congestion window and bytes in flight, smoothed RTT, fast recoveries / T3
timeouts), datagrams dropped by a full socket buffer at the receiver, cores used by each side;
the CLI's connections at the end of the window (UDP sockets in its namespace), its mean bytes
in flight per connection, its cores, its busier event loop's demand (on a CPU or waiting for
one: 1.0 = CPU-bound) and how busy the whole machine was.

{long_haul.bounds_table(table)}

### Lanes in separate processes? (issue 11, point 2)

Two bare associations carried by one Python process (one event loop) against the same two in
two processes each side, on the plain link where aiortc is CPU-bound:

{long_haul.rate_table(process_cells, process_columns, "aiortc")}

{LONG_HAUL_FINDINGS}"""


LONG_HAUL_FINDINGS = """### Findings

**A quiet machine.** The runs above had the machine to themselves (figures taken while other
jobs kept it 90–100 % busy, load 2–16, were replaced). Even so, a single association's rate
varies run to run with whether a loss came early (below), so a bar is judged on the same
round's pair and on more than one run.

**What bounds one association.** *aiortc*: at 60–200 ms with nothing dropped, one association
keeps its peer's whole 1 MiB receive window in flight (1.1–1.3 MB at 120 ms: 8.8–10.9 MB/s).
Every loss halves its window and aiortc's congestion avoidance gives back one 1,200-byte packet
per round trip (10 kB/s at 120 ms), so one loss early in a run costs the rest of it: the same
link gave 4.9–6.7 MB/s in the runs where that happened. Under random loss it behaves like one
TCP flow (0.30–0.41 MB/s at 60 ms and 0.5 %, TCP cubic about twice that; at 2 % 0.18).
*Chromium*: its receiving UDP socket is 128 kB (it does not raise it for data-only
connections) and drops hundreds to thousands of datagrams per window even on the plain link;
the bare ×1 at 60 ms ranged from 0.9 to 6.8 MB/s across this evening's runs with nothing
changed but the moment: the same loss/window mechanism with a smaller buffer.

**The growth rule, changed on both sides.** Until this change a lane was added every 5 s
unless the last 5 s had acknowledged less than the 5 s before. Acknowledgements come a whole
MiB at a time, so at 0.3 MB/s an interval held 1–2 of them and "less" was one chunk of
quantisation: runs stopped at 2 connections (1.47–1.76×) where `--connections 4` carried 3.6×.
Now an interval is judged only once it holds 8 acknowledged chunks (it is extended 5 s at a
time until it does), and a new lane's interval starts when that lane joins, not when it was
asked for (protocol.md §7.4; traces 42, 43, 50 and 51, Python and JavaScript). At 60 ms with
0.5 % loss every CLI run since reached 4 connections, and the default carries what
`--connections 4` carries (earlier runs: 1.40, 1.36 and 1.47 MB/s against 1.38, 1.39 and
1.37; this table: 1.40 against 1.45).
The price is time on slow links: at 0.3 MB/s the first judgement waits for
8 chunks (about 27 s), 4 connections after about a minute, nothing for the multi-GB
transfers this is for; on fast links the intervals stay 5 s. At 2 % loss (0.16 MB/s on one
connection) the first judgement needs 52 s, longer than the table's 40 s cell: the CLI's
row there is still one connection, while `aiortc ×4` shows what four would carry (3.9×).

**CPU per packet: aiortc's SCTP receiver tuned.** A profile of `peerbeam receive` found two
costs in aiortc's SCTP receiver that do no work (reassembly rescanning a message's fragments
at every fragment; a SACK per packet): `peerbeam/peer/transport_tuning.py` removes both for
every peerbeam connection (see "CLI transfer vs bare aiortc data channel"). On the plain link
the CLI went from 0.74–0.87 of the bare channel (bar cells before this change) to 1.11–1.30
(this evening's runs), level with a bare channel tuned the same way (0.93× and 1.01× of it): on loopback
the CLI no longer loses ground, the bar is met. The tuning helps every link where the peers
are CPU-bound (20 ms: the CLI 18.3 MB/s against 16.9 for the bare channel as shipped).

**120 ms: 2.4–3.7×, the 2× bar met (since the sender stopped walking its flight).** Before, with
4 connections the CLI made 13.5–18.6 MB/s against a bare ×1 of 6.7–10.9 (1.68–2.02×): its
sending event loop was saturated at 18 MB/s, and its receiver dropped 500–1,600 datagrams
per window into aioice's 256 KiB socket buffers, each drop halving a connection's window. A
py-spy profile of `peerbeam send` at 120 ms found aiortc's `_transmit` walking the whole sent
queue (≈ 1,000 chunks per connection) for chunks marked for retransmission at every SACK.
`transport_tuning.py` now walks it only after a SACK with gaps or a T3 expiry (checked step
by step against aiortc as shipped, tests/test_transport_tuning.py), and asks for 4 MiB UDP
receive buffers, which with the walk gone cost nothing on loopback (docs/cli.md, "Speed").
One-round probe at 120 ms, `--connections 4`: 13.6 MB/s with the walk fix alone (116
receiver drops in 20 s), 18.0 with the buffers alone (sender saturated), 24.6 with both (no
drops, 1.2 MB window per connection). In the table above: the CLI 25.9 MB/s against a bare
×1 of 10.6 (2.4×; the bare ×1 with the same tuning made 10.9), at 200 ms 20.8 against 6.0;
in the first full run with this tuning (00:47 UTC, replaced by this one) 24.0 against a bare
×1 of 6.5 that had taken a loss early (3.7×). The "before" column of the bars is the table
of the previous code.

**Browsers at 60 ms: the pages open 8 connections at once; the 2× bar met (2.4× and 3.4×).**
Growing by the machines' rule, the web client made 3.28 MB/s against a bare ×1 of 6.82 (the
"before" table): Chromium's rate swings with every loss its associations take (3.4 → 8.4 →
4.7 MB/s second by second within one run), so comparing 5 s intervals often said "slower"
and stopped the growth at 2 or 3. With 4 connections from the start the pages made 1.6–2.1×
across runs, and in the 00:47 run the bare ×1 collapsed (0.03 MB/s: not judgeable).
Chromium's receiving UDP socket (128 kB) drops datagrams, so each connection carries less
than its window allows and 4 only just reach twice one. Three interleaved rounds at 60 ms
(benchmarks/results/web_lanes8.json): the pages with 4 connections 10.9 MB/s (2.0× the same
rounds' bare ×1 of 6.6), with 8 14.8 (2.4×), 8 bare connections 15.4 (2.7×); on the plain
link (web_lanes8_0ms.json) 8 cost nothing: 22.4 MB/s against 21.9 with 4 and 17.4 bare. So
the pages now open 8, the protocol's most (js/lanes.js; docs/webclient.md "Several
connections"); the CLI keeps its rule, where extra connections cost CPU on fast links. With
that default, in the table above 13.8 MB/s against a bare ×1 of 5.7 at 60 ms (2.4×), 9.8
against 2.8 at 120 ms, and on the plain link 24.0 against 22.6; in four more rounds at 60 ms
(long_haul_pages8.json, the "pages with 8 connections" column of the bars): 13.9, 15.0, 16.0
and 14.9 MB/s against a bare ×1 of 6.6, 4.5, 4.8 and 3.9 (2.1–3.8×, median 3.4×), and on the
plain link 21.4 against 17.9 (1.2×). Each page used about one core at 60 ms (0.87 the
sending side, 0.76–0.81 the receiving side, browser processes together): the renderer, not
the path, is the next limit. At 120 ms (web_lanes8_120ms.json, two rounds) the pages made
10.5 and 5.9 MB/s against a bare ×1 of 3.6 and 6.8 (8 bare connections: 10.8 and 10.1): in
the second round the rate fell from 11 to 1.3 MB/s in the third second and then climbed
linearly for the rest of the run, as after a loss on every connection at once (each grows
back by one packet per round trip). Opening the 8 connections a little apart instead of at
once might avoid that shared early loss; not measured yet. With more connections a page
could also take more relay allocations; its extra connections use fewer TURN URLs (none when
the first connection went direct; docs/deploy.md).

**Lanes in separate processes (issue 11, point 2): measured, not built.** On the plain link,
two bare associations in two processes each side against the same two in one process:
22.1 and 21.0 MB/s against 27.5 and 24.5 (the "before" table, two rounds): two processes were slower.
On this 2-core machine the sender and the receiver already take both cores, so a second
process per side can only take CPU from the other side. It would pay only where a peer
has idle cores and is CPU-bound (a fast LAN between 4-core machines: to be measured there); on
long and lossy links, where lanes matter, each association uses a tenth of a core.

**Noticed, left alone.** A receiving page that finds a record of a same-name file in its
IndexedDB resumes it even when that file's bytes are gone from the private file system, and
then stops with "Cannot save the files: cannot write …: A requested file or directory could
not be found" instead of starting that file over (the benchmark clears both between web
client runs)."""


def main() -> None:
    sections = []
    cli = load("cli_transfer")
    if cli:
        sections.append(cli_section(cli))
    browser = load("browser_transfer")
    if browser:
        sections.append(browser_section(browser))
    signaling_load, handler_cost = load("signaling_load"), load("handler_cost")
    if signaling_load or handler_cost:
        sections.append(signaling_section(signaling_load, handler_cost))
    swarm = load("swarm")
    if swarm:
        sections.append(swarm_section(swarm))
    digest = load("digest_cost")
    if digest:
        sections.append(digest_section(digest))
    large = load("large_transfer")
    if large:
        sections.append(large_section(large))
    soak = load("soak")
    if soak:
        sections.append(soak_section(soak))
    attacks = load("attacks")
    if attacks:
        sections.append(attacks_section(attacks))
    long_haul_table = load("long_haul")
    if long_haul_table:
        others = [(name, result) for name, key in (
                      ("pages with 8 connections, 4 more rounds", "long_haul_pages8"),
                      ("before this change (receiver tuning only)", "long_haul_before"))
                  if (result := load(key))]
        sections.append(long_haul_section(long_haul_table, others))
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
