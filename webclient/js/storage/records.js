// @ts-check
/**
 * Resume records in IndexedDB (protocol.md section 10): per received file, where its
 * bytes are (a file handle: a picked file or an OPFS file) and the digests of the chunks
 * held durably. Digests are one small record per chunk (so recording some is cheap at any
 * file size); a DigestLog batches them: one transaction per FLUSH_MS / FLUSH_CHUNKS instead
 * of one per chunk.
 */

const DB_NAME = "peerbeam";
const DB_VERSION = 1;

/**
 * @typedef {{id: string, transfer: string, index: number, name: string, size: number,
 *            chunkSize: number, kind: import("./plan.js").FileKind, handle: FileSystemFileHandle,
 *            staging?: FileSystemFileHandle, saveName: string, committedChunks: number,
 *            complete: boolean, updated: number}} FileRecord
 *   `handle`: the picked file, or the private file ("opfs"); `staging`: the private file a
 *   picked file is received into first ("staged"). A "stream" file has no record in the
 *   database (nothing of it survives a reload); its handle is unused.
 */

/** Persist recorded digests at least this often while chunks arrive… */
const FLUSH_MS = 500;
/** …and at once when this many wait. */
const FLUSH_CHUNKS = 64;

/** @type {Promise<IDBDatabase> | null} */
let opened = null;
/** The database once open: lets a flush in `pagehide` start its transaction synchronously. */
/** @type {IDBDatabase | null} */
let database = null;

function db() {
  opened ??= new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, DB_VERSION);
    request.onupgradeneeded = () => {
      const database = request.result;
      database.createObjectStore("files", { keyPath: "id" });
      database.createObjectStore("digests");
    };
    request.onsuccess = () => resolve((database = request.result));
    request.onerror = () => reject(request.error);
  });
  return opened;
}

/**
 * @template T
 * @param {IDBRequest<T>} request
 * @returns {Promise<T>}
 */
function done(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/**
 * @param {string} transfer
 * @param {number} index
 */
export const recordId = (transfer, index) => `${transfer}/${index}`;

/** @returns {Promise<FileRecord[]>} */
export async function allRecords() {
  const database = await db();
  return done(database.transaction("files").objectStore("files").getAll());
}

/** @param {FileRecord} record */
export async function putRecord(record) {
  const database = await db();
  record.updated = Date.now();
  await done(database.transaction("files", "readwrite").objectStore("files").put(record));
}

/**
 * Record digests of chunks that are verified and written, and file records, in one
 * transaction.
 * @param {[string, number, Uint8Array][]} digests (record id, chunk, digest)
 * @param {FileRecord[]} records
 */
async function putBatch(digests, records) {
  const open = database ?? (await db());
  const transaction = open.transaction(["digests", "files"], "readwrite");
  const store = transaction.objectStore("digests");
  for (const [id, chunk, digest] of digests) store.put(digest, [id, chunk]);
  const files = transaction.objectStore("files");
  const now = Date.now();
  for (const record of records) {
    record.updated = now;
    files.put(record);
  }
  await new Promise((resolve, reject) => {
    transaction.oncomplete = () => resolve(undefined);
    transaction.onerror = () => reject(transaction.error);
    transaction.onabort = () => reject(transaction.error);
  });
}

/**
 * The receiver's pending resume-record updates, written in batches. A digest is added
 * only after its chunk's bytes were written, so whatever a batch records is as durable
 * as before; a batch not yet written (at most FLUSH_MS of chunks) is merely not claimed
 * on a reload: those chunks are received again. Every write and clear goes through one
 * queue, so a clear is never overtaken by an older batch.
 */
export class DigestLog {
  constructor() {
    /** @type {[string, number, Uint8Array][]} */
    this.digests = [];
    /** @type {Map<string, FileRecord>} */
    this.records = new Map();
    /** @type {Promise<void>} */
    this.queue = Promise.resolve();
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.timer = null;
  }

  /**
   * The digest of a chunk that is verified and written.
   * @param {string} id
   * @param {number} chunk
   * @param {Uint8Array} digest
   */
  add(id, chunk, digest) {
    this.digests.push([id, chunk, digest]);
    if (this.digests.length >= FLUSH_CHUNKS) void this.flush();
    else this.timer ??= setTimeout(() => void this.flush(), FLUSH_MS);
  }

  /**
   * Save a file record with the next batch (now: `flush()` it to wait).
   * @param {FileRecord} record
   */
  update(record) {
    this.records.set(record.id, record);
    return this.flush();
  }

  /** Write everything pending; resolves once it is written (errors are swallowed: best effort). */
  flush() {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (!this.digests.length && !this.records.size) return this.queue;
    const digests = this.digests;
    const records = [...this.records.values()];
    this.digests = [];
    this.records.clear();
    // With the database open and nothing in flight, the transaction starts in this task's
    // microtasks: still inside a `pagehide` handler.
    this.queue = this.queue.then(() => putBatch(digests, records)).catch(() => undefined);
    return this.queue;
  }

  /**
   * Forget a file's digests, pending and recorded (its bytes are overwritten from the start).
   * @param {string} id
   */
  clear(id) {
    this.digests = this.digests.filter(([d]) => d !== id);
    const run = this.queue.then(() => clearDigests(id));
    this.queue = run.catch(() => undefined);
    return run;
  }
}

/**
 * The digests of the longest run of chunks from 0 that were recorded. Chunks of several
 * connections are written in any order (protocol.md 8.7): a digest past a gap is recorded
 * but held only once the gap is filled.
 * @param {string} id
 * @returns {Promise<Uint8Array[]>}
 */
export async function heldDigests(id) {
  const database = await db();
  const store = database.transaction("digests").objectStore("digests");
  const range = IDBKeyRange.bound([id, 0], [id, Number.MAX_SAFE_INTEGER]);
  const [keys, values] = await Promise.all([done(store.getAllKeys(range)), done(store.getAll(range))]);
  /** @type {Uint8Array[]} */
  const run = [];
  keys.forEach((key, i) => {
    if (/** @type {[string, number]} */ (key)[1] === run.length) run.push(new Uint8Array(values[i]));
  });
  return run;
}

/**
 * Forget a file's digests (its bytes are being overwritten from the start).
 * @param {string} id
 */
export async function clearDigests(id) {
  const database = await db();
  const range = IDBKeyRange.bound([id, 0], [id, Number.MAX_SAFE_INTEGER]);
  await done(database.transaction("digests", "readwrite").objectStore("digests").delete(range));
}

/** @param {string} id */
export async function deleteRecord(id) {
  await clearDigests(id);
  const database = await db();
  await done(database.transaction("files", "readwrite").objectStore("files").delete(id));
}
