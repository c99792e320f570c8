// @ts-check
/**
 * The "peerbeam" data channel as both drivers use it: its settings, the bufferedAmount
 * flow control of protocol.md section 9, and closing without losing a last message.
 * What is sent when, keepalive included, is the session machines' business.
 */
import { BUFFERED_HIGH_WATER, BUFFERED_LOW_WATER } from "./protocol/constants.js";

/** After a close, the peer connection lives this long so queued messages still leave. */
const LINGER_MS = 1000;

/** @param {RTCDataChannel} channel */
export function setUpChannel(channel) {
  channel.binaryType = "arraybuffer";
  channel.bufferedAmountLowThreshold = BUFFERED_LOW_WATER;
}

/**
 * Resolves once at most the high-water mark is queued for sending, or the channel closed.
 * @param {RTCDataChannel} channel
 */
export async function drained(channel) {
  while (channel.readyState === "open" && channel.bufferedAmount > BUFFERED_HIGH_WATER) {
    await new Promise((resolve) => {
      const done = () => {
        channel.removeEventListener("bufferedamountlow", done);
        channel.removeEventListener("close", done);
        resolve(undefined);
      };
      channel.addEventListener("bufferedamountlow", done);
      channel.addEventListener("close", done);
    });
  }
}

/**
 * Close the channel once what is queued has left (at most LINGER_MS), then the connection.
 * @param {RTCDataChannel | null} channel
 * @param {RTCPeerConnection | null} pc
 */
export function closeSoon(channel, pc) {
  const closeChannel = () => channel?.close();
  if (channel?.readyState === "open" && channel.bufferedAmount > 0) setTimeout(closeChannel, LINGER_MS);
  else closeChannel();
  if (pc) setTimeout(() => pc.close(), LINGER_MS);
}
