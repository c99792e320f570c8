// @ts-check
/**
 * The sending page's driver around the sender machine (protocol.md section 14.1). An Offer
 * is what "Create link" made: files, link key, optional password, one signaling
 * connection. Every protocol decision — whom to offer a connection, what to answer, which
 * chunk to read and send, when to give up — comes from the machine's actions; this module
 * only does the I/O: signaling, RTCPeerConnection and its data channel, WebCrypto (keys,
 * MACs, chunk digests), file reads, and the machine's timer.
 */
import { applyAnswer, connectionRoute, createOffer, laneIceServers, newSessionId, readSignal } from "./rtc.js";
import { closeSoon, drained, setUpChannel } from "./channel.js";
import { corruptOnce, garbleOnce } from "./faults.js";
import { lanesForOffer } from "./lanes.js";
import { MachineRunner } from "./machine-runner.js";
import { SignalingClient } from "./signaling.js";
import { machineTiming } from "./timing.js";
import { Handshake, deriveAuthKey, newNonce, sdpFingerprints } from "./protocol/auth.js";
import { chunkDigest } from "./protocol/chunks.js";
import { CHUNK_SIZE, DEFAULT_ITERATIONS } from "./protocol/constants.js";
import { HEADER_SIZE, encodePiece, piecePayloadLimit } from "./protocol/frames.js";
import { encodeMessage, newTransferId } from "./protocol/messages.js";
import { SenderMachine } from "./protocol/sender-machine.js";

/**
 * @typedef {import("./protocol/machine.js").Action} Action
 * @typedef {import("./protocol/messages.js").Manifest} Manifest
 * @typedef {"connecting" | "authenticating" | "offered" | "sending" | "finishing" | "done" |
 *           "failed" | "lost" | "declined"} ReceiverState
 * @typedef {import("./rtc.js").PathKind} PathKind
 * @typedef {import("./rtc.js").Route} Route
 * @typedef {{peer: string, number: number, state: ReceiverState, acked: number, total: number,
 *            detail: string, code: string, digests: string[], path: PathKind | null, connections: number}} ReceiverRow
 *   One receiver as the page shows it, from the machine's `receiver` and `progress` actions;
 *   `path` of its transfer's first connection and the `connections` (lanes) it opened.
 */

/** One peer connection to one receiver (the machine's `conn`). */
class PeerLink {
  /**
   * @param {string} conn
   * @param {string} peer
   * @param {number} lane 0, or an extra connection of a running transfer (protocol.md 7.4)
   */
  constructor(conn, peer, lane) {
    this.conn = conn;
    this.peer = peer;
    this.lane = lane;
    /** Our offer's id: an answer to another offer is ignored. */
    this.session = newSessionId();
    /** @type {RTCPeerConnection | null} */
    this.pc = null;
    /** @type {RTCDataChannel | null} */
    this.channel = null;
    /** The SDPs exactly as exchanged: their fingerprints go into the MACs (protocol.md 5.2). */
    this.localSdp = "";
    this.remoteSdp = "";
    /** Our hello nonce. */
    this.nonce = new Uint8Array(0);
    /** Chunks read for this connection, waiting for their `send_pieces`. @type {Map<string, Uint8Array>} */
    this.reads = new Map();
    /** Bumped by `stop_pieces` and `close`: a send loop of an older run stops. */
    this.run = 0;
    /** @type {Uint8Array | null} one frame buffer for every piece (`send` copies it) */
    this.frame = null;
    this.closed = false;
  }
}

/** @param {number} file @param {number} chunk */
const chunkKey = (file, chunk) => `${file}/${chunk}`;

