// @ts-check
/**
 * The sending side (protocol.md sections 6-9, 14.1). An Offer is what "Create link" made:
 * files, link key, optional password, a signaling connection. It serves each receiver
 * with its own peer connection (SenderSession), concurrently, and keeps the chunk
 * digests it computed for the lifetime of the offer so resumes cost nothing.
 */
import { applyAnswer, createOffer, newSessionId, readSignal } from "./rtc.js";
import { PeerChannel } from "./channel.js";
import { SignalingClient } from "./signaling.js";
import { TIMING } from "./timing.js";
import { computeMac, deriveAuthKey, newNonce, sdpFingerprints, verifyMac } from "./protocol/auth.js";
import { bytesEqual, hexEncode } from "./protocol/codec.js";
import { chunkCount, chunkDigest, chunkLength, fileDigest, SendWindow } from "./protocol/chunks.js";
import { CHUNK_SIZE, DEFAULT_ITERATIONS, MAX_AUTH_ATTEMPTS } from "./protocol/constants.js";
import { INTEGRITY, ProtocolError, SOURCE_ERROR, frameError } from "./protocol/errors.js";
import { HEADER_SIZE, encodePiece, piecePayloadLimit } from "./protocol/frames.js";
import { checkAccept, newTransferId } from "./protocol/messages.js";

/** Stop accepting receivers after this many failed proofs across all connections (protocol.md 6). */
const MAX_FAILURES_PER_LINK = 20;

/**
 * @typedef {import("./protocol/messages.js").Message} Message
 * @typedef {import("./protocol/messages.js").Manifest} Manifest
 * @typedef {"connecting" | "authenticating" | "offered" | "sending" | "finishing" | "done" | "failed" | "lost" | "declined"} SessionState
 */

export class Offer extends EventTarget {
  /**
   * @param {{files: File[], password: string | null, room: string, ownerToken: string,
   *          wsUrl: string, linkKey: Uint8Array<ArrayBuffer>, oneTime: boolean, iterations?: number}} options
   */
  constructor({ files, password, room, ownerToken, wsUrl, linkKey, oneTime, iterations = DEFAULT_ITERATIONS }) {
    super();
    this.files = files;
    this.password = password;
    this.iterations = iterations;
    this.room = room;
    this.linkKey = linkKey;
    this.oneTime = oneTime;
    /** @type {Manifest} */
    this.manifest = {
      t: "manifest",
      transfer: newTransferId(),
      chunkSize: CHUNK_SIZE,
      files: files.map((f) => ({ name: f.name, size: f.size, type: /^[\x20-\x7e]{0,255}$/.test(f.type) ? f.type : "", mtime: f.lastModified || null })),
    };
    /** Chunk digests per file, filled as chunks are read: shared by all receivers. @type {Uint8Array[][]} */
    this.digests = files.map(() => []);
    /** @type {Promise<Uint8Array<ArrayBuffer>>} */
    this.authKey = deriveAuthKey(linkKey, room, password, iterations);
    /** @type {Map<string, SenderSession>} */
    this.sessions = new Map();
    /** Receivers in the room right now (said hello, not left). */
    this.present = new Set();
    this.failures = 0;
    this.closed = false;
    this.signaling = new SignalingClient({ wsUrl, room, role: "sender", token: ownerToken });
    this.signaling.addEventListener("welcome", (e) => {
      const welcome = /** @type {CustomEvent} */ (e).detail;
      this.iceServers = welcome.ice_servers;
      for (const peer of welcome.peers) {
        if (peer.role === "receiver" && !this.present.has(peer.peer)) this.join(peer.peer);
      }
    });
    this.signaling.addEventListener("peer-joined", (e) => {
      const { peer, role } = /** @type {CustomEvent} */ (e).detail;
      if (role !== "receiver") return;
      // A known receiver whose signaling socket reconnected (a server restart, API Gateway's
      // 2-hour limit) still has its peer connection: keep it. A receiver that lost its
      // connection too asks with `restart` (protocol.md 1.0).
      if (this.sessions.get(peer)?.live) this.present.add(peer);
      else this.join(peer);
    });
    this.signaling.addEventListener("peer-left", (e) => {
      this.present.delete(/** @type {CustomEvent} */ (e).detail.peer);
    });
    this.signaling.addEventListener("signal", (e) => {
      const { from, data } = /** @type {CustomEvent} */ (e).detail;
      const signal = readSignal(data);
      if (signal?.kind === "answer") this.sessions.get(from)?.answer(signal.session, signal.sdp);
      // The receiver lost its connection (or reloaded) and asks for a new offer.
      else if (signal?.kind === "restart" && this.present.has(from)) this.join(from);
    });
    this.signaling.addEventListener("room-closed", () => this.stop());
    this.signaling.addEventListener("state", () => this.changed());
    /** @type {RTCIceServer[]} */
    this.iceServers = [];
  }

