// @ts-check
/**
 * Streamed downloads (docs/webclient.md, "Streamed download"): a Service Worker that answers
 * a download navigation with a stream the page feeds, so a file of any size reaches the
 * browser's download folder without being held in memory or in the browser's storage.
 *
 * Scope: ./downloads/ (under this script's folder, so no Service-Worker-Allowed header is
 * needed). The page (stream-sink.js) registers a download with
 *   postMessage({op: "download", id, name, size}, [port])
 * and then navigates a hidden frame to downloads/<id>/<name>. The answer to that
 * navigation is a ReadableStream whose pull() asks the page, over `port`, for one chunk at
 * a time:
 *   worker -> page: {pull: true}          one credit: the page may post one chunk
 *                   {cancelled: reason}   the download was cancelled (user, browser)
 *                   {closed: true}        after {done}: the download took the last byte
 *                   {pong: n}             answer to {ping: n}
 *   page -> worker: {chunk: ArrayBuffer} | {done: true} | {abort: reason} | {ping: n}
 * The stream queues at most QUEUED_CHUNKS, so the page can never be more than that (plus
 * the chunk in flight) ahead of what the download has consumed: constant memory, and a
 * slow disk slows the page, which slows the sender.
 *
 * A registered download is answered once; an unknown or used id (a reload, a second
 * request) gets a plain 404. The page sends {op: "keepalive"} every few seconds while a
 * download runs: browsers stop idle Service Workers after about 30 s.
 */

const QUEUED_CHUNKS = 2;

const sw = /** @type {ServiceWorkerGlobalScope} */ (/** @type {unknown} */ (self));

/** @type {Map<string, {port: MessagePort, name: string, size: number}>} */
const pending = new Map();

sw.addEventListener("install", () => void sw.skipWaiting());

sw.addEventListener("message", (event) => {
  const data = event.data;
  if (data?.op === "download" && typeof data.id === "string" && event.ports[0]) {
    pending.set(data.id, { port: event.ports[0], name: String(data.name), size: Number(data.size) });
    event.ports[0].postMessage({ registered: true });
  }
  // {op: "keepalive"}: receiving the event is all it takes.
});

sw.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  const scope = new URL(sw.registration.scope);
  if (!url.pathname.startsWith(scope.pathname)) return;
  const id = decodeURIComponent(url.pathname.slice(scope.pathname.length).split("/")[0]);
  const download = pending.get(id);
  pending.delete(id);
  if (!download) {
    event.respondWith(new Response("This download is no longer available. Open the link again.", {
      status: 404, headers: { "Content-Type": "text/plain; charset=utf-8" },
    }));
    return;
  }
  event.respondWith(new Response(fedStream(download.port), {
    headers: {
      "Content-Type": "application/octet-stream",
      "Content-Disposition": contentDisposition(download.name),
      "Content-Length": String(download.size),
      "X-Content-Type-Options": "nosniff",
    },
  }));
});

/**
 * A stream that asks the page for each chunk (one credit per pull). After {done} it closes
 * once the download has taken every queued chunk, and tells the page {closed}.
 * @param {MessagePort} port
 */
function fedStream(port) {
  /** @type {(() => void) | null} */
  let fed = null;
  let closing = false;
  let ended = false;
  /** @type {ReadableStreamDefaultController<Uint8Array>} */
  let controller;
  const settle = () => {
    fed?.();
    fed = null;
  };
  const end = () => {
    ended = true;
    settle();
    port.close();
  };
  const closeWhenDrained = () => {
    if (!ended && (controller.desiredSize ?? 0) >= QUEUED_CHUNKS) {
      controller.close();
      port.postMessage({ closed: true });
      end();
    }
  };
  return new ReadableStream({
    start(c) {
      controller = c;
      port.onmessage = ({ data }) => {
        if (ended) return;
        if (data.chunk) {
          controller.enqueue(new Uint8Array(data.chunk));
          settle();
        } else if (data.done) {
          closing = true;
          settle();
          closeWhenDrained();
        } else if (data.abort) {
          controller.error(new Error(String(data.abort)));
          end();
        } else if (data.ping !== undefined) {
          port.postMessage({ pong: data.ping });
        }
      };
    },
    pull() {
      if (closing) {
        closeWhenDrained();
        return undefined;
      }
      port.postMessage({ pull: true });
      return new Promise((resolve) => {
        fed = resolve;
      });
    },
    cancel(reason) {
      if (ended) return;
      port.postMessage({ cancelled: String(reason ?? "cancelled") });
      end();
    },
  }, new CountQueuingStrategy({ highWaterMark: QUEUED_CHUNKS }));
}

/**
 * `attachment` with an ASCII fallback and the exact name in RFC 5987 form.
 * @param {string} name already sanitised by the page (protocol.md 16)
 */
function contentDisposition(name) {
  const ascii = name.replace(/[^\x20-\x7e]/g, "_").replace(/["\\]/g, "_");
  const exact = encodeURIComponent(name).replace(/['()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());
  return `attachment; filename="${ascii}"; filename*=UTF-8''${exact}`;
}
