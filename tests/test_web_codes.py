"""The web client names every error and outcome code once: webclient/js/protocol/errors.js
(protocol.md §12, §14.2) and, for the signaling refusals it explains, webclient/js/signaling.js
(docs/signaling.md). Everywhere else uses those constants, so a code cannot be misspelt or
invented in passing, and the page's words are chosen by code (ui/receiver-text.js)."""

from __future__ import annotations

import re

from .fixtures.servers import REPO

WEB = REPO / "webclient" / "js"
DEFINITION = re.compile(r'^export const [A-Z_]+ = "([a-z_]+)";$', re.M)
# Outcome and state words that are also codes: "done" is a message type and a state too.
SHARED_WORDS = {"done", "declined"}
COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)


def defined_codes() -> dict[str, str]:
    codes = {}
    for module in (WEB / "protocol" / "errors.js", WEB / "signaling.js"):
        for code in DEFINITION.findall(module.read_text("utf-8")):
            codes[code] = module.name
    return codes


def test_codes_are_defined_where_the_contract_says() -> None:
    codes = defined_codes()
    for code in ("disk_full", "auth_failed", "wrong_link", "password_downgrade", "sender_gone",
                 "room_closed", "room_not_found", "room_locked", "room_full", "connection_replaced"):
        assert code in codes, code


def test_no_code_is_spelt_out_elsewhere() -> None:
    codes = set(defined_codes()) - SHARED_WORDS
    found = []
    # The Service Worker (storage/download-sw.js) runs outside the page's modules and speaks
    # no protocol: its "cancelled" is a download's reason text.
    for path in sorted(p for p in WEB.rglob("*.js") if not p.name.endswith("-sw.js")):
        text = COMMENT.sub("", path.read_text("utf-8"))  # comments may name codes
        if path.name in ("errors.js", "signaling.js"):
            text = DEFINITION.sub("", text)
        for code in codes:
            if re.search(rf"[\"'`]{code}[\"'`]", text):
                found.append(f"{path.relative_to(REPO)}: {code}")
    assert found == []
