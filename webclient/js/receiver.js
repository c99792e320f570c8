// @ts-check
/**
 * The receiving page's session driver around the receiver machine (protocol.md section
 * 14.2). One ReceiverSession per opened link: it joins the room, answers the sender's
 * offers, and carries out the machine's actions. Every protocol decision — what to
 * answer, which pieces to keep, when to acknowledge, resume or give up — comes from the
 * machine; this module only does the I/O: signaling, RTCPeerConnection and its data
 * channel, WebCrypto (keys, MACs, chunk digests), storage (ReceiveStorage), the timer.
 *
 * No DOM: the view (ui/receiver-view.js) shows `state`, `status` and `outcome` in words
 * (ui/receiver-text.js), asks the user, and hands out the files this announces ("saved").
 */
import { answerOffer, connectionRoute, laneIceServers, readSignal } from "./rtc.js";
import { closeSoon, setUpChannel } from "./channel.js";
import { getRoom } from "./api.js";
import { dropNow } from "./faults.js";
import { LANES } from "./lanes.js";
import { MachineRunner } from "./machine-runner.js";
import {
  CONNECTION_REPLACED, ROOM_FULL, ROOM_LOCKED, ROOM_NOT_FOUND, SignalingClient,
} from "./signaling.js";
import { machineTiming } from "./timing.js";
import { Handshake, deriveAuthKey, newNonce, normalizePassword, sdpFingerprints } from "./protocol/auth.js";
import { b64urlEncode, randomBytes } from "./protocol/codec.js";
import { ChunkBuffer, chunkDigest, chunkLength } from "./protocol/chunks.js";
import {
  GAVE_UP, INTERNAL, NO_PATH, ProtocolError, RELAY_FAILED, SENDER_GONE, STORAGE_ERROR,
} from "./protocol/errors.js";
import { decodePiece } from "./protocol/frames.js";
import { encodeMessage } from "./protocol/messages.js";
import { ReceiverMachine } from "./protocol/receiver-machine.js";
import { ReceiveStorage } from "./storage/receive-storage.js";

/**
 * @typedef {import("./protocol/link.js").Link} Link
 * @typedef {import("./protocol/machine.js").Action} Action
 * @typedef {import("./protocol/messages.js").Manifest} Manifest
 * @typedef {"checking" | "connecting" | "waiting" | "password" | "verifying" | "offer" | "saving" |
 *           "receiving" | "reconnecting" | "done" | "stopped"} ReceiverState
 *   What the page is doing: "checking" the link before joining, a machine `status`, or over.
 * @typedef {{outcome: "done" | "declined" | "failed", code: string, detail: string, remote: boolean}} Outcome
 *   How the receive ended: the machine's `end` (protocol.md 14.2), or a refusal of the
 *   signaling server (docs/signaling.md codes).
 * @typedef {{index: number, name: string, kind: import("./storage/plan.js").FileKind, file: File | null}} Saved
 *   A finished file and where it went (`kind`); `file`: the browser's private copy, kept
 *   because it could not be handed to the downloads by a stream: the page offers it.
 * @typedef {import("./rtc.js").PathKind} PathKind
 * @typedef {import("./rtc.js").Route} Route
 */

/** Ends after which the page offers to try again (a fresh attempt, resuming what is held). */
const RETRYABLE = new Set([NO_PATH, RELAY_FAILED, GAVE_UP, SENDER_GONE]);

/** The signaling identity of this tab in a room: a reload gets the same peer id back. */
function identity(/** @type {string} */ room) {
  const key = `peerbeam:receiver:${room}`;
  const stored = sessionStorage.getItem(key);
  const me = stored ? /** @type {{peer: string | null, token: string}} */ (JSON.parse(stored))
    : { peer: null, token: b64urlEncode(randomBytes(24)) };
  const save = (/** @type {string} */ peer) => sessionStorage.setItem(key, JSON.stringify({ peer, token: me.token }));
  if (!stored) sessionStorage.setItem(key, JSON.stringify(me));
  return { ...me, save };
}

