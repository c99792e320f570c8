// @ts-check
/**
 * While a transfer runs: hold a screen wake lock (re-acquired when the tab becomes
 * visible again: browsers release it when hidden) and warn before the tab is closed.
 */

export class KeepAwake {
  constructor() {
    this.active = false;
    /** @type {WakeLockSentinel | null} */
    this.lock = null;
    this.onVisible = () => {
      if (this.active && document.visibilityState === "visible") void this.acquire();
    };
    this.onBeforeUnload = (/** @type {BeforeUnloadEvent} */ event) => {
      if (!this.active) return;
      event.preventDefault();
      event.returnValue = "";
    };
    document.addEventListener("visibilitychange", this.onVisible);
    window.addEventListener("beforeunload", this.onBeforeUnload);
  }

  async acquire() {
    if (this.lock && !this.lock.released) return;
    try {
      this.lock = (await navigator.wakeLock?.request("screen")) ?? null;
    } catch {
      this.lock = null; // not allowed now (hidden tab, battery saver): retried on visibilitychange
    }
  }

  /** @param {boolean} active */
  set(active) {
    if (active === this.active) return;
    this.active = active;
    if (active) void this.acquire();
    else {
      void this.lock?.release().catch(() => undefined);
      this.lock = null;
    }
  }
}
