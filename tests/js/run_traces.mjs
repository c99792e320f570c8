// The JavaScript session machines (webclient/js/protocol/*-machine.js) against
// docs/protocol-traces.json: a fresh machine per trace, every event fed, exactly the
// listed actions expected, in order. Converts like tests/traces/codec.py: messages to
// their wire JSON through the web client's own encoder, nonces and MACs base64url,
// digests hex, texts for humans (an error message's text, `detail`) left out.
//
// Prints {"traces": [{name, ok, step?, event?, expected?, got?, error?}]} (the first
// differing step of each failing trace) and exits 1 when any failed.
// tests/test_protocol_traces_js.py runs it in `make test`.
import { readFileSync } from "node:fs";

import { b64urlDecode, b64urlEncode, hexDecode, hexEncode } from "../../webclient/js/protocol/codec.js";
import { sessionTiming } from "../../webclient/js/protocol/machine.js";
import { toJson } from "../../webclient/js/protocol/messages.js";
import { ReceiverMachine } from "../../webclient/js/protocol/receiver-machine.js";
import { SenderMachine } from "../../webclient/js/protocol/sender-machine.js";

const TRACES = new URL("../../docs/protocol-traces.json", import.meta.url);
const B64_FIELDS = new Set(["nonce", "mac", "sender_nonce", "receiver_nonce"]);
const HEX_FIELDS = new Set(["digest"]);

function machine(trace) {
  const config = trace.config;
  const timing = sessionTiming(config.timing);
  if (trace.machine === "sender") {
    const files = config.files.map((f) => ({ name: f.name, size: f.size, type: f.type ?? "", mtime: null }));
    return new SenderMachine({
      transfer: config.transfer, files, password: config.password, iterations: config.iterations,
      oneTime: config.one_time ?? false, timing, lanes: config.lanes ?? null, fixedLanes: config.fixed_lanes ?? false,
    });
  }
  return new ReceiverMachine({
    expectPassword: config.expect_password ?? null, password: config.password ?? null,
    autoAccept: config.auto_accept ?? false, timing, lanes: config.lanes ?? null, accepted: config.accepted ?? null,
  });
}

/** A trace event as the machine takes it. */
function eventIn(obj) {
  const event = {};
  for (const [key, value] of Object.entries(obj)) {
    if (key === "message") event.text = JSON.stringify(value);
    else if (key === "records") {
      event.records = value.map((o) => ({
        id: o.id, transfer: o.transfer, index: o.index, name: o.name, size: o.size, chunk_size: o.chunk_size,
        complete: Boolean(o.complete), digests: (o.digests ?? []).map((d) => hexDecode(d, 32)),
      }));
    } else if (B64_FIELDS.has(key)) event[key] = b64urlDecode(value);
    else if (HEX_FIELDS.has(key)) event[key] = hexDecode(value, 32);
    else event[key] = value;
  }
  return event;
}

/** A machine action as the trace file writes it. */
function actionOut(action) {
  const out = {};
  for (const [key, value] of Object.entries(action)) {
    if (key !== "detail") out[key] = jsonValue(key, value);
  }
  if (out.message && typeof out.message === "object" && out.message.t === "error") {
    const { message: _text, ...rest } = out.message;
    out.message = rest;
  }
  return out;
}

function jsonValue(key, value) {
  if (value instanceof Uint8Array) return B64_FIELDS.has(key) ? b64urlEncode(value) : hexEncode(value);
  if (Array.isArray(value)) return value.map((item) => jsonValue(key, item));
  if (value && typeof value === "object" && typeof value.t === "string") return toJson(value);
  return value;
}

/** JSON with sorted keys; `undefined` shows (and so never equals a missing field). */
function canonical(value) {
  if (value === undefined) return '"<undefined>"';
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(",")}}`;
}

function run(trace) {
  let subject;
  try {
    subject = machine(trace);
  } catch (error) {
    return { name: trace.name, ok: false, step: 0, event: null, expected: null, error: String(error?.stack ?? error) };
  }
  for (const [index, step] of trace.steps.entries()) {
    let got;
    try {
      got = subject.handle(eventIn(step.event)).map(actionOut);
    } catch (error) {
      return { name: trace.name, ok: false, step: index + 1, event: step.event, expected: step.actions, error: String(error?.stack ?? error) };
    }
    if (canonical(got) !== canonical(step.actions)) {
      return { name: trace.name, ok: false, step: index + 1, event: step.event, expected: step.actions, got: JSON.parse(canonical(got)) };
    }
  }
  return { name: trace.name, ok: true };
}

const results = JSON.parse(readFileSync(TRACES, "utf-8")).traces.map(run);
process.stdout.write(JSON.stringify({ traces: results }, null, 1) + "\n");
process.exitCode = results.every((r) => r.ok) ? 0 : 1;
