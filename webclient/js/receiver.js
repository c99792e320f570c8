// @ts-check
/**
 * The receiving side (protocol.md sections 6-10, 14.2). A Receiver lives as long as the
 * page: it joins the room, answers each offer from the sender with a new peer connection
 * (ReceiverConnection), and keeps what outlives a connection: the accepted transfer, the
 * open files, the progress. Partial files and their chunk digests are recorded in
 * IndexedDB, so a reconnect, or a reloaded tab, continues from what is held.
 */
import { answerOffer, readSignal } from "./rtc.js";
import { PeerChannel } from "./channel.js";
import { SignalingClient } from "./signaling.js";
import { TIMING } from "./timing.js";
import { getRoom } from "./api.js";
import { computeMac, deriveAuthKey, newNonce, normalizePassword, sdpFingerprints, verifyMac } from "./protocol/auth.js";
import { b64urlEncode, randomBytes } from "./protocol/codec.js";
import { ChunkAssembler, chunkCount, fileDigest } from "./protocol/chunks.js";
import { AUTH_FAILED, BAD_FRAME, ProtocolError, STORAGE_ERROR, frameError } from "./protocol/errors.js";
import { decodePiece } from "./protocol/frames.js";
import { checkStart } from "./protocol/messages.js";
import { numberedFilename, sanitizeFilename } from "./protocol/filenames.js";
import { DigestLog, allRecords, heldDigests, putRecord, recordId } from "./storage/records.js";
import {
  OpfsSink, PickerSink, canPickFile, canPickFolder, canUseOpfs, opfsFile, storageError,
} from "./storage/sinks.js";


/**
 * @typedef {import("./protocol/link.js").Link} Link
 * @typedef {import("./protocol/messages.js").Message} Message
 * @typedef {import("./protocol/messages.js").Manifest} Manifest
 * @typedef {import("./storage/records.js").FileRecord} FileRecord
 * @typedef {{record: FileRecord | null, held: Uint8Array[]}} FilePlan
 * @typedef {"checking" | "connecting" | "waiting" | "password" | "verifying" | "offer" | "saving" |
 *           "receiving" | "done" | "stopped"} ReceiverState
 * @typedef {{name: string, url: string}} Download
 */

/** The signaling identity of this tab in a room: a reload gets the same peer id back. */
function identity(/** @type {string} */ room) {
  const key = `peerbeam:receiver:${room}`;
  const stored = sessionStorage.getItem(key);
  if (stored) return /** @type {{peer: string | null, token: string}} */ (JSON.parse(stored));
  const fresh = { peer: null, token: b64urlEncode(randomBytes(24)) };
  sessionStorage.setItem(key, JSON.stringify(fresh));
  return fresh;
}

