// @ts-check
/**
 * Resume records in IndexedDB (protocol.md section 10): per received file, where its
 * bytes are (a file handle: a picked file or an OPFS file) and the digests of the chunks
 * held durably. Digests are one small record per chunk, so recording one is cheap at
 * any file size.
 */

const DB_NAME = "peerbeam";
const DB_VERSION = 1;

/**
 * @typedef {{id: string, transfer: string, index: number, name: string, size: number,
 *            chunkSize: number, kind: "picker" | "opfs", handle: FileSystemFileHandle,
 *            saveName: string, committedChunks: number, complete: boolean, updated: number}} FileRecord
 */

/** @type {Promise<IDBDatabase> | null} */
let opened = null;

function db() {
  opened ??= new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, DB_VERSION);
    request.onupgradeneeded = () => {
      const database = request.result;
      database.createObjectStore("files", { keyPath: "id" });
      database.createObjectStore("digests");
    };
    request.onsuccess = () => resolve(request.result);
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
 * Record the digest of one chunk that is verified and written.
 * @param {string} id
 * @param {number} chunk
 * @param {Uint8Array} digest
 */
export async function putDigest(id, chunk, digest) {
  const database = await db();
  await done(database.transaction("digests", "readwrite").objectStore("digests").put(digest, [id, chunk]));
}

/**
 * The digests of the longest run of chunks from 0 that were recorded.
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
