"""The JavaScript parser against the Python one on hostile input: the seeded corpus of
tests/protocol_fuzz.py (almost-valid messages, mutated) parsed in Chromium by the web
client's own module must give, case for case, the outcome the Python parser gives — the
same refusal code, or the same message re-encoded."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page

from tests.fixtures.servers import LocalServer
from tests.protocol_fuzz import mutated_messages, outcome

pytestmark = pytest.mark.browser

CASES = mutated_messages(seed=1, count=600)

# Each text through parseMessage, then toJson; {"code"} when it is refused.
REPLAY = """
async (texts) => {
  const messages = await import("/js/protocol/messages.js");
  return texts.map((text) => {
    try {
      return { json: messages.toJson(messages.parseMessage(text)) };
    } catch (error) {
      return error.code ? { code: error.code } : { crash: String(error) };
    }
  });
}
"""


def test_javascript_parser_agrees_with_python_on_hostile_input(server: LocalServer, browser_a: Any) -> None:
    context = browser_a.new_context()
    page: Page = context.new_page()
    try:
        page.goto(server.base + "/")
        results = page.evaluate(REPLAY, CASES)
    finally:
        context.close()
    differences = [(text, expected, got) for text, got in zip(CASES, results, strict=True)
                   if (expected := outcome(text)) != got]
    assert not differences, f"{len(differences)} of {len(CASES)} differ, e.g. {differences[:5]}"