export class Offer extends EventTarget {
  /**
   * @param {{files: File[], password: string | null, room: string, ownerToken: string,
   *          wsUrl: string, linkKey: Uint8Array<ArrayBuffer>, oneTime: boolean, iterations?: number}} options
   */
  constructor({ files, password, room, ownerToken, wsUrl, linkKey, oneTime, iterations = DEFAULT_ITERATIONS }) {
    super();
    this.files = files;
    this.password = password;
    this.room = room;
    this.oneTime = oneTime;
    const offerLanes = lanesForOffer(/** @type {any} */ (globalThis).PEERBEAM_LANES,
      files.reduce((sum, f) => sum + f.size, 0));
    this.machine = new SenderMachine({
      transfer: newTransferId(),
      files: files.map((f) => ({
        name: f.name, size: f.size, type: /^[\x20-\x7e]{0,255}$/.test(f.type) ? f.type : "", mtime: f.lastModified || null,
      })),
      password: password !== null,
      iterations,
      oneTime,
      timing: machineTiming(),
      lanes: offerLanes.lanes,
      fixedLanes: offerLanes.fixed,
    });
    /** @type {Manifest} */
    this.manifest = this.machine.manifest;
    /** @type {Promise<Uint8Array<ArrayBuffer>>} */
    this.authKey = deriveAuthKey(linkKey, room, password, iterations);
    this.authKey.catch(() => undefined); // reported by the first proof that needs it
    /** @type {Map<string, PeerLink>} */
    this.links = new Map();
    /** Per receiver, the route of its transfer's first connection (for the extra ones). @type {Map<string, Route | null>} */
    this.routes = new Map();
    /** @type {Map<string, ReceiverRow>} */
    this.receivers = new Map();
    /** Why the offer is over (the machine's `finished`), or null while it runs. @type {string | null} */
    this.finished = null;
    /** The room must stay locked: asked again after every signaling reconnect. */
    this.lockWanted = false;
    /** @type {RTCIceServer[]} */
    this.iceServers = [];
    this.runner = new MachineRunner(this.machine, (action) => this.carryOut(action));
    this.signaling = new SignalingClient({ wsUrl, room, role: "sender", token: ownerToken });
    this.listen(this.signaling);
  }

  /** @param {SignalingClient} signaling */
  listen(signaling) {
    /** @param {string} type @param {(detail: any) => void} handler */
    const on = (type, handler) => signaling.addEventListener(type, (e) => handler(/** @type {CustomEvent} */ (e).detail));
    on("welcome", (welcome) => {
      this.iceServers = welcome.ice_servers;
      if (this.lockWanted) signaling.lock();
      this.runner.feed({ type: "peers", peers: welcome.peers });
    });
    on("peer-joined", ({ peer, role }) => this.runner.feed({ type: "peer_joined", peer, role }));
    on("signal", ({ from, data }) => {
      const signal = readSignal(data);
      if (signal?.kind === "answer") this.answered(from, signal.session, signal.sdp);
      else if (signal?.kind === "restart") this.runner.feed({ type: "restart", peer: from });
    });
    on("room-closed", () => this.runner.feed({ type: "room_gone", reason: "the room was closed" }));
    on("state", () => this.changed());
  }

  start() {
    this.signaling.connect();
  }

  /** The user stops sharing. */
  stop() {
    this.runner.feed({ type: "stop" });
  }

  /**
   * The user asks to try a receiver again (no connection reached it, or it was lost).
   * @param {string} peer
   */
  retry(peer) {
    this.runner.feed({ type: "retry", peer });
  }

  /** True while any receiver is mid-transfer (the page keeps the screen on and warns). */
  get busy() {
    return [...this.receivers.values()].some((r) => r.state === "offered" || r.state === "sending" || r.state === "finishing");
  }

  changed() {
    this.dispatchEvent(new Event("change"));
  }

  // -- the machine's actions ----------------------------------------------------------

  /** @param {Action} action */
  carryOut(action) {
    const link = action.conn === undefined ? undefined : this.links.get(action.conn);
    switch (action.type) {
      case "open_connection":
        this.open(action.conn, action.peer, action.lane ?? 0);
        break;
      case "close":
        if (link) this.close(link);
        break;
      case "send":
        if (link?.channel?.readyState === "open") link.channel.send(encodeMessage(action.message));
        break;
      case "check_proof":
        if (link) void this.checkProof(link, action.nonce, action.mac);
        break;
      case "read_chunk":
        if (link) this.read(link, action.file, action.chunk);
        break;
      case "hash_chunk":
        this.read(null, action.file, action.chunk);
        break;
      case "send_pieces":
        if (link) this.sendPieces(link, action.file, action.chunk);
        break;
      case "stop_pieces":
        if (link) link.run += 1;
        break;
      case "lock_room":
        this.lockWanted = true;
        this.signaling.lock();
        if (this.machine.capped) this.notice("Too many wrong passwords: this link accepts no new receivers.");
        break;
      case "receiver":
        this.report(action);
        break;
      case "progress":
        this.row(action.peer).acked = action.acked;
        this.changed();
        break;
      case "finished":
        this.end(action.reason);
        break;
      default:
        throw new Error(`the sender page cannot carry out ${action.type}`);
    }
  }

