// js/lanes.js: how many connections the pages use, and whether they open them at once.
import assert from "node:assert/strict";
import { test } from "node:test";

import { DEFAULT_LANES, resolveLanes } from "../../webclient/js/lanes.js";
import { laneIceServers } from "../../webclient/js/rtc.js";

test("by default the pages open DEFAULT_LANES connections at once", () => {
  assert.deepEqual(resolveLanes(undefined), { lanes: DEFAULT_LANES, fixed: true });
  assert.equal(DEFAULT_LANES, 8); // the protocol's most: docs/webclient.md "Several connections"
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

test("extra connections of a direct transfer gather no relay candidates", () => {
  const servers = [
    { urls: ["stun:stun.example.org:3478", "turn:relay.example.org:3478?transport=udp"], username: "u", credential: "c" },
    { urls: "turns:relay.example.org:443?transport=tcp", username: "u", credential: "c" },
    { urls: "STUNS:stun.example.net:5349" },
  ];
  const stunOnly = [{ urls: ["stun:stun.example.org:3478"] }, { urls: ["STUNS:stun.example.net:5349"] }];
  assert.deepEqual(laneIceServers(servers, "local"), stunOnly);
  assert.deepEqual(laneIceServers(servers, "internet"), stunOnly);
  // Relayed, or the first connection's path not known (yet): every server, relays included.
  assert.equal(laneIceServers(servers, "relay"), servers);
  assert.equal(laneIceServers(servers, null), servers);
  assert.deepEqual(laneIceServers([], "local"), []);
});
