// js/lanes.js: how many connections the pages use, and whether they open them at once.
import assert from "node:assert/strict";
import { test } from "node:test";

import { DEFAULT_LANES, lanesForOffer, resolveLanes } from "../../webclient/js/lanes.js";
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

const SERVERS = [
  { urls: ["stun:stun.example.org:3478", "turn:relay.example.org:3478?transport=udp"], username: "u", credential: "c" },
  { urls: ["turn:relay.example.org:3478?transport=tcp", "turns:relay.example.org:443?transport=tcp"], username: "u", credential: "c" },
  { urls: "STUNS:stun.example.net:5349" },
];
const STUN_ONLY = [{ urls: ["stun:stun.example.org:3478"] }, { urls: ["STUNS:stun.example.net:5349"] }];

test("extra connections of a direct transfer gather no relay candidates", () => {
  assert.deepEqual(laneIceServers(SERVERS, { kind: "local", relayUrl: null }), STUN_ONLY);
  assert.deepEqual(laneIceServers(SERVERS, { kind: "internet", relayUrl: null }), STUN_ONLY);
  assert.deepEqual(laneIceServers([], { kind: "local", relayUrl: null }), []);
});

test("extra connections of a relayed transfer use the first one's TURN URL only", () => {
  const url = "turns:relay.example.org:443?transport=tcp";
  assert.deepEqual(laneIceServers(SERVERS, { kind: "relay", relayUrl: url }), [
    { urls: ["stun:stun.example.org:3478"] },
    { urls: [url], username: "u", credential: "c" },
    { urls: ["STUNS:stun.example.net:5349"] },
  ]);
});

test("otherwise an extra connection gets every server", () => {
  // The peer's relay (ours not named), or the first connection's path not known (yet).
  assert.equal(laneIceServers(SERVERS, { kind: "relay", relayUrl: null }), SERVERS);
  assert.equal(laneIceServers(SERVERS, null), SERVERS);
});

test("by default a sending page opens one connection per 8 chunks of the offer, 1 to 8", () => {
  const MIB = 1024 * 1024;
  assert.deepEqual(lanesForOffer(undefined, 0), { lanes: 1, fixed: true });
  assert.deepEqual(lanesForOffer(undefined, 2 * MIB), { lanes: 1, fixed: true });
  assert.deepEqual(lanesForOffer(undefined, 8 * MIB + 1), { lanes: 2, fixed: true });
  assert.deepEqual(lanesForOffer(undefined, 64 * MIB), { lanes: 8, fixed: true });
  assert.deepEqual(lanesForOffer(undefined, 100 * 1024 * MIB), { lanes: DEFAULT_LANES, fixed: true });
  // An override is exact, whatever the size; 0 is a v1 page.
  assert.deepEqual(lanesForOffer(3, MIB), { lanes: 3, fixed: true });
  assert.deepEqual(lanesForOffer(0, 64 * MIB), { lanes: null, fixed: false });
});