export class Receiver extends EventTarget {
  /**
   * @param {Link} link
   * @param {{apiUrl: string, wsUrl: string}} config
   */
  constructor(link, config) {
    super();
    this.link = link;
    this.config = config;
    /** @type {ReceiverState} */
    this.state = "checking";
    /** What the user should read now (plain text). */
    this.message = "";
    /** Error code of a final failure, for the page. */
    this.problem = "";
    /** @type {Manifest | null} */
    this.manifest = null;
    /** @type {FilePlan[]} */
    this.plan = [];
    /** @type {{transfer: string, records: FileRecord[]} | null} */
    this.accepted = null;
    this.passwordRemaining = 0;
    this.passwordWrong = false;
    this.done = 0;
    this.total = 0;
    /** @type {string[]} */
    this.digests = [];
    /** @type {Download[]} */
    this.downloads = [];
    /** @type {ReceiverConnection | null} */
    this.connection = null;
    /** @type {SignalingClient | null} */
    this.signaling = null;
    /** @type {RTCIceServer[]} */
    this.iceServers = [];
    this.senderPeer = "";
    /** @type {Map<string, Promise<Uint8Array<ArrayBuffer>>>} */
    this.keys = new Map();
    /** Why the room ended while a transfer still ran on (it stops when that connection ends). @type {{problem: string, message: string} | null} */
    this.ended = null;
    /** Resume-record updates, batched; outlives connections (a clear must follow their writes). */
    this.log = new DigestLog();
    // Save what is pending when the page goes away or to the background (best effort:
    // what is lost is only not claimed on the next visit).
    const flush = () => void this.log.flush();
    window.addEventListener("pagehide", flush);
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "hidden") flush();
    });
  }

  async start() {
    const room = await getRoom(this.config.apiUrl, this.link.room).catch(() => undefined);
    const me = identity(this.link.room);
    if (room === null) return this.stop("gone", "This link has expired or does not exist. Ask the sender for a new one.");
    if (room && room.locked && !me.peer) return this.stop("used", "This one-time link has already been used by someone else.");
    if (room && room.full && !me.peer) return this.stop("full", "Too many people are receiving from this link right now. Try again later.");
    this.setState("connecting", "Connecting to the sender…");
    const signaling = new SignalingClient({ wsUrl: this.config.wsUrl, room: this.link.room, role: "receiver", token: me.token, peer: me.peer });
    this.signaling = signaling;
    let rejoin = Boolean(me.peer);
    signaling.addEventListener("welcome", (e) => {
      const welcome = /** @type {CustomEvent} */ (e).detail;
      const senderPeer = welcome.peers.find((/** @type {any} */ p) => p.role === "sender")?.peer;
      // Back in a room we were in before (a reload, a signaling reconnect) without a working
      // connection: the sender may still hold one to our old self and would not offer.
      if (rejoin && senderPeer && !(this.connection && !this.connection.closed) && this.state !== "done" && this.state !== "stopped") {
        signaling.signal(senderPeer, { kind: "restart" });
      }
      rejoin = true;
      sessionStorage.setItem(`peerbeam:receiver:${this.link.room}`, JSON.stringify({ peer: welcome.peer, token: me.token }));
      this.iceServers = welcome.ice_servers;
      const sender = welcome.peers.find((/** @type {any} */ p) => p.role === "sender");
      if (!sender && this.state === "connecting") {
        this.setState("waiting", "The sender is not online right now. Keep this page open: the transfer starts when they are back.");
      }
    });
    signaling.addEventListener("peer-joined", () => {
      if (this.state === "waiting") this.setState("connecting", "Connecting to the sender…");
    });
    signaling.addEventListener("signal", (e) => {
      const { from, data } = /** @type {CustomEvent} */ (e).detail;
      const signal = readSignal(data);
      if (signal?.kind === "offer") this.onOffer(from, signal.session, signal.sdp);
    });
    signaling.addEventListener("room-closed", () => this.roomEnded("closed", "The sender stopped sharing these files."));
    signaling.addEventListener("refused", async () => {
      const state = await getRoom(this.config.apiUrl, this.link.room).catch(() => undefined);
      if (state === null) this.roomEnded("gone", "This link has expired or does not exist. Ask the sender for a new one.");
      else if (state?.locked && !signaling.peer) this.stop("used", "This one-time link has already been used by someone else.");
    });
    signaling.addEventListener("server-error", (e) => {
      if (/** @type {CustomEvent} */ (e).detail.code === "connection_replaced") {
        this.stop("replaced", "This transfer continues in another tab or window.");
      }
    });
    signaling.connect();
  }

  /**
   * The room is over (closed, expired). A transfer whose connection still works goes on to
   * its end, judged by its own keepalive: only a reconnect is impossible from now on.
   * @param {string} problem
   * @param {string} message
   */
  roomEnded(problem, message) {
    if (this.state === "done" || this.state === "stopped") return;
    this.signaling?.stop();
    if (this.connection && !this.connection.closed && this.busy) this.ended = { problem, message };
    else this.stop(problem, message);
  }

  /**
   * @param {string} from
   * @param {string} session
   * @param {string} sdp
   */
  onOffer(from, session, sdp) {
    if (this.state === "done" || this.state === "stopped") return;
    this.senderPeer = from;
    this.connection?.close();
    const connection = new ReceiverConnection(this, session, sdp);
    this.connection = connection;
    connection.open().catch((error) => connection.channel ? connection.channel.fail(error) : connection.close());
  }

  /**
   * The auth key for a hello; PBKDF2 runs once per password and iteration count.
   * @param {string | null} password
   * @param {number | null} iterations
   */
  authKey(password, iterations) {
    const cacheKey = `${password === null ? "" : "p:" + password}:${iterations}`;
    let key = this.keys.get(cacheKey);
    if (!key) {
      key = deriveAuthKey(this.link.key, this.link.room, password, iterations ?? undefined);
      this.keys.set(cacheKey, key);
      key.catch(() => this.keys.delete(cacheKey));
    }
    return key;
  }

  /** @param {string} password typed by the user */
  submitPassword(password) {
    normalizePassword(password); // throws on an empty or malformed password
    this.password = password;
    this.setState("verifying", "Checking the password…");
    this.connection?.sendAuth();
  }

  /**
   * A verified manifest arrived: match partial files, then show it (or continue).
   * @param {Manifest} manifest
   */
  async offered(manifest) {
    this.manifest = manifest;
    this.total = manifest.files.reduce((n, f) => n + f.size, 0);
    if (this.accepted?.transfer === manifest.transfer) {
      // A reconnect to the transfer the user already accepted: continue by itself.
      this.plan = await Promise.all(this.accepted.records.map(async (record) => ({ record, held: await this.heldFor(record) })));
      this.setState("receiving", "Reconnected, continuing…");
      await this.connection?.sendAccept(this.plan);
      return;
    }
    this.plan = await this.matchRecords(manifest);
    const held = this.heldBytes();
    const all = held === this.total && this.plan.every((p) => p.record?.complete);
    this.setState("offer", all ? "You already received these files: Accept to check them and save them again."
      : held > 0 ? "You already have part of this: Accept to resume where it stopped." : "");
  }

  heldBytes() {
    const manifest = this.manifest;
    if (!manifest) return 0;
    return this.plan.reduce((n, p, i) => n + Math.min(manifest.files[i].size, p.held.length * manifest.chunkSize), 0);
  }

  /**
   * Partial files this browser holds for these files (protocol.md 10): same transfer and
   * file, else the same name, size and chunk size from another transfer.
   * @param {Manifest} manifest
   * @returns {Promise<FilePlan[]>}
   */
  async matchRecords(manifest) {
    let records = [];
    try {
      records = await allRecords();
    } catch {
      return manifest.files.map(() => ({ record: null, held: [] }));
    }
    const used = new Set();
    /** @type {FilePlan[]} */
    const plan = [];
    for (const [index, entry] of manifest.files.entries()) {
      const same = (/** @type {FileRecord} */ r) => r.name === entry.name && r.size === entry.size && r.chunkSize === manifest.chunkSize;
      const record =
        records.find((r) => !used.has(r.id) && r.transfer === manifest.transfer && r.index === index && same(r)) ??
        records.find((r) => !used.has(r.id) && r.transfer !== manifest.transfer && !r.complete && same(r)) ??
        null;
      if (record) used.add(record.id);
      plan.push({ record, held: record ? await this.heldFor(record) : [] });
    }
    return plan;
  }

  /** @param {FileRecord} record */
  async heldFor(record) {
    try {
      await this.log.flush(); // what this page recorded is claimed too
      const held = await heldDigests(record.id);
      // A picked file keeps only what was committed at its last checkpoint.
      return record.kind === "picker" ? held.slice(0, record.committedChunks) : held;
    } catch {
      return [];
    }
  }

  /** The user clicked Accept: choose where to save, check space, answer the sender. */
  async accept() {
    const manifest = this.manifest;
    const connection = this.connection;
    if (!manifest || !connection || this.state !== "offer") return;
    this.setState("saving", "Choosing where to save…");
    try {
      const records = await this.prepareStorage(manifest);
      if (!records) {
        this.setState("offer", "");
        return;
      }
      this.accepted = { transfer: manifest.transfer, records };
      this.setState("receiving", "Receiving…");
      await connection.sendAccept(this.plan);
    } catch (error) {
      const failure = error instanceof ProtocolError ? error : storageError(error, "the files");
      this.fail(failure, false);
      connection.channel?.fail(failure);
    }
  }

  /**
   * Records (with file handles) for every file, or null when the user cancelled a picker.
   * @param {Manifest} manifest
   * @returns {Promise<FileRecord[] | null>}
   */
  async prepareStorage(manifest) {
    const fresh = this.plan.map((p, i) => (p.record ? -1 : i)).filter((i) => i >= 0);
    /** @type {Map<number, FileSystemFileHandle>} */
    const picked = new Map();
    let kind = /** @type {"picker" | "opfs"} */ ("opfs");
    const win = /** @type {any} */ (window);
    if (fresh.length) {
      try {
        if (manifest.files.length === 1 && canPickFile()) {
          const name = sanitizeFilename(manifest.files[0].name);
          picked.set(0, await win.showSaveFilePicker({ suggestedName: name }));
          kind = "picker";
        } else if (manifest.files.length > 1 && canPickFolder()) {
          const dir = await win.showDirectoryPicker({ mode: "readwrite" });
          for (const index of fresh) picked.set(index, await uniqueFile(dir, sanitizeFilename(manifest.files[index].name)));
          kind = "picker";
        }
      } catch (error) {
        if (/** @type {Error} */ (error).name === "AbortError") return null; // the user cancelled
        picked.clear(); // no picker here (or it failed): fall back to OPFS
      }
    }
    // Picked files from an earlier visit need the user's permission again.
    for (const { record } of this.plan) {
      if (record?.kind === "picker") {
        const handle = /** @type {any} */ (record.handle);
        if ((await handle.queryPermission?.({ mode: "readwrite" })) !== "granted" &&
            (await handle.requestPermission?.({ mode: "readwrite" })) !== "granted") {
          throw new ProtocolError(STORAGE_ERROR, `no permission to write ${record.saveName} again`);
        }
      }
    }
    if (kind === "opfs" && fresh.length) {
      if (!canUseOpfs()) {
        throw new ProtocolError(STORAGE_ERROR, "This browser cannot save large files. Use a current Chrome, Edge, Firefox or Safari.");
      }
      await checkSpace(manifest, this.plan);
    }
    /** @type {FileRecord[]} */
    const records = [];
    for (const [index, entry] of manifest.files.entries()) {
      const existing = this.plan[index].record;
      if (existing) {
        records.push(existing);
        continue;
      }
      const handle = picked.get(index) ?? (await opfsFile(manifest.transfer, index));
      /** @type {FileRecord} */
      const record = {
        id: recordId(manifest.transfer, index), transfer: manifest.transfer, index, name: entry.name,
        size: entry.size, chunkSize: manifest.chunkSize, kind: picked.has(index) ? "picker" : "opfs", handle,
        saveName: picked.has(index) ? handle.name : sanitizeFilename(entry.name), committedChunks: 0,
        complete: false, updated: Date.now(),
      };
      await this.log.clear(record.id);
      await putRecord(record);
      records.push(record);
      this.plan[index] = { record, held: [] };
    }
    return records;
  }

  /** The user said no: tell the sender, and stop. */
  decline() {
    this.connection?.channel?.send({ t: "decline" });
    this.stop("declined", "You declined these files. Nothing was saved.");
  }

  /** @param {number} bytes */
  progressed(bytes) {
    this.done += bytes;
    this.changed();
  }

  /**
   * @param {number} index
   * @param {File | null} file the disk-backed file to download (OPFS), or null
   */
  fileSaved(index, file) {
    const record = this.accepted?.records[index];
    if (file && record) {
      const url = URL.createObjectURL(file);
      this.downloads.push({ name: record.saveName, url });
      const anchor = document.createElement("a");
      anchor.href = url;
      anchor.download = record.saveName;
      anchor.hidden = true;
      document.body.append(anchor);
      anchor.click();
      anchor.remove();
    }
    this.changed();
  }

  /** @param {string[]} digests hex, one per file */
  completed(digests) {
    this.digests = digests;
    this.done = this.total;
    this.setState("done", "All files received and verified.");
    this.signaling?.stop();
  }

  /**
   * The transfer cannot go on.
   * @param {ProtocolError} error
   * @param {boolean} remote the sender said so
   */
  fail(error, remote) {
    this.stop(error.code, explain(error, remote));
  }

  /**
   * @param {string} problem
   * @param {string} message
   */
  stop(problem, message) {
    this.problem = problem;
    this.setState("stopped", message);
    this.signaling?.stop();
    this.connection?.close();
  }

  /**
   * @param {ReceiverState} state
   * @param {string} message
   */
  setState(state, message) {
    this.state = state;
    this.message = message;
    this.changed();
  }

  changed() {
    this.dispatchEvent(new Event("change"));
  }

  /** True while bytes are moving (the page keeps the screen on and warns before closing). */
  get busy() {
    return this.state === "receiving" || this.state === "saving";
  }
}

