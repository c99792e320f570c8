// @ts-check
/**
 * The sender's session machine (protocol.md section 14.1): one per offer, serving every
 * receiver of the link over its own connection. Pure: no I/O, no clock, no randomness.
 * The Python twin is peerbeam/transfer/sender_machine.py; both must produce exactly the
 * actions of docs/protocol-traces.json.
 *
 * Events (driver → machine), besides `tick`:
 * - signaling: `peers {peers: [{peer, role}]}` (a welcome), `peer_joined {peer, role}`,
 *   `restart {peer}` (a receiver asks for a new connection), `room_gone {reason}`,
 *   `stop` (the user stops sharing), `retry {peer}` (the user asks to try that receiver
 *   again: the same as its `restart`);
 * - one connection: `channel_open {conn, nonce}` (the driver's fresh hello nonce),
 *   `message {conn, text}`, `piece {conn}` (a binary frame: never from a receiver),
 *   `connection_lost {conn, reason}`;
 * - results of actions: `proof_checked {conn, ok, mac}`, `chunk_read {conn?, file, chunk,
 *   size, digest}`, `read_failed {file, chunk, message}`, `pieces_sent {conn, file, chunk}`.
 *
 * Protocol v1.1 (lanes, protocol.md 7.4 and 8.7): with `lanes`, one receiver's transfer may
 * run over several connections; the first (lane 0) carries the control messages, extra
 * ones join it.
 *
 * Actions (machine → driver), besides `wake`: `open_connection {conn, peer, lane?}`,
 * `close {conn}`, `send {conn, message}`, `check_proof {conn, nonce, mac}`,
 * `read_chunk {conn, file, chunk}` (bytes to send), `hash_chunk {file, chunk}` (digest
 * only), `send_pieces {conn, file, chunk}`, `stop_pieces {conn}`, `lock_room`,
 * `receiver {peer, state, acked, total, …}` and `progress {peer, acked, total}` (for the
 * user), `finished {reason}` (the offer is over).
 */
import { bytesEqual, hexEncode } from "./codec.js";
import { SendWindow, checkResumeOffset, chunkCount, chunkLength, fileDigest } from "./chunks.js";
import { CHUNK_SIZE, MAX_AUTH_ATTEMPTS, WINDOW_CHUNKS } from "./constants.js";
import {
  AUTH_FAILED, CANCELLED, INTEGRITY, NO_PATH, ProtocolError, RELAY_FAILED, SOURCE_ERROR, errorMessage, frameError,
} from "./errors.js";
import { Keepalive, Machine, DEFAULT_TIMING, positionKey, samePosition } from "./machine.js";
import { checkAccept, checkStart, parseMessage } from "./messages.js";

/**
 * @typedef {import("./machine.js").MachineEvent} MachineEvent
 * @typedef {import("./machine.js").Position} Position
 * @typedef {import("./machine.js").SessionTiming} SessionTiming
 * @typedef {import("./messages.js").Message} Message
 * @typedef {import("./messages.js").Manifest} Manifest
 * @typedef {import("./messages.js").FileEntry} FileEntry
 * @typedef {import("./messages.js").Accept} Accept
 */

/** Wrong proofs per offer, across connections and restarts (per connection: MAX_AUTH_ATTEMPTS). */
export const MAX_FAILED_PROOFS = 20;
/** Chunks hashed at once while checking a resumed prefix. */
const PREFIX_READS = 2;

// Connection states.
const OPENING = "opening";
const AUTH = "auth";
const CHECKING = "checking";
const OFFERED = "offered";
const PREPARING = "preparing";
const SENDING = "sending";
const FINISHING = "finishing";
const CLOSED = "closed";

/** The connection ends: tell the peer `error` (when given) and the user `state`. */
class Failed extends Error {
  /**
   * @param {string} state
   * @param {string} detail
   * @param {ProtocolError | null} [error]
   */
  constructor(state, detail, error = null) {
    super(detail);
    this.state = state;
    this.detail = detail;
    this.error = error;
  }
}

/** A chunk read back with another digest than before: the file changed. */
class SourceChanged extends Error {
  /** @param {number} file */
  constructor(file) {
    super(`file ${file} changed`);
    this.file = file;
  }
}

class Connection {
  /**
   * @param {string} conn
   * @param {string} peer
   * @param {number} openedAt
   * @param {number} [lane] v1.1: 0 for the connection that started the transfer, k for an extra one
   */
  constructor(conn, peer, openedAt, lane = 0) {
    this.conn = conn;
    this.peer = peer;
    this.openedAt = openedAt;
    this.lane = lane;
    /** Lane mode, after a nack: this lane's chunks to send again, in order. @type {Position[]} */
    this.resend = [];
    this.state = OPENING;
    this.nonce = new Uint8Array(0);
    this.attempts = 0;
    /** @type {Keepalive | null} */
    this.keepalive = null;
    /** @type {Accept | null} */
    this.accept = null;
    /** @type {number[]} */
    this.offsets = [];
    /** Prefix chunks not yet asked for. @type {Position[]} */
    this.prefixTodo = [];
    /** Prefix chunks being hashed (positionKey). @type {Set<string>} */
    this.prefixPending = new Set();
    this.window = new SendWindow();
    /** The next chunk whose pieces go out. @type {Position} */
    this.nextSend = [0, 0];
    /** @type {Position} */
    this.nextRead = [0, 0];
    /** @type {Position | null} */
    this.reading = null;
    /** Read, waiting for the window. @type {Position | null} */
    this.ready = null;
    /** Pieces going out. @type {Position | null} */
    this.sending = null;
    this.doneSent = false;
  }
}

