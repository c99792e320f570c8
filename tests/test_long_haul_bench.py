"""The long-haul benchmark's own parts (`make bench-long`): how it plans cells, reads
progress, computes same-round ratios and judges the bars, and the bare aiortc ×N baseline
with its SCTP probe on loopback. The emulated link itself (root, netem-lite) is not needed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.long_haul.bench import Cell, plan
from benchmarks.long_haul.measure import Series, sctp_summary
from benchmarks.long_haul.render import bars, entry, rate_table
from benchmarks.long_haul.subjects import held_bytes
from benchmarks.netlink import receive_buffers
from tests.fixtures.servers import REPO, LocalServer

MiB = 1024 * 1024


def progress(lines: list[str]) -> list[dict[str, float]]:
    rows = [json.loads(line) for line in lines if line.startswith("{")]
    return [row for row in rows if "t" in row]


def test_bare_aiortc_channels_in_one_process_with_progress_and_sctp_probe(
        local_server: LocalServer, tmp_path: Path) -> None:
    """Two peer connections in one sender process and one receiver process: every byte
    arrives, progress lines add up both connections, the probe records each association."""
    total = 6 * MiB
    trace = tmp_path / "sctp.jsonl"
    env = {**os.environ, "PYTHONPATH": str(REPO / "benchmarks" / "sctp_probe"),
           "PEERBEAM_BENCH_SCTP_TRACE": str(trace)}
    sender = subprocess.Popen([sys.executable, "-m", "benchmarks.blast", "send", str(total), "--server",
                               local_server.base, "--connections", "2"], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, text=True)
    assert sender.stdout is not None
    rooms = sender.stdout.readline().strip()
    assert len(json.loads(rooms)["rooms"]) == 2
    done = subprocess.run([sys.executable, "-m", "benchmarks.blast", "receive", rooms, "--server",
                           local_server.base, "--bytes", str(total), "--progress", "0.05"],
                          cwd=REPO, capture_output=True, text=True, timeout=120, check=True)
    sender.wait(60)
    lines = done.stdout.splitlines()
    assert json.loads(lines[-1])["bytes"] == total
    assert 0 < progress(lines)[-1]["bytes"] <= total
    rows = [json.loads(line) for line in trace.read_text().splitlines()]
    assert len({row["assoc"] for row in rows if row["flight"] > 0}) == 2
    assert all(row["cwnd"] > 0 and row["srtt"] is not None for row in rows)


def test_series_interpolates_between_samples() -> None:
    series = Series()
    for t, n in ((10.0, 0), (11.0, 0), (12.0, 100), (14.0, 300)):
        series.add(t, n)
    series.add(13.0, 999)  # out of order: ignored
    assert series.first_byte == 12.0
    assert series.at(9.0) == 0
    assert series.at(13.0) == 200
    assert series.at(20.0) == 300


def test_sctp_summary_keeps_the_associations_that_carried_data_inside_the_window(tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    rows = []
    for t in range(10):
        rows.append({"t": float(t), "pid": 1, "assoc": 7, "cwnd": 100_000, "flight": 90_000,
                     "ssthresh": 80_000, "srtt": 0.12, "peer_rwnd": 1 << 20,
                     "fast_recoveries": t // 5, "t3_expiries": 0})
        rows.append({"t": float(t), "pid": 1, "assoc": 8, "cwnd": 3480, "flight": 0, "ssthresh": 1 << 20,
                     "srtt": 0.12, "peer_rwnd": 1 << 20, "fast_recoveries": 0, "t3_expiries": 0})
    trace.write_text("\n".join(json.dumps(row) for row in rows))
    summary = sctp_summary(trace, 2.0, 8.0)
    assert summary == {"associations": 1, "cwnd_kB": 100.0, "flight_kB": 90.0, "ssthresh_kB": 80.0,
                       "srtt_ms": 120.0, "fast_recoveries": 1, "t3_expiries": 0}


def test_receive_buffers_reads_the_sockets_on_the_link_only() -> None:
    ss = ("State  Recv-Q Send-Q Local Address:Port  Peer Address:PortProcess\n"
          "UNCONN 0      0          127.0.0.1:50449      0.0.0.0:*\n"
          "\t skmem:(r0,rb131072,t0,tb131072,f0,w0,o0,bl0,d0)\n"
          "UNCONN 0      0        198.18.81.2:52432      0.0.0.0:*\n"
          "\t skmem:(r0,rb524288,t0,tb131072,f0,w0,o0,bl0,d7)\n")
    assert receive_buffers(ss, "198.18.81") == [524288]


def result_of(cells: list[dict[str, object]]) -> dict[str, object]:
    return {"subjects": {"aiortc": {"label": "aiortc ×1", "stack": "aiortc"},
                         "aiortc-x4-1p": {"label": "aiortc ×4", "stack": "aiortc"}},
            "cells": cells}


def test_ratios_pair_runs_of_the_same_round() -> None:
    cell = {"rtt_ms": 0.0, "loss_pct": 0.0, "runs": [
        {"subject": "aiortc", "round": 1, "mb_s": 10.0, "load": [1.0, 2.0]},
        {"subject": "aiortc-x4-1p", "round": 1, "mb_s": 15.0, "load": [1.5, 1.5]},
        {"subject": "aiortc-x4-1p", "round": 2, "mb_s": 30.0},
        {"subject": "aiortc", "round": 2, "mb_s": 20.0},
    ]}
    assert entry(cell, "aiortc-x4-1p", "aiortc") == "22.5 (15.0 / 30.0) **1.50×**"
    table = rate_table(result_of([cell]), [("aiortc", "×1"), ("aiortc-x4-1p", "×4")], "aiortc")
    assert "| 0 ms | 15.0 (10.0 / 20.0) | 22.5 (15.0 / 30.0) **1.50×** | 1.0–2.0 |" in table


def test_a_failed_run_says_so_instead_of_a_rate() -> None:
    cell = {"rtt_ms": 60.0, "loss_pct": 2.0, "runs": [
        {"subject": "aiortc", "round": 1, "mb_s": 0.2},
        {"subject": "aiortc-x4-1p", "round": 1, "error": "RuntimeError: no byte within 90 s"}]}
    assert entry(cell, "aiortc-x4-1p", "aiortc") == "failed"
    assert "| 60 ms, 2 % loss | 0.20 | failed |" in rate_table(
        result_of([cell]), [("aiortc", "×1"), ("aiortc-x4-1p", "×4")], "aiortc")


def test_cells_parse_and_take_the_table_subjects_of_the_same_link() -> None:
    assert Cell.parse("60:2:30:1:16") == Cell(60.0, 2.0, 30.0, 1, 16)
    assert Cell.parse("120") == Cell(120.0, 0.0, 30.0, 1, 0)
    assert Cell.parse("120:0:20").warmup == 10.0
    [(cell, names)] = plan(["120:0:20"], None, 2)
    assert (cell.seconds, cell.rounds) == (20.0, 2)
    assert {"aiortc", "cli", "cli-c1", "web", "chromium"} <= set(names)
    assert plan(["60:0.5"], "aiortc,cli", None)[0][1] == ["aiortc", "cli"]
    assert [names for _, names in plan(["0=aiortc,cli", "60"], "web", None)] == [["aiortc", "cli"], ["web"]]
    with pytest.raises(ValueError, match="unknown subjects: nope"):
        plan(None, "aiortc,nope", None)


def test_held_bytes_counts_what_was_written_not_how_far(tmp_path: Path) -> None:
    """Lanes write chunks at their offsets: a file with one chunk at 8 MiB holds 1 MiB."""
    with open(tmp_path / "a.bin.peerbeam-part", "wb") as part:
        part.seek(8 * MiB)
        part.write(b"x" * MiB)
    (tmp_path / ".peerbeam").mkdir()
    assert (tmp_path / "a.bin.peerbeam-part").stat().st_size == 9 * MiB
    assert MiB <= held_bytes(tmp_path) < 2 * MiB


def bar_result(cli_at_120: float, whole: dict[str, object] | None) -> dict[str, object]:
    def cell(rtt: float, loss: float, runs: list[tuple[str, float]], **extra: object) -> dict[str, object]:
        return {"rtt_ms": rtt, "loss_pct": loss, **extra,
                "runs": [{"subject": name, "round": 1, "mb_s": rate} for name, rate in runs]}

    return {"subjects": {}, "cells": [
        cell(0.0, 0.0, [("aiortc", 10.0), ("cli", 9.0)]),
        cell(120.0, 0.0, [("aiortc", 4.0), ("cli", cli_at_120)]),
        cell(60.0, 0.5, [("aiortc", 0.3), ("cli", 1.2)]),
        cell(60.0, 2.0, [("aiortc", 0.1), ("cli", 0.3)], **({"whole_file": whole} if whole else {})),
    ]}


def test_bars_compare_with_the_bare_channel_of_the_same_run() -> None:
    judged = {bar: (value, met) for bar, value, met in bars(bar_result(
        9.0, {"size_mib": 16, "seconds": 41.2, "mb_s": 0.41, "verified": True, "exit": 0}))}
    assert judged["120 ms: CLI ≥ 2× bare aiortc ×1"] == ("2.25×", True)
    assert judged["60 ms, 0.5 % loss: CLI ≥ 3× bare aiortc ×1"] == ("4.00×", True)
    assert judged["0 ms (plain veth): CLI ≥ 1× bare aiortc ×1"] == ("0.90×", False)
    assert judged["60 ms, 2 % loss: the CLI finishes a whole file, verified"] == ("16 MiB in 41 s", True)
    assert judged["60 ms: web client ≥ 2× bare Chromium ×1"] == ("not measured", None)
    missed = {bar: met for bar, _, met in bars(bar_result(7.9, {"size_mib": 16, "verified": False}))}
    assert missed["120 ms: CLI ≥ 2× bare aiortc ×1"] is False
    assert missed["60 ms, 2 % loss: the CLI finishes a whole file, verified"] is False
