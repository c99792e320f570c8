"""Unit tests of web client modules that need no browser, run with Node's test runner
(`tests/js/*.test.mjs`): the synchronous SHA-256 against the NIST CAVP vectors, the
receiving page's words for every status and end code."""

from __future__ import annotations

import shutil
import subprocess

from .fixtures.servers import REPO


def test_node_unit_tests() -> None:
    node = shutil.which("node")
    assert node, "Node.js is needed to test the web client's modules (make test installs it)"
    tests = sorted(str(p.relative_to(REPO)) for p in (REPO / "tests" / "js").glob("*.test.mjs"))
    assert tests
    done = subprocess.run([node, "--test", *tests], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "# fail 0" in done.stdout