/** One peer connection to the sender (the machine's `conn`). */
class ReceiverLink {
  /**
   * @param {string} conn
   * @param {string} offerSdp as received: its fingerprints go into the MACs (protocol.md 5.2)
   * @param {number} lane 0, or an extra connection of the running transfer (protocol.md 7.4)
   */
  constructor(conn, offerSdp, lane) {
    this.conn = conn;
    this.offerSdp = offerSdp;
    this.lane = lane;
    this.localSdp = "";
    /** @type {RTCPeerConnection | null} */
    this.pc = null;
    /** @type {RTCDataChannel | null} */
    this.channel = null;
    /** This connection's events, delivered one after another. @type {Promise<void>} */
    this.queue = Promise.resolve();
    /** The bytes of the chunk arriving. */
    this.buffer = new ChunkBuffer();
    /** The piece just fed to the machine: placed unless the machine drops it. @type {import("./protocol/frames.js").Piece | null} */
    this.keep = null;
    /** A result the machine needs before this connection's next event (a chunk's digest,
     * the check of the sender's proof: protocol.md 14.0) is on its way. @type {Promise<void> | null} */
    this.awaited = null;
    /** The chunk just hashed, waiting for `write_chunk` or `drop_chunk`. @type {Uint8Array<ArrayBuffer> | null} */
    this.hashed = null;
    /** The auth key of our proof on this connection. @type {Uint8Array<ArrayBuffer> | null} */
    this.key = null;
    this.closed = false;
  }
}

export class ReceiverSession extends EventTarget {
  /**
   * @param {Link} link
   * @param {{apiUrl: string, wsUrl: string}} config
   * @param {ReceiveStorage} [storage]
   * @param {string | null} [accepted] the transfer the user accepted in an earlier attempt
   *   on this page, whose storage `storage` holds (Try again)
   */
  constructor(link, config, storage = new ReceiveStorage(), accepted = null) {
    super();
    this.link = link;
    this.config = config;
    this.storage = storage;
    storage.onActivity = () => this.changed();
    this.machine = new ReceiverMachine({
      // A link with flag `p` refuses a sender that asks for no password; a link without
      // flags (made before the flag existed) says nothing either way.
      expectPassword: link.password ? true : null,
      timing: machineTiming(),
      lanes: LANES.lanes,
      accepted,
    });
    this.runner = new MachineRunner(this.machine, (action) => this.carryOut(action));
    /** @type {ReceiverState} */
    this.state = "checking";
    /** The machine's last `status` (state, and `remaining`, `held` or `reconnected`). @type {Record<string, any>} */
    this.status = { state: "checking" };
    /** @type {Outcome | null} */
    this.outcome = null;
    /** @type {Manifest | null} */
    this.manifest = null;
    /** Bytes held on storage, of `total`. */
    this.held = 0;
    this.total = 0;
    /** The final file digests (hex), when done. @type {string[]} */
    this.digests = [];
    /** Where the files will go, said before Accept (storage/plan.js); null until known. @type {import("./storage/plan.js").Plan | null} */
    this.plan = null;
    /** The user cancelled the save picker: Accept asks again. */
    this.choosing = false;
    /** A `prepare_storage` not yet carried out. @type {{manifest: Manifest, ids: (string | null)[]} | null} */
    this.preparing = null;
    /** @type {Map<string, ReceiverLink>} */
    this.links = new Map();
    /** The sender's offer being fed to the machine, by session. @type {Map<string, {from: string, sdp: string, lane: number}>} */
    this.offers = new Map();
    /** The path of the transfer's first connection, once known. @type {PathKind | null} */
    this.path = null;
    /** Its route, for the transfer's extra connections. @type {Route | null} */
    this.route = null;
    /** Connections (lanes) the transfer opened, as the CLI counts them. */
    this.connections = 0;
    /** File bytes received over the network in this attempt (the drop_lane fault counts them). */
    this.networkBytes = 0;
    /** Auth keys by password and iteration count: PBKDF2 runs once for each. @type {Map<string, Promise<Uint8Array<ArrayBuffer>>>} */
    this.keys = new Map();
    /** @type {SignalingClient | null} */
    this.signaling = null;
    /** @type {RTCIceServer[]} */
    this.iceServers = [];
  }