/**
 * A fresh file in a picked folder, numbered when the name is taken.
 * @param {any} dir FileSystemDirectoryHandle
 * @param {string} name
 */
async function uniqueFile(dir, name) {
  for (let n = 1; ; n++) {
    const candidate = n === 1 ? name : numberedFilename(name, n);
    try {
      await dir.getFileHandle(candidate);
    } catch {
      return dir.getFileHandle(candidate, { create: true });
    }
  }
}

/**
 * Say plainly when the files will not fit the browser's storage.
 * @param {Manifest} manifest
 * @param {FilePlan[]} plan
 */
async function checkSpace(manifest, plan) {
  const estimate = await navigator.storage?.estimate?.();
  if (!estimate?.quota) return;
  const needed = manifest.files.reduce((n, f, i) => n + f.size - Math.min(f.size, plan[i].held.length * manifest.chunkSize), 0);
  const free = estimate.quota - (estimate.usage ?? 0);
  if (needed > free) {
    const { formatBytes } = await import("./ui/format.js");
    throw new ProtocolError("disk_full", `These files need ${formatBytes(needed)} but this browser can store only ${formatBytes(free)} more. Free some disk space, or open the link in Chrome or Edge, which save straight to a folder.`);
  }
}

/**
 * A sentence for the user for every way a transfer can end badly.
 * @param {ProtocolError} error
 * @param {boolean} remote
 */
