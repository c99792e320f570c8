// @ts-check
/**
 * What the sender and receiver session machines share: events in, actions out, time
 * (protocol.md section 14). The Python twin is peerbeam/transfer/machine.py.
 *
 * A session machine holds every rule of its role and does no I/O: a driver (the page)
 * feeds it events — a message arrived, a chunk was read, the user clicked Accept, time
 * passed — and carries out the actions it returns — send this message, read that chunk,
 * ask the user, close this connection, wake me at T. docs/protocol-traces.json holds
 * scripted event sequences with the exact actions both implementations must produce.
 *
 * Events and actions are plain objects with a `type`, their fields named as in
 * protocol.md. Every event may carry `at`: the driver's monotonic clock in seconds.
 * Machines never read a clock: deadlines are computed from `at` (always from the last
 * sign of progress), and a machine asks to be woken with `{type: "wake", at: T}`; the
 * driver then sends `{type: "tick", at: ...}`. Only the latest wake counts.
 */

/**
 * @typedef {{type: string, at?: number, [field: string]: any}} MachineEvent
 * @typedef {{type: string, [field: string]: any}} Action
 * @typedef {{ping_after: number, dead_after: number, open_timeout: number,
 *            sender_wait: number | null, close_after_complete: number, connect_timeout: number,
 *            give_up_after: number, retry_min: number, retry_max: number, grow_interval: number,
 *            grow_gain: number, grow_chunks: number}} SessionTiming
 *   The deadlines of a session in seconds (protocol.md sections 11 and 14): ping a peer
 *   after `ping_after` of silence; a peer silent `dead_after` since its last message is
 *   gone; a new connection's channel must open within `open_timeout`; a receiver waits
 *   `sender_wait` for an absent sender it never connected to (null: for ever, the page,
 *   which says so to its user); a receiver closes a finished connection the sender has not
 *   closed after `close_after_complete`; never connected, give up `connect_timeout` after
 *   the first attempt (no path, no relay); connected before, give up `give_up_after` after
 *   the last sign of progress; ask for a new connection again after `retry_min`, doubling
 *   up to `retry_max`; a v1.1 sender decides every `grow_interval` whether another lane
 *   helps: when the last one raised the throughput by `grow_gain` (a ratio) or more (0: did
 *   not make it slower), judging an interval only once it holds `grow_chunks` acknowledged
 *   chunks (it is extended until it does: acks come a MiB at a time, and on a slow, lossy
 *   link a rate from one or two of them is noise).
 */

/** @type {Readonly<SessionTiming>} */
export const DEFAULT_TIMING = Object.freeze({
  ping_after: 15,
  dead_after: 45,
  open_timeout: 30,
  sender_wait: 60,
  close_after_complete: 5,
  connect_timeout: 50,
  give_up_after: 600,
  retry_min: 1,
  retry_max: 30,
  grow_interval: 5,
  grow_gain: 0, // added unless the last lane made it slower (protocol.md 7.4)
  grow_chunks: 8,
});

/**
 * The defaults with `overrides` applied; an unknown name is an error.
 * @param {Partial<SessionTiming> | null | undefined} overrides
 * @returns {Readonly<SessionTiming>}
 */
export function sessionTiming(overrides) {
  for (const name of Object.keys(overrides ?? {})) {
    if (!Object.hasOwn(DEFAULT_TIMING, name)) throw new Error(`unknown session timer ${name}`);
  }
  return Object.freeze({ ...DEFAULT_TIMING, ...overrides });
}

/** Event dispatch, the action list, and the one wake-up timer. */
export class Machine {
  /** @param {Readonly<SessionTiming>} timing */
  constructor(timing) {
    this.timing = timing;
    this.now = 0;
    /** @type {number | null} */
    this.wakeAt = null;
    /** @type {Action[]} */
    this.out = [];
    /** @type {Record<string, (event: MachineEvent) => void>} */
    this.handlers = {};
  }

  /**
   * Feed one event; returns the actions to carry out, in order.
   * @param {MachineEvent} event
   * @returns {Action[]}
   */
  handle(event) {
    if (event.at !== undefined && event.at !== null) this.now = Math.max(this.now, Number(event.at));
    this.out = [];
    if (event.type === "tick") {
      this.wakeAt = null; // that timer fired
      this.onTick();
    } else {
      const handler = Object.hasOwn(this.handlers, event.type) ? this.handlers[event.type] : undefined;
      if (!handler) throw new Error(`${this.constructor.name}: unknown event ${JSON.stringify(event.type)}`);
      handler(event);
    }
    this.schedule();
    const out = this.out;
    this.out = [];
    return out;
  }

  /**
   * @param {string} type
   * @param {Record<string, any>} [fields]
   */
  emit(type, fields = {}) {
    this.out.push({ type, ...fields });
  }

  /** Deadlines that are due now. */
  onTick() {}

  /**
   * Every pending deadline (absolute, in the driver's clock).
   * @returns {number[]}
   */
  deadlines() {
    return [];
  }

  schedule() {
    const deadlines = this.deadlines();
    if (!deadlines.length) return;
    const due = Math.min(...deadlines);
    if (this.wakeAt === null || due < this.wakeAt) {
      this.wakeAt = due;
      this.emit("wake", { at: due });
    }
  }
}

/**
 * protocol.md section 11 for one connection: ping after `ping_after` of silence, the peer
 * is gone after `dead_after` since its last message. Silence counts from the last message
 * received, whatever the session is doing.
 */
export class Keepalive {
  /**
   * @param {Readonly<SessionTiming>} timing
   * @param {number} now
   */
  constructor(timing, now) {
    this.timing = timing;
    this.lastReceived = now;
    this.lastPing = now;
  }

  /** @param {number} now */
  received(now) {
    this.lastReceived = now;
  }

  deadline() {
    const quietSince = Math.max(this.lastReceived, this.lastPing);
    return Math.min(quietSince + this.timing.ping_after, this.lastReceived + this.timing.dead_after);
  }

  /**
   * "dead", "ping" (and remember it was sent), or null.
   * @param {number} now
   * @returns {"dead" | "ping" | null}
   */
  due(now) {
    if (now >= this.lastReceived + this.timing.dead_after) return "dead";
    if (now >= Math.max(this.lastReceived, this.lastPing) + this.timing.ping_after) {
      this.lastPing = now;
      return "ping";
    }
    return null;
  }
}

/** @typedef {[number, number]} Position (file, chunk) */

/**
 * @param {Position | null} a
 * @param {Position | null} b
 */
export const samePosition = (a, b) => a !== null && b !== null && a[0] === b[0] && a[1] === b[1];

/**
 * (file, chunk) as a key of a Set or Map.
 * @param {number} file
 * @param {number} chunk
 */
export const positionKey = (file, chunk) => `${file}/${chunk}`;