  start() {
    this.signaling.connect();
  }

  /** @param {string} peer */
  join(peer) {
    // A locked room still lets known receivers back in (the server refuses new ones).
    if (this.closed) return;
    this.present.add(peer);
    // A receiver that comes back after it finished (a reload) gets a new connection too:
    // it then holds everything and is done again at once.
    const previous = this.sessions.get(peer);
    previous?.close();
    const session = new SenderSession(this, peer, previous);
    this.sessions.set(peer, session);
    this.changed();
    session.open().catch((error) => session.failed(error));
  }

  /** @param {SenderSession} session */
  lost(session) {
    if (this.closed || this.sessions.get(session.peer) !== session) return;
    setTimeout(() => {
      if (this.sessions.get(session.peer) === session && this.present.has(session.peer)) this.join(session.peer);
    }, TIMING.reofferDelayMs);
  }

  /** A receiver's proof failed. */
  authFailed() {
    this.failures += 1;
    if (this.failures >= MAX_FAILURES_PER_LINK) {
      this.locked = true;
      this.signaling.lock();
      this.dispatchEvent(new CustomEvent("notice", { detail: "Too many wrong passwords: this link accepts no new receivers." }));
    }
  }

  /** A receiver proved the key: a one-time link is used up now. */
  authenticated() {
    if (this.oneTime && !this.locked) {
      this.locked = true;
      this.signaling.lock();
    }
  }

  /** True while any receiver is mid-transfer (the page keeps the screen on and warns). */
  get busy() {
    return [...this.sessions.values()].some((s) => s.state === "sending" || s.state === "finishing" || s.state === "offered");
  }

  changed() {
    this.dispatchEvent(new Event("change"));
  }

  stop() {
    if (this.closed) return;
    this.closed = true;
    for (const session of this.sessions.values()) session.close();
    this.signaling.stop();
    this.changed();
  }

  /**
   * The digest of chunk (file, chunk), from the cache or by reading the file.
   * @param {number} file
   * @param {number} chunk
   */
  async digestOf(file, chunk) {
    const cached = this.digests[file][chunk];
    if (cached) return cached;
    const data = await readChunk(this.files[file], chunk);
    return this.remember(file, chunk, await chunkDigest(data));
  }

  /**
   * Cache a digest; a different digest for a chunk seen before means the file changed.
   * @param {number} file
   * @param {number} chunk
   * @param {Uint8Array} digest
   */
  remember(file, chunk, digest) {
    const cached = this.digests[file][chunk];
    if (cached && !bytesEqual(cached, digest)) {
      throw new ProtocolError(SOURCE_ERROR, `${this.files[file].name} changed while it was being sent`);
    }
    this.digests[file][chunk] = digest;
    return digest;
  }
}

/**
 * @param {File} file
 * @param {number} chunk
 */
async function readChunk(file, chunk) {
  const start = chunk * CHUNK_SIZE;
  try {
    return new Uint8Array(await file.slice(start, Math.min(start + CHUNK_SIZE, file.size)).arrayBuffer());
  } catch (error) {
    throw new ProtocolError(SOURCE_ERROR, `cannot read ${file.name} any more (was it moved or changed?)`);
  }
}

/** One receiver, one peer connection, one run of the protocol. */
export class SenderSession {
  /**
   * @param {Offer} offer
   * @param {string} peer
   * @param {SenderSession} [previous] the session this reconnect replaces (keeps the UI row)
   */
  constructor(offer, peer, previous) {
    this.offer = offer;
    this.peer = peer;
    /** @type {SessionState} */
    this.state = "connecting";
    this.detail = "";
    /** @type {RTCPeerConnection | null} */
    this.pc = null;
    /** @type {PeerChannel | null} */
    this.channel = null;
    this.localSdp = "";
    this.remoteSdp = "";
    this.sessionId = newSessionId();
    this.nonce = newNonce();
    this.attempts = 0;
    this.window = new SendWindow();
    /** @type {[number, number] | null} */
    this.rewind = null;
    /** @type {(() => void) | null} */
    this.waiter = null;
    /** @type {number[]} */
    this.starts = [];
    this.total = offer.manifest.files.reduce((n, f) => n + f.size, 0);
    this.done = previous?.done ?? 0;
    this.digest = "";
    this.number = previous?.number ?? offer.sessions.size + 1;
  }

