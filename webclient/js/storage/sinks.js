// @ts-check
/**
 * Where received bytes go (docs/webclient.md, "Saving"), never the whole file in memory:
 *
 * 1. "picker": a file the user chose (showSaveFilePicker, or showDirectoryPicker for
 *    several files), written with a FileSystemWritableFileStream. Its bytes become
 *    durable only when the stream is closed, so it is committed at checkpoints
 *    (whenever the uncommitted part reaches max(64 MiB, what is committed): re-opening
 *    copies the file, so the copies add up to about twice the file at most); a reloaded
 *    tab resumes from the last checkpoint.
 * 2. "opfs": the Origin Private File System, written from a worker through a
 *    synchronous access handle (a reload loses nothing that was acknowledged), then
 *    handed to the browser's downloads (`handOver`). A picked file is "staged" the same
 *    way and copied into the picked file at the end (`copyInto`).
 * (3. "stream": stream-sink.js.)
 */
import { CHUNK_SIZE } from "../protocol/constants.js";
import { DISK_FULL, ProtocolError, STORAGE_ERROR } from "../protocol/errors.js";
import { StreamSink } from "./stream-sink.js";

const MIN_CHECKPOINT = 64 * 1024 * 1024;

/** @typedef {"picker" | "opfs"} SinkKind */
/** @typedef {(done: number) => void} Progress bytes copied so far */

/**
 * @param {unknown} error
 * @param {string} name
 */
export function storageError(error, name) {
  const e = /** @type {Error} */ (error);
  if (e?.name === "QuotaExceededError" || /quota|space/i.test(e?.message ?? "")) {
    return new ProtocolError(DISK_FULL, `no space left to save ${name}`);
  }
  // The page says "Cannot save the files: …": this part names the file and quotes the browser.
  return new ProtocolError(STORAGE_ERROR, `writing ${name} failed (${e?.message ?? e})`);
}

export class PickerSink {
  /**
   * @param {FileSystemFileHandle} handle
   * @param {number} committedBytes bytes already in the file that we keep
   */
  constructor(handle, committedBytes) {
    this.kind = /** @type {SinkKind} */ ("picker");
    this.handle = handle;
    this.committed = committedBytes;
    this.written = committedBytes;
    /** @type {FileSystemWritableFileStream | null} */
    this.stream = null;
  }

  async open() {
    this.stream = await this.handle.createWritable({ keepExistingData: this.committed > 0 });
    if (this.committed > 0) await this.stream.truncate(this.committed);
  }

  /**
   * Write at `position`. Returns true when this write committed a checkpoint.
   * @param {number} position
   * @param {Uint8Array} data
   */
  async write(position, data) {
    const stream = /** @type {FileSystemWritableFileStream} */ (this.stream);
    await stream.write({ type: "write", position, data: /** @type {Uint8Array<ArrayBuffer>} */ (data) });
    this.written = position + data.length;
    if (this.written - this.committed >= Math.max(MIN_CHECKPOINT, this.committed)) {
      await this.commit();
      this.stream = await this.handle.createWritable({ keepExistingData: true });
      return true;
    }
    return false;
  }

  async commit() {
    await this.stream?.close();
    this.stream = null;
    this.committed = this.written;
  }

  /** @returns {Promise<File | null>} null: the file is already where the user chose. */
  async finish() {
    await this.commit();
    return null;
  }

  async release() {
    await this.stream?.abort().catch(() => undefined);
    this.stream = null;
  }
}

/** One worker serves every OPFS file of the page. */
class OpfsWorker {
  constructor() {
    this.worker = new Worker(new URL("./opfs-worker.js", import.meta.url), { type: "module" });
    this.next = 0;
    /** @type {Map<number, {resolve: (v: unknown) => void, reject: (e: Error) => void}>} */
    this.pending = new Map();
    /** Set when the worker failed (its script could not be loaded): every call fails. @type {Error | null} */
    this.broken = null;
    this.worker.onmessage = (event) => {
      const { id, ok, name, message } = event.data;
      const waiter = this.pending.get(id);
      this.pending.delete(id);
      if (ok) waiter?.resolve(undefined);
      else waiter?.reject(Object.assign(new Error(message), { name }));
    };
    // A module worker whose script does not load (the server went away for a moment) only
    // fires `error`: without this its calls would wait forever.
    this.worker.onerror = (event) => {
      event.preventDefault();
      this.broken = new Error(`the storage worker did not start (${event.message || "its script did not load"})`);
      for (const waiter of this.pending.values()) waiter.reject(this.broken);
      this.pending.clear();
    };
  }

  /**
   * @param {Record<string, unknown>} request
   * @param {Transferable[]} [transfer]
   */
  call(request, transfer = []) {
    if (this.broken) return Promise.reject(this.broken);
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...request, id }, transfer);
    });
  }
}