  async start() {
    const room = await getRoom(this.config.apiUrl, this.link.room).catch(() => undefined);
    const me = identity(this.link.room);
    if (room === null) return this.stop(ROOM_NOT_FOUND);
    if (room?.locked && !me.peer) return this.stop(ROOM_LOCKED);
    if (room?.full && !me.peer) return this.stop(ROOM_FULL);
    this.setState("connecting");
    const signaling = new SignalingClient({ wsUrl: this.config.wsUrl, room: this.link.room, role: "receiver", token: me.token, peer: me.peer });
    this.signaling = signaling;
    /** @param {string} type @param {(detail: any) => void} handler */
    const on = (type, handler) => signaling.addEventListener(type, (e) => handler(/** @type {CustomEvent} */ (e).detail));
    let rejoin = Boolean(me.peer);
    on("welcome", (welcome) => {
      me.save(welcome.peer);
      this.iceServers = welcome.ice_servers;
      this.runner.feed({ type: "peers", peers: welcome.peers, rejoin });
      rejoin = true; // every later welcome is a reconnect
    });
    on("peer-joined", ({ peer, role }) => this.runner.feed({ type: "peer_joined", peer, role }));
    on("signal", ({ from, data }) => {
      const signal = readSignal(data);
      if (signal?.kind !== "offer") return;
      // The machine answers an offer at once or never (protocol.md 14.2).
      this.offers.set(signal.session, { from, sdp: signal.sdp, lane: signal.lane });
      this.runner.feed({ type: "offer", from, session: signal.session, lane: signal.lane });
      this.offers.delete(signal.session);
    });
    on("room-closed", () => this.runner.feed({ type: "room_gone", reason: "the sender closed the room" }));
    on("refused", async () => {
      const state = await getRoom(this.config.apiUrl, this.link.room).catch(() => undefined);
      if (state === null) this.runner.feed({ type: "room_gone", reason: "the room expired" });
      else if (state?.locked && !signaling.peer) this.stop(ROOM_LOCKED);
    });
    on("server-error", ({ code }) => {
      if (code === CONNECTION_REPLACED) this.stop(CONNECTION_REPLACED);
    });
    signaling.connect();
  }

  // -- the user -----------------------------------------------------------------------

  /** @param {string} password typed by the user; throws when it cannot be a password */
  submitPassword(password) {
    normalizePassword(password);
    this.runner.feed({ type: "password_entered", password });
  }

  /** The user clicked Accept (must run inside the click: the save pickers need it). */
  accept() {
    if (this.preparing) {
      this.choosing = false;
      this.setState("saving");
      this.prepare(this.preparing.manifest, this.preparing.ids);
    } else {
      this.runner.feed({ type: "user_accepted" });
    }
  }

  decline() {
    this.preparing = null;
    this.runner.feed({ type: "user_declined" });
  }

  /** Save pending resume records now (the page is going away or to the background). */
  flush() {
    return this.storage.flush();
  }

  /** Accept waits for the browser's question "keep data permanently?" to be answered. */
  get asking() {
    return this.storage.activity?.what === "persist";
  }

  /** True while an accepted transfer is not over (the page keeps the screen on and warns). */
  get busy() {
    return this.machine.accepted !== null && this.outcome === null;
  }

  /** The receive gave up on getting a connection: a fresh attempt may help (Try again). */
  get retryable() {
    return this.outcome !== null && this.outcome.outcome === "failed" && RETRYABLE.has(this.outcome.code);
  }

  /**
   * A fresh attempt after a give-up, without reloading the page: a new session on the same
   * storage, which resumes what is held (and accepts by itself when the sender still offers
   * the transfer the user accepted). The caller starts it.
   */
  again() {
    return new ReceiverSession(this.link, this.config, this.storage, this.machine.accepted);
  }

  // -- the machine's actions ----------------------------------------------------------