  async open() {
    const { pc, channel, localSdp } = await createOffer(this.offer.iceServers);
    this.pc = pc;
    this.localSdp = localSdp;
    pc.addEventListener("connectionstatechange", () => {
      if (pc.connectionState === "failed" || pc.connectionState === "closed") this.connectionLost();
    });
    channel.addEventListener("open", () => this.begin(channel), { once: true });
    const offer = { kind: "offer", session: this.sessionId, sdp: localSdp };
    if (!this.offer.signaling.signal(this.peer, offer)) this.connectionLost();
  }

  /**
   * @param {string} session the offer this answers
   * @param {string} sdp
   */
  async answer(session, sdp) {
    if (!this.pc || this.remoteSdp || session !== this.sessionId) return;
    this.remoteSdp = sdp; // as received: its fingerprints go into the MAC
    try {
      await applyAnswer(this.pc, sdp);
    } catch (error) {
      this.failed(error);
    }
  }

  /** @param {RTCDataChannel} raw */
  begin(raw) {
    this.channel = new PeerChannel(raw, {
      onMessage: (m) => this.onMessage(m),
      onPiece: () => {
        throw frameError("a receiver sent binary data");
      },
      onClose: (error, remote) => this.onClose(error, remote),
    });
    this.setState("authenticating");
    const password = this.offer.password !== null;
    this.channel.send({ t: "hello", nonce: this.nonce, password, iterations: password ? this.offer.iterations : null });
  }

  /** @param {Message} m */
  async onMessage(m) {
    const channel = /** @type {PeerChannel} */ (this.channel);
    if (this.state === "authenticating" && m.t === "auth") {
      const key = await this.offer.authKey;
      const fps = [sdpFingerprints(this.localSdp), sdpFingerprints(this.remoteSdp)];
      const args = /** @type {const} */ ([this.offer.room, fps[0], fps[1], this.nonce, m.nonce]);
      if (!(await verifyMac(key, m.mac, "receiver", ...args))) {
        this.attempts += 1;
        this.offer.authFailed();
        const remaining = this.offer.password !== null && !this.offer.locked ? MAX_AUTH_ATTEMPTS - this.attempts : 0;
        channel.send({ t: "auth-failed", retry: remaining > 0, remaining: Math.max(0, remaining) });
        if (remaining <= 0) {
          this.detail = "A receiver used a wrong link or password.";
          this.setState("failed");
          channel.close();
          this.pc?.close();
        }
        return;
      }
      this.offer.authenticated();
      channel.send({ t: "auth-ok", mac: await computeMac(key, "sender", ...args) });
      channel.send(this.offer.manifest);
      this.setState("offered");
    } else if (this.state === "offered" && m.t === "accept") {
      checkAccept(m, this.offer.manifest);
      const offsets = [];
      for (const [index, answer] of m.files.entries()) {
        let offset = 0;
        if (answer.offset > 0 && answer.prefix) {
          const held = chunkCount(answer.offset);
          const digests = [];
          for (let c = 0; c < held; c++) digests.push(await this.offer.digestOf(index, c));
          if (bytesEqual(await fileDigest(digests), answer.prefix)) offset = answer.offset;
        }
        offsets.push(offset);
      }
      this.starts = offsets;
      this.done = offsets.reduce((a, b) => a + b, 0);
      channel.send({ t: "start", offsets });
      this.setState("sending");
      this.sendAll().catch((error) => channel.fail(error));
    } else if (this.state === "offered" && m.t === "decline") {
      this.detail = "The receiver declined.";
      this.setState("declined");
      channel.close();
    } else if ((this.state === "sending" || this.state === "finishing") && (m.t === "ack" || m.t === "nack")) {
      if (m.t === "ack") {
        this.window.acked(m.file, m.chunk);
        this.done += chunkLength(this.offer.manifest.files[m.file].size, m.chunk);
        this.offer.changed();
      } else {
        this.rewind = this.window.nacked(m.file, m.chunk);
      }
      this.wake();
    } else if (this.state === "finishing" && m.t === "complete") {
      /** @type {Uint8Array[]} */
      const mine = [];
      for (let f = 0; f < this.offer.files.length; f++) mine.push(await fileDigest(this.offer.digests[f]));
      if (m.digests.length !== mine.length || m.digests.some((d, i) => !bytesEqual(d, mine[i]))) {
        throw new ProtocolError(INTEGRITY, "the receiver's file digests differ from ours");
      }
      this.digest = mine.map(hexEncode).join(" ");
      this.setState("done");
      channel.close();
      setTimeout(() => this.pc?.close(), 1000);
    } else {
      throw frameError(`unexpected '${m.t}' while ${this.state}`);
    }
  }

