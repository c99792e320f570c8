// @ts-check
/**
 * The receiver's session machine (protocol.md section 14.2): one per run of a link (a
 * receiver page), across every connection to the sender. Pure: no I/O, no clock, no
 * randomness. The Python twin is peerbeam/transfer/receiver_machine.py; both must produce
 * exactly the actions of docs/protocol-traces.json.
 *
 * Events (driver → machine), besides `tick`:
 * - signaling: `peers {peers: [{peer, role}], rejoin}` (a welcome; `rejoin`: we were in
 *   this room before, or the socket reconnected), `peer_joined {peer, role}`,
 *   `offer {from, session}`, `room_gone {reason}`;
 * - one connection: `channel_open {conn}`, `message {conn, text}`,
 *   `piece {conn, file, chunk, offset, size}` (a binary frame's header and payload length),
 *   `bad_piece {conn, detail}` (a binary frame whose header does not decode),
 *   `connection_lost {conn, reason}`;
 * - the user: `password_entered {password}`, `user_accepted`, `user_declined`,
 *   `user_cancelled`;
 * - results of actions: `proof_made {conn, nonce, mac}`, `sender_proof_checked {conn, ok}`,
 *   `records_loaded {records}`, `storage_ready`, `storage_failed {code, message}`,
 *   `chunk_hashed {conn, file, chunk, digest}`, `chunk_written {conn, file, chunk}`,
 *   `file_finished {file}`.
 *
 * Actions (machine → driver), besides `wake`: `answer {conn, session}`, `restart {to}`,
 * `send {conn, message}`, `close {conn}`, `ask_password {remaining}`,
 * `make_proof {conn, password, iterations, sender_nonce}`,
 * `check_sender_proof {conn, mac, sender_nonce, receiver_nonce}`, `load_records {manifest}`,
 * `ask_accept {manifest, held}`, `prepare_storage {manifest, records}`, `reset_file {file}`,
 * `drop_piece {conn}`, `hash_chunk {conn, file, chunk}`, `drop_chunk {conn, file, chunk}`,
 * `write_chunk {conn, file, chunk, position, digest}`, `finish_file {file, digest}`,
 * `status {state, …}`, `progress {held, total}`, `end {outcome, code, detail, …}` (`code`
 * says why; the user interface words it).
 *
 * Protocol v1.1 (lanes, protocol.md 7.4 and 8.7): with `lanes`, the sender may carry the
 * transfer over several connections; `offer {lane}` for an extra one, which joins it.
 *
 * The driver delivers `chunk_hashed` before any further event of that connection, and
 * carries out `write_chunk` / `finish_file` / `reset_file` strictly in order.
 */
import { bytesEqual, hexEncode } from "./codec.js";
import { chunkCount, chunkLength, fileDigest } from "./chunks.js";
import { WINDOW_CHUNKS } from "./constants.js";
import {
  AUTH_FAILED, BAD_FRAME, CANCELLED, DECLINED, DISK_FULL, DONE, GAVE_UP, INTEGRITY, NO_PATH, PASSWORD_DOWNGRADE,
  ProtocolError, RELAY_FAILED, ROOM_CLOSED, SENDER_GONE, STORAGE_ERROR, WRONG_LINK, WRONG_PASSWORD,
  errorMessage, frameError,
} from "./errors.js";
import { Keepalive, Machine, DEFAULT_TIMING, positionKey } from "./machine.js";
import { checkStart, parseMessage } from "./messages.js";
import { matchRecords } from "./resume.js";

/**
 * @typedef {import("./machine.js").MachineEvent} MachineEvent
 * @typedef {import("./machine.js").Position} Position
 * @typedef {import("./machine.js").SessionTiming} SessionTiming
 * @typedef {import("./messages.js").Message} Message
 * @typedef {import("./messages.js").Manifest} Manifest
 * @typedef {import("./messages.js").Hello} Hello
 * @typedef {import("./messages.js").Accept} Accept
 * @typedef {import("./resume.js").ResumeRecord} ResumeRecord
 */

// Connection states.
const OPENING = "opening";
const HELLO = "hello";
const PASSWORD = "password";
const PROVING = "proving";
const AUTHING = "authing";
const VERIFYING = "verifying";
const MANIFEST = "manifest";
const MATCHING = "matching";
const ASKING = "asking";
const PREPARING = "preparing";
const STARTING = "starting";
const RECEIVING = "receiving";
const FINISHING = "finishing";
const COMPLETED = "done";
const CLOSED = "closed";

/** The whole receive ends (not only this connection). */
class End extends Error {
  /**
   * @param {string} code
   * @param {string} [detail]
   * @param {ProtocolError | null} [wire] what to tell the sender, if anything
   * @param {boolean} [remote] the sender said so
   */
  constructor(code, detail = "", wire = null, remote = false) {
    super(detail || code);
    this.code = code;
    this.detail = detail;
    this.wire = wire;
    this.remote = remote;
  }
}

/**
 * Where the data phase of one connection stands (protocol.md 8): which piece, chunk
 * message and file-done may come next, and what is in flight to the disk.
 */
