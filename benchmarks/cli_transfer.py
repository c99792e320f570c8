"""CLI transfer vs the bare aiortc data channel (as shipped, and with the SCTP tuning every
peerbeam connection has), same run; receiver memory over a large file.

    python -m benchmarks.cli_transfer [--size-mib 256] [--memory-mib 1024] [--rounds 2]

Writes benchmarks/results/cli_transfer.json.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import time
from pathlib import Path

from benchmarks.procs import ENV, PYTHON, REPO, RssSampler, peerbeam, save_result, serving
from tests.fixtures.cli import random_file
from tests.fixtures.servers import LocalServer

MiB = 1024 * 1024


def timed_blast(server: LocalServer, size: int, tuned: bool = False) -> float:
    """The bare channel: aiortc as shipped, or `tuned` as every peerbeam connection is."""
    tuning = ["--tuned"] if tuned else []
    sender = subprocess.Popen(
        [PYTHON, "-m", "benchmarks.blast", "send", str(size), "--server", server.base, *tuning],
        cwd=REPO, env=ENV, stdout=subprocess.PIPE, text=True,
    )
    assert sender.stdout is not None
    room = sender.stdout.readline().strip()
    started = time.monotonic()
    subprocess.run(
        [PYTHON, "-m", "benchmarks.blast", "receive", room, "--server", server.base,
         "--bytes", str(size), *tuning],
        cwd=REPO, env=ENV, check=True, capture_output=True, timeout=1800,
    )
    elapsed = time.monotonic() - started
    sender.wait(60)
    return elapsed


def timed_cli(server: LocalServer, source: Path, out: Path, sample_memory: bool = False
              ) -> tuple[float, list[tuple[float, int]], float]:
    sender = peerbeam("send", str(source), "--server", server.base,
                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert sender.stdout is not None
    link = sender.stdout.readline().strip()
    started = time.monotonic()
    receiver = peerbeam("receive", link, "-o", str(out),
                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    sampler = RssSampler(receiver.pid) if sample_memory else None
    _, stderr = receiver.communicate(timeout=3600)
    elapsed = time.monotonic() - started
    if sampler:
        sampler.stop()
    sender.terminate()
    sender.wait(30)
    if receiver.returncode != 0:
        raise RuntimeError(stderr)
    received = out / source.name
    if received.stat().st_size != source.stat().st_size:
        raise RuntimeError("size mismatch")
    received.unlink()
    first_byte = re.search(r"first byte ([0-9.]+) s after accepting", stderr)
    return elapsed, sampler.samples if sampler else [], float(first_byte.group(1)) if first_byte else -1.0


def memory_growth(samples: list[tuple[float, int]]) -> tuple[int, int, int]:
    """(baseline, peak, growth): baseline is the RSS once the peer is up (after 2 s)."""
    settled = [rss for t, rss in samples if t >= 2.0] or [rss for _, rss in samples]
    baseline = settled[0]
    peak = max(settled)
    return baseline, peak, peak - baseline


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--memory-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with serving("peerbeam-bench-") as (server, work):
        size = args.size_mib * MiB
        source = random_file(work / "bench.bin", size)
        rounds = []
        for _ in range(args.rounds):  # interleaved, so drift hits both alike
            blast = timed_blast(server, size)
            cli, _, first_byte = timed_cli(server, source, work / "out")
            tuned = timed_blast(server, size, tuned=True)
            rounds.append({"blast_s": blast, "cli_s": cli, "ratio": blast / cli,
                           "tuned_blast_s": tuned, "tuned_ratio": tuned / cli,
                           "accept_to_first_byte_s": first_byte})
        source.unlink()
        big = random_file(work / "memory.bin", args.memory_mib * MiB)
        _, samples, _ = timed_cli(server, big, work / "out", sample_memory=True)
        baseline, peak, growth = memory_growth(samples)
    best = max(rounds, key=lambda r: r["ratio"])
    result = {
        "size_mib": args.size_mib,
        "rounds": rounds,
        "blast_mb_s": size / 1e6 / best["blast_s"],
        "cli_mb_s": size / 1e6 / best["cli_s"],
        "ratio": sum(r["ratio"] for r in rounds) / len(rounds),
        "tuned_ratio": sum(r["tuned_ratio"] for r in rounds) / len(rounds),
        "memory": {
            "transfer_mib": args.memory_mib,
            "baseline_mib": baseline / MiB,
            "peak_mib": peak / MiB,
            "growth_mib": growth / MiB,
            "samples": [(round(t, 2), rss) for t, rss in samples],
        },
    }
    save_result("cli_transfer", result)
    print(json.dumps({k: v for k, v in result.items() if k != "memory"}, indent=1))
    print(json.dumps({k: v for k, v in result["memory"].items() if k != "samples"}))


if __name__ == "__main__":
    main()
