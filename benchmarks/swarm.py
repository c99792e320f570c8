"""The aiortc swarm at benchmark size: `python -m benchmarks.swarm`."""

from __future__ import annotations

import json
import subprocess

from benchmarks.procs import ENV, PYTHON, REPO, save_result, serving


def main() -> None:
    with serving("peerbeam-swarm-bench-") as (server, work):
        report = work / "swarm.json"
        subprocess.run(
            [PYTHON, "-m", "loadtests.swarm", "--server", server.base, "--pairs", "4",
             "--fanout", "4", "--size-mib", "32", "--timeout", "900", "--json", str(report)],
            cwd=REPO, env=ENV, check=True, timeout=1200,
        )
        save_result("swarm", json.loads(report.read_text()))


if __name__ == "__main__":
    main()
