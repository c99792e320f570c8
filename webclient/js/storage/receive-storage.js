// @ts-check
/**
 * Where a receiving page keeps the files of one offer (docs/webclient.md "Saving" and
 * "Resume"): it carries out the storage actions of the receiver machine, as
 * peerbeam/peer/storage.py does for the CLI.
 *
 * - `loadRecords` (`load_records`): the resume records this browser holds that could match
 *   a manifest, with the digests of the chunks held durably (for a picked file, only up to
 *   its last checkpoint). Which of them match is the machine's rule (protocol.md 10).
 * - `prepare` (`prepare_storage`): where each file goes — the record the machine matched,
 *   or a new file in a picked file or folder, or in the browser's private file system
 *   after checking that it fits. Must start inside the Accept click (the pickers and the
 *   write permission of a file picked on an earlier visit need the user's gesture).
 * - `write`, `finish`, `reset` (`write_chunk`, `finish_file`, `reset_file`): strictly in
 *   order, one after another; a file's sink opens at its first write. Chunks come in any
 *   order (several connections, protocol.md 8.7): what a file holds is the run of chunks
 *   from 0 written so far (as peerbeam/peer/storage.py keeps it), and only that run is
 *   committed at a picked file's checkpoint.
 * - `release`: a connection ended: close the sinks (a picked file keeps what it committed
 *   at its last checkpoint; the records say so), reopened on the next write.
 *
 * Failures are ProtocolErrors with code disk_full or storage_error; their message is a
 * sentence the page may quote.
 */
import { chunkCount } from "../protocol/chunks.js";
import { DISK_FULL, ProtocolError, STORAGE_ERROR } from "../protocol/errors.js";
import { numberedFilename, sanitizeFilename } from "../protocol/filenames.js";
import { formatBytes } from "../ui/format.js";
import { DigestLog, allRecords, heldDigests, putRecord, recordId } from "./records.js";
import { OpfsSink, PickerSink, canPickFile, canPickFolder, canUseOpfs, opfsFile, storageError } from "./sinks.js";

/**
 * @typedef {import("../protocol/messages.js").Manifest} Manifest
 * @typedef {import("../protocol/resume.js").ResumeRecord} ResumeRecord
 * @typedef {import("./records.js").FileRecord} FileRecord
 */

export class ReceiveStorage {
  constructor() {
    /** Resume-record updates, batched (records.js). */
    this.log = new DigestLog();
    /** What the last `loadRecords` found: record id → the record and the chunks it holds. @type {Map<string, {record: FileRecord, held: number}>} */
    this.loaded = new Map();
    /** Per manifest file once prepared: its record. @type {FileRecord[]} */
    this.records = [];
    /** Per file: the open sink, if any. @type {(PickerSink | OpfsSink | null)[]} */
    this.sinks = [];
    /** Per file: the bytes there are not ours (a new file, or reset): start it empty. @type {boolean[]} */
    this.fresh = [];
    /** Per file while its sink is open: chunks held from 0 (written, in a run). @type {number[]} */
    this.runs = [];
    /** Per file while its sink is open: chunks written past a gap in that run. @type {Set<number>[]} */
    this.ahead = [];
    /** @type {Promise<unknown>} */
    this.queue = Promise.resolve();
  }

  /**
   * Run `task` after every storage task before it.
   * @template T
   * @param {() => Promise<T>} task
   * @returns {Promise<T>}
   */
  inTurn(task) {
    const result = this.queue.then(task);
    this.queue = result.catch(() => undefined);
    return result;
  }