class Stream {
  /**
   * @param {number[]} sizes
   * @param {number[]} offsets
   */
  constructor(sizes, offsets) {
    this.sizes = sizes;
    this.offsets = offsets;
    this.file = 0;
    this.chunk = offsets.length ? chunkCount(offsets[0]) : 0;
    /** Payload bytes of the current chunk. */
    this.received = 0;
    /** After a nack: drop until this chunk restarts. @type {Position | null} */
    this.discarding = null;
    /** The chunk being hashed: file, chunk, announced digest. @type {[number, number, Uint8Array] | null} */
    this.hashing = null;
    /** Acks and nacks to send, in order. @type {["ack" | "nack", number, number][]} */
    this.outcomes = [];
    /** Chunk messages taken and not yet answered. */
    this.unacked = 0;
    this.done = false;
    /** Chunks this connection may have unanswered. */
    this.window = WINDOW_CHUNKS;
    /** Lane mode: the chunk whose pieces come now. @type {Position | null} */
    this.assembling = null;
  }

  /**
   * (file, chunk) whose pieces come next, (file, -1) for its file-done, null: all done.
   * @returns {Position | null}
   */
  expecting() {
    if (this.file >= this.sizes.length) return null;
    if (this.chunk >= chunkCount(this.sizes[this.file])) return [this.file, -1];
    return [this.file, this.chunk];
  }

  nextFile() {
    this.file += 1;
    this.received = 0;
    if (this.file < this.sizes.length) this.chunk = chunkCount(this.offsets[this.file]);
  }
}

class Connection {
  /**
   * @param {string} conn
   * @param {number} openedAt
   * @param {number} [lane] v1.1: 0 for the connection that started the transfer, k for an extra one
   */
  constructor(conn, openedAt, lane = 0) {
    this.conn = conn;
    this.openedAt = openedAt;
    this.lane = lane;
    this.state = OPENING;
    /** @type {Keepalive | null} */
    this.keepalive = null;
    /** @type {Hello | null} */
    this.hello = null;
    /** Ours, of the proof in flight. */
    this.nonce = new Uint8Array(0);
    /** @type {Accept | null} */
    this.accept = null;
    /** @type {Stream | null} */
    this.stream = null;
  }
}

/** @param {Position | null} position */
const describe = (position) => (position === null ? "nothing" : position.join("/"));

export class ReceiverMachine extends Machine {
  /**
   * @param {{expectPassword?: boolean | null, password?: string | null, autoAccept?: boolean,
   *          timing?: Readonly<SessionTiming>, lanes?: number | null, accepted?: string | null}} [options]
   *   `expectPassword`: the link says a password is set (true) or not (false); null for a
   *   link that does not say. `password`: known up front. `autoAccept`: accept without
   *   asking (the CLI). `lanes`: protocol v1.1, the most connections this receiver takes
   *   for one transfer (null: a v1 receiver). `accepted`: the transfer the user already
   *   accepted, with its storage prepared, when a new machine takes over (the page's Try
   *   again): a manifest of it is accepted by itself, as on a reconnect.
   */
  constructor({ expectPassword = null, password = null, autoAccept = false, timing = DEFAULT_TIMING, lanes = null, accepted = null } = {}) {
    super(timing);
    this.maxLanes = lanes;
    /** Both sides speak v1.1: chunks may come on several lanes. */
    this.laneMode = false;
    /** Lane index → conn, while a transfer runs. @type {Map<number, string>} */
    this.lanes = new Map();
    this.agreed = 1;
    /** Chunk (positionKey) → the lane assembling it. @type {Map<string, string>} */
    this.taken = new Map();
    /** Per file: chunks written, held or not yet. @type {Set<number>[]} */
    this.written = [];
    /** Lane mode: each file's digest from file-done. @type {(Uint8Array | null)[]} */
    this.expected = [];
    this.expectPassword = expectPassword;
    this.password = password;
    this.autoAccept = autoAccept;
    /** @type {string | null} */
    this.sender = null;
    /** @type {Map<string, Connection>} */
    this.connections = new Map();
    /** @type {Connection | null} */
    this.current = null;
    // Getting a connection (back), protocol.md 14.2 "Connecting and giving up".
    /** The sender absent, never connected. @type {number | null} */
    this.waitingSince = null;
    this.connectedEver = false;
    /** Never connected: the first offer answered. @type {number | null} */
    this.firstAttemptAt = null;
    /** Anything from the sender, on any connection. @type {number | null} */
    this.lastProgress = null;
    /** Ask for a new connection again at. @type {number | null} */
    this.retryAt = null;
    this.backoff = this.timing.retry_min;
    /** The relay, as the driver found it: none, failed, ok. */
    this.relay = "none";
    /** @type {string | null} */
    this.roomGone = null;
    this.ended = false;
    /** @type {Manifest | null} */
    this.manifest = null;
    /** The transfer the user accepted. @type {string | null} */
    this.accepted = accepted;
    /** Per file: digests of chunks held durably. @type {Uint8Array[][]} */
    this.held = [];
    /** Per file: verified digests this session. @type {Uint8Array[][]} */
    this.digests = [];
    /** @type {(Uint8Array | null)[]} */
    this.fileDigests = [];
    /** The matching record of each file, if any. @type {(ResumeRecord | null)[]} */
    this.plan = [];
    /** Files being finalised. @type {Set<number>} */
    this.finishing = new Set();
    /** @type {Set<number>} */
    this.finished = new Set();
    this.serial = 0;
    /** @type {Record<string, (event: MachineEvent) => void>} */
    this.handlers = {
      peers: (e) => this.onPeers(e),
      peer_joined: (e) => this.onPeerJoined(e),
      offer: (e) => this.onOffer(e),
      room_gone: (e) => this.onRoomGone(e),
      channel_open: (e) => this.onChannelOpen(e),
      message: (e) => this.onMessage(e),
      piece: (e) => this.onPiece(e),
      bad_piece: (e) => this.onBadPiece(e),
      connection_lost: (e) => this.onConnectionLost(e),
      password_entered: (e) => this.onPasswordEntered(e),
      user_accepted: () => this.onUserAccepted(),
      user_declined: () => this.onUserDeclined(),
      user_cancelled: () => this.onUserCancelled(),
      proof_made: (e) => this.onProofMade(e),
      sender_proof_checked: (e) => this.onSenderProofChecked(e),
      records_loaded: (e) => this.onRecordsLoaded(e),
      storage_ready: () => this.onStorageReady(),
      storage_failed: (e) => this.onStorageFailed(e),
      chunk_hashed: (e) => this.onChunkHashed(e),
      chunk_written: (e) => this.onChunkWritten(e),
      file_finished: (e) => this.onFileFinished(e),
    };
  }