  /** @param {Action} action */
  carryOut(action) {
    const link = action.conn === undefined ? undefined : this.links.get(action.conn);
    switch (action.type) {
      case "answer":
        this.answer(action.conn, action.session);
        break;
      case "restart":
        this.signaling?.signal(action.to, { kind: "restart" });
        break;
      case "send":
        if (link?.channel?.readyState === "open") link.channel.send(encodeMessage(action.message));
        break;
      case "close":
        if (link) this.close(link);
        break;
      case "ask_password":
        break; // the status that follows says it
      case "make_proof":
        if (link) void this.makeProof(link, action.password, action.iterations, action.sender_nonce);
        break;
      case "check_sender_proof":
        if (link) link.awaited = this.checkSenderProof(link, action.mac, action.sender_nonce, action.receiver_nonce);
        break;
      case "load_records":
        this.offered(action.manifest);
        this.storage.loadRecords(action.manifest).then(
          (records) => this.runner.feed({ type: "records_loaded", records }),
          (error) => {
            console.warn("cannot read the resume records:", error); // then nothing is resumed
            this.runner.feed({ type: "records_loaded", records: [] });
          });
        break;
      case "ask_accept":
        this.held = action.held;
        this.storage.preview(action.manifest).then((plan) => {
          this.plan = plan;
          this.changed();
        }, (error) => console.warn("cannot plan the storage:", error));
        break;
      case "prepare_storage":
        this.prepare(action.manifest, action.records);
        break;
      case "reset_file":
        this.storage.reset(action.file).catch((error) => this.storageFailed(error));
        break;
      case "drop_piece":
        if (link) link.keep = null;
        break;
      case "hash_chunk":
        if (link) this.hash(link, action.file, action.chunk);
        break;
      case "drop_chunk":
        if (link?.hashed) link.buffer.recycle(link.hashed);
        if (link) link.hashed = null;
        break;
      case "write_chunk":
        if (link) this.write(link, action.file, action.chunk, action.position, action.digest);
        break;
      case "finish_file":
        this.finish(action.file);
        break;
      case "status":
        this.status = action;
        if (this.outcome === null) this.setState(action.state);
        break;
      case "progress":
        this.held = action.held;
        this.total = action.total;
        this.changed();
        break;
      case "end":
        this.ended({ outcome: action.outcome, code: action.code, detail: action.detail, remote: Boolean(action.remote) }, action.digests);
        break;
      default:
        throw new Error(`the receiver page cannot carry out ${action.type}`);
    }
  }

  /**
   * Answer the sender's offer `session` with a new peer connection.
   * @param {string} conn
   * @param {string} session
   */
  answer(conn, session) {
    const offer = /** @type {{from: string, sdp: string, lane: number}} */ (this.offers.get(session));
    const link = new ReceiverLink(conn, offer.sdp, offer.lane);
    this.links.set(conn, link);
    /** @param {string} reason */
    const lost = (reason) => this.inOrder(link, () => this.runner.feed({ type: "connection_lost", conn, reason }));
    if (!offer.lane) this.route = null; // a new transfer session: its first route is not known yet
    const iceServers = offer.lane ? laneIceServers(this.iceServers, this.route) : this.iceServers;
    answerOffer(iceServers, offer.sdp).then(async ({ pc, localSdp, channel }) => {
      if (link.closed) {
        pc.close();
        return;
      }
      link.pc = pc;
      link.localSdp = localSdp;
      pc.addEventListener("connectionstatechange", () => {
        if (pc.connectionState === "failed" || pc.connectionState === "closed") lost(`the connection ${pc.connectionState}`);
      });
      this.signaling?.signal(offer.from, { kind: "answer", session, sdp: localSdp });
      const raw = await channel;
      if (link.closed) return;
      link.channel = raw;
      setUpChannel(raw);
      raw.onmessage = (event) => this.inOrder(link, () => this.frame(link, event.data));
      raw.addEventListener("close", () => lost("the data channel closed"));
      const opened = () => this.inOrder(link, () => {
        this.runner.feed({ type: "channel_open", conn });
        this.connected(link, pc);
      });
      if (raw.readyState === "open") opened();
      else raw.addEventListener("open", opened, { once: true });
    }).catch((error) => this.runner.feed({ type: "connection_lost", conn, reason: `could not answer: ${error?.message ?? error}` }));
  }

  /**
   * Deliver a connection's events in the order they happened, each after the result of a
   * `hash_chunk` or `check_sender_proof` it started (protocol.md 14.0): the manifest comes
   * right behind `auth-ok`, and the machine must know first whether the sender is genuine.
   * @param {ReceiverLink} link
   * @param {() => void} deliver
   */
  inOrder(link, deliver) {
    link.queue = link.queue.then(async () => {
      if (link.closed) return;
      deliver();
      if (link.awaited) await link.awaited;
    }).catch((error) => console.error(error));
  }