export function explain(error, remote) {
  switch (error.code) {
    case "auth_failed":
      return "Could not verify the sender — the connection may have been tampered with.";
    case "wrong_link":
      return "Wrong password or link. Check that you have the whole link and the right password.";
    case "disk_full":
      return remote ? "The transfer stopped: no space left." : error.message.startsWith("These files") ? error.message : "The disk is full: free some space and open the link again to resume.";
    case "storage_error":
      return `Cannot save the files: ${error.message}`;
    case "source_error":
      return `The sender cannot read the files any more: ${error.message}`;
    case "cancelled":
      return "The sender stopped the transfer.";
    case "busy":
      return "The sender is serving too many receivers right now. Try again later.";
    case "integrity":
      return `The files did not arrive intact: ${error.message}`;
    case "bad_version":
      return "The sender uses a different version of peerbeam. Both sides need an up-to-date version.";
    default:
      return `The transfer failed: ${error.message}`;
  }
}

/** One peer connection to the sender and one run of the protocol on it. */
class ReceiverConnection {
  /**
   * @param {Receiver} receiver
   * @param {string} session the offer's session id, echoed in the answer
   * @param {string} offerSdp as received: its fingerprints go into the MAC
   */
  constructor(receiver, session, offerSdp) {
    this.receiver = receiver;
    this.session = session;
    this.offerSdp = offerSdp;
    this.localSdp = "";
    /** @type {RTCPeerConnection | null} */
    this.pc = null;
    /** @type {PeerChannel | null} */
    this.channel = null;
    this.phase = "hello";
    /** @type {import("./protocol/messages.js").Hello | null} */
    this.hello = null;
    this.nonce = newNonce();
    /** @type {import("./protocol/messages.js").Accept | null} */
    this.acceptSent = null;
    /** @type {ChunkAssembler | null} */
    this.assembler = null;
    /** @type {(PickerSink | OpfsSink)[]} */
    this.sinks = [];
    /** Writes and acknowledgements, strictly in stream order. */
    this.writes = Promise.resolve();
    this.closed = false;
  }