  wake() {
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.();
  }

  /** Wait for an ack, a nack or the end of the connection. */
  sleep() {
    return new Promise((resolve) => {
      this.waiter = () => resolve(undefined);
    });
  }

  /** The sender loop of protocol.md section 9: bounded window, bufferedAmount, go-back-N. */
  async sendAll() {
    const channel = /** @type {PeerChannel} */ (this.channel);
    const files = this.offer.manifest.files;
    const limit = piecePayloadLimit(this.pc?.sctp?.maxMessageSize ?? 65536);
    const startChunk = (/** @type {number} */ f) => (f < files.length ? chunkCount(this.starts[f]) : 0);
    let file = 0;
    let chunk = startChunk(0);
    /** @type {Promise<Uint8Array<ArrayBuffer>> | null} */
    let ahead = null;
    let aheadAt = "";
    // One frame buffer for every piece: send() copies what it is given.
    const frame = new Uint8Array(HEADER_SIZE + limit);
    while (!channel.closed) {
      if (this.rewind) {
        [file, chunk] = this.rewind;
        this.rewind = null;
        ahead = null;
      }
      if (file >= files.length) {
        if (this.window.size === 0) break;
        await this.sleep();
        continue;
      }
      if (chunk >= chunkCount(files[file].size)) {
        const digests = [];
        for (let c = 0; c < chunkCount(files[file].size); c++) digests.push(await this.offer.digestOf(file, c));
        channel.send({ t: "file-done", file, digest: await fileDigest(digests) });
        file += 1;
        chunk = startChunk(file);
        continue;
      }
      if (this.window.full) {
        await this.sleep();
        continue;
      }
      const at = `${file}/${chunk}`;
      const data = await (aheadAt === at && ahead ? ahead : readChunk(this.offer.files[file], chunk));
      // Read the next chunk while this one is hashed and sent.
      const nextChunk = chunk + 1 < chunkCount(files[file].size) ? chunk + 1 : -1;
      ahead = nextChunk >= 0 ? readChunk(this.offer.files[file], nextChunk) : null;
      ahead?.catch(() => undefined);
      aheadAt = `${file}/${nextChunk}`;
      const digest = this.offer.remember(file, chunk, await chunkDigest(data));
      if (this.rewind) continue;
      for (let offset = 0; offset < data.length; offset += limit) {
        await channel.drain();
        channel.sendBinary(encodePiece(file, chunk, offset, data.subarray(offset, offset + limit), frame));
      }
      channel.send({ t: "chunk", file, chunk, size: data.length, sha256: digest });
      this.window.sent(file, chunk);
      chunk += 1;
    }
    if (channel.closed) return;
    channel.send({ t: "done" });
    this.setState("finishing");
  }

  /**
   * @param {import("./protocol/errors.js").ProtocolError | null} error
   * @param {boolean} remote
   */
  onClose(error, remote) {
    this.wake();
    if (this.state === "done" || this.state === "failed" || this.state === "declined") return;
    if (error && error.code !== "timeout") {
      this.detail = remote ? `The receiver stopped: ${error.message}` : error.message;
      this.setState("failed");
      this.pc?.close();
      return;
    }
    this.connectionLost();
  }

  connectionLost() {
    if (this.state === "done" || this.state === "failed" || this.state === "declined" || this.state === "lost") return;
    this.detail = "Connection lost; waiting for the receiver to come back.";
    this.setState("lost");
    this.channel?.close();
    this.pc?.close();
    this.offer.lost(this);
  }

  /** @param {unknown} error */
  failed(error) {
    this.detail = /** @type {Error} */ (error)?.message ?? String(error);
    this.setState("failed");
    this.channel?.close();
    this.pc?.close();
  }

  /** Still connecting or connected: not lost, failed, declined or done. */
  get live() {
    return !["lost", "failed", "declined", "done"].includes(this.state);
  }

  /** @param {SessionState} state */
  setState(state) {
    this.state = state;
    this.offer.changed();
  }

  close() {
    if (this.state !== "done" && this.state !== "failed") this.state = "lost";
    this.channel?.close();
    this.pc?.close();
    this.wake();
  }
}