  /**
   * The records that could match `manifest` (same name, size and chunk size), as the
   * machine's `records_loaded` takes them.
   * @param {Manifest} manifest
   * @returns {Promise<ResumeRecord[]>}
   */
  loadRecords(manifest) {
    return this.inTurn(async () => {
      await this.log.flush(); // what this page recorded is claimed too
      const candidates = (await allRecords()).filter((r) => r.chunkSize === manifest.chunkSize &&
        manifest.files.some((f) => f.name === r.name && f.size === r.size));
      this.loaded.clear();
      /** @type {ResumeRecord[]} */
      const out = [];
      for (const record of candidates) {
        let digests = await heldDigests(record.id);
        // A picked file keeps only what was committed at its last checkpoint.
        if (record.kind === "picker") digests = digests.slice(0, record.committedChunks);
        this.loaded.set(record.id, { record, held: digests.length });
        out.push({
          id: record.id, transfer: record.transfer, index: record.index, name: record.name, size: record.size,
          chunk_size: record.chunkSize, complete: record.complete, digests,
        });
      }
      return out;
    });
  }

  /**
   * Where every file goes. `ids[i]`: the record the machine matched for file i, or null
   * for a new file. Resolves false when the user cancelled a picker (nothing was saved).
   * @param {Manifest} manifest
   * @param {(string | null)[]} ids
   * @returns {Promise<boolean>}
   */
  async prepare(manifest, ids) {
    const fresh = ids.flatMap((id, index) => (id === null ? [index] : []));
    /** @type {Map<number, FileSystemFileHandle>} */
    const picked = new Map();
    const win = /** @type {any} */ (window);
    // The pickers first, while the Accept click still counts as the user's gesture.
    if (fresh.length) {
      try {
        if (manifest.files.length === 1 && canPickFile()) {
          picked.set(0, await win.showSaveFilePicker({ suggestedName: sanitizeFilename(manifest.files[0].name) }));
        } else if (manifest.files.length > 1 && canPickFolder()) {
          const dir = await win.showDirectoryPicker({ mode: "readwrite" });
          for (const index of fresh) picked.set(index, await uniqueFile(dir, sanitizeFilename(manifest.files[index].name)));
        }
      } catch (error) {
        if (/** @type {Error} */ (error).name === "AbortError") return false; // the user cancelled
        picked.clear(); // no picker here (or it failed): the private file system instead
      }
    }
    /** @type {(FileRecord | null)[]} */
    const reused = ids.map((id) => (id === null ? null : this.loaded.get(id)?.record ?? null));
    // Files picked on an earlier visit need the user's permission again.
    for (const record of reused) {
      if (record?.kind === "picker") {
        const handle = /** @type {any} */ (record.handle);
        if ((await handle.queryPermission?.({ mode: "readwrite" })) !== "granted" &&
            (await handle.requestPermission?.({ mode: "readwrite" })) !== "granted") {
          throw new ProtocolError(STORAGE_ERROR, `no permission to write ${record.saveName} again`);
        }
      }
    }
    const toOpfs = fresh.filter((index) => !picked.has(index));
    if (toOpfs.length) {
      if (!canUseOpfs()) throw new ProtocolError(STORAGE_ERROR, "this browser cannot save large files");
      const held = ids.map((id) => (id === null ? 0 : this.loaded.get(id)?.held ?? 0));
      await checkSpace(manifest, held);
    }
    return this.inTurn(async () => {
      try {
        /** @type {FileRecord[]} */
        const records = [];
        for (const [index, entry] of manifest.files.entries()) {
          const existing = reused[index];
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
        }
        this.records = records;
        this.sinks = records.map(() => null);
        this.fresh = ids.map((id) => id === null);
        this.runs = records.map(() => 0);
        this.ahead = records.map(() => new Set());
        return true;
      } catch (error) {
        throw error instanceof ProtocolError ? error : storageError(error, "the files");
      }
    });
  }

  /** @param {number} file */
  async sinkFor(file) {
    const open = this.sinks[file];
    if (open) return open;
    const record = this.records[file];
    const fresh = this.fresh[file];
    const sink = record.kind === "picker"
      ? new PickerSink(record.handle, fresh ? 0 : Math.min(record.size, record.committedChunks * record.chunkSize))
      : new OpfsSink(record.handle, record.id, !fresh);
    await sink.open();
    this.fresh[file] = false;
    this.sinks[file] = sink;
    // The run starts at what the last load_records claimed, where the machine resumes.
    this.runs[file] = fresh ? 0 : this.loaded.get(record.id)?.held ?? 0;
    this.ahead[file] = new Set();
    return sink;
  }

