// @ts-check
/**
 * Runs a session machine (protocol.md section 14) for a page driver: every event is
 * stamped with the page's monotonic clock, the actions it returns are carried out in
 * order, and the machine's wake-up becomes one timer that feeds it a `tick`.
 *
 * Events that arise while actions are being carried out (a callback that fires at once)
 * wait until the current event's actions are done, so actions are never interleaved.
 */

/**
 * @typedef {import("./protocol/machine.js").Machine} Machine
 * @typedef {import("./protocol/machine.js").MachineEvent} MachineEvent
 * @typedef {import("./protocol/machine.js").Action} Action
 */

/** The driver's clock for the machines: seconds, monotonic. */
export const clock = () => performance.now() / 1000;

export class MachineRunner {
  /**
   * @param {Machine} machine
   * @param {(action: Action) => void} carryOut every action but `wake`
   */
  constructor(machine, carryOut) {
    this.machine = machine;
    this.carryOut = carryOut;
    /** @type {MachineEvent[]} */
    this.queue = [];
    this.running = false;
    this.stopped = false;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.timer = undefined;
  }

  /** @param {MachineEvent} event */
  feed(event) {
    if (this.stopped) return;
    this.queue.push(event);
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue.length && !this.stopped) {
        const next = /** @type {MachineEvent} */ (this.queue.shift());
        for (const action of this.machine.handle({ ...next, at: clock() })) {
          if (action.type === "wake") this.wake(action.at);
          else this.carryOut(action);
        }
      }
    } finally {
      this.running = false;
    }
  }

  /**
   * Only the latest wake counts; a tick that finds nothing due is harmless.
   * @param {number} at
   */
  wake(at) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.feed({ type: "tick" }), Math.max(0, (at - clock()) * 1000));
  }

  /** Feed nothing more (the page is done with this machine). */
  stop() {
    this.stopped = true;
    this.queue = [];
    clearTimeout(this.timer);
  }
}