  /**
   * @param {MachineEvent} event
   * @returns {import("./machine.js").Action[]}
   */
  handle(event) {
    if (this.ended && event.type !== "tick") return []; // only the close of a finished connection is left to do
    return super.handle(event);
  }

  // -- the sender and its connections -------------------------------------------------

  sessionRunning() {
    return this.current !== null && this.current.state !== CLOSED;
  }

  /** @param {MachineEvent} event */
  onPeers(event) {
    const sender = event.peers.find((/** @type {{role: string}} */ p) => p.role === "sender")?.peer;
    if (sender !== undefined) {
      this.sender = sender;
      if (event.rejoin && !this.sessionRunning()) {
        // Back in a room we were in before (a reload, a signaling reconnect) without a
        // working connection: the sender may still hold one to our old self and would not
        // offer by itself.
        this.emit("restart", { to: sender });
      }
    }
    if (!this.sessionRunning()) {
      if (this.waitingSince === null) this.waitingSince = this.now;
      this.status(this.sender ? "connecting" : "waiting");
    }
  }

  /** @param {MachineEvent} event */
  onPeerJoined(event) {
    if (event.role === "sender") {
      this.sender = event.peer;
      if (!this.sessionRunning()) {
        this.waitingSince = this.now;
        this.status("connecting");
      }
    }
  }

  /** @param {MachineEvent} event */
  onOffer(event) {
    if (event.from !== this.sender || this.ended) return;
    const lane = Number(event.lane || 0);
    if (lane) {
      this.laneOffer(lane, event.session);
      return;
    }
    if (this.current !== null) this.close(this.current); // a new offer replaces the connection we had
    this.serial += 1;
    const connection = new Connection(`c${this.serial}`, this.now);
    this.connections.set(connection.conn, connection);
    this.current = connection;
    this.waitingSince = null;
    this.retryAt = null;
    if (!this.connectedEver && this.firstAttemptAt === null) this.firstAttemptAt = this.now;
    this.emit("answer", { conn: connection.conn, session: event.session });
  }

  /** @param {MachineEvent} event */
  onRoomGone(event) {
    this.roomGone = event.reason ? String(event.reason) : "";
    // A transfer whose connection works goes on; only a reconnect is impossible.
    if (!this.sessionRunning()) this.end(ROOM_CLOSED, this.roomGone);
  }

  /** @param {MachineEvent} event */
  connection(event) {
    const connection = this.connections.get(event.conn);
    return !connection || connection.state === CLOSED ? null : connection;
  }

  /**
   * @param {Connection} connection
   * @param {Message} message
   */
  send(connection, message) {
    this.emit("send", { conn: connection.conn, message });
  }

  /** @param {Connection} connection */
  close(connection) {
    if (connection.state === CLOSED) return;
    connection.state = CLOSED;
    this.emit("close", { conn: connection.conn });
    if (this.lanes.get(connection.lane) !== connection.conn) return;
    this.lanes.delete(connection.lane);
    for (const [chunk, conn] of [...this.taken]) if (conn === connection.conn) this.taken.delete(chunk);
    if (connection.lane === 0) {
      for (const conn of [...this.lanes.values()]) this.close(/** @type {Connection} */ (this.connections.get(conn))); // the transfer ends with its primary
    }
  }

  /** @param {MachineEvent} event */
  onConnectionLost(event) {
    this.relay = event.relay ? String(event.relay) : this.relay;
    const connection = this.connection(event);
    if (connection !== null) this.lost(connection);
  }

  /** @param {Connection} connection */
  lost(connection) {
    const wasDone = connection.state === COMPLETED;
    this.close(connection);
    if (connection !== this.current || this.ended || wasDone) return; // an extra lane costs only the chunks it was carrying
    if (this.roomGone !== null) {
      this.end(ROOM_CLOSED, this.roomGone);
      return;
    }
    // Keep everything, ask the sender for a new connection (it may not have noticed), and
    // resume on it; ask again, less and less often, until one works or it is time to give up.
    if (this.sender !== null) this.emit("restart", { to: this.sender });
    this.retryAt = this.now + this.backoff;
    this.backoff = Math.min(this.backoff * 2, this.timing.retry_max);
    this.status(this.connectedEver ? "reconnecting" : "connecting");
  }

  /**
   * @param {string} state
   * @param {Record<string, unknown>} [fields]
   */
  status(state, fields = {}) {
    this.emit("status", { state, ...fields });
  }

