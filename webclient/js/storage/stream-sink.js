// @ts-check
/**
 * A sink that streams a file straight into the browser's downloads through a Service
 * Worker (download-sw.js): no quota, no copy in the browser's storage, constant memory.
 * The page feeds the download one chunk per credit from the worker, so it never runs
 * ahead of what the download has consumed (a slow disk, or a download paused by the
 * user, slows the transfer instead of filling memory).
 *
 * Not resumable: the browser owns the partial file, a reload ends the download, and the
 * bytes must come in order from the first one. Same interface as the sinks of sinks.js:
 * open(), write(position, data) in order, finish(), release().
 */
import { ProtocolError, STORAGE_ERROR } from "../protocol/errors.js";
import { b64urlEncode, randomBytes } from "../protocol/codec.js";

const SCRIPT = new URL("./download-sw.js", import.meta.url);
const SCOPE = new URL("./downloads/", import.meta.url);
/** Browsers stop a Service Worker idle for about 30 s: an event every few seconds keeps it. */
const KEEPALIVE_MS = 5_000;
/** The worker must answer a ping (or start the download) within this; else it is gone. */
const ANSWER_MS = 30_000;

/** @type {Promise<ServiceWorkerRegistration> | null} */
let registered = null;

/**
 * `promise`'s value, or false after `ms`.
 * @template T
 * @param {Promise<T>} promise
 * @param {number} ms
 * @returns {Promise<T | false>}
 */
function within(promise, ms) {
  return Promise.race([promise, new Promise((resolve) => setTimeout(() => resolve(false), ms))]);
}

/** The download worker's registration, once it is active (registered once per page). */
export function downloadWorker() {
  registered ??= register().catch((error) => {
    registered = null;
    throw error;
  });
  return registered;
}

async function register() {
  const registration = await navigator.serviceWorker.register(SCRIPT, { scope: SCOPE.href });
  const worker = registration.active ?? registration.waiting ?? registration.installing;
  if (!worker) throw new Error("the download worker did not start");
  if (worker.state !== "activated") {
    await new Promise((resolve, reject) => {
      worker.addEventListener("statechange", () => {
        if (worker.state === "activated") resolve(undefined);
        else if (worker.state === "redundant") reject(new Error("the download worker failed to start"));
      });
    });
  }
  return registration;
}

/**
 * Whether downloads can be streamed here (Service Workers are refused in some private
 * windows, and on origins that are not secure).
 */
