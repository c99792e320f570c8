"""The Python session machines against docs/protocol-traces.json: every event of every
trace, and exactly the actions the file expects, in order. The JavaScript machines run the
same file (tests/test_protocol_traces_js.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.traces.codec import action_out, event_in, load, machine

TRACES: list[dict[str, Any]] = load()["traces"]


@pytest.mark.parametrize("trace", TRACES, ids=[t["name"] for t in TRACES])
def test_trace(trace: dict[str, Any]) -> None:
    subject = machine(trace)
    for number, step in enumerate(trace["steps"], 1):
        actions = [action_out(a) for a in subject.handle(event_in(step["event"]))]
        assert actions == step["actions"], f"step {number}: {step['event']}"
