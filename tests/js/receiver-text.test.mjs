// The receiving page's words (webclient/js/ui/receiver-text.js): every way a receive can
// end has its own sentence, chosen by code; a detail is quoted, never parsed.
import assert from "node:assert/strict";
import { test } from "node:test";

import * as errors from "../../webclient/js/protocol/errors.js";
import { CONNECTION_REPLACED, ROOM_FULL, ROOM_LOCKED, ROOM_NOT_FOUND } from "../../webclient/js/signaling.js";
import { describe, outcomeText, statusText } from "../../webclient/js/ui/receiver-text.js";

const {
  DECLINED, DONE, GAVE_UP, NO_PATH, PASSWORD_DOWNGRADE, RELAY_FAILED, ROOM_CLOSED, SENDER_GONE, WRONG_LINK,
  WRONG_PASSWORD,
} = errors;
/** Every code the receiver machine's `end` can carry, and the refusals the page explains. */
const END_CODES = [
  ...errors.WIRE_CODES, DONE, DECLINED, WRONG_PASSWORD, WRONG_LINK, PASSWORD_DOWNGRADE, SENDER_GONE, ROOM_CLOSED,
  NO_PATH, RELAY_FAILED, GAVE_UP, ROOM_NOT_FOUND, ROOM_LOCKED, ROOM_FULL, CONNECTION_REPLACED,
];
const failed = (code, detail = "", remote = false) => ({ outcome: "failed", code, detail, remote });
const GENERIC = outcomeText(failed("no_such_code"));

test("every end code has its own sentence; unknown codes read like internal", () => {
  assert.equal(GENERIC, outcomeText(failed(errors.INTERNAL)));
  const seen = new Map();
  for (const code of END_CODES) {
    const sentence = outcomeText(failed(code));
    if (code !== errors.INTERNAL) assert.notEqual(sentence, GENERIC, code);
    if (code !== errors.BAD_MANIFEST) { // reads like bad_frame: the sender sent something unusable
      assert.ok(!seen.has(sentence), `${code} and ${seen.get(sentence)} say the same`);
      seen.set(sentence, code);
    }
  }
});

test("disk full and cancelled say whose side it was", () => {
  for (const code of [errors.DISK_FULL, errors.STORAGE_ERROR, errors.CANCELLED]) {
    assert.notEqual(outcomeText(failed(code, "", true)), outcomeText(failed(code, "", false)), code);
  }
  assert.match(outcomeText(failed(errors.DISK_FULL, "these files need 5 GB but this browser can store only 1 GB more")),
    /not enough space to save these files: these files need 5 GB/);
  assert.match(outcomeText(failed(errors.DISK_FULL, "", true)), /other side/);
});

test("a tampered connection and a password downgrade are told as tampering", () => {
  assert.match(outcomeText(failed(errors.AUTH_FAILED)), /tampered with/);
  assert.match(outcomeText(failed(PASSWORD_DOWNGRADE)), /tampered with.*did not ask for one/);
});

test("statuses in words: tries left, held bytes, reconnects", () => {
  const at = (state, status = {}, total = 100) => statusText({ state, status, total, choosing: false, outcome: null });
  assert.equal(at("password", { remaining: 4 }), "Wrong password (4 tries left).");
  assert.equal(at("password", { remaining: 1 }), "Wrong password (1 try left).");
  assert.match(at("password", { remaining: null }), /protected by a password/);
  assert.match(at("offer", { held: 30 }), /Accept to resume/);
  assert.match(at("offer", { held: 100 }), /already received these files/);
  assert.equal(at("offer", { held: 0 }), "");
  assert.match(at("receiving", { reconnected: true }), /Reconnected/);
  assert.match(at("reconnecting"), /reconnecting/);
});

test("an unusable link gets its own title; a declined offer is not an error of the page", () => {
  const snapshot = (outcome) => ({ state: "stopped", status: {}, total: 0, choosing: false, outcome });
  assert.equal(describe(snapshot(failed(ROOM_NOT_FOUND))).title, "This link cannot be used");
  assert.notEqual(describe(snapshot(failed(errors.INTEGRITY))).title, "This link cannot be used");
  const done = describe({ state: "done", status: {}, total: 0, choosing: false, outcome: { outcome: "done", code: DONE, detail: "", remote: false } });
  assert.deepEqual([done.title, done.alert], ["Done", false]);
});