class Receiver {
  /** @param {string} peer */
  constructor(peer) {
    this.peer = peer;
    /** @type {string | null} */
    this.conn = null;
    /** Proved the key once: may come back even after the cap. */
    this.proved = false;
    this.acked = 0;
    this.state = "connecting";
    /** Offered since then, never connected. @type {number | null} */
    this.unconnectedSince = null;
    this.connectedEver = false;
    /** Lane mode: the running transfer over its lanes. @type {Transfer | null} */
    this.transfer = null;
  }
}

/**
 * One receiver's transfer in lane mode (protocol.md 8.7): chunks go to whichever of its
 * connections has room, file-done and done wait for the acknowledgements.
 */
class Transfer {
  /**
   * @param {number} agreed connections agreed in start
   * @param {number[]} offsets
   * @param {number[]} unackedInFile chunks of each file not yet acknowledged
   * @param {Position} cursor the next chunk never sent, in stream order
   */
  constructor(agreed, offsets, unackedInFile, cursor) {
    this.agreed = agreed;
    this.offsets = offsets;
    this.unackedInFile = unackedInFile;
    this.cursor = cursor;
    /** Lane index → conn (lane 0 first). @type {Map<number, string>} */
    this.lanes = new Map();
    /** To send before new ones. @type {Position[]} */
    this.queue = [];
    /** file-done sent for the files below this. */
    this.fileDones = 0;
    /** Acknowledged in this transfer, on every lane. */
    this.ackedChunks = 0;
    /** When the current measuring interval may be judged; null: no more lanes. @type {number | null} */
    this.growAt = null;
    /** When it began. */
    this.growSince = 0;
    /** Acknowledged bytes and chunks when it began. */
    this.growFrom = { bytes: 0, chunks: 0 };
    /** @type {number | null} */
    this.lastRate = null;
  }

  /** Each lane's share of the window. */
  get window() {
    return Math.max(2, Math.floor(WINDOW_CHUNKS / this.agreed));
  }
}

/**
 * @param {Position} a
 * @param {Position} b
 */
const before = (a, b) => a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);

export class SenderMachine extends Machine {
  /**
   * @param {{transfer: string, files: FileEntry[], password: boolean, iterations: number,
   *          oneTime?: boolean, timing?: Readonly<SessionTiming>, lanes?: number | null,
   *          fixedLanes?: boolean}} options
   *   `lanes`: protocol v1.1, the most connections one transfer may use (null: a v1 sender,
   *   one connection); `fixedLanes`: open them all at once instead of adding them while the
   *   transfer gets faster (protocol.md 8.7).
   */
  constructor({ transfer, files, password, iterations, oneTime = false, timing = DEFAULT_TIMING, lanes = null, fixedLanes = false }) {
    super(timing);
    this.maxLanes = lanes;
    this.fixedLanes = fixedLanes;
    /** @type {Manifest} */
    this.manifest = { t: "manifest", transfer, chunkSize: CHUNK_SIZE, files };
    this.sizes = files.map((f) => f.size);
    this.total = this.sizes.reduce((a, b) => a + b, 0);
    this.password = password;
    this.iterations = iterations;
    this.oneTime = oneTime;
    /** Chunk digests per file, filled as chunks are read: shared by every receiver. @type {(Uint8Array | null)[][]} */
    this.digests = files.map(() => []);
    this.failedProofs = 0;
    this.locked = false;
    this.roomGone = false;
    this.stopped = false;
    /** @type {Map<string, Receiver>} */
    this.receivers = new Map();
    /** @type {Map<string, Connection>} */
    this.connections = new Map();
    this.serial = 0;
    /** Chunks being read for their digest (positionKey). @type {Set<string>} */
    this.hashing = new Set();
    /** The relay, as the driver found it: none, failed, ok. */
    this.relay = "none";
    /** @type {Record<string, (event: MachineEvent) => void>} */
    this.handlers = {
      peers: (e) => this.onPeers(e),
      peer_joined: (e) => this.onPeerJoined(e),
      restart: (e) => this.onRestart(e),
      retry: (e) => this.onRestart(e),
      room_gone: (e) => this.onRoomGone(e),
      stop: () => this.onStop(),
      channel_open: (e) => this.onChannelOpen(e),
      message: (e) => this.onMessage(e),
      connection_lost: (e) => this.onConnectionLost(e),
      proof_checked: (e) => this.onProofChecked(e),
      chunk_read: (e) => this.onChunkRead(e),
      read_failed: (e) => this.onReadFailed(e),
      pieces_sent: (e) => this.onPiecesSent(e),
      piece: (e) => this.onPiece(e),
    };
  }

  // -- receivers and their connections ----------------------------------------------

