// The web client's synchronous SHA-256 (webclient/js/protocol/sha256.js) against the NIST
// CAVP byte-oriented vectors and the FIPS 180 examples in sha256-vectors.json, whole and
// fed in pieces at every kind of block boundary; and against Node's own SHA-256 on random
// inputs split at random places. Run by tests/test_js_modules.py (`node --test`).
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { Sha256, sha256 } from "../../webclient/js/protocol/sha256.js";

const VECTORS = JSON.parse(readFileSync(new URL("./sha256-vectors.json", import.meta.url), "utf-8"));
const hex = (/** @type {Uint8Array} */ bytes) => Buffer.from(bytes).toString("hex");
const fromHex = (/** @type {string} */ text) => new Uint8Array(Buffer.from(text, "hex"));

test("NIST CAVP SHA256ShortMsg: every vector", () => {
  assert.equal(VECTORS.short.length, 65);
  for (const v of VECTORS.short) {
    const message = fromHex(v.msg);
    assert.equal(message.length * 8, v.len);
    assert.equal(hex(sha256(message)), v.md, `Len = ${v.len}`);
  }
});

test("NIST CAVP SHA256LongMsg", () => {
  for (const v of VECTORS.long) assert.equal(hex(sha256(fromHex(v.msg))), v.md, `Len = ${v.len}`);
});

test("FIPS 180 examples, the million 'a' in uneven updates", () => {
  for (const e of VECTORS.examples) {
    const hash = new Sha256();
    const unit = new TextEncoder().encode(e.text);
    if (e.repeat === 1) hash.update(unit);
    else {
      const block = new TextEncoder().encode(e.text.repeat(1000));
      for (let sent = 0; sent < e.repeat; sent += 1000) hash.update(block.subarray(0, 7)).update(block.subarray(7));
    }
    assert.equal(hex(hash.digest()), e.md, e.name);
  }
});

test("incremental updates split at every position give the one-shot digest", () => {
  for (const v of [...VECTORS.short.slice(-8), ...VECTORS.long]) {
    const message = fromHex(v.msg);
    for (let cut = 0; cut <= message.length; cut++) {
      const hash = new Sha256().update(message.subarray(0, cut)).update(message.subarray(cut));
      assert.equal(hex(hash.digest()), v.md, `Len = ${v.len}, cut at ${cut}`);
    }
  }
});

test("random inputs in random pieces agree with node:crypto", () => {
  for (let round = 0; round < 200; round++) {
    const data = new Uint8Array(randomBytes(Math.floor(Math.random() * 5000)));
    const hash = new Sha256();
    for (let at = 0; at < data.length;) {
      const step = Math.floor(Math.random() * 200);
      hash.update(data.subarray(at, at + step));
      at += step;
    }
    assert.equal(hex(hash.digest()), createHash("sha256").update(data).digest("hex"));
  }
});

test("a finished hash refuses more input", () => {
  const hash = new Sha256();
  hash.digest();
  assert.throws(() => hash.update(new Uint8Array(1)));
  assert.throws(() => hash.digest());
});
