"""Seconds-long smoke runs of the load tools: they work, do work, and fail nothing."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.fixtures.servers import REPO, LocalServer

# All Locust users come from 127.0.0.1: lift the per-client limits meant for strangers.
UNLIMITED = {"PEERBEAM_ROOMS_BURST": "1000000", "PEERBEAM_JOINS_BURST": "1000000",
             "PEERBEAM_CLIENT_BYTES_PER_SECOND": "0"}


def test_locustfile_runs_without_failures(tmp_path: Path) -> None:
    local_server = LocalServer(tmp_path / "server", env=UNLIMITED)
    local_server.start()
    try:
        locust_run(local_server, tmp_path)
    finally:
        local_server.stop()


def locust_run(local_server: LocalServer, tmp_path: Path) -> None:
    prefix = tmp_path / "locust"
    result = subprocess.run(
        [sys.executable, "-m", "locust", "-f", "loadtests/locustfile.py", "--headless",
         "-u", "10", "-r", "10", "-t", "6s", "--host", local_server.base,
         "--csv", str(prefix), "--only-summary", "--exit-code-on-error", "1"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PEERBEAM_LOAD_HOLD": "0.5"},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with open(f"{prefix}_stats.csv") as handle:
        rows = {row["Name"]: row for row in csv.DictReader(handle)}
    total = rows["Aggregated"]
    assert int(total["Request Count"]) > 0
    assert int(total["Failure Count"]) == 0
    for name in ("POST /rooms", "join sender", "join receiver", "signal offer", "signal answer"):
        assert int(rows[name]["Request Count"]) > 0, name


def test_swarm_moves_every_byte(local_server: LocalServer, tmp_path: Path) -> None:
    report_path = tmp_path / "swarm.json"
    result = subprocess.run(
        [sys.executable, "-m", "loadtests.swarm", "--server", local_server.base, "--pairs", "2",
         "--fanout", "2", "--size-mib", "1.5", "--timeout", "120", "--json", str(report_path)],
        cwd=REPO, capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(report_path.read_text())
    for scenario in ("pairs", "fanout"):
        figures = report[scenario]
        assert figures["transfers"] == 2 and figures["failures"] == 0, figures
        assert figures["bytes_moved"] == figures["bytes_expected"] == 2 * int(1.5 * 1024 * 1024)
        assert figures["aggregate_mb_s"] > 0
