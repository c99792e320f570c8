"""The aiortc swarm at benchmark size: `python -m benchmarks.swarm`."""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.procs import ENV, PYTHON, REPO
from tests.fixtures.servers import LocalServer

RESULTS = REPO / "benchmarks" / "results"


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="peerbeam-swarm-bench-") as tmp:
        work = Path(tmp)
        server = LocalServer(work / "server")
        server.start()
        try:
            report = work / "swarm.json"
            subprocess.run(
                [PYTHON, "-m", "loadtests.swarm", "--server", server.base, "--pairs", "4",
                 "--fanout", "4", "--size-mib", "32", "--timeout", "900", "--json", str(report)],
                cwd=REPO, env=ENV, check=True, timeout=1200,
            )
            result = json.loads(report.read_text())
        finally:
            server.stop()
    result["when"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "swarm.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