/** @type {Promise<OpfsWorker> | null} */
let started = null;

/**
 * The page's storage worker, loaded and answering. ReceiveStorage starts it when the files
 * are prepared, so that a signaling server that restarts mid-transfer (it serves the
 * script too) cannot stop the first write; a load that fails is tried again a few times.
 */
export function opfsWorker() {
  started ??= (async () => {
    for (let attempt = 1; ; attempt++) {
      const candidate = new OpfsWorker();
      try {
        await candidate.call({ op: "ping" });
        return candidate;
      } catch (error) {
        candidate.worker.terminate();
        if (attempt >= 5) throw error;
        await new Promise((resolve) => setTimeout(resolve, 1000 * attempt));
      }
    }
  })().catch((error) => {
    started = null;
    throw error;
  });
  return started;
}

export class OpfsSink {
  /**
   * @param {FileSystemFileHandle} handle an OPFS file
   * @param {string} key unique per file
   * @param {boolean} keep keep the bytes already there (resume)
   */
  constructor(handle, key, keep) {
    this.kind = /** @type {SinkKind} */ ("opfs");
    this.handle = handle;
    this.key = key;
    this.keep = keep;
    /** @type {OpfsWorker | null} */
    this.worker = null;
  }

  async open() {
    this.worker = await opfsWorker();
    await this.worker.call({ op: "open", key: this.key, handle: this.handle, truncate: !this.keep });
  }

  /**
   * @param {number} position
   * @param {Uint8Array} data a chunk of its own: its buffer moves to the worker
   */
  async write(position, data) {
    const buffer = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? data.buffer : data.slice().buffer;
    await /** @type {OpfsWorker} */ (this.worker).call({ op: "write", key: this.key, position, data: buffer }, [buffer]);
    return true;
  }

  /** @returns {Promise<File>} the disk-backed file, for a download */
  async finish() {
    await /** @type {OpfsWorker} */ (this.worker).call({ op: "close", key: this.key });
    return this.handle.getFile();
  }

  async release() {
    await this.worker?.call({ op: "close", key: this.key }).catch(() => undefined);
  }
}

/** The folder of OPFS transfers: transfers/<transfer id>/<file index>. */
export async function opfsTransfers() {
  const root = await navigator.storage.getDirectory();
  return root.getDirectoryHandle("transfers", { create: true });
}

/**
 * Delete a file of the private file system (and its transfer's folder once empty).
 * @param {string} transfer
 * @param {number} index
 */
export async function removeOpfsFile(transfer, index) {
  const transfers = await opfsTransfers();
  const dir = await transfers.getDirectoryHandle(transfer, { create: true });
  await dir.removeEntry(String(index)).catch(() => undefined);
  for await (const _ of /** @type {any} */ (dir).keys()) return;
  await transfers.removeEntry(transfer).catch(() => undefined);
}

/**
 * @param {string} transfer
 * @param {number} index
 */
export async function opfsFile(transfer, index) {
  const dir = await (await opfsTransfers()).getDirectoryHandle(transfer, { create: true });
  return dir.getFileHandle(String(index), { create: true });
}

/** A staged file is copied into the picked one in steps of this (progress per step). */
const COPY_STEP = 32 * 1024 * 1024;

/**
 * Copy a staged file into the file the user picked (the browser writes a swap file and
 * renames it over the target on close: one copy, one commit). Each step writes a Blob
 * slice of the staged file, so the browser copies file to file and no byte passes through
 * JavaScript: measured on 1 GiB, the browser grew by 9 MiB this way and by about 150 MiB
 * piping `file.stream()` or writing ArrayBuffers (benchmarks/large_transfer.py measures it
 * at 8 GiB).
 * @param {File} source
 * @param {FileSystemFileHandle} target
 * @param {Progress} progress
 */
export async function copyInto(source, target, progress) {
  const writable = await target.createWritable();
  try {
    for (let at = 0; at < source.size; at += COPY_STEP) {
      await writable.write(source.slice(at, at + COPY_STEP));
      progress(Math.min(source.size, at + COPY_STEP));
    }
    await writable.close();
  } catch (error) {
    await writable.abort().catch(() => undefined);
    throw error;
  }
}

/**
 * Hand a file of the private file system to the browser's downloads through the download
 * Service Worker; resolves once the download has taken the last byte (then the private
 * copy may go).
 * @param {File} file
 * @param {string} name
 * @param {Progress} progress
 */
export async function handOver(file, name, progress) {
  const sink = new StreamSink(name, file.size);
  try {
    await sink.open();
    for (let at = 0; at < file.size;) {
      const data = new Uint8Array(await file.slice(at, at + CHUNK_SIZE).arrayBuffer());
      const length = data.byteLength; // the buffer moves to the worker
      await sink.write(at, data);
      at += length;
      progress(at);
    }
    await sink.finish();
  } finally {
    await sink.release();
  }
}
