// @ts-check
/** Numbers and words for people: sizes, speeds, remaining time, what the digest is. */

const UNITS = ["B", "KB", "MB", "GB", "TB", "PB"];

/** @param {number} bytes decimal units, as file managers show them */
export function formatBytes(bytes) {
  if (bytes < 1000) return `${bytes} B`;
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < UNITS.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value < 10 ? value.toFixed(2) : value < 100 ? value.toFixed(1) : value.toFixed(0)} ${UNITS[unit]}`;
}

/** @param {number} bytesPerSecond */
export const formatSpeed = (bytesPerSecond) => `${formatBytes(Math.round(bytesPerSecond))}/s`;

/** @param {number} seconds */
export function formatDuration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return "";
  if (seconds < 60) return `${Math.max(1, Math.round(seconds))} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  const hours = Math.floor(seconds / 3600);
  return `${hours} h ${Math.round((seconds - hours * 3600) / 60)} min`;
}

/** Speed over the last few seconds, for "12 MB/s, 3 min left". */
export class RateMeter {
  constructor(windowMs = 5000) {
    this.windowMs = windowMs;
    /** @type {[number, number][]} */
    this.samples = [];
  }

  /** @param {number} bytes total so far */
  sample(bytes) {
    const now = performance.now();
    this.samples.push([now, bytes]);
    while (this.samples.length > 2 && now - this.samples[0][0] > this.windowMs) this.samples.shift();
  }

  /** bytes per second, 0 when unknown */
  get rate() {
    if (this.samples.length < 2) return 0;
    const [t0, b0] = this.samples[0];
    const [t1, b1] = this.samples[this.samples.length - 1];
    return t1 > t0 ? ((b1 - b0) * 1000) / (t1 - t0) : 0;
  }

  /**
   * "12.3 MB/s · 3 min left", or "" before there is a speed.
   * @param {number} done
   * @param {number} total
   */
  describe(done, total) {
    const rate = this.rate;
    if (rate <= 0 || done >= total) return "";
    return `${formatSpeed(rate)} · ${formatDuration((total - done) / rate)} left`;
  }
}

/** What the shown digest is (docs/protocol.md 8.5): not what sha256sum prints. */
export const DIGEST_HINT = "SHA-256 over each file's 1 MiB chunk SHA-256s, not the file's plain SHA-256. " +
  "Both pages show the same; for a copy on disk, “peerbeam digest FILE” prints it.";

/** @type {Record<import("../rtc.js").PathKind, string>} the CLI's words (peerbeam/peer/rtc.py) */
const PATHS = {
  relay: "relayed through a TURN server",
  local: "direct, on the local network",
  internet: "direct, over the internet",
};

/**
 * "Path: direct, on the local network · 3 connections", or "" while no path is known.
 * @param {import("../rtc.js").PathKind | null} path
 * @param {number} connections peer connections the transfer opened
 */
export function describePath(path, connections) {
  if (path === null) return "";
  return `Path: ${PATHS[path]}${connections > 1 ? ` · ${connections} connections` : ""}`;
}