  /**
   * A frame from the sender: a text message, or a piece whose payload is placed unless
   * the machine drops it.
   * @param {ReceiverLink} link
   * @param {string | ArrayBuffer} data
   */
  frame(link, data) {
    if (typeof data === "string") {
      this.runner.feed({ type: "message", conn: link.conn, text: data });
      return;
    }
    let piece;
    try {
      piece = decodePiece(data);
    } catch (error) {
      this.runner.feed({ type: "bad_piece", conn: link.conn, detail: String(/** @type {Error} */ (error)?.message ?? error) });
      return;
    }
    link.keep = piece;
    this.runner.feed({ type: "piece", conn: link.conn, file: piece.file, chunk: piece.chunk, offset: piece.offset, size: piece.payload.length });
    if (link.keep === piece && !link.closed && this.manifest) {
      link.buffer.put(piece.offset, piece.payload, chunkLength(this.manifest.files[piece.file].size, piece.chunk));
    }
    link.keep = null;
    this.networkBytes += piece.payload.length;
    if (link.lane && !link.closed && dropNow(this.networkBytes, "drop_lane")) {
      // Test fault: this extra connection breaks (a closing side hears no event of its own).
      link.pc?.close();
      this.runner.feed({ type: "connection_lost", conn: link.conn, reason: "dropped (test fault)" });
    }
  }

  /**
   * A connection opened: the page shows the path of the transfer's first one and how many
   * the transfer opened.
   * @param {ReceiverLink} link
   * @param {RTCPeerConnection} pc
   */
  connected(link, pc) {
    this.connections = link.lane ? this.connections + 1 : 1;
    connectionRoute(pc).then((route) => {
      if (link.lane || link.closed) return;
      this.route = route;
      this.path = route?.kind ?? null;
      this.changed();
    }, (error) => console.warn("no statistics for the path:", error));
    this.changed();
  }

  /** @param {ReceiverLink} link */
  close(link) {
    link.closed = true;
    this.links.delete(link.conn);
    closeSoon(link.channel, link.pc);
    // The transfer's connections are all gone: close the open files (reopened by the next
    // write). An extra lane going costs nothing here: the others still write.
    if (!this.links.size) this.storage.release().catch((error) => console.warn("closing the files:", error));
  }

  /**
   * @param {string | null} password
   * @param {number | null} iterations
   */
  authKey(password, iterations) {
    const cacheKey = `${password === null ? "" : `p:${password}`}:${iterations}`;
    let key = this.keys.get(cacheKey);
    if (!key) {
      key = deriveAuthKey(this.link.key, this.link.room, password, iterations ?? undefined);
      this.keys.set(cacheKey, key);
      key.catch(() => this.keys.delete(cacheKey));
    }
    return key;
  }

  /**
   * @param {ReceiverLink} link
   * @param {Uint8Array} senderNonce
   * @param {Uint8Array} receiverNonce
   */
  handshake(link, senderNonce, receiverNonce) {
    return new Handshake({
      room: this.link.room, senderFingerprints: sdpFingerprints(link.offerSdp),
      receiverFingerprints: sdpFingerprints(link.localSdp), senderNonce, receiverNonce,
    });
  }

  /**
   * Derive the key, pick a nonce, MAC (protocol.md 6, step 2).
   * @param {ReceiverLink} link
   * @param {string | null} password
   * @param {number | null} iterations
   * @param {Uint8Array} senderNonce
   */
  async makeProof(link, password, iterations, senderNonce) {
    try {
      const key = await this.authKey(password, iterations);
      const nonce = newNonce();
      const mac = await this.handshake(link, senderNonce, nonce).mac(key, "receiver");
      link.key = key;
      this.runner.feed({ type: "proof_made", conn: link.conn, nonce, mac });
    } catch (error) {
      // An SDP without fingerprints cannot be authenticated: this connection is useless.
      console.error("could not make our proof:", error);
      this.close(link);
      this.runner.feed({ type: "connection_lost", conn: link.conn, reason: "could not make our proof" });
    }
  }

  /**
   * @param {ReceiverLink} link
   * @param {Uint8Array<ArrayBuffer>} mac
   * @param {Uint8Array} senderNonce
   * @param {Uint8Array} receiverNonce
   */
  async checkSenderProof(link, mac, senderNonce, receiverNonce) {
    let ok = false;
    try {
      ok = await this.handshake(link, senderNonce, receiverNonce).verify(/** @type {Uint8Array<ArrayBuffer>} */ (link.key), "sender", mac);
    } catch (error) {
      console.error("could not check the sender's proof:", error);
    }
    link.awaited = null;
    this.runner.feed({ type: "sender_proof_checked", conn: link.conn, ok });
  }

