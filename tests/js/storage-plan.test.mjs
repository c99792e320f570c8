// The storage plan (webclient/js/storage/plan.js) and how the page says it before Accept
// (ui/receiver-text.js planText): one case per rule of docs/webclient.md, "Where the files go".
import assert from "node:assert/strict";
import { test } from "node:test";

import { planStorage } from "../../webclient/js/storage/plan.js";
import { planText } from "../../webclient/js/ui/receiver-text.js";

const GB = 1e9;
const caps = (more = {}) => ({
  picker: false, opfs: true, stream: true, free: 10 * GB, persisted: false, canPersist: true, askedPersist: false, ...more,
});
const fresh = (size) => ({ size, held: 0, kind: null });

test("Chromium: the picked file, staged in the private file system when it fits", () => {
  const staged = planStorage([fresh(5 * GB)], caps({ picker: true }));
  assert.deepEqual([staged.kind, staged.staged, staged.files, staged.needed, staged.resumable], ["picker", true, ["staged"], 5 * GB, true]);
  const direct = planStorage([fresh(50 * GB)], caps({ picker: true }));
  assert.deepEqual([direct.kind, direct.staged, direct.files, direct.needed], ["picker", false, ["picker"], 0]);
  assert.match(planText(staged, 1).text, /received into this browser's storage first .*then copied/);
  assert.match(planText(direct, 1).text, /written there as they arrive/);
});

test("no picker: the private file system when it fits, asking for persistent storage when not", () => {
  const fits = planStorage([fresh(3 * GB), fresh(2 * GB)], caps());
  assert.deepEqual([fits.kind, fits.askPersist, fits.files], ["opfs", false, ["opfs", "opfs"]]);
  const ask = planStorage([fresh(12 * GB)], caps());
  assert.deepEqual([ask.kind, ask.askPersist, ask.needed], ["opfs", true, 12 * GB]);
  assert.match(planText(ask, 1).text, /^This file needs 12.0 GB, but this browser lets this site store only 10.0 GB unless you allow it/);
});

test("asked, or already persistent, and still too big: the streamed download; without it, nothing", () => {
  for (const more of [{ askedPersist: true }, { persisted: true }, { canPersist: false }]) {
    const stream = planStorage([fresh(12 * GB)], caps(more));
    assert.deepEqual([stream.kind, stream.reason, stream.resumable, stream.files], ["stream", "too_big", false, ["stream"]]);
    assert.match(planText(stream, 1).text, /downloaded by the browser as it arrives .*cannot resume after a reload/);
    const none = planStorage([fresh(12 * GB)], caps({ ...more, stream: false }));
    assert.deepEqual([none.kind, none.reason], ["none", "too_big"]);
    assert.equal(planText(none, 1).blocked, true);
    assert.doesNotMatch(planText(none, 1).text, /cannot .*cannot/i);
  }
});

test("a private window: no private file system; streamed if Service Workers work, else told", () => {
  const stream = planStorage([fresh(1000)], caps({ opfs: false }));
  assert.deepEqual([stream.kind, stream.reason], ["stream", "no_storage"]);
  assert.match(planText(stream, 1).text, /this window does not let the site store files/);
  const none = planStorage([fresh(1000)], caps({ opfs: false, stream: false }));
  assert.deepEqual([none.kind, none.reason], ["none", "no_storage"]);
  const said = planText(none, 2);
  assert.equal(said.blocked, true);
  assert.match(said.text, /^This window cannot save the files: .*Open the link in a normal window\.$/);
});

test("resume: held bytes are not needed again, and held files continue where they are", () => {
  const resumed = planStorage([{ size: 12 * GB, held: 4 * GB, kind: "opfs" }], caps());
  assert.deepEqual([resumed.kind, resumed.needed, resumed.files], ["opfs", 8 * GB, ["opfs"]]);
  const mixed = planStorage([{ size: 2 * GB, held: GB, kind: "staged" }, fresh(GB)], caps({ picker: true }));
  assert.deepEqual([mixed.kind, mixed.files, mixed.needed], ["picker", ["staged", "staged"], 2 * GB]);
  // A private copy cannot continue where there is no private file system.
  assert.equal(planStorage([{ size: GB, held: 1, kind: "opfs" }], caps({ opfs: false })).kind, "none");
  // Unknown quota: the private file system is tried (a quota error then says so).
  assert.equal(planStorage([fresh(GB)], caps({ free: null })).kind, "opfs");
});
