// @ts-check
/**
 * WebRTC set-up without trickle ICE: each side sends one complete SDP (all candidates)
 * through signaling, so message order on the relay never matters. The SDP strings are
 * kept exactly as sent and received: the authentication MACs bind their fingerprints
 * (protocol.md 5.2: never use pc.remoteDescription.sdp, which Chromium re-serialises).
 *
 * Signal payloads (the `data` of a signaling `signal`, docs/protocol.md §1.0):
 * {"kind":"offer"|"answer","session":S,"sdp":"..."} and {"kind":"restart"}.
 */
import { b64urlEncode, randomBytes } from "./protocol/codec.js";
import { CHANNEL_LABEL } from "./protocol/constants.js";

/** Send what we have after this long even if gathering has not completed. */
const GATHER_TIMEOUT_MS = 5000;

/** @param {RTCPeerConnection} pc */
function gatheringComplete(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, GATHER_TIMEOUT_MS);
    function done() {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve(undefined);
    }
    function check() {
      if (pc.iceGatheringState === "complete") done();
    }
    pc.addEventListener("icegatheringstatechange", check);
  });
}

/**
 * @typedef {{pc: RTCPeerConnection, localSdp: string}} Offerer
 */

/**
 * Sender: a connection with the "peerbeam" channel and a complete offer.
 * @param {RTCIceServer[]} iceServers
 * @returns {Promise<{pc: RTCPeerConnection, channel: RTCDataChannel, localSdp: string}>}
 */
export async function createOffer(iceServers) {
  const pc = new RTCPeerConnection({ iceServers });
  const channel = pc.createDataChannel(CHANNEL_LABEL, { ordered: true });
  channel.binaryType = "arraybuffer";
  await pc.setLocalDescription();
  await gatheringComplete(pc);
  const localSdp = /** @type {RTCSessionDescription} */ (pc.localDescription).sdp;
  return { pc, channel, localSdp };
}

/**
 * Sender: apply the receiver's answer, exactly as received.
 * @param {RTCPeerConnection} pc
 * @param {string} sdp
 */
export async function applyAnswer(pc, sdp) {
  await pc.setRemoteDescription({ type: "answer", sdp });
}

/**
 * Receiver: answer an offer; the channel arrives through `ondatachannel`.
 * @param {RTCIceServer[]} iceServers
 * @param {string} offerSdp
 * @returns {Promise<{pc: RTCPeerConnection, localSdp: string, channel: Promise<RTCDataChannel>}>}
 */
export async function answerOffer(iceServers, offerSdp) {
  const pc = new RTCPeerConnection({ iceServers });
  const channel = new Promise((resolve) => {
    pc.addEventListener("datachannel", (event) => {
      if (event.channel.label !== CHANNEL_LABEL) return; // ignore other channels
      event.channel.binaryType = "arraybuffer";
      resolve(event.channel);
    });
  });
  await pc.setRemoteDescription({ type: "offer", sdp: offerSdp });
  await pc.setLocalDescription();
  await gatheringComplete(pc);
  const localSdp = /** @type {RTCSessionDescription} */ (pc.localDescription).sdp;
  return { pc, localSdp, channel: /** @type {Promise<RTCDataChannel>} */ (channel) };
}

/**
 * The payload of a relayed signal (docs/protocol.md §1.0 and §7.4), or null when it is not
 * one of ours. `lane`: an offer for an extra connection of a running transfer (v1.1), else 0.
 * @param {unknown} data
 * @returns {{kind: "offer" | "answer", session: string, sdp: string, lane: number} | {kind: "restart"} | null}
 */
export function readSignal(data) {
  const d = /** @type {any} */ (data);
  if (!d || typeof d !== "object") return null;
  if (d.kind === "restart") return { kind: "restart" };
  if ((d.kind === "offer" || d.kind === "answer") && typeof d.sdp === "string" && typeof d.session === "string") {
    return { kind: d.kind, session: d.session, sdp: d.sdp, lane: Number.isSafeInteger(d.lane) && d.lane > 0 ? d.lane : 0 };
  }
  return null;
}

/** A fresh id for one offer/answer exchange: answers to older offers are ignored. */
export function newSessionId() {
  return b64urlEncode(randomBytes(12));
}

/**
 * @typedef {"relay" | "local" | "internet"} PathKind
 *   How a connection reaches the peer, from its selected ICE candidate pair: through a TURN
 *   relay, directly between two host candidates (the same network), or directly across
 *   the NATs (server- or peer-reflexive candidates). The CLI says the same
 *   (peerbeam/peer/rtc.py describe_path).
 */

/**
 * @typedef {{kind: PathKind, relayUrl: string | null}} Route
 *   The path of a connection, and when it is relayed, the URL of the TURN server its own
 *   relay candidate came from (null: the peer's relay, or a browser that does not say).
 */

/**
 * The route of a connected peer connection, or null when it has no selected pair (yet).
 * @param {RTCPeerConnection} pc
 * @returns {Promise<Route | null>}
 */
export async function connectionRoute(pc) {
  const stats = await pc.getStats();
  /** @type {any} */
  let pair = null;
  stats.forEach((report) => {
    if (report.type === "transport" && report.selectedCandidatePairId) pair ??= stats.get(report.selectedCandidatePairId);
  });
  // Firefox names no selected pair on its transport, but marks the pair itself.
  if (!pair) stats.forEach((report) => {
    if (report.type === "candidate-pair" && report.selected) pair ??= report;
  });
  if (!pair) return null;
  const local = stats.get(pair.localCandidateId);
  const types = [local?.candidateType, stats.get(pair.remoteCandidateId)?.candidateType];
  if (types.includes("relay")) {
    const url = local?.candidateType === "relay" && typeof local.url === "string" && local.url ? local.url : null;
    return { kind: "relay", relayUrl: url };
  }
  return { kind: types[0] === "host" && types[1] === "host" ? "local" : "internet", relayUrl: null };
}

/**
 * The ICE servers for an extra connection (lane) of a transfer whose first connection took
 * `first`. Every TURN allocation counts against the relay's per-user and total quotas
 * (docs/deploy.md), and a page gathers one per TURN URL per connection: 8 connections with
 * UDP, TCP and TLS URLs would take 24. So when the first connection went direct, the two
 * networks reach each other without a relay and the extra ones gather no relay candidates;
 * when it went through our own relay candidate, they use that TURN URL only (one
 * allocation each). Otherwise (the peer's relay, the path not known yet): every server.
 * An extra connection that finds no path anyway costs only its chunks in flight.
 * @param {RTCIceServer[]} iceServers
 * @param {Route | null} first
 * @returns {RTCIceServer[]}
 */
export function laneIceServers(iceServers, first) {
  const direct = first?.kind === "local" || first?.kind === "internet";
  const relayUrl = first?.kind === "relay" ? first.relayUrl : null;
  if (!direct && !relayUrl) return iceServers;
  /** @param {string} url */
  const isStun = (url) => /^stuns?:/i.test(url);
  return iceServers.flatMap((server) => {
    const urls = (Array.isArray(server.urls) ? server.urls : [server.urls])
      .filter((url) => isStun(url) || url === relayUrl);
    if (!urls.length) return [];
    // A TURN URL keeps its entry's credentials; STUN needs none.
    return urls.every(isStun) ? [{ urls }] : [{ ...server, urls }];
  });
}
