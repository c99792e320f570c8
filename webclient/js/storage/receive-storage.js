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
import { TIMING } from "../timing.js";
import { formatBytes } from "../ui/format.js";
import { planStorage } from "./plan.js";
import { askPersist, capabilities } from "./probe.js";
import { DigestLog, allRecords, deleteRecord, heldDigests, putRecord, recordId } from "./records.js";
import {
  OpfsSink, PickerSink, copyInto, handOver, opfsFile, opfsWorker, removeOpfsFile, storageError,
} from "./sinks.js";
import { StreamSink, canStreamDownload } from "./stream-sink.js";

/**
 * @typedef {import("../protocol/messages.js").Manifest} Manifest
 * @typedef {import("../protocol/resume.js").ResumeRecord} ResumeRecord
 * @typedef {import("./records.js").FileRecord} FileRecord
 * @typedef {import("./plan.js").Plan} Plan
 * @typedef {import("./plan.js").PlanFile} PlanFile
 * @typedef {import("./plan.js").Capabilities} Capabilities
 * @typedef {{kind: import("./plan.js").FileKind, file: File | null}} Finished
 *   where a finished file went; `file`: the private copy kept (it could not be handed to
 *   the downloads by a stream), to offer as a "Save" link
 * @typedef {{what: "persist"} | {what: "copy" | "handover", name: string, done: number, total: number}} Activity
 *   what storage is busy with that the user should see: asking for persistent storage,
 *   copying a staged file into the picked one, handing a private copy to the downloads
 */