  /** Too many wrong proofs for this offer: no new receivers. */
  get capped() {
    return this.failedProofs >= MAX_FAILED_PROOFS;
  }

  /** @param {Receiver} receiver */
  live(receiver) {
    return receiver.conn !== null && this.connectionOf(receiver.conn).state !== CLOSED;
  }

  /** @param {string} conn */
  connectionOf(conn) {
    return /** @type {Connection} */ (this.connections.get(conn));
  }

  /** @param {string} peer */
  receiverOf(peer) {
    let receiver = this.receivers.get(peer);
    if (!receiver) {
      receiver = new Receiver(peer);
      this.receivers.set(peer, receiver);
    }
    return receiver;
  }

  /** @param {MachineEvent} event */
  onPeers(event) {
    for (const peer of event.peers) {
      if (peer.role === "receiver") this.seen(peer.peer);
    }
  }

  /** @param {MachineEvent} event */
  onPeerJoined(event) {
    // A receiver whose signaling socket merely reconnected keeps its connection; one that
    // lost it too asks with `restart` (protocol.md 1.0).
    if (event.role === "receiver") this.seen(event.peer);
  }

  /** @param {string} peer */
  seen(peer) {
    const receiver = this.receiverOf(peer);
    if (!this.live(receiver)) this.offer(receiver);
  }

  /** @param {MachineEvent} event */
  onRestart(event) {
    this.offer(this.receiverOf(event.peer));
  }

  /**
   * A new connection to `receiver`, replacing the one it has.
   * @param {Receiver} receiver
   */
  offer(receiver) {
    if (this.stopped || this.roomGone) return;
    if (this.capped && !receiver.proved) return; // too many wrong proofs: only receivers that proved may come back
    if (receiver.conn !== null) this.close(this.connectionOf(receiver.conn));
    this.serial += 1;
    const conn = `c${this.serial}`;
    this.connections.set(conn, new Connection(conn, receiver.peer, this.now));
    receiver.conn = conn;
    if (receiver.unconnectedSince === null && !receiver.connectedEver) receiver.unconnectedSince = this.now;
    this.emit("open_connection", { conn, peer: receiver.peer });
    this.report(receiver, "connecting");
  }

  /** @param {MachineEvent} event */
  onRoomGone(event) {
    // No new receivers and no reconnects from now on; running transfers go on to their end
    // (a room may expire mid-transfer).
    this.roomGone = true;
    this.finishIfIdle(event.reason ? String(event.reason) : "the room is closed");
  }

  onStop() {
    this.stopped = true;
    for (const connection of [...this.connections.values()]) {
      if (connection.state !== CLOSED) {
        this.send(connection, { t: "error", code: CANCELLED, message: "the sender stopped sharing" });
        this.close(connection);
        this.report(this.receiverOf(connection.peer), "failed", { detail: "stopped" });
      }
    }
    this.emit("finished", { reason: "stopped" });
  }

  /** @param {string} reason */
  finishIfIdle(reason) {
    const connections = [...this.connections.values()];
    if (!connections.some((c) => c.state !== OPENING && c.state !== CLOSED)) {
      for (const connection of connections) {
        if (connection.state === OPENING) this.close(connection);
      }
      this.emit("finished", { reason });
    }
  }

  /**
   * @param {Receiver} receiver
   * @param {string} state
   * @param {Record<string, unknown>} [fields]
   */
  report(receiver, state, fields = {}) {
    receiver.state = state;
    this.emit("receiver", { peer: receiver.peer, state, acked: receiver.acked, total: this.total, ...fields });
  }