  /**
   * A new peer connection and channel for `peer`, and our offer through signaling (naming
   * the lane of an extra connection, protocol.md 7.4).
   * @param {string} conn
   * @param {string} peer
   * @param {number} lane
   */
  open(conn, peer, lane) {
    const link = new PeerLink(conn, peer, lane);
    this.links.set(conn, link);
    /** @param {string} reason */
    const lost = (reason) => this.runner.feed({ type: "connection_lost", conn, reason });
    if (!lane) this.routes.set(peer, null); // a new transfer session: its first route is not known yet
    const iceServers = lane ? laneIceServers(this.iceServers, this.routes.get(peer) ?? null) : this.iceServers;
    createOffer(iceServers).then(({ pc, channel, localSdp }) => {
      if (link.closed) {
        pc.close();
        return;
      }
      link.pc = pc;
      link.channel = channel;
      link.localSdp = localSdp;
      setUpChannel(channel);
      pc.addEventListener("connectionstatechange", () => {
        if (pc.connectionState === "failed" || pc.connectionState === "closed") lost(`the connection ${pc.connectionState}`);
      });
      channel.addEventListener("open", () => {
        link.nonce = newNonce();
        this.runner.feed({ type: "channel_open", conn, nonce: link.nonce });
        this.connected(link, pc);
      });
      channel.onmessage = (event) => {
        if (typeof event.data === "string") this.runner.feed({ type: "message", conn, text: event.data });
        else this.runner.feed({ type: "piece", conn }); // never from a receiver: the machine says so
      };
      channel.addEventListener("close", () => lost("the data channel closed"));
      const offer = { kind: "offer", session: link.session, sdp: localSdp, ...(lane ? { lane } : {}) };
      if (!this.signaling.signal(peer, offer)) lost("signaling is not connected");
    }).catch((error) => lost(`could not make an offer: ${error?.message ?? error}`));
  }

  /**
   * A receiver's answer to one of our offers.
   * @param {string} peer
   * @param {string} session
   * @param {string} sdp
   */
  answered(peer, session, sdp) {
    const link = [...this.links.values()].find((l) => l.peer === peer && l.session === session);
    if (!link || link.closed || !link.pc || link.remoteSdp) return;
    link.remoteSdp = sdp; // as received: its fingerprints go into the MAC
    applyAnswer(link.pc, sdp).catch((error) =>
      this.runner.feed({ type: "connection_lost", conn: link.conn, reason: `bad answer: ${error?.message ?? error}` }));
  }

  /**
   * A connection opened: the receiver's row shows the path of its transfer's first one and
   * how many its transfer opened (as the CLI counts them).
   * @param {PeerLink} link
   * @param {RTCPeerConnection} pc
   */
  connected(link, pc) {
    const row = this.row(link.peer);
    if (link.lane) row.connections += 1;
    else row.connections = 1;
    connectionRoute(pc).then((route) => {
      if (link.lane || link.closed) return;
      this.routes.set(link.peer, route);
      row.path = route?.kind ?? null;
      this.changed();
    }, (error) => console.warn("no statistics for the path:", error));
    this.changed();
  }

  /** @param {PeerLink} link */
  close(link) {
    link.closed = true;
    link.run += 1;
    link.reads.clear();
    closeSoon(link.channel, link.pc);
    this.links.delete(link.conn);
  }

  /**
   * Verify the receiver's MAC; if good, make ours (protocol.md 6).
   * @param {PeerLink} link
   * @param {Uint8Array<ArrayBuffer>} nonce
   * @param {Uint8Array<ArrayBuffer>} mac
   */
  async checkProof(link, nonce, mac) {
    /** @type {Record<string, unknown>} */
    const result = { ok: false };
    try {
      const key = await this.authKey;
      const handshake = new Handshake({
        room: this.room, senderFingerprints: sdpFingerprints(link.localSdp),
        receiverFingerprints: sdpFingerprints(link.remoteSdp), senderNonce: link.nonce, receiverNonce: nonce,
      });
      if (await handshake.verify(key, "receiver", mac)) {
        result.ok = true;
        result.mac = await handshake.mac(key, "sender");
      }
    } catch (error) {
      console.warn("could not check a receiver's proof:", error); // an SDP without fingerprints proves nothing
    }
    this.runner.feed({ type: "proof_checked", conn: link.conn, ...result });
  }

