// js/lanes.js: how many connections the pages use, and whether they open them at once.
import assert from "node:assert/strict";
import { test } from "node:test";

import { DEFAULT_LANES, resolveLanes } from "../../webclient/js/lanes.js";

test("by default the pages open DEFAULT_LANES connections at once", () => {
  assert.deepEqual(resolveLanes(undefined), { lanes: DEFAULT_LANES, fixed: true });
  assert.equal(DEFAULT_LANES, 4);
});

test("an override of N uses exactly N; 0 makes a v1 page", () => {
  assert.deepEqual(resolveLanes(3), { lanes: 3, fixed: true });
  assert.deepEqual(resolveLanes(0), { lanes: null, fixed: false });
});

test("a bad override is ignored for the default", () => {
  const warn = console.warn;
  console.warn = () => {};
  try {
    assert.deepEqual(resolveLanes(99), { lanes: DEFAULT_LANES, fixed: true });
    assert.deepEqual(resolveLanes("2"), { lanes: DEFAULT_LANES, fixed: true });
  } finally {
    console.warn = warn;
  }
});