  // -- one connection -----------------------------------------------------------------

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
    if (connection.sending !== null) this.emit("stop_pieces", { conn: connection.conn });
    connection.state = CLOSED;
    this.emit("close", { conn: connection.conn });
    const transfer = this.receivers.get(connection.peer)?.transfer ?? null;
    if (transfer === null || transfer.lanes.get(connection.lane) !== connection.conn) return;
    if (connection.lane === 0) {
      // The connection that carries the control messages: the transfer ends here (its
      // chunks resume on the next one), and so do its other lanes.
      this.receiverOf(connection.peer).transfer = null;
      for (const conn of [...transfer.lanes.values()].slice(1)) this.close(this.connectionOf(conn));
    } else {
      this.laneLost(transfer, connection);
    }
  }

  /**
   * Run one step of a connection; a broken rule or a failure ends the connection.
   * @param {Connection} connection
   * @param {() => void} step
   */
  guarded(connection, step) {
    try {
      step();
    } catch (error) {
      if (error instanceof ProtocolError) this.fail(connection, new Failed("failed", error.message, error));
      else if (error instanceof Failed) this.fail(connection, error);
      else throw error;
    }
  }

  /**
   * @param {Connection} connection
   * @param {Failed} failure
   */
  fail(connection, failure) {
    if (failure.error !== null) this.send(connection, errorMessage(failure.error));
    const receiver = this.receiverOf(connection.peer);
    if (connection.lane && receiver.transfer !== null) {
      // A broken rule on any lane ends the whole transfer.
      this.close(this.connectionOf(/** @type {string} */ (receiver.transfer.lanes.get(0))));
    }
    this.close(connection);
    /** @type {Record<string, unknown>} */
    const fields = { detail: failure.detail };
    if (failure.error !== null) fields.code = failure.error.code;
    this.report(receiver, failure.state, fields);
    this.afterEnd();
  }

  afterEnd() {
    if (this.roomGone) this.finishIfIdle("the room is closed");
  }

  /** @param {MachineEvent} event */
  onChannelOpen(event) {
    const connection = this.connection(event);
    if (connection === null || connection.state !== OPENING) return;
    connection.nonce = event.nonce;
    connection.keepalive = new Keepalive(this.timing, this.now);
    connection.state = AUTH;
    const receiver = this.receiverOf(connection.peer);
    receiver.unconnectedSince = null;
    receiver.connectedEver = true;
    this.send(connection, {
      t: "hello", nonce: connection.nonce, password: this.password, iterations: this.password ? this.iterations : null,
      lanes: this.maxLanes,
    });
    if (!connection.lane) this.report(receiver, "authenticating");
  }

  /** @param {MachineEvent} event */
  onConnectionLost(event) {
    this.relay = event.relay ? String(event.relay) : this.relay;
    const connection = this.connection(event);
    if (connection === null) return;
    this.lost(connection, event.reason ? String(event.reason) : "the connection closed");
  }

  /**
   * The connection ended without a word: the receiver keeps what it has and asks for a new
   * connection (`restart`) when it wants to resume.
   * @param {Connection} connection
   * @param {string} reason
   */
  lost(connection, reason) {
    this.close(connection);
    if (connection.lane) return; // an extra lane costs only the chunks it carried (they go to the others)
    this.report(this.receiverOf(connection.peer), "lost", { detail: reason });
    this.afterEnd();
  }

  /** @param {MachineEvent} event */
  onMessage(event) {
    const connection = this.connection(event);
    if (connection === null || connection.keepalive === null) return;
    connection.keepalive.received(this.now);
    this.guarded(connection, () => this.message(connection, event.text));
  }

  /** @param {MachineEvent} event */
  onPiece(event) {
    const connection = this.connection(event);
    if (connection !== null) {
      this.guarded(connection, () => {
        throw frameError("a receiver never sends binary frames");
      });
    }
  }

  /**
   * @param {Connection} connection
   * @param {string} text
   */
  message(connection, text) {
    const message = parseMessage(text);
    const state = connection.state;
    if (message.t === "ping") this.send(connection, { t: "pong" });
    else if (message.t === "pong") return;
    else if (message.t === "error") throw new Failed("failed", `the receiver stopped: ${message.message || message.code}`);
    else if (state === AUTH && message.t === "auth") this.auth(connection, message);
    else if (state === OFFERED && message.t === "accept") this.accepted(connection, message);
    else if (state === OFFERED && message.t === "decline") {
      this.close(connection);
      this.report(this.receiverOf(connection.peer), "declined");
      this.afterEnd();
    } else if ((state === SENDING || state === FINISHING) && message.t === "ack") this.ack(connection, message);
    else if ((state === SENDING || state === FINISHING) && message.t === "nack") this.nack(connection, message);
    else if (state === FINISHING && message.t === "complete") this.complete(connection, message);
    else throw frameError(`unexpected '${message.t}' while ${state}`);
  }

  // -- authentication (protocol.md 6) ---------------------------------------------------

  /**
   * @param {Connection} connection
   * @param {import("./messages.js").Auth} message
   */
  auth(connection, message) {
    if (this.capped) {
      // Past the cap no proof is checked at all: nothing more to learn by guessing.
      this.refuse(connection, "too many wrong passwords for this link");
      return;
    }
    connection.state = CHECKING;
    this.emit("check_proof", { conn: connection.conn, nonce: message.nonce, mac: message.mac });
  }

  /** @param {MachineEvent} event */
  onProofChecked(event) {
    const connection = this.connection(event);
    if (connection === null || connection.state !== CHECKING) return;
    const receiver = this.receiverOf(connection.peer);
    if (event.ok) {
      receiver.proved = true;
      if (connection.lane) {
        this.join(receiver, connection, event.mac);
        return;
      }
      connection.state = OFFERED;
      this.send(connection, { t: "auth-ok", mac: event.mac });
      this.send(connection, this.manifest);
      if (this.oneTime && !this.locked) {
        this.locked = true; // the one receiver proved the key: nobody else joins
        this.emit("lock_room");
      }
      this.report(receiver, "offered");
      return;
    }
    this.failedProofs += 1;
    connection.attempts += 1;
    let remaining = 0;
    if (this.password) {
      remaining = Math.min(MAX_AUTH_ATTEMPTS - connection.attempts, MAX_FAILED_PROOFS - this.failedProofs);
    }
    if (this.capped && !this.locked) {
      this.locked = true;
      this.emit("lock_room");
    }
    if (remaining > 0) {
      connection.state = AUTH;
      this.send(connection, { t: "auth-failed", retry: true, remaining });
      this.report(receiver, "authenticating", { detail: "wrong password" });
      return;
    }
    this.refuse(connection, this.capped ? "too many wrong passwords for this link"
      : "the receiver could not prove it has the link (wrong link or password)");
  }

  /**
   * @param {Connection} connection
   * @param {string} detail
   */
  refuse(connection, detail) {
    this.send(connection, { t: "auth-failed", retry: false, remaining: 0 });
    this.close(connection);
    this.report(this.receiverOf(connection.peer), "failed", { detail, code: AUTH_FAILED });
    this.afterEnd();
  }

  // -- manifest, accept, start (protocol.md 7) ------------------------------------------

  /**
   * @param {Connection} connection
   * @param {Accept} accept
   */
  accepted(connection, accept) {
    checkAccept(accept, this.manifest);
    connection.accept = accept;
    connection.state = PREPARING;
    accept.files.forEach((answer, index) => {
      const held = checkResumeOffset(answer.offset, this.sizes[index]);
      for (let chunk = 0; chunk < held; chunk++) {
        if (this.digest(index, chunk) === null) connection.prefixTodo.push([index, chunk]);
      }
    });
    this.checkPrefixes(connection);
  }

  /**
   * @param {number} file
   * @param {number} chunk
   */
  digest(file, chunk) {
    const known = this.digests[file];
    return chunk < known.length ? known[chunk] : null;
  }

  /**
   * Hash what the prefix checks still need (a few at a time), then start.
   * @param {Connection} connection
   */
  checkPrefixes(connection) {
    const todo = connection.prefixTodo;
    while (todo.length && connection.prefixPending.size < PREFIX_READS) {
      const [file, chunk] = /** @type {Position} */ (todo.shift());
      if (this.digest(file, chunk) !== null) continue;
      const key = positionKey(file, chunk);
      connection.prefixPending.add(key);
      if (!this.hashing.has(key)) {
        this.hashing.add(key);
        this.emit("hash_chunk", { file, chunk });
      }
    }
    if (connection.prefixPending.size) return;
    const accept = /** @type {Accept} */ (connection.accept);
    const offsets = accept.files.map((answer, index) => {
      if (!answer.offset) return 0;
      const mine = fileDigest(this.known(index, chunkCount(answer.offset)));
      return bytesEqual(mine, /** @type {Uint8Array} */ (answer.prefix)) ? answer.offset : 0; // not our bytes: start over
    });
    const agreed = accept.lanes != null && this.maxLanes !== null ? Math.min(accept.lanes, this.maxLanes) : null;
    /** @type {import("./messages.js").Start} */
    const start = { t: "start", offsets, lanes: agreed };
    checkStart(start, accept);
    connection.offsets = offsets;
    this.send(connection, start);
    const receiver = this.receiverOf(connection.peer);
    receiver.acked = offsets.reduce((a, b) => a + b, 0);
    connection.state = SENDING;
    this.report(receiver, "sending");
    if (agreed !== null) {
      this.startLanes(receiver, connection, agreed, offsets);
      return;
    }
    const first = this.firstChunk(connection, 0);
    connection.nextSend = first;
    connection.nextRead = first;
    this.advance(connection);
  }

  /**
   * The digests of the first `count` chunks of `file`, all known by now.
   * @param {number} file
   * @param {number} count
   * @returns {Uint8Array[]}
   */
  known(file, count) {
    const digests = this.digests[file].slice(0, count);
    if (digests.length < count || digests.some((d) => d === null)) {
      throw new Error(`digests of file ${file} below chunk ${count} are not known`);
    }
    return /** @type {Uint8Array[]} */ (digests);
  }

  /**
   * Cache a chunk digest; a different digest than before means the file changed.
   * @param {number} file
   * @param {number} chunk
   * @param {Uint8Array} digest
   */
  remember(file, chunk, digest) {
    const known = this.digests[file];
    const before = chunk < known.length ? known[chunk] : null;
    if (before !== null && !bytesEqual(before, digest)) throw new SourceChanged(file);
    while (known.length <= chunk) known.push(null);
    known[chunk] = digest;
  }

  /** @param {MachineEvent} event */
  onChunkRead(event) {
    const { file, chunk } = event;
    try {
      this.remember(file, chunk, event.digest);
    } catch (error) {
      if (!(error instanceof SourceChanged)) throw error;
      this.sourceFailed(`${this.manifest.files[file].name} changed while it was being sent`);
      return;
    }
    const key = positionKey(file, chunk);
    this.hashing.delete(key);
    for (const connection of [...this.connections.values()]) {
      if (connection.state === PREPARING && connection.prefixPending.has(key)) {
        connection.prefixPending.delete(key);
        this.guarded(connection, () => this.checkPrefixes(connection));
      }
    }
    const reader = event.conn !== undefined ? this.connection(event) : null;
    if (reader !== null && reader.state === SENDING && samePosition(reader.reading, [file, chunk])) {
      reader.reading = null;
      reader.ready = [file, chunk];
      this.guarded(reader, () => (this.laneMode(reader) ? this.laneAdvance(reader) : this.advance(reader)));
    }
  }

  /** @param {MachineEvent} event */
  onReadFailed(event) {
    this.sourceFailed(event.message ? String(event.message) : "a file cannot be read any more");
  }

  /**
   * A source file is gone or changed: no receiver can be served any more.
   * @param {string} detail
   */
  sourceFailed(detail) {
    const error = new ProtocolError(SOURCE_ERROR, detail);
    for (const connection of [...this.connections.values()]) {
      if (connection.state !== CLOSED) this.fail(connection, new Failed("failed", detail, error));
    }
    this.stopped = true;
    this.emit("finished", { reason: detail });
  }

  // -- data (protocol.md 8, 9) ------------------------------------------------------------

  /**
   * @param {Connection} connection
   * @param {number} file
   * @returns {Position}
   */
  firstChunk(connection, file) {
    if (file >= this.sizes.length) return [this.sizes.length, 0];
    return [file, chunkCount(connection.offsets[file])];
  }

  /**
   * @param {Connection} connection
   * @param {Position} position
   * @returns {Position}
   */
  after(connection, [file, chunk]) {
    if (chunk + 1 < chunkCount(this.sizes[file])) return [file, chunk + 1];
    return this.firstChunk(connection, file + 1);
  }

  /**
   * Emit what the stream allows now: file-done, pieces, reads, done.
   * @param {Connection} connection
   */
  advance(connection) {
    while (connection.state === SENDING && connection.sending === null) {
      const [file, chunk] = connection.nextSend;
      if (file === this.sizes.length) {
        if (connection.window.size === 0 && !connection.doneSent) {
          connection.doneSent = true;
          connection.state = FINISHING;
          this.send(connection, { t: "done" });
          this.report(this.receiverOf(connection.peer), "finishing");
        }
        break;
      }
      if (chunk >= chunkCount(this.sizes[file])) {
        this.send(connection, { t: "file-done", file, digest: fileDigest(this.known(file, chunk)) });
        connection.nextSend = this.firstChunk(connection, file + 1);
        if (before(connection.nextRead, connection.nextSend)) connection.nextRead = connection.nextSend;
        continue;
      }
      if (samePosition(connection.ready, [file, chunk]) && !connection.window.full) {
        connection.ready = null;
        connection.sending = [file, chunk];
        this.emit("send_pieces", { conn: connection.conn, file, chunk });
      }
      break;
    }
    this.readAhead(connection);
  }

  /**
   * One chunk read while another one's pieces go out (protocol.md 9).
   * @param {Connection} connection
   */
  readAhead(connection) {
    if (connection.state !== SENDING || connection.reading !== null || connection.ready !== null) return;
    let [file, chunk] = connection.nextRead;
    while (file < this.sizes.length && chunk >= chunkCount(this.sizes[file])) {
      [file, chunk] = this.firstChunk(connection, file + 1);
    }
    if (file === this.sizes.length) return;
    connection.reading = [file, chunk];
    connection.nextRead = this.after(connection, [file, chunk]);
    this.emit("read_chunk", { conn: connection.conn, file, chunk });
  }

  /** @param {MachineEvent} event */
  onPiecesSent(event) {
    const connection = this.connection(event);
    const { file, chunk } = event;
    if (connection === null || connection.state !== SENDING || !samePosition(connection.sending, [file, chunk])) {
      return; // stopped by a nack or a close: not part of the stream any more
    }
    const digest = this.digest(file, chunk);
    if (digest === null) throw new Error(`pieces sent of file ${file} chunk ${chunk}, which was never read`);
    connection.sending = null;
    this.send(connection, { t: "chunk", file, chunk, size: chunkLength(this.sizes[file], chunk), sha256: digest });
    connection.window.sent(file, chunk);
    if (this.laneMode(connection)) {
      this.guarded(connection, () => this.laneAdvance(connection));
      return;
    }
    connection.nextSend = [file, chunk + 1]; // at a file's end: its file-done comes next
    this.guarded(connection, () => this.advance(connection));
  }

  /**
   * @param {Connection} connection
   * @param {import("./messages.js").ChunkRef} ack
   */
  ack(connection, ack) {
    connection.window.acked(ack.file, ack.chunk);
    const receiver = this.receiverOf(connection.peer);
    receiver.acked += chunkLength(this.sizes[ack.file], ack.chunk);
    this.emit("progress", { peer: receiver.peer, acked: receiver.acked, total: this.total });
    if (receiver.transfer !== null) {
      receiver.transfer.unackedInFile[ack.file] -= 1;
      receiver.transfer.ackedChunks += 1;
      this.laneAdvance(connection);
      this.control(receiver);
      return;
    }
    this.advance(connection);
  }

  /**
   * Go-back-N (protocol.md 8.4): forget what is in flight, resend from the chunk.
   * @param {Connection} connection
   * @param {import("./messages.js").ChunkRef} nack
   */
  nack(connection, nack) {
    if (this.laneMode(connection)) {
      this.laneNack(connection, nack);
      return;
    }
    const position = connection.window.nacked(nack.file, nack.chunk);
    if (connection.sending !== null) this.emit("stop_pieces", { conn: connection.conn });
    connection.sending = null;
    connection.reading = null;
    connection.ready = null;
    connection.nextSend = position;
    connection.nextRead = position;
    this.advance(connection);
  }

  /**
   * @param {Connection} connection
   * @param {import("./messages.js").Complete} complete
   */
  complete(connection, complete) {
    const mine = this.sizes.map((size, file) => fileDigest(this.known(file, chunkCount(size))));
    if (complete.digests.length !== mine.length || complete.digests.some((d, i) => !bytesEqual(d, mine[i]))) {
      throw new ProtocolError(INTEGRITY, "the receiver's file digests differ from ours");
    }
    this.close(connection); // and its extra lanes
    this.report(this.receiverOf(connection.peer), "done", { digests: mine.map(hexEncode) });
    if (this.oneTime) {
      this.stopped = true;
      this.emit("finished", { reason: "done" });
    } else {
      this.afterEnd();
    }
  }

  // -- lane mode (protocol v1.1, 8.7) ------------------------------------------------------

  /** @param {Connection} connection */
  laneMode(connection) {
    const transfer = this.receivers.get(connection.peer)?.transfer ?? null;
    return transfer !== null && transfer.lanes.get(connection.lane) === connection.conn;
  }

  /**
   * @param {Receiver} receiver
   * @param {Connection} primary
   * @param {number} agreed
   * @param {number[]} offsets
   */
  startLanes(receiver, primary, agreed, offsets) {
    const counts = this.sizes.map((size, i) => chunkCount(size) - chunkCount(offsets[i]));
    const transfer = new Transfer(agreed, offsets, counts, this.fresh([0, chunkCount(offsets[0])]));
    transfer.lanes.set(0, primary.conn);
    receiver.transfer = transfer;
    primary.window = new SendWindow(transfer.window);
    if (this.fixedLanes) {
      for (let k = 1; k < agreed; k++) this.openLane(receiver, transfer);
    } else if (agreed > 1) {
      this.measureFromNow(receiver, transfer);
    }
    this.laneAdvance(primary);
    this.control(receiver);
  }

  /**
   * `position`, or the first chunk after it that exists (past held files).
   * @param {Position} position
   * @returns {Position}
   */
  fresh([file, chunk]) {
    while (file < this.sizes.length && chunk >= chunkCount(this.sizes[file])) {
      file += 1;
      chunk = 0;
    }
    return [file, chunk];
  }

  /**
   * @param {Receiver} receiver
   * @param {Transfer} transfer
   */
  openLane(receiver, transfer) {
    let lane = 1;
    while (transfer.lanes.has(lane)) lane += 1;
    this.serial += 1;
    const conn = `c${this.serial}`;
    this.connections.set(conn, new Connection(conn, receiver.peer, this.now, lane));
    transfer.lanes.set(lane, conn);
    this.emit("open_connection", { conn, peer: receiver.peer, lane });
  }

  /**
   * @param {Receiver} receiver
   * @param {Connection} connection
   * @param {Uint8Array<ArrayBuffer>} mac
   */
  join(receiver, connection, mac) {
    const transfer = receiver.transfer;
    if (transfer === null || transfer.lanes.get(connection.lane) !== connection.conn) {
      this.close(connection); // the transfer it was to join is over
      return;
    }
    this.send(connection, { t: "auth-ok", mac });
    this.send(connection, { t: "join", transfer: this.manifest.transfer, lane: connection.lane });
    connection.state = SENDING;
    connection.window = new SendWindow(transfer.window);
    // The lane carries from now: what it adds is measured from here, not from when it was
    // asked for (ICE, DTLS and the proofs take a few round trips).
    if (transfer.growAt !== null) this.measureFromNow(receiver, transfer);
    this.laneAdvance(connection);
  }

  /**
   * The next chunk for this lane: its own to send again, the transfer's requeued ones,
   * then the next never sent.
   * @param {Transfer} transfer
   * @param {Connection} connection
   * @returns {Position | null}
   */
  take(transfer, connection) {
    if (connection.resend.length) return /** @type {Position} */ (connection.resend.shift());
    if (transfer.queue.length) return /** @type {Position} */ (transfer.queue.shift());
    const [file, chunk] = transfer.cursor;
    if (file >= this.sizes.length) return null;
    transfer.cursor = this.fresh([file, chunk + 1]);
    return [file, chunk];
  }

  /**
   * A lane sends when its window has room and reads one chunk ahead.
   * @param {Connection} connection
   */
  laneAdvance(connection) {
    const transfer = this.receiverOf(connection.peer).transfer;
    if (transfer === null || connection.state !== SENDING) return;
    if (connection.sending === null && connection.ready !== null && !connection.window.full) {
      const [file, chunk] = connection.ready;
      connection.sending = connection.ready;
      connection.ready = null;
      this.emit("send_pieces", { conn: connection.conn, file, chunk });
    }
    if (connection.reading === null && connection.ready === null) {
      const position = this.take(transfer, connection);
      if (position !== null) {
        connection.reading = position;
        this.emit("read_chunk", { conn: connection.conn, file: position[0], chunk: position[1] });
      }
    }
  }

  /**
   * file-done for each file whose chunks are all acknowledged, in file order, then done:
   * on the primary connection (protocol.md 8.7).
   * @param {Receiver} receiver
   */
  control(receiver) {
    const transfer = receiver.transfer;
    if (transfer === null) return;
    const primary = this.connectionOf(/** @type {string} */ (transfer.lanes.get(0)));
    if (primary.state !== SENDING) return;
    while (transfer.fileDones < this.sizes.length && transfer.unackedInFile[transfer.fileDones] === 0) {
      const file = transfer.fileDones;
      this.send(primary, { t: "file-done", file, digest: fileDigest(this.known(file, chunkCount(this.sizes[file]))) });
      transfer.fileDones += 1;
    }
    if (transfer.fileDones === this.sizes.length) {
      primary.state = FINISHING;
      primary.doneSent = true;
      this.send(primary, { t: "done" });
      this.report(receiver, "finishing");
    }
  }

  /**
   * Go-back-N on this lane only: its chunks from the failed one on go out again, on it and
   * in the same order; the other lanes go on.
   * @param {Connection} connection
   * @param {import("./messages.js").ChunkRef} nack
   */
  laneNack(connection, nack) {
    const outstanding = connection.window.outstanding.slice();
    connection.window.nacked(nack.file, nack.chunk); // integrity at the third
    if (connection.sending !== null) this.emit("stop_pieces", { conn: connection.conn });
    const later = /** @type {Position[]} */ ([connection.sending, connection.ready, connection.reading].filter((p) => p !== null));
    connection.resend = [...outstanding, ...later, ...connection.resend];
    connection.sending = null;
    connection.ready = null;
    connection.reading = null;
    this.laneAdvance(connection);
  }

  /**
   * An extra lane is gone: what it carried and was not acknowledged goes to the others,
   * first (protocol.md 8.7).
   * @param {Transfer} transfer
   * @param {Connection} connection
   */
  laneLost(transfer, connection) {
    transfer.lanes.delete(connection.lane);
    const carried = [
      ...connection.window.outstanding,
      .../** @type {Position[]} */ ([connection.sending, connection.ready, connection.reading].filter((p) => p !== null)),
      ...connection.resend,
    ];
    connection.sending = null;
    connection.ready = null;
    connection.reading = null;
    connection.resend = [];
    transfer.queue.unshift(...carried);
    for (const conn of transfer.lanes.values()) this.laneAdvance(this.connectionOf(conn));
  }

  /**
   * @param {Receiver} receiver
   * @param {Transfer} transfer
   */
  measureFromNow(receiver, transfer) {
    transfer.growSince = this.now;
    transfer.growFrom = { bytes: receiver.acked, chunks: transfer.ackedChunks };
    transfer.growAt = this.now + this.timing.grow_interval;
  }

  /**
   * Another lane while the last one made the transfer faster (protocol.md 7.4).
   * @param {Receiver} receiver
   * @param {Transfer} transfer
   */
  grow(receiver, transfer) {
    if (transfer.ackedChunks - transfer.growFrom.chunks < this.timing.grow_chunks) {
      transfer.growAt = this.now + this.timing.grow_interval; // too few acks to judge yet
      return;
    }
    const rate = (receiver.acked - transfer.growFrom.bytes) / (this.now - transfer.growSince);
    if (transfer.lanes.size < transfer.agreed &&
        (transfer.lastRate === null || rate >= transfer.lastRate * (1 + this.timing.grow_gain))) {
      this.openLane(receiver, transfer);
      transfer.lastRate = rate;
      this.measureFromNow(receiver, transfer);
    } else {
      transfer.growAt = null; // no more lanes for this transfer
    }
  }

  // -- time -----------------------------------------------------------------------------

  deadlines() {
    /** @type {number[]} */
    const due = [];
    for (const connection of this.connections.values()) {
      if (connection.state === OPENING) due.push(connection.openedAt + this.timing.open_timeout);
      else if (connection.state !== CLOSED && connection.keepalive !== null) due.push(connection.keepalive.deadline());
    }
    for (const receiver of this.receivers.values()) {
      if (receiver.unconnectedSince !== null) due.push(receiver.unconnectedSince + this.timing.connect_timeout);
      if (receiver.transfer !== null && receiver.transfer.growAt !== null) due.push(receiver.transfer.growAt);
    }
    return due;
  }

  onTick() {
    for (const connection of [...this.connections.values()]) {
      if (connection.state === OPENING) {
        if (this.now >= connection.openedAt + this.timing.open_timeout) this.lost(connection, "the connection did not open");
      } else if (connection.state !== CLOSED && connection.keepalive !== null) {
        const due = connection.keepalive.due(this.now);
        if (due === "dead") this.lost(connection, "the receiver stopped answering");
        else if (due === "ping") this.send(connection, { t: "ping" });
      }
    }
    for (const receiver of [...this.receivers.values()]) {
      const transfer = receiver.transfer;
      if (transfer !== null && transfer.growAt !== null && this.now >= transfer.growAt) this.grow(receiver, transfer);
    }
    for (const receiver of this.receivers.values()) {
      const since = receiver.unconnectedSince;
      if (since !== null && this.now >= since + this.timing.connect_timeout) {
        // No connection to it ever opened: say why, once; it may ask again.
        receiver.unconnectedSince = null;
        if (receiver.conn !== null) this.close(this.connectionOf(receiver.conn));
        this.report(receiver, "failed", { code: this.relay === "failed" ? RELAY_FAILED : NO_PATH });
      }
    }
  }
}