  /**
   * Read and hash a chunk: for `link` to send, or (null) for its digest only.
   * @param {PeerLink | null} link
   * @param {number} file
   * @param {number} chunk
   */
  read(link, file, chunk) {
    // The machine reads ahead one chunk at a time: what the link still holds is stale.
    link?.reads.clear();
    const source = this.files[file];
    const start = chunk * CHUNK_SIZE;
    source.slice(start, Math.min(start + CHUNK_SIZE, source.size)).arrayBuffer()
      .then(async (buffer) => {
        const data = new Uint8Array(buffer);
        const digest = await chunkDigest(data);
        if (link && !link.closed) link.reads.set(chunkKey(file, chunk), data);
        this.runner.feed({ type: "chunk_read", ...(link ? { conn: link.conn } : {}), file, chunk, size: data.length, digest });
      })
      .catch(() => this.runner.feed({
        type: "read_failed", file, chunk, message: `cannot read ${source.name} any more (was it moved or changed?)`,
      }));
  }

  /**
   * The chunk read for `link` as pieces, waiting while the send queue is full
   * (protocol.md 8.2, 9); `pieces_sent` unless stopped meanwhile.
   * @param {PeerLink} link
   * @param {number} file
   * @param {number} chunk
   */
  sendPieces(link, file, chunk) {
    const data = link.reads.get(chunkKey(file, chunk));
    link.reads.delete(chunkKey(file, chunk));
    if (!data) throw new Error(`send_pieces for file ${file} chunk ${chunk}, which was not read`);
    link.run += 1;
    const run = link.run;
    const channel = /** @type {RTCDataChannel} */ (link.channel);
    const limit = piecePayloadLimit(link.pc?.sctp?.maxMessageSize ?? 65536);
    if (!link.frame || link.frame.length !== HEADER_SIZE + limit) link.frame = new Uint8Array(HEADER_SIZE + limit);
    const frame = link.frame;
    const wire = corruptOnce(file, chunk, data);
    const send = async () => {
      for (let offset = 0; offset < wire.length; offset += limit) {
        await drained(channel);
        if (link.run !== run || channel.readyState !== "open") return false;
        const piece = encodePiece(file, chunk, offset, wire.subarray(offset, offset + limit), frame);
        garbleOnce(file, chunk, offset, piece);
        channel.send(/** @type {Uint8Array<ArrayBuffer>} */ (piece));
      }
      return true;
    };
    send().then(
      (sent) => sent && this.runner.feed({ type: "pieces_sent", conn: link.conn, file, chunk }),
      (error) => this.runner.feed({ type: "connection_lost", conn: link.conn, reason: `sending failed: ${error?.message ?? error}` }),
    );
  }

  // -- for the page -------------------------------------------------------------------

  /** @param {string} peer */
  row(peer) {
    let row = this.receivers.get(peer);
    if (!row) {
      row = {
        peer, number: this.receivers.size + 1, state: "connecting", acked: 0, total: 0, detail: "", code: "", digests: [],
        path: null, connections: 0,
      };
      this.receivers.set(peer, row);
    }
    return row;
  }

  /** @param {Action} action the machine's `receiver` report */
  report(action) {
    const row = this.row(action.peer);
    row.state = action.state;
    row.acked = action.acked;
    row.total = action.total;
    row.detail = action.detail ?? "";
    row.code = action.code ?? "";
    if (action.digests) row.digests = action.digests;
    this.changed();
  }

  /** @param {string} text */
  notice(text) {
    this.dispatchEvent(new CustomEvent("notice", { detail: text }));
  }

  /**
   * The offer is over: nothing more to signal or time.
   * @param {string} reason
   */
  end(reason) {
    this.finished = reason;
    this.runner.stop();
    this.signaling.stop();
    for (const link of [...this.links.values()]) this.close(link);
    this.changed();
  }
}