  /**
   * The receive is over. `code` says why (for the user's sentence), `detail` adds what the
   * sentence may quote (a peer's message, which digest differed).
   * @param {string} code
   * @param {string} [detail]
   * @param {Record<string, unknown>} [fields]
   */
  end(code, detail = "", fields = {}) {
    if (this.ended) return;
    this.ended = true;
    for (const connection of this.connections.values()) {
      if (connection.state !== CLOSED && connection.state !== COMPLETED) this.close(connection);
    }
    const outcome = code === DONE ? "done" : code === DECLINED ? "declined" : "failed";
    this.emit("end", { outcome, code, detail, ...fields });
  }

  /**
   * One step of a connection: a broken rule ends the transfer with the error sent.
   * @param {Connection} connection
   * @param {() => void} step
   */
  guarded(connection, step) {
    try {
      step();
    } catch (error) {
      if (error instanceof ProtocolError) {
        this.send(connection, errorMessage(error));
        this.close(connection);
        this.end(error.code, error.message);
      } else if (error instanceof End) {
        if (error.wire !== null) this.send(connection, errorMessage(error.wire));
        this.end(error.code, error.detail, error.remote ? { remote: true } : {});
      } else {
        throw error;
      }
    }
  }

  // -- authentication (protocol.md 6) -------------------------------------------------

  /** @param {MachineEvent} event */
  onChannelOpen(event) {
    const connection = this.connection(event);
    if (connection === null || connection.state !== OPENING) return;
    connection.keepalive = new Keepalive(this.timing, this.now);
    connection.state = HELLO;
    this.connectedEver = true;
    this.firstAttemptAt = null;
    this.backoff = this.timing.retry_min;
    this.lastProgress = this.now;
  }

  /** @param {MachineEvent} event */
  onMessage(event) {
    const connection = this.connection(event);
    if (connection === null || connection.keepalive === null) return;
    connection.keepalive.received(this.now);
    this.lastProgress = this.now;
    this.guarded(connection, () => this.message(connection, event.text));
  }

  /**
   * @param {Connection} connection
   * @param {string} text
   */
  message(connection, text) {
    const message = parseMessage(text);
    if (connection.stream?.hashing) throw new Error("the driver must deliver chunk_hashed before the next message");
    const state = connection.state;
    if (message.t === "ping") this.send(connection, { t: "pong" });
    else if (message.t === "pong") return;
    else if (message.t === "error") throw new End(message.code, message.message, null, true);
    else if (state === HELLO && message.t === "hello") this.hello(connection, message);
    else if (state === AUTHING && message.t === "auth-failed") this.authFailed(connection, message);
    else if (state === AUTHING && message.t === "auth-ok") {
      connection.state = VERIFYING;
      this.emit("check_sender_proof", {
        conn: connection.conn, mac: message.mac,
        sender_nonce: /** @type {Hello} */ (connection.hello).nonce, receiver_nonce: connection.nonce,
      });
    } else if (state === MANIFEST && message.t === "manifest" && !connection.lane) this.manifestArrived(connection, message);
    else if (state === MANIFEST && message.t === "join" && connection.lane) this.join(connection, message);
    else if (state === STARTING && message.t === "start") this.start(connection, message);
    else if (state === RECEIVING && message.t === "chunk") this.chunkEnd(connection, message);
    else if (state === RECEIVING && message.t === "file-done" && !connection.lane) this.fileDone(connection, message);
    else if (state === RECEIVING && message.t === "done" && !connection.lane) this.done(connection);
    else throw frameError(`unexpected '${message.t}' while ${state}`);
  }

  /**
   * @param {Connection} connection
   * @param {Hello} hello
   */
  hello(connection, hello) {
    connection.hello = hello;
    if (!connection.lane) this.laneMode = hello.lanes != null && this.maxLanes !== null;
    if (this.expectPassword && !hello.password) {
      // The link was made with a password: a "sender" that asks for none does not know it,
      // and would pass its own proof with the link key alone.
      throw new End(PASSWORD_DOWNGRADE, "", new ProtocolError(AUTH_FAILED, "the link needs a password; the sender asked for none"));
    }
    if (hello.password && this.password === null) {
      connection.state = PASSWORD;
      this.emit("ask_password", { remaining: null });
      this.status("password");
      return;
    }
    this.prove(connection);
  }

  /** @param {Connection} connection */
  prove(connection) {
    const hello = /** @type {Hello} */ (connection.hello);
    connection.state = PROVING;
    this.emit("make_proof", {
      conn: connection.conn, password: hello.password ? this.password : null,
      iterations: hello.iterations, sender_nonce: hello.nonce,
    });
    this.status("verifying");
  }

  /** @param {MachineEvent} event */
  onPasswordEntered(event) {
    this.password = event.password;
    const connection = this.current;
    if (connection !== null && connection.state === PASSWORD) this.prove(connection);
  }

  /** @param {MachineEvent} event */
  onProofMade(event) {
    const connection = this.connection(event);
    if (connection === null || connection.state !== PROVING) return;
    connection.nonce = event.nonce;
    connection.state = AUTHING;
    this.send(connection, { t: "auth", nonce: event.nonce, mac: event.mac });
  }

  /**
   * @param {Connection} connection
   * @param {import("./messages.js").AuthFailed} message
   */
  authFailed(connection, message) {
    if (message.retry) {
      this.password = null;
      connection.state = PASSWORD;
      this.emit("ask_password", { remaining: message.remaining });
      this.status("password", { remaining: message.remaining });
      return;
    }
    this.close(connection);
    this.end(/** @type {Hello} */ (connection.hello).password ? WRONG_PASSWORD : WRONG_LINK);
  }