  async open() {
    const r = this.receiver;
    const { pc, localSdp, channel } = await answerOffer(r.iceServers, this.offerSdp);
    this.pc = pc;
    this.localSdp = localSdp;
    r.signaling?.signal(r.senderPeer, { kind: "answer", session: this.session, sdp: localSdp });
    const raw = await channel;
    const start = () => {
      this.channel = new PeerChannel(raw, {
        onMessage: (m) => this.onMessage(m),
        onPiece: (data) => this.onPiece(data),
        onClose: (error, remote) => this.onClose(error, remote),
      });
    };
    if (raw.readyState === "open") start();
    else raw.addEventListener("open", start, { once: true });
  }

  get fingerprints() {
    return /** @type {const} */ ([sdpFingerprints(this.offerSdp), sdpFingerprints(this.localSdp)]);
  }

  async sendAuth() {
    const r = this.receiver;
    const hello = this.hello;
    if (!hello || this.closed) return;
    const password = hello.password ? r.password ?? null : null;
    if (hello.password && password === null) return;
    const key = await r.authKey(password, hello.iterations);
    this.nonce = newNonce();
    const [senderFps, receiverFps] = this.fingerprints;
    const mac = await computeMac(key, "receiver", r.link.room, senderFps, receiverFps, hello.nonce, this.nonce);
    this.authKey = key;
    this.phase = "authing";
    this.channel?.send({ t: "auth", nonce: this.nonce, mac });
  }

