// @ts-check
/**
 * One "peerbeam" data channel as both ends use it: messages handled strictly one after
 * another (the protocol is ordered, and handlers await WebCrypto), JSON out, the
 * bufferedAmount flow control of protocol.md section 9, and the keepalive of section 11.
 */
import { BUFFERED_HIGH_WATER, BUFFERED_LOW_WATER } from "./protocol/constants.js";
import { TIMING } from "./timing.js";
import { ProtocolError, WIRE_CODES, INTERNAL } from "./protocol/errors.js";
import { encodeMessage, parseMessage } from "./protocol/messages.js";

/**
 * @typedef {import("./protocol/messages.js").Message} Message
 * @typedef {{onMessage: (m: Message) => Promise<void> | void,
 *            onPiece: (data: ArrayBuffer) => Promise<void> | void,
 *            onClose: (error: ProtocolError | null, remote: boolean) => void}} ChannelHandlers
 */

/** @param {string} text */
function isPing(text) {
  try {
    return parseMessage(text).t === "ping";
  } catch {
    return false; // the handler's parse reports it
  }
}

export class PeerChannel {
  /**
   * @param {RTCDataChannel} channel
   * @param {ChannelHandlers} handlers
   */
  constructor(channel, handlers) {
    this.channel = channel;
    this.handlers = handlers;
    this.closed = false;
    /** @type {Promise<void>} */
    this.queue = Promise.resolve();
    this.lastReceived = performance.now();
    channel.binaryType = "arraybuffer";
    channel.bufferedAmountLowThreshold = BUFFERED_LOW_WATER;
    channel.onmessage = (event) => {
      this.lastReceived = performance.now();
      const data = event.data;
      // A ping is answered at once, not in turn: a handler may be busy for minutes (hashing
      // a resumed prefix) and the peer must still see this side alive.
      if (typeof data === "string" && data.length <= 64 && isPing(data)) return this.send({ t: "pong" });
      this.queue = this.queue.then(() => (this.closed ? undefined : this.dispatch(data)));
    };
    channel.onclose = () => this.finish(null, true);
    channel.onerror = () => this.finish(null, true);
    this.keepalive = setInterval(() => this.checkAlive(), TIMING.pingAfterMs / 3);
  }

  /** @param {string | ArrayBuffer} data */
  async dispatch(data) {
    try {
      if (typeof data === "string") {
        const message = parseMessage(data);
        if (message.t === "ping") return this.send({ t: "pong" });
        if (message.t === "pong") return;
        if (message.t === "error") {
          const code = WIRE_CODES.has(message.code) ? message.code : INTERNAL;
          return this.finish(new ProtocolError(code, message.message), true);
        }
        await this.handlers.onMessage(message);
      } else {
        await this.handlers.onPiece(data);
      }
    } catch (error) {
      this.fail(error);
    }
  }

  checkAlive() {
    const silent = performance.now() - this.lastReceived;
    if (silent > TIMING.deadAfterMs) this.finish(new ProtocolError("timeout", "the other side stopped answering"), false);
    else if (silent > TIMING.pingAfterMs) this.send({ t: "ping" });
  }

  /** @param {Message} message */
  send(message) {
    if (this.closed || this.channel.readyState !== "open") return;
    this.channel.send(encodeMessage(message));
  }

  /** @param {Uint8Array} frame */
  sendBinary(frame) {
    if (this.closed || this.channel.readyState !== "open") throw new ProtocolError("cancelled", "the connection closed");
    this.channel.send(/** @type {Uint8Array<ArrayBuffer>} */ (frame));
  }

  /** Wait while more than the high-water mark is queued for sending. */
  async drain() {
    while (!this.closed && this.channel.bufferedAmount > BUFFERED_HIGH_WATER) {
      await new Promise((resolve) => {
        const done = () => {
          this.channel.removeEventListener("bufferedamountlow", done);
          this.channel.removeEventListener("close", done);
          resolve(undefined);
        };
        this.channel.addEventListener("bufferedamountlow", done);
        this.channel.addEventListener("close", done);
      });
    }
  }

  /**
   * Tell the peer why we stop (an error message), then close.
   * @param {unknown} error
   */
  fail(error) {
    const failure = error instanceof ProtocolError ? error : new ProtocolError(INTERNAL, String(/** @type {Error} */ (error)?.message ?? error));
    if (!failure.message) failure.message = failure.code;
    this.send({ t: "error", code: WIRE_CODES.has(failure.code) ? failure.code : INTERNAL, message: failure.message });
    this.finish(failure, false);
  }

  /**
   * @param {ProtocolError | null} error
   * @param {boolean} remote
   */
  finish(error, remote) {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.keepalive);
    const channel = this.channel;
    // Let queued messages (an error, a final ack) leave before closing.
    const close = () => channel.close();
    if (channel.readyState === "open" && channel.bufferedAmount > 0) setTimeout(close, 1000);
    else close();
    this.handlers.onClose(error, remote);
  }

  /** Close without a message (done, or the user cancelled elsewhere). */
  close() {
    this.finish(null, false);
  }
}