  /** @param {MachineEvent} event */
  onSenderProofChecked(event) {
    const connection = this.connection(event);
    if (connection === null || connection.state !== VERIFYING) return;
    if (event.ok) {
      connection.state = MANIFEST;
      return;
    }
    this.guarded(connection, () => {
      throw new End(AUTH_FAILED, "", new ProtocolError(AUTH_FAILED, "could not verify the sender"));
    });
  }

  // -- manifest, accept, start (protocol.md 7, 10) ------------------------------------

  /**
   * @param {Connection} connection
   * @param {Manifest} manifest
   */
  manifestArrived(connection, manifest) {
    if (this.manifest !== null && manifest.transfer !== this.manifest.transfer && this.accepted) {
      throw frameError("the sender offers another transfer on a reconnect");
    }
    this.manifest = manifest;
    connection.state = MATCHING;
    this.emit("load_records", { manifest });
  }

  /** @param {MachineEvent} event */
  onRecordsLoaded(event) {
    const connection = this.current;
    const manifest = this.manifest;
    if (connection === null || connection.state !== MATCHING || manifest === null) return;
    const plan = matchRecords(manifest, event.records);
    this.held = plan.map((record, i) => (record ? record.digests.slice(0, chunkCount(manifest.files[i].size)) : []));
    this.plan = plan;
    if (this.accepted === manifest.transfer) {
      this.status("receiving", { reconnected: true });
      this.sendAccept(connection); // a reconnect to what the user accepted
    } else if (this.autoAccept) {
      this.prepare(connection);
    } else {
      connection.state = ASKING;
      this.emit("ask_accept", { manifest, held: this.heldBytes() });
      this.status("offer", { held: this.heldBytes() });
    }
  }

  heldBytes() {
    const manifest = /** @type {Manifest} */ (this.manifest);
    return manifest.files.reduce((n, entry, i) => n + Math.min(entry.size, this.held[i].length * manifest.chunkSize), 0);
  }

  onUserAccepted() {
    const connection = this.current;
    if (connection !== null && connection.state === ASKING) this.prepare(connection);
  }

  /** @param {Connection} connection */
  prepare(connection) {
    connection.state = PREPARING;
    this.emit("prepare_storage", { manifest: this.manifest, records: this.plan.map((record) => (record ? record.id : null)) });
    this.status("saving");
  }

  onStorageReady() {
    const connection = this.current;
    if (connection !== null && connection.state === PREPARING && this.manifest !== null) {
      this.accepted = this.manifest.transfer;
      this.status("receiving");
      this.sendAccept(connection);
    }
  }

  /** @param {Connection} connection */
  sendAccept(connection) {
    const manifest = /** @type {Manifest} */ (this.manifest);
    const files = manifest.files.map((entry, i) => {
      const offset = Math.min(entry.size, this.held[i].length * manifest.chunkSize);
      return { offset, prefix: offset ? fileDigest(this.held[i]) : null };
    });
    connection.accept = { t: "accept", transfer: manifest.transfer, files, lanes: this.laneMode ? this.maxLanes : null };
    connection.state = STARTING;
    this.send(connection, connection.accept);
  }

  onUserDeclined() {
    const connection = this.current;
    if (connection !== null && connection.state === ASKING) {
      this.send(connection, { t: "decline" });
      this.close(connection);
    }
    this.end(DECLINED);
  }

  onUserCancelled() {
    const connection = this.current;
    if (connection !== null && connection.state !== CLOSED) {
      this.send(connection, { t: "error", code: CANCELLED, message: "the receiver cancelled" });
      this.close(connection);
    }
    this.end(CANCELLED);
  }

  /** @param {MachineEvent} event */
  onStorageFailed(event) {
    const code = event.code === DISK_FULL || event.code === STORAGE_ERROR ? event.code : STORAGE_ERROR;
    const connection = this.current;
    const error = new ProtocolError(code, event.message ? String(event.message) : code);
    if (connection !== null && connection.state !== CLOSED) {
      this.send(connection, errorMessage(error));
      this.close(connection);
    }
    this.end(code, error.message);
  }

  /**
   * @param {Connection} connection
   * @param {import("./messages.js").Start} start
   */
  start(connection, start) {
    const manifest = /** @type {Manifest} */ (this.manifest);
    checkStart(start, /** @type {Accept} */ (connection.accept));
    const sizes = manifest.files.map((entry) => entry.size);
    start.offsets.forEach((offset, file) => {
      if (offset === 0 && this.held[file].length) {
        this.held[file] = []; // the sender's prefix check failed: start over
        this.emit("reset_file", { file });
      }
    });
    connection.stream = new Stream(sizes, [...start.offsets]);
    connection.state = RECEIVING;
    this.digests = this.held.map((held) => [...held]);
    this.written = this.held.map((held) => new Set(held.keys()));
    this.fileDigests = sizes.map(() => null);
    this.expected = sizes.map(() => null);
    this.finishing = new Set();
    this.finished = new Set();
    this.taken = new Map();
    this.lanes = new Map([[0, connection.conn]]);
    this.agreed = start.lanes ?? 1;
    connection.stream.window = Math.max(2, Math.floor(WINDOW_CHUNKS / this.agreed));
    this.emit("progress", { held: this.heldBytes(), total: sizes.reduce((a, b) => a + b, 0) });
  }

  // -- data (protocol.md 8) -------------------------------------------------------------

  /** @param {MachineEvent} event */
  onPiece(event) {
    const connection = this.connection(event);
    if (connection === null || connection.keepalive === null) return;
    connection.keepalive.received(this.now);
    this.lastProgress = this.now;
    this.guarded(connection, () => this.piece(connection, event));
  }