  /** @param {Message} m */
  async onMessage(m) {
    const r = this.receiver;
    if (this.phase === "hello" && m.t === "hello") {
      this.hello = m;
      if (m.password && !r.password) {
        r.passwordRemaining = 0;
        r.setState("password", "This transfer is protected by a password.");
      } else {
        if (r.state === "password") r.setState("verifying", "Checking the password…");
        void this.sendAuth();
      }
    } else if (this.phase === "authing" && m.t === "auth-failed") {
      if (m.retry) {
        r.password = undefined;
        r.passwordRemaining = m.remaining;
        r.passwordWrong = true;
        this.phase = "hello";
        r.setState("password", `Wrong password (${m.remaining} ${m.remaining === 1 ? "try" : "tries"} left).`);
      } else {
        r.fail(new ProtocolError("wrong_link", "wrong password or link"), false);
      }
    } else if (this.phase === "authing" && m.t === "auth-ok") {
      const hello = /** @type {import("./protocol/messages.js").Hello} */ (this.hello);
      const [senderFps, receiverFps] = this.fingerprints;
      const ok = await verifyMac(/** @type {Uint8Array<ArrayBuffer>} */ (this.authKey), m.mac, "sender", r.link.room, senderFps, receiverFps, hello.nonce, this.nonce);
      if (!ok) {
        const error = new ProtocolError(AUTH_FAILED, "the sender's proof failed: possible tampering");
        this.channel?.fail(error);
        r.fail(error, false);
        return;
      }
      r.passwordWrong = false;
      this.phase = "manifest";
    } else if (this.phase === "manifest" && m.t === "manifest") {
      this.phase = "offered";
      void r.offered(m).catch((error) => this.channel?.fail(error));
    } else if (this.phase === "starting" && m.t === "start") {
      await this.begin(m);
    } else if (this.phase === "receiving" && m.t === "chunk") {
      await this.onChunkEnd(m);
    } else if (this.phase === "receiving" && m.t === "file-done") {
      const assembler = /** @type {ChunkAssembler} */ (this.assembler);
      const digest = await assembler.fileDone(m.file, m.digest);
      if (digest) this.afterWrites(() => this.finalize(m.file));
    } else if (this.phase === "receiving" && m.t === "done") {
      if (!this.assembler?.finished) throw frameError("'done' before every file-done");
      this.phase = "finishing";
      this.afterWrites(async () => {
        const assembler = /** @type {ChunkAssembler} */ (this.assembler);
        const digests = await Promise.all(assembler.digests.map(fileDigest));
        this.channel?.send({ t: "complete", digests });
        const { hexEncode } = await import("./protocol/codec.js");
        r.completed(digests.map(hexEncode));
        setTimeout(() => this.close(), TIMING.closeAfterCompleteMs);
      });
    } else {
      throw frameError(`unexpected '${m.t}' now`);
    }
  }

