// @ts-check
/**
 * What this browser can do with received files, found by trying (docs/webclient.md,
 * "Where the files go"): a function that exists may still refuse — Firefox's private
 * windows have `navigator.storage.getDirectory` and throw SecurityError from it.
 * storage/plan.js decides from what this returns.
 */
import { canStreamDownload } from "./stream-sink.js";

/** A probe that has not answered within this counts as "no" (the page must offer Accept). */
const PROBE_MS = 10_000;

/**
 * `promise`'s value, or `fallback` after PROBE_MS or on an error.
 * @template T
 * @param {Promise<T>} promise
 * @param {T} fallback
 * @returns {Promise<T>}
 */
function answered(promise, fallback) {
  return Promise.race([
    promise.catch(() => fallback), new Promise((resolve) => setTimeout(() => resolve(fallback), PROBE_MS)),
  ]);
}

/** @type {Promise<boolean> | null} */
let opfsWorks = null;

/** Whether the origin private file system opens here (probed once per page). */
export function canUseOpfs() {
  opfsWorks ??= (async () => {
    if (typeof navigator.storage?.getDirectory !== "function" || typeof Worker !== "function") return false;
    try {
      await navigator.storage.getDirectory();
      return true;
    } catch {
      return false; // SecurityError in a Firefox private window
    }
  })();
  return opfsWorks;
}

export function canPickFile() {
  return typeof (/** @type {any} */ (globalThis).showSaveFilePicker) === "function";
}

export function canPickFolder() {
  return typeof (/** @type {any} */ (globalThis).showDirectoryPicker) === "function";
}

/** The site's quota left (quota − usage), or null when the browser does not say. */
export async function freeQuota() {
  try {
    const estimate = await navigator.storage?.estimate?.();
    return estimate?.quota ? estimate.quota - (estimate.usage ?? 0) : null;
  } catch {
    return null;
  }
}

/**
 * Everything the plan needs, for `count` files.
 * @param {number} count
 * @param {boolean} askedPersist
 * @returns {Promise<import("./plan.js").Capabilities>}
 */
export async function capabilities(count, askedPersist = false) {
  // Registering the download worker can take long on a loaded machine: it is not waited for
  // beyond PROBE_MS (then no stream is planned; one registered later still works as hand-over).
  const [opfs, stream, free, persisted] = await Promise.all([
    answered(canUseOpfs(), false), answered(canStreamDownload(), false), answered(freeQuota(), null),
    answered(navigator.storage?.persisted?.() ?? Promise.resolve(false), false),
  ]);
  return {
    picker: count === 1 ? canPickFile() : canPickFolder(),
    opfs, stream, free, persisted: Boolean(persisted),
    canPersist: typeof navigator.storage?.persist === "function", askedPersist,
  };
}

/**
 * Ask for persistent storage; false when refused, or when no answer came within `ms`
 * (Firefox asks the user, who may never answer).
 * @param {number} ms
 */
export async function askPersist(ms) {
  try {
    return await Promise.race([
      navigator.storage.persist(), new Promise((resolve) => setTimeout(() => resolve(false), ms)),
    ]) === true;
  } catch {
    return false;
  }
}