  /**
   * The driver could not even read a binary frame's header (protocol.md 8.2): whatever the
   * sender meant, the stream can no longer be trusted.
   * @param {MachineEvent} event
   */
  onBadPiece(event) {
    const connection = this.connection(event);
    if (connection === null || connection.keepalive === null) return;
    this.guarded(connection, () => {
      throw frameError(`a binary frame that does not decode: ${event.detail ? String(event.detail) : "bad header"}`);
    });
  }

  /**
   * @param {Connection} connection
   * @param {MachineEvent} event
   */
  piece(connection, event) {
    const stream = connection.stream;
    if (connection.state !== RECEIVING || stream === null) throw frameError("binary data before 'start'");
    if (stream.hashing !== null) throw new Error("the driver must deliver chunk_hashed before the next piece");
    const { file, chunk, offset, size } = event;
    if (this.laneMode) {
      this.lanePiece(connection, stream, file, chunk, offset, size);
      return;
    }
    const expecting = stream.expecting();
    if (stream.discarding !== null) {
      // After a nack everything up to the re-sent chunk's first piece is stale.
      if (file !== stream.discarding[0] || chunk !== stream.discarding[1] || offset !== 0) {
        this.emit("drop_piece", { conn: connection.conn });
        return;
      }
      stream.discarding = null;
    }
    if (expecting === null || expecting[1] < 0 || file !== expecting[0] || chunk !== expecting[1]) {
      throw frameError(`piece of file ${file} chunk ${chunk}, expected ${describe(expecting)}`);
    }
    if (offset !== stream.received) {
      throw frameError(`piece at offset ${offset} of chunk ${chunk}, expected ${stream.received}`);
    }
    const need = chunkLength(stream.sizes[file], chunk);
    if (stream.received + size > need) throw frameError(`chunk ${chunk} of file ${file} is longer than ${need}`);
    stream.received += size;
  }

  /**
   * @param {Connection} connection
   * @param {import("./messages.js").ChunkEnd} message
   */
  chunkEnd(connection, message) {
    const stream = /** @type {Stream} */ (connection.stream);
    if (stream.discarding !== null) return; // stale: sent before the sender saw our nack
    const expecting = this.laneMode ? stream.assembling : stream.expecting();
    if (expecting === null || expecting[0] !== message.file || expecting[1] !== message.chunk) {
      throw frameError(`chunk end for file ${message.file} chunk ${message.chunk}, expected ${describe(expecting)}`);
    }
    const need = chunkLength(stream.sizes[message.file], message.chunk);
    if (message.size !== need || stream.received !== need) {
      throw frameError(`chunk ${message.chunk} of file ${message.file}: announced ${message.size} bytes, ` +
        `received ${stream.received}, expected ${need}`);
    }
    stream.unacked += 1;
    if (stream.unacked > stream.window) throw frameError(`more than ${stream.window} chunks sent without acknowledgement`);
    stream.hashing = [message.file, message.chunk, message.sha256];
    this.emit("hash_chunk", { conn: connection.conn, file: message.file, chunk: message.chunk });
  }

  /** @param {MachineEvent} event */
  onChunkHashed(event) {
    const connection = this.connection(event);
    const stream = connection?.stream ?? null;
    if (connection === null || stream === null || stream.hashing === null) return;
    const [file, chunk, announced] = stream.hashing;
    if (event.file !== file || event.chunk !== chunk) {
      throw new Error(`chunk_hashed for ${event.file}/${event.chunk}, hashing ${file}/${chunk}`);
    }
    stream.hashing = null;
    stream.received = 0;
    stream.assembling = null;
    this.taken.delete(positionKey(file, chunk));
    /** @type {Uint8Array} */
    const digest = event.digest;
    if (!bytesEqual(digest, announced)) {
      this.emit("drop_chunk", { conn: connection.conn, file, chunk });
      stream.discarding = [file, chunk];
      stream.outcomes.push(["nack", file, chunk]);
    } else {
      if (this.laneMode) {
        const known = this.digests[file];
        while (known.length < chunk + 1) known.push(new Uint8Array(0));
        known[chunk] = digest;
      } else {
        this.digests[file].push(digest);
        stream.chunk += 1;
      }
      stream.outcomes.push(["ack", file, chunk]);
      const chunkSize = /** @type {Manifest} */ (this.manifest).chunkSize;
      this.emit("write_chunk", { conn: connection.conn, file, chunk, position: chunk * chunkSize, digest });
    }
    this.answerInOrder(connection);
  }

  /**
   * Nacks wait behind the acks of earlier chunks (acks wait for their writes).
   * @param {Connection} connection
   */
  answerInOrder(connection) {
    const stream = /** @type {Stream} */ (connection.stream);
    while (stream.outcomes.length && stream.outcomes[0][0] === "nack") {
      const [, file, chunk] = /** @type {["nack", number, number]} */ (stream.outcomes.shift());
      stream.unacked -= 1;
      this.send(connection, { t: "nack", file, chunk });
    }
  }