  /**
   * Answer the manifest (protocol.md 7.2): offsets of what is held, with prefixes.
   * @param {FilePlan[]} plan
   */
  async sendAccept(plan) {
    const manifest = /** @type {Manifest} */ (this.receiver.manifest);
    const files = [];
    for (const [index, entry] of manifest.files.entries()) {
      const held = plan[index].held;
      const offset = Math.min(entry.size, held.length * manifest.chunkSize);
      files.push({ offset, prefix: offset > 0 ? await fileDigest(held) : null });
    }
    this.acceptSent = { t: "accept", transfer: manifest.transfer, files };
    this.phase = "starting";
    this.channel?.send(this.acceptSent);
  }

  /**
   * `start`: open the files at the offsets the sender confirmed, set up the assembler.
   * @param {import("./protocol/messages.js").Start} start
   */
  async begin(start) {
    const r = this.receiver;
    const accept = /** @type {import("./protocol/messages.js").Accept} */ (this.acceptSent);
    checkStart(start, accept);
    const manifest = /** @type {Manifest} */ (r.manifest);
    const records = /** @type {{records: FileRecord[]}} */ (r.accepted).records;
    /** @type {Uint8Array[][]} */
    const held = [];
    this.sinks = [];
    try {
      for (const [index, record] of records.entries()) {
        let digests = r.plan[index].held;
        if (start.offsets[index] === 0 && digests.length) {
          // The sender's prefix check failed: overwrite this file from the start.
          digests = [];
          await r.log.clear(record.id);
          record.committedChunks = 0;
          record.complete = false;
          await r.log.update(record);
        }
        held.push(digests);
        const keep = Math.min(record.size, digests.length * manifest.chunkSize);
        const sink = record.kind === "picker" ? new PickerSink(record.handle, keep) : new OpfsSink(record.handle, record.id, keep > 0);
        await sink.open();
        this.sinks.push(sink);
      }
    } catch (error) {
      throw storageError(error, "the files");
    }
    r.done = start.offsets.reduce((a, b) => a + b, 0);
    this.assembler = new ChunkAssembler(manifest.files.map((f) => f.size), start.offsets, held, manifest.chunkSize);
    this.phase = "receiving";
    r.changed();
  }