export class ReceiveStorage {
  /**
   * @param {{staging?: boolean}} [options] `staging: false` writes picked files straight
   *   into the picked file with checkpoints even where the private file system could stage
   *   them (the fallback path of "Where the files go", kept testable)
   */
  constructor({ staging = true } = {}) {
    this.staging = staging;
    /** Resume-record updates, batched (records.js). */
    this.log = new DigestLog();
    /** What the last `loadRecords` found: record id → the record and the chunks it holds. @type {Map<string, {record: FileRecord, held: number}>} */
    this.loaded = new Map();
    /** Per manifest file once prepared: its record. @type {FileRecord[]} */
    this.records = [];
    /** Per file: the open sink, if any. @type {(PickerSink | OpfsSink | StreamSink | null)[]} */
    this.sinks = [];
    /** Per file: the bytes there are not ours (a new file, or reset): start it empty. @type {boolean[]} */
    this.fresh = [];
    /** Per file while its sink is open: chunks held from 0 (written, in a run). @type {number[]} */
    this.runs = [];
    /** Per file while its sink is open: chunks written past a gap in that run. @type {Set<number>[]} */
    this.ahead = [];
    /** What this browser can do (probed for the plan shown before Accept). @type {Capabilities | null} */
    this.caps = null;
    /** The plan shown before Accept, then the one carried out. @type {Plan | null} */
    this.plan = null;
    /** @type {Activity | null} */
    this.activity = null;
    /** Called when `activity` changes. @type {() => void} */
    this.onActivity = () => undefined;
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
   * The plan before Accept (storage/plan.js), for the page to say where the files will go.
   * Which records the machine will match is known only after Accept; this guesses by its
   * rule (protocol.md 10): this transfer's record of the file, else an incomplete one of
   * the same name and size.
   * @param {Manifest} manifest
   * @returns {Promise<Plan>}
   */
  async preview(manifest) {
    this.caps = await capabilities(manifest.files.length);
    const loaded = [...this.loaded.values()];
    const files = manifest.files.map((entry, index) => {
      const same = (/** @type {FileRecord} */ r) => r.name === entry.name && r.size === entry.size;
      const found = loaded.find(({ record: r }) => r.transfer === manifest.transfer && r.index === index && same(r)) ??
        loaded.find(({ record: r }) => r.transfer !== manifest.transfer && !r.complete && same(r));
      return { size: entry.size, held: Math.min(entry.size, (found?.held ?? 0) * manifest.chunkSize), kind: found?.record.kind ?? null };
    });
    this.plan = planStorage(files, this.caps);
    return this.plan;
  }

  /**
   * @param {Activity | null} activity
   */
  busy(activity) {
    this.activity = activity;
    this.onActivity();
  }

  /**
   * Where every file goes (the plan, made again with the records the machine matched).
   * `ids[i]`: the record the machine matched for file i, or null for a new file. Resolves
   * false when the user cancelled a picker (nothing was saved).
   * @param {Manifest} manifest
   * @param {(string | null)[]} ids
   * @returns {Promise<boolean>}
   */
  async prepare(manifest, ids) {
    const count = manifest.files.length;
    const fresh = ids.flatMap((id, index) => (id === null ? [index] : []));
    /** @type {(FileRecord | null)[]} */
    const reused = ids.map((id) => (id === null ? null : this.loaded.get(id)?.record ?? null));
    /** @type {PlanFile[]} */
    const files = manifest.files.map((entry, i) => ({
      size: entry.size, kind: reused[i]?.kind ?? null,
      held: reused[i] ? Math.min(entry.size, (this.loaded.get(/** @type {FileRecord} */ (reused[i]).id)?.held ?? 0) * manifest.chunkSize) : 0,
    }));
    let caps = this.caps ?? (await capabilities(count));
    let plan = planStorage(files, caps);
    /** @type {Map<number, FileSystemFileHandle>} */
    const picked = new Map();
    const win = /** @type {any} */ (window);
    // The pickers first, while the Accept click still counts as the user's gesture.
    if (plan.kind === "picker" && fresh.length) {
      try {
        if (count === 1) {
          picked.set(0, await win.showSaveFilePicker({ suggestedName: sanitizeFilename(manifest.files[0].name) }));
        } else {
          const dir = await win.showDirectoryPicker({ mode: "readwrite" });
          for (const index of fresh) picked.set(index, await uniqueFile(dir, sanitizeFilename(manifest.files[index].name)));
        }
      } catch (error) {
        if (/** @type {Error} */ (error).name === "AbortError") return false; // the user cancelled
        picked.clear(); // the picker failed: plan without it
        caps = { ...caps, picker: false };
        plan = planStorage(files, caps);
      }
    }
    if (plan.askPersist) {
      // Firefox asks the user (the page says why); no answer in time counts as no.
      this.busy({ what: "persist" });
      await askPersist(TIMING.persistAnswerMs);
      this.busy(null);
    }
    // Files picked on an earlier visit need the user's permission again.
    for (const record of reused) {
      if (record?.kind === "picker" || record?.kind === "staged") {
        const handle = /** @type {any} */ (record.handle);
        if ((await handle.queryPermission?.({ mode: "readwrite" })) !== "granted" &&
            (await handle.requestPermission?.({ mode: "readwrite" })) !== "granted") {
          throw new ProtocolError(STORAGE_ERROR, `no permission to write ${record.saveName} again`);
        }
      }
    }
    // The plan with what is free now (after persistence was granted, or not).
    caps = { ...(await capabilities(count, caps.askedPersist || plan.askPersist)), picker: caps.picker && picked.size > 0 };
    if (!this.staging) caps.opfs = false;
    plan = planStorage(files, caps);
    this.plan = plan;
    if (plan.kind === "none") {
      if (plan.reason === "too_big") {
        throw new ProtocolError(DISK_FULL, `${count === 1 ? "this file needs" : "these files need"} ${formatBytes(plan.needed)} but this browser lets this site store only ${formatBytes(Math.max(0, plan.free ?? 0))} more`);
      }
      throw new ProtocolError(STORAGE_ERROR, "this window lets this site neither store files nor stream downloads (private windows do that): open the link in a normal window");
    }
    return this.inTurn(async () => {
      try {
        // The storage worker is loaded now, not at the first chunk (see opfsWorker).
        if (plan.files.some((kind) => kind === "opfs" || kind === "staged")) await opfsWorker();
        /** @type {FileRecord[]} */
        const records = [];
        for (const [index, entry] of manifest.files.entries()) {
          const existing = reused[index];
          if (existing) {
            records.push(existing);
            continue;
          }
          const kind = plan.files[index];
          const own = kind === "opfs" || kind === "staged" ? await opfsFile(manifest.transfer, index) : undefined;
          const handle = picked.get(index) ?? own;
          /** @type {FileRecord} */
          const record = {
            id: recordId(manifest.transfer, index), transfer: manifest.transfer, index, name: entry.name,
            size: entry.size, chunkSize: manifest.chunkSize, kind, handle: /** @type {FileSystemFileHandle} */ (handle),
            staging: kind === "staged" ? own : undefined,
            saveName: picked.get(index)?.name ?? sanitizeFilename(entry.name), committedChunks: 0,
            complete: false, updated: Date.now(),
          };
          if (kind !== "stream") { // nothing streamed survives a reload: no record
            await this.log.clear(record.id);
            await putRecord(record);
          }
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
      : record.kind === "stream" ? new StreamSink(record.saveName, record.size)
        : new OpfsSink(/** @type {FileSystemFileHandle} */ (record.staging ?? record.handle), record.id, !fresh);
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
    const record = this.records[file];
    if (record.kind === "stream") {
      // In order into the download; a chunk ahead of its turn waits outside the queue, so
      // the chunk before it can still come (nothing streamed is recorded: no resume).
      return this.inTurn(() => this.sinkFor(file)).then(
        (sink) => /** @type {StreamSink} */ (sink).writeInAnyOrder(position, data)).then(() => {
        this.written(file, chunk);
        return false;
      }, (error) => {
        throw storageError(error, record.saveName);
      });
    }
    return this.inTurn(async () => {
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
   * Every chunk of `file` is written and verified: close it, and put it where the plan
   * says: a staged file is copied into the picked one (then its private copy is deleted),
   * a private file is handed to the browser's downloads by a stream (then deleted; without
   * Service Workers it is kept and offered as a "Save" link), a streamed download ends.
   * @param {number} file
   * @returns {Promise<Finished>}
   */
  finish(file) {
    return this.inTurn(async () => {
      const record = this.records[file];
      const kind = record.kind;
      try {
        // A file never opened this session holds all its bytes already (or must be emptied).
        const sink = this.sinks[file] ?? (this.fresh[file] ? await this.sinkFor(file) : null);
        this.sinks[file] = null;
        /** @type {File | null} */
        let kept = null;
        let gone = false;
        await sink?.finish();
        if (kind === "stream") await sink?.release();
        if (kind === "staged" || kind === "opfs") {
          const own = await /** @type {FileSystemFileHandle} */ (record.staging ?? record.handle).getFile();
          /** @param {"copy" | "handover"} what */
          const progress = (what) => (/** @type {number} */ done) => this.busy({ what, name: record.saveName, done, total: record.size });
          if (kind === "staged") {
            await copyInto(own, record.handle, progress("copy"));
            record.kind = "picker"; // complete in the picked file: the private copy goes
            record.staging = undefined;
            gone = true;
          } else if (await canStreamDownload()) {
            await handOver(own, record.saveName, progress("handover"));
            gone = true;
          } else {
            kept = own;
          }
          this.busy(null);
        }
        record.complete = true;
        if (record.kind === "picker") record.committedChunks = chunkCount(record.size, record.chunkSize);
        if (kind !== "stream") await this.log.update(record); // with the file's last digests
        if (gone) await removeOpfsFile(record.transfer, record.index);
        // A private file handed over is gone: so is its record (nothing is held any more).
        if (gone && kind === "opfs") await deleteRecord(record.id);
        return { kind, file: kept };
      } catch (error) {
        this.busy(null);
        throw error instanceof ProtocolError ? error : storageError(error, record.saveName);
      }
    });
  }

  /**
   * Delete the private copy of a finished file that was kept (the user's button).
   * @param {number} file
   */
  discard(file) {
    return this.inTurn(async () => {
      const record = this.records[file];
      await removeOpfsFile(record.transfer, record.index);
      await deleteRecord(record.id);
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

  /**
   * A connection ended: close what is open (best effort), save what is pending. A streamed
   * download stays open (it cannot be reopened) until the receive `ends`.
   * @param {boolean} [ends]
   */
  release(ends = false) {
    return this.inTurn(async () => {
      const sinks = this.sinks;
      this.sinks = sinks.map((sink) => (sink instanceof StreamSink && !ends ? sink : null));
      for (const sink of sinks) if (!(sink instanceof StreamSink) || ends) await sink?.release();
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
