"""Soak: `peerbeam send → receive` for at least 15 minutes, with the real timers.

    python -m benchmarks.soak [--minutes 15] [--rate-mib 2]

Two runs side by side, each paced to last the whole time: on loopback (``--max-rate``)
and across an emulated rate-limited link (netem-lite ``--rate``, 20 ms RTT, sender and
receiver in separate network namespaces; skipped with the reason when that cannot run).
Default timers, so each run goes through several signaling heartbeats (every 4 min) and
thousands of keepalive-sized silences. Records duration, whether the file arrived
verified, heartbeats and reconnects, and the receiver's memory.

Writes benchmarks/results/soak.json.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.netlink import emulated_link, unavailable
from benchmarks.procs import ENV, PYTHON, REPO, RssSampler, save_result, serving
from tests.fixtures.cli import random_file

MiB = 1024 * 1024


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(4 * MiB):
            digest.update(block)
    return digest.hexdigest()


def transfer(source: Path, out: Path, server_url: str, send_prefix: list[str],
             receive_prefix: list[str], env: dict[str, str], send_args: list[str]) -> dict[str, Any]:
    """One send/receive pair to the end; the figures of the run."""
    env = {**env, "PEERBEAM_LOG": "INFO"}
    sender = subprocess.Popen(
        [*send_prefix, PYTHON, "-m", "peerbeam.cli", "send", str(source), "--server", server_url,
         *send_args], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert sender.stdout is not None and sender.stderr is not None
    link = sender.stdout.readline().strip()
    sender_log: list[str] = []
    drain = threading.Thread(target=lambda: sender_log.extend(sender.stderr), daemon=True)  # type: ignore[arg-type]
    drain.start()
    started = time.monotonic()
    receiver = subprocess.Popen(
        [*receive_prefix, PYTHON, "-m", "peerbeam.cli", "receive", link, "-o", str(out)],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    sampler = RssSampler(receiver.pid, interval=5.0)
    _, stderr = receiver.communicate(timeout=6 * 3600)
    elapsed = time.monotonic() - started
    sampler.stop()
    sender.terminate()
    sender.wait(30)
    drain.join(5)
    received = out / source.name
    verified = receiver.returncode == 0 and received.exists() and sha256(received) == sha256(source)
    rss = [value for _, value in sampler.samples if value]
    return {
        "seconds": round(elapsed, 1),
        "bytes": source.stat().st_size,
        "mb_per_s": round(source.stat().st_size / elapsed / 1e6, 2),
        "exit": receiver.returncode,
        "verified": verified,
        "receiver_heartbeats": stderr.count("signaling heartbeat sent"),
        "sender_heartbeats": "".join(sender_log).count("signaling heartbeat sent"),
        "connection_losses": stderr.count("connection lost"),
        "receiver_rss_mib": [round(min(rss) / MiB, 1), round(max(rss) / MiB, 1)] if rss else None,
        "tail": stderr.strip().splitlines()[-3:] if not verified else [],
    }


def loopback_run(seconds: float, rate: int, work: Path) -> dict[str, Any]:
    source = random_file(work / "soak-loopback.bin", int(rate * seconds), seed=15)
    with serving("peerbeam-soak-") as (server, _):
        result = transfer(source, work / "out-loopback", server.base, [], [], ENV,
                          ["--max-rate", str(rate)])
    source.unlink()
    return {"where": "loopback, --max-rate", **result}


def link_run(seconds: float, rate: int, work: Path) -> dict[str, Any]:
    reason = unavailable()
    if reason:
        return {"where": "emulated link", "skipped": reason}
    # The bottleneck is the link itself: its rate in Mbit/s, a 20 ms RTT, 50 ms of buffer.
    rate_mbit = rate * 8 / 1e6 * 1.05  # IP/UDP/DTLS/SCTP overhead on top of the payload
    source = random_file(work / "soak-link.bin", int(rate * seconds), seed=16)
    env = {k: v for k, v in ENV.items() if k != "PEERBEAM_ICE_LOOPBACK"}
    with emulated_link(rtt_ms=20, rate_mbit=rate_mbit, prefix=f"pbsoak{os.getpid() % 10000}",
                       subnet="198.18.78") as link:
        data = work / "link-server"
        server = subprocess.Popen(
            link.command(link.server_ns, PYTHON, "-m", "peerbeam.cli", "serve", "--host",
                         link.server_ip, "--port", "8000", "--data-dir", str(data)),
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(3)
            result = transfer(source, work / "out-link", f"http://{link.server_ip}:8000",
                              link.command(link.sender_ns), link.command(link.receiver_ns), env, [])
        finally:
            server.terminate()
            server.wait(30)
    source.unlink()
    return {"where": f"emulated link: {rate_mbit:.1f} Mbit/s, 20 ms RTT", **result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=15.5)
    parser.add_argument("--rate-mib", type=float, default=2.0, help="MiB/s each run is paced to")
    args = parser.parse_args()
    seconds, rate = args.minutes * 60, int(args.rate_mib * MiB)
    with tempfile.TemporaryDirectory(prefix="peerbeam-soak-") as tmp:
        work = Path(tmp)
        results: dict[str, dict[str, Any]] = {}
        kinds = (("loopback", loopback_run), ("link", link_run))
        runs = [threading.Thread(target=lambda name=name, run=run: results.__setitem__(
            name, run(seconds, rate, work))) for name, run in kinds]
        for thread in runs:
            thread.start()
        for thread in runs:
            thread.join()
    save_result("soak", {"minutes": args.minutes, "rate_mib": args.rate_mib, "runs": [
        results["loopback"], results["link"]]})
    print(results, file=sys.stderr)


if __name__ == "__main__":
    main()
