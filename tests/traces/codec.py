"""Between the JSON of docs/protocol-traces.json and the Python session machines.

In the file, secrets and nonces are base64url (fields `nonce`, `mac`, `sender_nonce`,
`receiver_nonce`), digests are lowercase hex (`digest`, and a record's `digests`), and a
message is its wire JSON object (`message`, `manifest`). The JavaScript runner
(tests/js/run_traces.mjs) converts the same way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from peerbeam.transfer.codec import b64url_decode, b64url_encode
from peerbeam.transfer.machine import Machine, SessionTiming
from peerbeam.transfer.messages import FileEntry
from peerbeam.transfer.receiver_machine import ReceiverMachine, records_from_json
from peerbeam.transfer.sender_machine import SenderMachine

TRACES = Path(__file__).resolve().parents[2] / "docs" / "protocol-traces.json"
B64_FIELDS = {"nonce", "mac", "sender_nonce", "receiver_nonce"}
HEX_FIELDS = {"digest"}


def load() -> dict[str, Any]:
    return json.loads(TRACES.read_text("utf-8"))


def machine(trace: dict[str, Any]) -> Machine:
    config = trace["config"]
    timing = SessionTiming.from_json(config.get("timing"))
    if trace["machine"] == "sender":
        files = [FileEntry(f["name"], f["size"], f.get("type", "")) for f in config["files"]]
        return SenderMachine(config["transfer"], files, config["password"], config["iterations"],
                             config.get("one_time", False), timing, config.get("lanes"),
                             config.get("fixed_lanes", False))
    return ReceiverMachine(config.get("expect_password"), config.get("password"),
                           config.get("auto_accept", False), timing, config.get("lanes"),
                           config.get("accepted"))


def event_in(obj: dict[str, Any]) -> dict[str, Any]:
    """A trace event as the machine takes it."""
    event: dict[str, Any] = {}
    for key, value in obj.items():
        if key == "message":
            event["text"] = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        elif key == "records":
            event["records"] = records_from_json(value)
        elif key in B64_FIELDS:
            event[key] = b64url_decode(value)
        elif key in HEX_FIELDS:
            event[key] = bytes.fromhex(value)
        else:
            event[key] = value
    return event


def action_out(action: dict[str, Any]) -> dict[str, Any]:
    """A machine action as the trace file writes it. Texts for humans (an error message's
    `message`, a `detail`) are not part of the behaviour: codes are (protocol.md §12)."""
    out = {key: _json_value(key, value) for key, value in action.items() if key != "detail"}
    message = out.get("message")
    if isinstance(message, dict) and message.get("t") == "error":
        out["message"] = {k: v for k, v in message.items() if k != "message"}
    return out


def _json_value(key: str, value: Any) -> Any:
    if hasattr(value, "to_json"):
        return value.to_json()
    if isinstance(value, bytes):
        return b64url_encode(value) if key in B64_FIELDS else value.hex()
    if isinstance(value, list | tuple):
        return [_json_value(key, item) for item in value]
    return value