  /** @param {MachineEvent} event */
  onChunkWritten(event) {
    const { file, chunk } = event;
    const manifest = /** @type {Manifest} */ (this.manifest);
    this.written[file].add(chunk);
    const held = this.held[file];
    while (this.written[file].has(held.length)) held.push(this.digests[file][held.length]); // held: the run of chunks from 0
    this.emit("progress", { held: this.heldBytes(), total: manifest.files.reduce((n, f) => n + f.size, 0) });
    const connection = this.connection(event);
    if (connection === null || connection.stream === null) return;
    const stream = connection.stream;
    const head = stream.outcomes[0];
    if (!head || head[0] !== "ack" || head[1] !== file || head[2] !== chunk) {
      throw new Error(`chunk_written for ${file}/${chunk} out of order`);
    }
    stream.outcomes.shift();
    stream.unacked -= 1;
    this.send(connection, { t: "ack", file, chunk });
    this.answerInOrder(connection);
    const current = this.current;
    if (this.laneMode && current !== null) this.guarded(current, () => this.checkFile(file));
    this.maybeFinishFile(file);
  }

  /**
   * @param {Connection} connection
   * @param {import("./messages.js").FileDone} message
   */
  fileDone(connection, message) {
    const stream = /** @type {Stream} */ (connection.stream);
    if (this.laneMode) {
      if (this.expected[message.file] !== null) throw frameError(`a second file-done for file ${message.file}`);
      this.expected[message.file] = message.digest;
      this.checkFile(message.file);
      return;
    }
    if (stream.discarding !== null) return;
    const expecting = stream.expecting();
    if (expecting === null || expecting[0] !== message.file || expecting[1] !== -1) {
      throw frameError(`file-done for file ${message.file}, expected ${describe(expecting)}`);
    }
    const mine = fileDigest(this.digests[message.file]);
    if (!bytesEqual(mine, message.digest)) {
      throw new ProtocolError(INTEGRITY, `file ${message.file}: digest ${hexEncode(mine)} differs from the sender's ${hexEncode(message.digest)}`);
    }
    this.fileDigests[message.file] = mine;
    stream.nextFile();
    this.maybeFinishFile(message.file);
  }

  /**
   * Finalise a file once its digest is verified and all of its chunks are written.
   * @param {number} file
   */
  maybeFinishFile(file) {
    const manifest = /** @type {Manifest} */ (this.manifest);
    const digest = file < this.fileDigests.length ? this.fileDigests[file] : null;
    if (digest === null || this.finishing.has(file)) return;
    if (this.held[file].length < chunkCount(manifest.files[file].size)) return;
    this.finishing.add(file);
    this.emit("finish_file", { file, digest });
  }

  /** @param {Connection} connection */
  done(connection) {
    const stream = /** @type {Stream} */ (connection.stream);
    if (this.laneMode) {
      if (this.fileDigests.some((digest) => digest === null)) throw frameError("'done' before every file was verified");
      stream.done = true;
      connection.state = FINISHING;
      this.maybeComplete(connection);
      return;
    }
    if (stream.discarding !== null) throw frameError("'done' while a re-sent chunk is still expected");
    if (stream.expecting() !== null) throw frameError("'done' before every file-done");
    stream.done = true;
    connection.state = FINISHING;
    this.maybeComplete(connection);
  }

  /** @param {MachineEvent} event */
  onFileFinished(event) {
    this.finished.add(event.file);
    if (this.current !== null && this.current.state === FINISHING) this.maybeComplete(this.current);
  }

  /** @param {Connection} connection */
  maybeComplete(connection) {
    const manifest = /** @type {Manifest} */ (this.manifest);
    if (this.finished.size < manifest.files.length) return;
    const digests = /** @type {Uint8Array[]} */ (this.fileDigests.filter((d) => d !== null));
    this.send(connection, { t: "complete", digests });
    connection.state = COMPLETED;
    connection.openedAt = this.now; // the close-after-complete clock
    this.end(DONE, "", { digests: digests.map(hexEncode) });
  }

  // -- lane mode (protocol v1.1, 8.7) ------------------------------------------------------

  /**
   * An extra connection for the running transfer (never a replacement of it).
   * @param {number} lane
   * @param {string} session
   */
  laneOffer(lane, session) {
    const primary = this.current;
    const limit = primary !== null && primary.state === RECEIVING ? this.agreed : this.maxLanes || 1;
    if (!this.laneMode || primary === null || (primary.state !== STARTING && primary.state !== RECEIVING) || lane >= limit) {
      return; // nothing it could join: do not answer
    }
    const old = this.lanes.get(lane);
    if (old !== undefined) this.close(/** @type {Connection} */ (this.connections.get(old)));
    this.serial += 1;
    const connection = new Connection(`c${this.serial}`, this.now, lane);
    this.connections.set(connection.conn, connection);
    this.emit("answer", { conn: connection.conn, session });
  }

  /**
   * @param {Connection} connection
   * @param {import("./messages.js").Join} join
   */
  join(connection, join) {
    const primary = this.current;
    const manifest = this.manifest;
    if (primary === null || primary.state !== RECEIVING || manifest === null) {
      // Nothing (yet) to join here: this lane goes, the transfer does not.
      this.send(connection, { t: "error", code: BAD_FRAME, message: "'join' before the transfer started" });
      this.close(connection);
      return;
    }
    if (join.transfer !== manifest.transfer || join.lane !== connection.lane || join.lane >= this.agreed) {
      throw frameError("'join' for another transfer, or past the agreed lanes");
    }
    const old = this.lanes.get(join.lane);
    if (old !== undefined && old !== connection.conn) this.close(/** @type {Connection} */ (this.connections.get(old)));
    this.lanes.set(join.lane, connection.conn);
    connection.stream = new Stream(manifest.files.map((entry) => entry.size), manifest.files.map(() => 0));
    connection.stream.window = Math.max(2, Math.floor(WINDOW_CHUNKS / this.agreed));
    connection.state = RECEIVING;
  }