  /** @param {ArrayBuffer} data */
  onPiece(data) {
    if (this.phase !== "receiving" || !this.assembler) throw frameError("binary data before 'start'");
    this.assembler.addPiece(decodePiece(data));
  }

  /** @param {import("./protocol/messages.js").ChunkEnd} m */
  async onChunkEnd(m) {
    const received = await /** @type {ChunkAssembler} */ (this.assembler).endChunk(m.file, m.chunk, m.size, m.sha256);
    if (!received) return;
    if (!received.ok) {
      this.afterWrites(async () => this.channel?.send({ t: "nack", file: m.file, chunk: m.chunk }));
      return;
    }
    const r = this.receiver;
    const record = /** @type {{records: FileRecord[]}} */ (r.accepted).records[m.file];
    const sink = this.sinks[m.file];
    const length = received.data.length; // an OPFS write moves the buffer to the worker
    this.afterWrites(async () => {
      let committed;
      try {
        committed = await sink.write(received.position, received.data);
      } catch (error) {
        throw storageError(error, record.saveName);
      }
      // A writable stream took its copy: the buffer can take the next chunk (an OPFS write
      // moved it to the worker).
      if (sink instanceof PickerSink) /** @type {ChunkAssembler} */ (this.assembler).recycle(received.data);
      if (this.closed) return; // a newer connection may be overwriting this file
      // Written: its digest may be recorded (in the next batch; the ack need not wait).
      r.log.add(record.id, m.chunk, received.digest);
      if (sink instanceof PickerSink && committed) {
        record.committedChunks = chunkCount(sink.committed, record.chunkSize);
        void r.log.update(record);
      }
      this.channel?.send({ t: "ack", file: m.file, chunk: m.chunk });
      r.progressed(length);
    });
  }

  /**
   * Queue work behind the pending writes (acks and nacks leave strictly in order).
   * @param {() => Promise<void>} work
   */
  afterWrites(work) {
    this.writes = this.writes.then(() => (this.closed ? undefined : work())).catch((error) => {
      if (!this.closed) this.channel?.fail(error);
    });
  }

  /** @param {number} index */
  async finalize(index) {
    const r = this.receiver;
    const record = /** @type {{records: FileRecord[]}} */ (r.accepted).records[index];
    let file;
    try {
      file = await this.sinks[index].finish();
    } catch (error) {
      throw storageError(error, record.saveName);
    }
    record.complete = true;
    if (record.kind === "picker") record.committedChunks = chunkCount(record.size, record.chunkSize);
    await r.log.update(record); // with the file's last digests
    r.fileSaved(index, file);
  }

  /**
   * @param {ProtocolError | null} error
   * @param {boolean} remote
   */
  onClose(error, remote) {
    const r = this.receiver;
    this.release();
    if (r.connection !== this || r.state === "done" || r.state === "stopped") return;
    if (error && error.code !== "timeout") {
      if (error.code === BAD_FRAME && !remote) console.error(error);
      r.fail(error, remote);
      return;
    }
    if (r.ended) {
      r.stop(r.ended.problem, r.ended.message); // no room to reconnect through any more
      return;
    }
    // Lost: keep everything, ask the sender for a new connection (it may not have noticed
    // yet), and resume on it.
    if (r.senderPeer) r.signaling?.signal(r.senderPeer, { kind: "restart" });
    if (r.state === "receiving") r.setState("receiving", "Connection lost: reconnecting…");
    else if (r.state !== "offer" && r.state !== "password") r.setState("connecting", "Connection lost: reconnecting…");
  }

  release() {
    void this.receiver.log.flush();
    this.closed = true;
    for (const sink of this.sinks) void sink.release();
    this.sinks = [];
  }

  close() {
    this.channel?.close();
    this.release();
    this.pc?.close();
  }
}
