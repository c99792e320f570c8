"""The receiving page's storage with chunks written in any order (protocol v1.1 lanes,
protocol.md 8.7): what a file holds for resume is the run of written chunks from chunk 0,
and a picked file's checkpoint commits only that run. Driven through the module itself in
Chromium (a reload is a new ReceiveStorage reading the same IndexedDB), so each case is
exact instead of depending on how a real transfer interleaves its lanes."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.servers import LocalServer

from .conftest import Pages

pytestmark = pytest.mark.browser

# Writes `order` (chunk numbers) of one 70-chunk file into a fresh ReceiveStorage; after
# each of `probes` (a count of writes done), the chunks a reloaded page would hold.
HELD_AFTER = """
async ({ order, probes, staging }) => {
  const { ReceiveStorage } = await import("/js/storage/receive-storage.js");
  const MiB = 1024 * 1024;
  const manifest = {
    t: "manifest", transfer: `held${Math.random().toString(36).slice(2, 12)}`, chunkSize: MiB,
    files: [{ name: "held.bin", size: 70 * MiB, type: "", mtime: null }],
  };
  const storage = new ReceiveStorage({ staging });
  await storage.loadRecords(manifest);
  if (!(await storage.prepare(manifest, [null]))) throw new Error("not prepared");
  const held = [];
  for (const [done, chunk] of order.entries()) {
    await storage.write(0, chunk, chunk * MiB, new Uint8Array(MiB).fill(chunk),
                        new Uint8Array(32).fill(chunk + 1));
    if (probes.includes(done + 1)) {
      await storage.flush(); // what a page going away saves; its open files are not closed
      // Earlier cases' files have the same name and size: read this transfer's own record.
      const records = await new ReceiveStorage().loadRecords(manifest);
      held.push(records.find((r) => r.transfer === manifest.transfer).digests.length);
    }
  }
  return held;
}
"""

IN_ORDER = list(range(70))


def held_after(page: Any, server: LocalServer, order: list[int], probes: list[int],
               staging: bool = True) -> list[int]:
    page.goto(server.base + "/")
    return page.evaluate(HELD_AFTER, {"order": order, "probes": probes, "staging": staging})


def test_private_file_system_holds_the_run_from_zero(
    server: LocalServer, pages: Pages, browser_b: Any
) -> None:
    page = pages.open(browser_b, picker=False)
    # 0, then 2 and 3 past a gap (not held), then 1 fills it (all four held), then 5.
    assert held_after(page, server, [0, 2, 3, 1, 5], probes=[3, 4, 5]) == [1, 4, 4]


def test_picked_file_commits_only_the_run(server: LocalServer, pages: Pages, browser_b: Any) -> None:
    """A writable stream keeps nothing until it is closed (a checkpoint: 64 MiB written past
    the last one). Chunks 1–64 first: the checkpoint comes with chunk 63 while chunk 0 is
    missing, so it commits no run at all, and chunk 0 written afterwards is not committed
    (nor is anything after it). In order, the same checkpoint commits chunks 0–63. (The
    path of picked files too large to stage in the private file system.)"""
    page = pages.open(browser_b)
    direct = {"staging": False}
    assert held_after(page, server, [*range(1, 65), 0], probes=[65], **direct) == [0]
    assert held_after(page, server, IN_ORDER[:66], probes=[63, 64, 66], **direct) == [0, 64, 64]


def test_staged_picked_file_holds_every_written_chunk(
    server: LocalServer, pages: Pages, browser_b: Any
) -> None:
    """A picked file staged in the private file system holds what is written, as the
    private file system does: no checkpoint to wait for."""
    page = pages.open(browser_b)
    assert held_after(page, server, [*range(1, 65), 0], probes=[64, 65]) == [0, 65]
