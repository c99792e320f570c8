// @ts-check
/**
 * Every interval and deadline of the web client, in one place (the Python peer's twin is
 * peerbeam/peer/timing.py). Transfers run for hours; tests make that clock short instead of
 * the file large, by setting `globalThis.PEERBEAM_TIMING` in an init script before the page
 * loads (for example `{heartbeatMs: 500}`). Pages themselves never set it.
 *
 * The rule every timer follows: a deadline counts from the last sign of progress (a
 * message, a byte, an ack), never from the start of a run, a session or a chunk.
 */
import { DEFAULT_TIMING, sessionTiming } from "./protocol/machine.js";

/**
 * A session machine's default in milliseconds: the machines own these timers' values, the
 * page only counts in milliseconds.
 * @param {Exclude<keyof typeof DEFAULT_TIMING, "sender_wait">} name (the page has no sender wait)
 */
const machineDefaultMs = (name) => DEFAULT_TIMING[name] * 1000;

const DEFAULTS = Object.freeze({
  /** Signaling ping: API Gateway closes WebSockets idle for 10 minutes. */
  heartbeatMs: 4 * 60 * 1000,
  /** Longest wait between signaling reconnect attempts. */
  maxBackoffMs: 15_000,
  /** Data channel: ping after this much silence (protocol.md section 11). */
  pingAfterMs: machineDefaultMs("ping_after"),
  /** Data channel: silence after which the peer counts as gone. */
  deadAfterMs: machineDefaultMs("dead_after"),
  /** A new peer connection's data channel must open within this. */
  openTimeoutMs: machineDefaultMs("open_timeout"),
  /** Receiver: close if the sender has not closed this long after `complete`. */
  closeAfterCompleteMs: machineDefaultMs("close_after_complete"),
  /** Never connected: give up this long after the first attempt, saying why (no path, no relay). */
  connectTimeoutMs: machineDefaultMs("connect_timeout"),
  /** Receiver, connected before: give up this long after the sender's last sign of life. */
  giveUpAfterMs: machineDefaultMs("give_up_after"),
  /** Receiver: ask for a new connection again after this, doubling up to retryMaxMs. */
  retryMinMs: machineDefaultMs("retry_min"),
  retryMaxMs: machineDefaultMs("retry_max"),
  /** Receiver: how long Accept waits for the answer to "keep data permanently?" (Firefox asks
   * the user) before the files are streamed to the downloads instead. */
  persistAnswerMs: 60_000,
});

/** @typedef {typeof DEFAULTS} Timing */

/**
 * The defaults with valid overrides applied; an unknown name or a bad value is reported on
 * the console and ignored, never half-applied.
 * @param {unknown} overrides
 * @returns {Timing}
 */
export function resolveTiming(overrides) {
  /** @type {Record<string, number>} */
  const timing = { ...DEFAULTS };
  if (overrides && typeof overrides === "object") {
    for (const [name, value] of Object.entries(overrides)) {
      if (!(name in DEFAULTS)) console.warn(`PEERBEAM_TIMING: unknown timer ${name}`);
      else if (typeof value !== "number" || !(value > 0)) console.warn(`PEERBEAM_TIMING: ${name} must be a positive number`);
      else timing[name] = value;
    }
  }
  return /** @type {Timing} */ (Object.freeze(timing));
}

export const TIMING = resolveTiming(/** @type {any} */ (globalThis).PEERBEAM_TIMING);

/**
 * The session machines' deadlines (seconds) from the page's timers. The page has no
 * sender-wait deadline: while the sender is not in the room it tells its user so and keeps
 * waiting.
 * @param {Timing} [timing]
 */
export function machineTiming(timing = TIMING) {
  return sessionTiming({
    ping_after: timing.pingAfterMs / 1000,
    dead_after: timing.deadAfterMs / 1000,
    open_timeout: timing.openTimeoutMs / 1000,
    sender_wait: null,
    close_after_complete: timing.closeAfterCompleteMs / 1000,
    connect_timeout: timing.connectTimeoutMs / 1000,
    give_up_after: timing.giveUpAfterMs / 1000,
    retry_min: timing.retryMinMs / 1000,
    retry_max: timing.retryMaxMs / 1000,
  });
}
