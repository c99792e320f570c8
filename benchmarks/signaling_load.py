"""Signaling under load: Locust against `peerbeam serve`, several hundred sockets.

    python -m benchmarks.signaling_load [--users 300] [--seconds 30]

Each Locust user is a sender+receiver pair holding two sockets while it exchanges an
offer, an answer, ICE-sized signals and pings, so `--users 300` keeps several hundred
WebSocket members connected at once. Writes benchmarks/results/signaling_load.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess

from benchmarks.procs import ENV, PYTHON, REPO, save_result, serving

RELAYED = ("signal offer", "signal answer", "signal ice")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--seconds", type=int, default=30)
    args = parser.parse_args()
    # Every Locust user comes from 127.0.0.1: lift the per-client limits meant for strangers.
    unlimited = {"PEERBEAM_ROOMS_BURST": "1000000", "PEERBEAM_JOINS_BURST": "1000000",
                 "PEERBEAM_MAX_CONNECTIONS_PER_CLIENT": "100000",
                 "PEERBEAM_CLIENT_BYTES_PER_SECOND": "0"}
    with serving("peerbeam-load-", unlimited) as (server, work):
        prefix = work / "locust"
        run = subprocess.run(
            [PYTHON, "-m", "locust", "-f", "loadtests/locustfile.py", "--headless",
             "-u", str(args.users), "-r", str(max(args.users // 5, 1)),
             "-t", f"{args.seconds}s", "--host", server.base, "--csv", str(prefix),
             "--only-summary", "--stop-timeout", "10"],
            cwd=REPO, env={**ENV, "PEERBEAM_LOAD_HOLD": "3"}, capture_output=True,
            text=True, timeout=args.seconds + 300,
        )
        with open(f"{prefix}_stats.csv") as handle:
            rows = {row["Name"]: row for row in csv.DictReader(handle)}
    relayed = sum(float(rows[name]["Requests/s"]) for name in RELAYED if name in rows)
    result = {
        "users": args.users,
        "seconds": args.seconds,
        "requests": int(rows["Aggregated"]["Request Count"]),
        "failures": int(rows["Aggregated"]["Failure Count"]),
        "relayed_per_s": relayed,
        "p50_ms": {n: float(rows[n]["50%"]) for n in RELAYED + ("join receiver",) if n in rows},
        "p99_ms": {n: float(rows[n]["99%"]) for n in RELAYED + ("join receiver",) if n in rows},
        "locust_exit": run.returncode,
    }
    save_result("signaling_load", result)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