  /**
   * A chunk of `file` is written: extend the run of chunks held from 0.
   * @param {number} file
   * @param {number} chunk
   */
  written(file, chunk) {
    const ahead = this.ahead[file];
    if (chunk >= this.runs[file]) ahead.add(chunk);
    while (ahead.delete(this.runs[file])) this.runs[file] += 1;
  }

  /**
   * Write a verified chunk, then record its digest (a recorded digest always means
   * "verified and written"). Resolves true when the buffer may be reused (a writable
   * stream copied it; an OPFS write moved it to the worker).
   * @param {number} file
   * @param {number} chunk
   * @param {number} position
   * @param {Uint8Array} data
   * @param {Uint8Array} digest
   */
  write(file, chunk, position, data, digest) {
    return this.inTurn(async () => {
      const record = this.records[file];
      try {
        const sink = await this.sinkFor(file);
        const committed = await sink.write(position, data);
        this.log.add(record.id, chunk, digest);
        this.written(file, chunk);
        if (sink instanceof PickerSink && committed) {
          // Every chunk of the run was written before this checkpoint closed the stream;
          // a chunk past a gap was too, but is held only once the gap is filled.
          record.committedChunks = this.runs[file];
          void this.log.update(record);
        }
        return sink instanceof PickerSink;
      } catch (error) {
        throw storageError(error, record.saveName);
      }
    });
  }

  /**
   * Every chunk of `file` is written and verified: close it. Resolves to the disk-backed
   * file to hand out as a download (private file system), or null (a picked file is
   * already where the user chose).
   * @param {number} file
   * @returns {Promise<File | null>}
   */
  finish(file) {
    return this.inTurn(async () => {
      const record = this.records[file];
      try {
        // A file never opened this session holds all its bytes already (or must be emptied).
        const sink = this.sinks[file] ?? (this.fresh[file] ? await this.sinkFor(file) : null);
        const saved = sink ? await sink.finish() : record.kind === "opfs" ? await record.handle.getFile() : null;
        this.sinks[file] = null;
        record.complete = true;
        if (record.kind === "picker") record.committedChunks = chunkCount(record.size, record.chunkSize);
        await this.log.update(record); // with the file's last digests
        return saved;
      } catch (error) {
        throw storageError(error, record.saveName);
      }
    });
  }

  /**
   * The sender's prefix check failed: this file is received again from its start.
   * @param {number} file
   */
  reset(file) {
    return this.inTurn(async () => {
      const record = this.records[file];
      try {
        await this.sinks[file]?.release();
        this.sinks[file] = null;
        this.fresh[file] = true;
        await this.log.clear(record.id);
        record.committedChunks = 0;
        record.complete = false;
        await this.log.update(record);
      } catch (error) {
        throw storageError(error, record.saveName);
      }
    });
  }

  /** A connection ended: close what is open (best effort), save what is pending. */
  release() {
    return this.inTurn(async () => {
      const sinks = this.sinks;
      this.sinks = sinks.map(() => null);
      for (const sink of sinks) await sink?.release();
      await this.log.flush();
    });
  }

  /** Save pending records now (the page is going away or to the background). */
  flush() {
    return this.log.flush();
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
 * @param {number[]} held chunks already held, per file
 */
async function checkSpace(manifest, held) {
  const estimate = await navigator.storage?.estimate?.();
  if (!estimate?.quota) return;
  const needed = manifest.files.reduce((n, f, i) => n + f.size - Math.min(f.size, held[i] * manifest.chunkSize), 0);
  const free = estimate.quota - (estimate.usage ?? 0);
  if (needed > free) {
    throw new ProtocolError(DISK_FULL, `these files need ${formatBytes(needed)} but this browser can store only ${formatBytes(free)} more`);
  }
}