export async function canStreamDownload() {
  if (!("serviceWorker" in navigator) || typeof ReadableStream !== "function") return false;
  try {
    await downloadWorker();
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts the download of `url` in a hidden frame (a navigation: the worker's answer says
 * "attachment", so the browser saves it); returns how to remove the frame.
 * @param {string} url
 */
function downloadInFrame(url) {
  const frame = document.createElement("iframe");
  frame.hidden = true;
  frame.src = url;
  document.body.append(frame);
  return () => frame.remove();
}

export class StreamSink {
  /**
   * @param {string} name the file name the browser saves under (sanitised)
   * @param {number} size exact size in bytes (the download's Content-Length)
   * @param {(url: string) => () => void} start starts the download of a URL, returns its clean-up
   */
  constructor(name, size, start = downloadInFrame) {
    this.kind = /** @type {"stream"} */ ("stream");
    this.name = name;
    this.size = size;
    this.start = start;
    this.written = 0;
    this.credits = 0;
    /** @type {ProtocolError | null} */
    this.failure = null;
    this.finished = false;
    /** @type {MessagePort | null} */
    this.port = null;
    /** @type {(() => void) | null} */
    this.removeFrame = null;
    /** @type {(() => void) | null} wakes a write waiting for a credit */
    this.wake = null;
    /** @type {(() => void) | null} */
    this.closed = null;
    this.pings = 0;
    this.answered = 0;
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this.timer = undefined;
    /** Chunks that came before their turn (several connections), by position. @type {Map<number, {data: Uint8Array, done: (error?: unknown) => void}>} */
    this.early = new Map();
    this.draining = false;
  }

  /** Registers the download with the worker and starts it in a hidden frame. */
  async open() {
    const registration = await downloadWorker().catch((error) => {
      throw new ProtocolError(STORAGE_ERROR, `this browser cannot stream downloads: ${error.message}`);
    });
    const channel = new MessageChannel();
    const port = (this.port = channel.port1);
    const id = b64urlEncode(randomBytes(16));
    const accepted = new Promise((resolve) => {
      port.onmessage = (event) => (event.data.registered ? resolve(true) : this.onMessage(event.data));
    });
    /** @type {ServiceWorker} */ (registration.active).postMessage(
      { op: "download", id, name: this.name, size: this.size }, [channel.port2]);
    if (!(await within(accepted, ANSWER_MS))) throw new ProtocolError(STORAGE_ERROR, "the download worker does not answer");
    this.removeFrame = this.start(new URL(`${encodeURIComponent(id)}/${encodeURIComponent(this.name)}`, SCOPE).href);
    this.answered = Date.now();
    this.timer = setInterval(() => this.keepAlive(registration), KEEPALIVE_MS);
    // The worker asks for the first chunks as soon as it answers the navigation.
    const deadline = Date.now() + ANSWER_MS;
    while (!this.credits && !this.failure && Date.now() < deadline) {
      await within(new Promise((resolve) => {
        this.wake = () => resolve(undefined);
      }), deadline - Date.now());
    }
    if (!this.credits && !this.failure) this.fail("the browser did not start the download");
    if (this.failure) throw this.failure;
  }

  /** @param {any} data */
  onMessage(data) {
    if (data.pull) this.credits++;
    else if (data.cancelled !== undefined) this.fail(`the download of ${this.name} was cancelled`);
    else if (data.pong !== undefined) this.answered = Date.now();
    else if (data.closed) this.closed?.();
    this.wakeWriter();
  }

  wakeWriter() {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  /** @param {ServiceWorkerRegistration} registration */
  keepAlive(registration) {
    if (Date.now() - this.answered > ANSWER_MS) {
      this.fail("the browser stopped the download");
      return;
    }
    registration.active?.postMessage({ op: "keepalive" });
    this.port?.postMessage({ ping: ++this.pings });
  }

  /** @param {string} message */
  fail(message) {
    this.failure ??= new ProtocolError(STORAGE_ERROR, message);
    this.stop();
    this.wakeWriter();
    this.closed?.();
  }

  stop() {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * Hands one chunk to the download once the download has room for it. Never a
   * checkpoint: nothing streamed survives a reload.
   * @param {number} position must be where the previous write ended
   * @param {Uint8Array} data a chunk of its own: its buffer moves to the worker
   * @returns {Promise<boolean>} false
   */
  async write(position, data) {
    if (position !== this.written) {
      throw new ProtocolError(STORAGE_ERROR, `a streamed download is written in order: byte ${position} came after ${this.written}`);
    }
    while (!this.credits && !this.failure) {
      await new Promise((resolve) => {
        this.wake = () => resolve(undefined);
      });
    }
    if (this.failure) throw this.failure;
    this.credits--;
    const length = data.byteLength; // the buffer moves to the worker
    const buffer = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? data.buffer : data.slice().buffer;
    /** @type {MessagePort} */ (this.port).postMessage({ chunk: buffer }, [buffer]);
    this.written += length;
    return false;
  }

  /**
   * Write `data` at `position` in whatever order chunks come (several connections complete
   * them out of order): a chunk ahead of its turn waits in memory until the gap before it
   * is written, and resolves only then (its acknowledgement waits too, so the sender's
   * window bounds what waits here). A chunk already written (sent again) is ignored.
   * @param {number} position
   * @param {Uint8Array} data a chunk of its own: its buffer moves to the worker
   * @returns {Promise<void>}
   */
  writeInAnyOrder(position, data) {
    if (position < this.written) return Promise.resolve();
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.early.get(position)?.done(); // the same chunk again: the newer copy is written
      this.early.set(position, { data, done: (error) => (error ? reject(error) : resolve()) });
      void this.drain();
    });
  }

  async drain() {
    if (this.draining) return;
    this.draining = true;
    try {
      for (let next = this.early.get(this.written); next; next = this.early.get(this.written)) {
        this.early.delete(this.written);
        try {
          await this.write(this.written, next.data);
          next.done();
        } catch (error) {
          next.done(error);
          for (const waiting of this.early.values()) waiting.done(error);
          this.early.clear();
        }
      }
    } finally {
      this.draining = false;
    }
  }

  /**
   * Ends the download once every byte is written; resolves when the download has taken
   * the last byte.
   * @returns {Promise<null>} null: the file is with the browser's downloads
   */
  async finish() {
    if (this.failure) throw this.failure;
    if (this.written !== this.size) {
      throw new ProtocolError(STORAGE_ERROR, `${this.name}: ${this.written} of ${this.size} bytes streamed`);
    }
    const closed = new Promise((resolve) => {
      this.closed = () => resolve(undefined);
    });
    /** @type {MessagePort} */ (this.port).postMessage({ done: true });
    await closed;
    if (this.failure) throw this.failure;
    this.finished = true;
    this.stop();
    return null;
  }

  /** Ends a download that did not finish as failed (the browser keeps no partial file as done). */
  async release() {
    if (!this.finished) {
      this.port?.postMessage({ abort: "the transfer stopped" });
      this.failure ??= new ProtocolError(STORAGE_ERROR, "released");
    }
    for (const waiting of this.early.values()) waiting.done(this.failure);
    this.early.clear();
    this.stop();
    this.wakeWriter();
    this.port?.close();
    this.port = null;
    this.removeFrame?.();
    this.removeFrame = null;
  }
}
