"""The JavaScript session machines against docs/protocol-traces.json, run in Node
(tests/js/run_traces.mjs): the same traces as the Python machines
(tests/test_protocol_traces.py), so both implementations behave alike step by step.
A failing trace reports its first differing step."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest

from tests.traces.codec import load

from .fixtures.servers import REPO

TRACES: list[dict[str, Any]] = load()["traces"]
RUNNER = REPO / "tests" / "js" / "run_traces.mjs"


@pytest.fixture(scope="module")
def results() -> dict[str, dict[str, Any]]:
    node = shutil.which("node")
    assert node, "Node.js is needed to run the web client's machines (make test installs it)"
    done = subprocess.run([node, str(RUNNER)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.stdout, done.stderr
    return {r["name"]: r for r in json.loads(done.stdout)["traces"]}


@pytest.mark.parametrize("trace", TRACES, ids=[t["name"] for t in TRACES])
def test_trace(results: dict[str, dict[str, Any]], trace: dict[str, Any]) -> None:
    result = results[trace["name"]]
    if not result["ok"]:
        report = {k: result.get(k) for k in ("event", "expected", "got", "error") if k in result}
        pytest.fail(f"step {result['step']} differs:\n{json.dumps(report, indent=1)}")