  /**
   * A chunk's pieces come in order on one lane; which chunk is the sender's choice, as long
   * as no other lane is carrying it (protocol.md 8.7).
   * @param {Connection} connection
   * @param {Stream} stream
   * @param {number} file
   * @param {number} chunk
   * @param {number} offset
   * @param {number} size
   */
  lanePiece(connection, stream, file, chunk, offset, size) {
    if (stream.discarding !== null) {
      if (file !== stream.discarding[0] || chunk !== stream.discarding[1] || offset !== 0) {
        this.emit("drop_piece", { conn: connection.conn });
        return;
      }
      stream.discarding = null;
    }
    if (stream.assembling === null) {
      if (offset !== 0) throw frameError(`piece at offset ${offset} starts no chunk`);
      if (!(file >= 0 && file < stream.sizes.length) || !(chunk >= 0 && chunk < chunkCount(stream.sizes[file]))) {
        throw frameError(`piece of file ${file} chunk ${chunk}, which does not exist`);
      }
      const key = positionKey(file, chunk);
      if ((this.taken.get(key) ?? connection.conn) !== connection.conn) {
        throw frameError(`file ${file} chunk ${chunk} is coming on another connection`);
      }
      this.taken.set(key, connection.conn);
      stream.assembling = [file, chunk];
      stream.received = 0;
    } else if (stream.assembling[0] !== file || stream.assembling[1] !== chunk) {
      throw frameError(`piece of file ${file} chunk ${chunk}, expected ${describe(stream.assembling)}`);
    }
    if (offset !== stream.received) throw frameError(`piece at offset ${offset} of chunk ${chunk}, expected ${stream.received}`);
    const need = chunkLength(stream.sizes[file], chunk);
    if (stream.received + size > need) throw frameError(`chunk ${chunk} of file ${file} is longer than ${need}`);
    stream.received += size;
  }

  /**
   * Lane mode: verify a file once its file-done came and all its chunks are verified.
   * @param {number} file
   */
  checkFile(file) {
    const expected = this.expected[file];
    if (expected === null || this.fileDigests[file] !== null) return;
    const known = this.digests[file];
    const count = this.manifest ? chunkCount(this.manifest.files[file].size) : 0;
    if (known.length < count || known.slice(0, count).some((digest) => !digest.length)) return;
    const mine = fileDigest(known.slice(0, count));
    if (!bytesEqual(mine, expected)) {
      throw new ProtocolError(INTEGRITY, `file ${file}: digest ${hexEncode(mine)} differs from the sender's ${hexEncode(expected)}`);
    }
    this.fileDigests[file] = mine;
    if (this.current !== null) this.maybeFinishFile(file);
  }

  // -- time -----------------------------------------------------------------------------

  deadlines() {
    /** @type {number[]} */
    const due = [];
    for (const connection of this.connections.values()) {
      if (connection.state === OPENING) due.push(connection.openedAt + this.timing.open_timeout);
      else if (connection.state === COMPLETED) due.push(connection.openedAt + this.timing.close_after_complete);
      else if (connection.state !== CLOSED && connection.keepalive !== null) due.push(connection.keepalive.deadline());
    }
    if (!this.ended) {
      for (const at of [this.giveUpAt(), this.retryDue()]) if (at !== null) due.push(at);
    }
    return due;
  }

  /**
   * When the receive ends if nothing gets better (protocol.md 14.2).
   * @returns {number | null}
   */
  giveUpAt() {
    if (this.connectedEver) {
      if (this.sessionRunning() || this.lastProgress === null) return null; // a running session is judged by its keepalive alone
      return this.lastProgress + this.timing.give_up_after;
    }
    if (this.firstAttemptAt !== null) return this.firstAttemptAt + this.timing.connect_timeout;
    if (this.waitingSince !== null && this.timing.sender_wait !== null) return this.waitingSince + this.timing.sender_wait;
    return null;
  }

  /** @returns {number | null} */
  retryDue() {
    if (this.retryAt === null || this.sender === null || this.sessionRunning()) return null;
    return this.retryAt;
  }

  onTick() {
    for (const connection of [...this.connections.values()]) {
      if (connection.state === OPENING) {
        if (this.now >= connection.openedAt + this.timing.open_timeout) this.lost(connection);
      } else if (connection.state === COMPLETED) {
        if (this.now >= connection.openedAt + this.timing.close_after_complete) this.close(connection);
      } else if (connection.state !== CLOSED && connection.keepalive !== null) {
        const due = connection.keepalive.due(this.now);
        if (due === "dead") this.lost(connection);
        else if (due === "ping") this.send(connection, { t: "ping" });
      }
    }
    if (this.ended) return;
    const giveUp = this.giveUpAt();
    if (giveUp !== null && this.now >= giveUp) {
      if (this.connectedEver) this.end(GAVE_UP);
      else if (this.firstAttemptAt !== null) {
        this.end(this.relay === "failed" ? RELAY_FAILED : NO_PATH, this.relay === "ok" ? "even through the relay" : "");
      } else {
        this.end(SENDER_GONE);
      }
      return;
    }
    const retry = this.retryDue();
    if (retry !== null && this.now >= retry && this.sender !== null) {
      this.emit("restart", { to: this.sender });
      this.retryAt = this.now + this.backoff;
      this.backoff = Math.min(this.backoff * 2, this.timing.retry_max);
    }
  }
}