  /** @param {Manifest} manifest */
  offered(manifest) {
    this.manifest = manifest;
    this.total = manifest.files.reduce((n, f) => n + f.size, 0);
  }

  /**
   * Where the files go (the pickers need the Accept click: this runs inside it).
   * @param {Manifest} manifest
   * @param {(string | null)[]} ids
   */
  prepare(manifest, ids) {
    this.preparing = { manifest, ids };
    this.storage.prepare(manifest, ids).then((ready) => {
      if (ready) {
        this.preparing = null;
        this.runner.feed({ type: "storage_ready" });
      } else {
        this.choosing = true; // the picker was cancelled: the offer stays, nothing is saved
        this.setState("offer");
      }
    }, (error) => {
      this.preparing = null;
      this.storageFailed(error);
    });
  }

  /** @param {unknown} error */
  storageFailed(error) {
    const failure = error instanceof ProtocolError ? error : new ProtocolError(STORAGE_ERROR, String(/** @type {Error} */ (error)?.message ?? error));
    this.runner.feed({ type: "storage_failed", code: failure.code, message: failure.message });
  }

  /**
   * The chunk is complete: its digest, before anything else of this connection.
   * @param {ReceiverLink} link
   * @param {number} file
   * @param {number} chunk
   */
  hash(link, file, chunk) {
    const data = link.buffer.take();
    link.awaited = chunkDigest(data).then((digest) => {
      link.awaited = null;
      link.hashed = data;
      this.runner.feed({ type: "chunk_hashed", conn: link.conn, file, chunk, digest });
    });
  }

  /**
   * @param {ReceiverLink} link
   * @param {number} file
   * @param {number} chunk
   * @param {number} position
   * @param {Uint8Array} digest
   */
  write(link, file, chunk, position, digest) {
    const data = /** @type {Uint8Array<ArrayBuffer>} */ (link.hashed);
    link.hashed = null;
    this.storage.write(file, chunk, position, data, digest).then((reusable) => {
      if (reusable) link.buffer.recycle(data);
      this.runner.feed({ type: "chunk_written", conn: link.conn, file, chunk });
    }, (error) => this.storageFailed(error));
  }

  /** @param {number} file */
  finish(file) {
    this.storage.finish(file).then(({ kind, file: kept }) => {
      const name = this.storage.records[file].saveName;
      this.dispatchEvent(new CustomEvent("saved", { detail: /** @type {Saved} */ ({ index: file, name, kind, file: kept }) }));
      this.runner.feed({ type: "file_finished", file });
    }, (error) => this.storageFailed(error));
  }

  /**
   * The machine's `end`: the receive is over.
   * @param {Outcome} outcome
   * @param {string[] | undefined} digests
   */
  ended(outcome, digests) {
    this.outcome = outcome;
    this.preparing = null;
    if (digests) this.digests = digests;
    if (outcome.outcome === "done") this.held = this.total;
    this.signaling?.stop();
    this.storage.release(true).catch((error) => console.warn("closing the files:", error));
    this.setState(outcome.outcome === "done" ? "done" : "stopped");
  }

  /**
   * The page cannot go on (the signaling server refused us, another tab took over): no
   * word to the sender, whose connection simply ends.
   * @param {string} code
   * @param {string} [detail]
   */
  stop(code, detail = "") {
    if (this.outcome) return;
    this.outcome = { outcome: "failed", code, detail, remote: false };
    this.runner.stop();
    this.signaling?.stop();
    for (const link of [...this.links.values()]) this.close(link);
    this.storage.release(true).catch((error) => console.warn("closing the files:", error));
    this.setState("stopped");
  }

  /** The service could not be reached at all. @param {unknown} error */
  unreachable(error) {
    this.stop(INTERNAL, `could not reach the service: ${/** @type {Error} */ (error)?.message ?? error}`);
  }

  /** @param {ReceiverState} state */
  setState(state) {
    this.state = state;
    this.changed();
  }

  changed() {
    this.dispatchEvent(new Event("change"));
  }
}
