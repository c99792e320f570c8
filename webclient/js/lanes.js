// @ts-check
/**
 * How many peer connections ("lanes", protocol v1.1: protocol.md 7.4 and 8.7) the pages use
 * for one transfer. One SCTP association carries only a fixed amount in flight (about
 * 0.19 MB in Chromium), so on a long path each connection adds its share; on loopback the
 * renderer's CPU, which every connection of a page shares, is the limit instead
 * (docs/benchmarks.md, "Long-haul links"). The sending page opens DEFAULT_LANES at once
 * (`fixed`; fewer for a small offer: lanesForOffer), not growing by the machines' rule as the CLI does: Chromium's single
 * association swings with every loss, so a 5 s comparison often said "slower" and stopped
 * the growth at 2 or 3 (60 ms: 0.5–1.6x the bare channel growing, 1.6–2.2x with 4 at once).
 * Why 8, the protocol's most: Chromium's 128 kB receiving socket drops datagrams, so each
 * connection carries less than its window allows: at 60 ms 4 of them made 2.0x the bare
 * channel where 8 made 2.4x (same rounds); on loopback 8 cost nothing against 4 or one
 * (docs/benchmarks.md, docs/webclient.md "Several connections"). The receiver takes up to
 * as many. Extra connections gather with fewer relay servers (rtc.js laneIceServers).
 *
 * Tests and benchmarks set `globalThis.PEERBEAM_LANES` in an init script before the page
 * loads: a number N from 1 to MAX_LANES uses exactly N connections per transfer instead,
 * 0 makes a v1 page that announces no lanes (one connection). Pages never set it.
 */
import { CHUNK_SIZE, MAX_LANES } from "./protocol/constants.js";

/** The most connections per transfer, chosen from measurements (docs/benchmarks.md). */
export const DEFAULT_LANES = MAX_LANES;

/**
 * By default, one connection per this many chunks of the offer (at least one): a small
 * offer gains nothing from 8 connections, and each costs an ICE and DTLS handshake, an
 * authentication, and relay allocations; past 64 MiB every offer gets all 8.
 */
export const CHUNKS_PER_LANE = 8;

/**
 * @typedef {{lanes: number | null, fixed: boolean}} LanePlan
 *   `lanes`: the most connections per transfer (null: a v1 peer); `fixed`: open them all
 *   at once instead of growing.
 */

/**
 * The plan from an override; a bad value is reported on the console and ignored.
 * @param {unknown} override
 * @returns {LanePlan}
 */
export function resolveLanes(override) {
  if (override === undefined) return { lanes: DEFAULT_LANES, fixed: true };
  if (override === 0) return { lanes: null, fixed: false };
  if (Number.isInteger(override) && /** @type {number} */ (override) >= 1 && /** @type {number} */ (override) <= MAX_LANES) {
    return { lanes: /** @type {number} */ (override), fixed: true };
  }
  console.warn(`PEERBEAM_LANES must be 0 (v1) or 1..${MAX_LANES}`);
  return { lanes: DEFAULT_LANES, fixed: true };
}

export const LANES = resolveLanes(/** @type {any} */ (globalThis).PEERBEAM_LANES);

/**
 * The most connections a sending page announces for an offer of `totalBytes`: an override
 * (PEERBEAM_LANES) exactly, else DEFAULT_LANES but no more than one per CHUNKS_PER_LANE
 * chunks.
 * @param {unknown} override
 * @param {number} totalBytes
 * @returns {LanePlan}
 */
export function lanesForOffer(override, totalBytes) {
  const plan = resolveLanes(override);
  if (override !== undefined || plan.lanes === null) return plan;
  const byChunks = Math.ceil(totalBytes / CHUNK_SIZE / CHUNKS_PER_LANE);
  return { lanes: Math.min(plan.lanes, Math.max(1, byChunks)), fixed: true };
}
