"""The JavaScript protocol modules against docs/protocol-vectors.json, run in Chromium.

The same file checks the Python core (tests/test_protocol_vectors.py); both passing means
the two implementations agree byte for byte. The page computes, Python compares.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from tests.fixtures.servers import LocalServer

from .conftest import Pages

pytestmark = pytest.mark.browser

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[2] / "docs" / "protocol-vectors.json").read_text("utf-8")
)

# Runs every vector section through the JS modules; returns what each produced.
RUN_VECTORS = (Path(__file__).parent / "run_vectors.js").read_text("utf-8")


@pytest.fixture(scope="module")
def results(server: LocalServer, browser_a: Any) -> dict[str, Any]:
    context = browser_a.new_context()
    page: Page = context.new_page()
    page.goto(server.base + "/")
    try:
        return page.evaluate(RUN_VECTORS, VECTORS)
    finally:
        context.close()


def test_links(results: dict[str, Any]) -> None:
    assert results["linksValid"] == [
        [c["base_url"], c["room"], c["key_hex"], c["password"], True] for c in VECTORS["links"]["valid"]
    ]
    assert results["linksInvalid"] == [c["code"] for c in VECTORS["links"]["invalid"]]
    assert results["linksMake"] == [c["link"] for c in VECTORS["links"]["make"]]


def test_key_derivation(results: dict[str, Any]) -> None:
    for case, got in zip(VECTORS["auth_keys"], results["authKeys"], strict=True):
        assert got["auth"] == case["auth_key_hex"], case["name"]
        assert got["hkdf"] == case["auth_key_hex"]
        if case["password"] is not None:
            assert got["nfc"] == case["password_utf8_nfc_hex"]
            assert got["pbkdf2"] == case["pbkdf2_hex"]


def test_sdp_fingerprints(results: dict[str, Any]) -> None:
    for case, got in zip(VECTORS["sdp_fingerprints"]["valid"], results["sdpValid"], strict=True):
        assert got == [case["fingerprints"], case["canonical"], case["max_message_size"]], case["name"]
    assert results["sdpInvalid"] == [c["code"] for c in VECTORS["sdp_fingerprints"]["invalid"]]


def test_transcripts_and_macs(results: dict[str, Any]) -> None:
    for case, got in zip(VECTORS["auth"]["cases"], results["macs"], strict=True):
        for role in ("receiver", "sender"):
            expected = case[role]
            assert got[role] == [
                expected["transcript_hex"], expected["mac_hex"], expected["mac_b64url"], True, False
            ], (case["key"], role)
    assert results["authMessages"] == VECTORS["auth"]["messages"]


def test_frames(results: dict[str, Any]) -> None:
    assert results["framesValid"] == [
        [c["frame_hex"], c["file"], c["chunk"], c["offset"], c["payload_hex"]]
        for c in VECTORS["frames"]["valid"]
    ]
    assert results["framesInvalid"] == [c["code"] for c in VECTORS["frames"]["invalid"]]
    assert results["framesOversize"] == VECTORS["frames"]["oversize"]["code"]
    assert results["pieceLimits"] == [c["limit"] for c in VECTORS["frames"]["piece_payload_limit"]]


def test_digests(results: dict[str, Any]) -> None:
    for case, got in zip(VECTORS["digests"], results["digests"], strict=True):
        chunk_digests, file_digest, prefixes, assembled = got
        assert chunk_digests == case["chunk_digests_hex"], case["name"]
        assert file_digest == case["file_digest_hex"]
        assert prefixes == [p["prefix_hex"] for p in case["prefixes"]]
        # Chunks of 1 MiB also went through encodePiece, decodePiece and the ChunkBuffer.
        assert assembled == (case["file_digest_hex"] if case["chunk_size"] == 1048576 else None)


def test_file_names(results: dict[str, Any]) -> None:
    for case, (once, twice) in zip(VECTORS["sanitize_filename"], results["sanitize"], strict=True):
        assert once == case["output"], repr(case["input"])
        assert twice == case["output"]  # idempotent
    assert results["numbered"] == [c["output"] for c in VECTORS["numbered_filename"]]


def test_messages(results: dict[str, Any]) -> None:
    expected = []
    for text in VECTORS["messages"]["valid"]:
        obj = json.loads(text)
        obj.pop("future_field", None)
        expected.append(obj)
    assert results["messagesValid"] == expected
    assert results["messagesInvalid"] == [c["code"] for c in VECTORS["messages"]["invalid"]]
    assert results["tooLarge"] == [VECTORS["messages"]["too_large"]["code"], "ping"]


def test_page_loads_without_errors(server: LocalServer, pages: Pages, browser_a: Any) -> None:
    page = pages.open(browser_a)
    page.goto(server.base + "/")
    page.get_by_role("button", name="Create link").wait_for()
    assert not [line for line in pages.console if line.startswith(("error", "pageerror"))], pages.console
