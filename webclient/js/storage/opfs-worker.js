// @ts-check
/**
 * Writes received chunks into Origin Private File System files through synchronous
 * access handles (only available in workers). A write is confirmed once it is in the
 * file: a reloaded or crashed tab finds every acknowledged byte again. Flushing to the
 * device (fsync) after every 1 MiB chunk costs more than the network delivers on slow
 * disks, so it happens every FLUSH_BYTES or FLUSH_MS, and on close; only an operating
 * system crash can lose the unflushed tail, and resume then re-checks nothing it did
 * not record.
 *
 * Requests: {id, op: "open", key, handle, truncate} | {id, op: "write", key, position, data}
 *           | {id, op: "close", key} | {id, op: "ping"} (is the worker running?);
 * answers {id, ok: true} or {id, ok: false, name, message}.
 */

const FLUSH_BYTES = 64 * 1024 * 1024;
const FLUSH_MS = 2000;

/** @type {Map<string, {access: FileSystemSyncAccessHandle, unflushed: number, flushedAt: number}>} */
const handles = new Map();

/** @param {FileSystemFileHandle} handle */
async function openSync(handle) {
  // A tab that was just reloaded may not have released its handle yet.
  for (let attempt = 0; ; attempt++) {
    try {
      return await handle.createSyncAccessHandle();
    } catch (error) {
      if (attempt >= 20 || /** @type {Error} */ (error).name !== "NoModificationAllowedError") throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

self.onmessage = async (event) => {
  const { id, op, key } = event.data;
  try {
    if (op === "open") {
      const access = await openSync(event.data.handle);
      if (event.data.truncate) access.truncate(0);
      handles.set(key, { access, unflushed: 0, flushedAt: performance.now() });
    } else if (op === "write") {
      const file = handles.get(key);
      if (!file) throw new Error("file is not open");
      const data = new Uint8Array(event.data.data);
      let written = 0;
      while (written < data.length) {
        written += file.access.write(data.subarray(written), { at: event.data.position + written });
      }
      file.unflushed += data.length;
      if (file.unflushed >= FLUSH_BYTES || performance.now() - file.flushedAt >= FLUSH_MS) {
        file.access.flush();
        file.unflushed = 0;
        file.flushedAt = performance.now();
      }
    } else if (op === "close") {
      const file = handles.get(key);
      handles.delete(key);
      file?.access.flush();
      file?.access.close();
    }
    self.postMessage({ id, ok: true });
  } catch (error) {
    const e = /** @type {Error} */ (error);
    self.postMessage({ id, ok: false, name: e.name, message: e.message });
  }
};
