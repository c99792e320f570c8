// @ts-check
/** The sender's page: pick files, options, Create link, then the link, QR and receivers. */
import { createRoom, deleteRoom } from "../api.js";
import { Offer } from "../sender.js";
import { makeLink, newLinkKey } from "../protocol/link.js";
import { normalizePassword } from "../protocol/auth.js";
import { NO_PATH, RELAY_FAILED } from "../protocol/errors.js";
import { encodeMessage } from "../protocol/messages.js";
import { qrSvg } from "../qr.js";
import { byId, h } from "./dom.js";
import { DIGEST_HINT, describePath, formatBytes, RateMeter } from "./format.js";
import { KeepAwake } from "./keep-awake.js";

/** @typedef {import("../sender.js").ReceiverRow} ReceiverRow */

/** Progress-only updates repaint at most this often. */
const PROGRESS_MS = 250;

const STATE_TEXT = {
  connecting: "Connecting…",
  authenticating: "Checking the link…",
  offered: "Waiting for them to accept…",
  sending: "Sending",
  finishing: "Finishing…",
  done: "Delivered and verified",
  failed: "Stopped",
  lost: "Connection lost — waiting for them to come back…",
  declined: "Declined",
};

/** @param {{apiUrl: string, wsUrl: string}} config */
export function showSender(config) {
  byId("send-view").hidden = false;
  const form = /** @type {HTMLFormElement} */ (byId("send-form"));
  const input = /** @type {HTMLInputElement} */ (byId("file-input"));
  const dropzone = byId("dropzone");
  const error = byId("send-error");
  const keepAwake = new KeepAwake();
  /** @type {File[]} */
  let files = [];

  const renderFiles = () => {
    byId("selection").hidden = files.length === 0;
    byId("file-list").replaceChildren(...files.map((file, index) =>
      h("li", {},
        h("span", { class: "name" }, file.name),
        h("span", { class: "size" }, formatBytes(file.size)),
        h("button", {
          type: "button", class: "icon-button", "aria-label": `Remove ${file.name}`,
          onclick: () => {
            files.splice(index, 1);
            renderFiles();
          },
        }, "×"),
      )));
    const total = files.reduce((n, f) => n + f.size, 0);
    byId("file-total").textContent = files.length ? `${files.length} ${files.length === 1 ? "file" : "files"}, ${formatBytes(total)}` : "";
  };

  /** @param {FileList | null} list */
  const addFiles = (list) => {
    for (const file of list ?? []) files.push(file);
    error.textContent = "";
    renderFiles();
  };
  input.addEventListener("change", () => {
    addFiles(input.files);
    input.value = "";
  });
  for (const type of ["dragenter", "dragover"]) {
    dropzone.addEventListener(type, (event) => {
      event.preventDefault();
      dropzone.classList.add("dragging");
    });
  }
  for (const type of ["dragleave", "drop"]) dropzone.addEventListener(type, () => dropzone.classList.remove("dragging"));
  dropzone.addEventListener("drop", (event) => {
    event.preventDefault();
    addFiles(/** @type {DragEvent} */ (event).dataTransfer?.files ?? null);
  });
  // A drop next to the zone must not navigate away to the file.
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = /** @type {HTMLButtonElement} */ (byId("create-link"));
    const password = /** @type {HTMLInputElement} */ (byId("password")).value;
    const oneTime = /** @type {HTMLInputElement} */ (byId("one-time")).checked;
    const expiresIn = Number(/** @type {HTMLSelectElement} */ (byId("expiry")).value);
    error.textContent = "";
    if (!files.length) {
      error.textContent = "Choose at least one file first.";
      return;
    }
    if (password) {
      try {
        normalizePassword(password);
      } catch (e) {
        error.textContent = "That password cannot be used: it contains invalid characters.";
        return;
      }
    }
    button.disabled = true;
    button.textContent = "Creating link…";
    try {
      const linkKey = newLinkKey();
      const manifestCheck = { t: /** @type {const} */ ("manifest"), transfer: "AAAAAAAAAAAAAAAAAAAAAA", chunkSize: 1048576, files: files.map((f) => ({ name: f.name, size: f.size, type: "", mtime: f.lastModified })) };
      encodeMessage(manifestCheck); // too many files for one manifest: say so before making a room
      const room = await createRoom(config.apiUrl, { expires_in: expiresIn, one_time: oneTime });
      const base = location.href.split("#")[0];
      const link = makeLink(base, room.room, linkKey, Boolean(password));
      const offer = new Offer({
        files: [...files], password: password || null, room: room.room, ownerToken: room.owner_token,
        wsUrl: room.ws_url || config.wsUrl, linkKey, oneTime,
      });
      showShare(offer, link, room, config, keepAwake);
      offer.start();
    } catch (e) {
      error.textContent = `Could not create a link: ${/** @type {Error} */ (e).message}`;
      button.disabled = false;
      button.textContent = "Create link";
    }
  });
}

/**
 * @param {Offer} offer
 * @param {string} link
 * @param {import("../api.js").CreatedRoom} room
 * @param {{apiUrl: string}} config
 * @param {KeepAwake} keepAwake
 */
function showShare(offer, link, room, config, keepAwake) {
  byId("send-form").hidden = true;
  const share = byId("share");
  share.hidden = false;
  byId("share-title").focus();
  const linkInput = /** @type {HTMLInputElement} */ (byId("share-link"));
  linkInput.value = link;
  linkInput.addEventListener("focus", () => linkInput.select());
  byId("copy-link").addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(link);
      byId("copy-status").textContent = "Link copied.";
    } catch {
      linkInput.select();
      byId("copy-status").textContent = "Press Ctrl+C (⌘C) to copy the selected link.";
    }
  });
  byId("qr").prepend(qrSvg(link, "QR code of the share link"));
  const total = offer.manifest.files.reduce((n, f) => n + f.size, 0);
  const expires = new Date(room.expires_at * 1000);
  byId("share-facts").replaceChildren(
    h("dt", {}, "Files"), h("dd", {}, `${offer.files.length} · ${formatBytes(total)}`),
    h("dt", {}, "Password"), h("dd", {}, offer.password ? "Yes" : "No"),
    h("dt", {}, "Link"), h("dd", {}, room.one_time ? "One receiver only" : `Up to ${room.max_receivers} receivers`),
    h("dt", {}, "Expires"), h("dd", {}, expires.toLocaleString([], { dateStyle: "medium", timeStyle: "short" })),
  );
  byId("stop-sharing").addEventListener("click", async () => {
    offer.stop();
    await deleteRoom(config.apiUrl, room.room, room.owner_token).catch(() => undefined);
    byId("notice").textContent = "You stopped sharing. The link no longer works.";
    /** @type {HTMLButtonElement} */ (byId("stop-sharing")).disabled = true;
  });
  offer.addEventListener("notice", (e) => {
    byId("notice").textContent = /** @type {CustomEvent} */ (e).detail;
  });

  /** @type {Map<string, {row: HTMLElement, meter: RateMeter}>} */
  const rows = new Map();
  /** What changes more than progress: rendered at once. */
  const stateKey = () => [...offer.receivers.values()].map((r) => `${r.peer}:${r.state}:${r.detail}:${r.digests}:${r.path}:${r.connections}`).join("|") + offer.signaling.state;
  let shown = "";
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let pending;
  const render = () => {
    clearTimeout(pending);
    pending = undefined;
    shown = stateKey();
    keepAwake.set(offer.busy);
    const list = byId("receivers");
    byId("no-receivers").hidden = offer.receivers.size > 0;
    for (const receiver of offer.receivers.values()) {
      let entry = rows.get(receiver.peer);
      if (!entry) {
        entry = { row: h("li", { class: "receiver" }), meter: new RateMeter() };
        rows.set(receiver.peer, entry);
        list.append(entry.row);
      }
      entry.meter.sample(receiver.acked);
      renderReceiver(entry.row, receiver, entry.meter, offer.finished === null ? () => offer.retry(receiver.peer) : null);
    }
    if (offer.finished === "done") byId("notice").textContent = "Delivered: this one-time link is used up.";
    else if (offer.finished && offer.finished !== "stopped") byId("notice").textContent = `Sharing ended: ${offer.finished}.`;
    else if (offer.signaling.state === "reconnecting") byId("notice").textContent = "Reconnecting to the signaling server…";
    else if (byId("notice").textContent === "Reconnecting to the signaling server…") byId("notice").textContent = "";
  };
  // Progress alone (an ack per chunk) repaints at most every PROGRESS_MS: rebuilding the
  // rows per chunk costs the transfer CPU time.
  offer.addEventListener("change", () => {
    if (stateKey() !== shown) render();
    else pending ??= setTimeout(render, PROGRESS_MS);
  });
  setInterval(render, 1000);
  render();
}

/**
 * @param {HTMLElement} row
 * @param {ReceiverRow} receiver
 * @param {RateMeter} meter
 * @param {(() => void) | null} retry Try again for this receiver, while the offer runs
 */
function renderReceiver(row, receiver, meter, retry) {
  const { state, acked, total } = receiver;
  const percent = total ? Math.floor((acked / total) * 100) : state === "done" ? 100 : 0;
  const status = STATE_TEXT[state] ?? state;
  const progress = /** @type {HTMLProgressElement} */ (h("progress", { max: 100, value: percent, "aria-label": `Receiver ${receiver.number} progress` }));
  const transferring = state === "sending" || state === "finishing";
  row.dataset.state = state;
  /** @type {(Node | null)[]} */
  const parts = [
    h("div", { class: "receiver-head" },
      h("strong", {}, `Receiver ${receiver.number}`),
      h("span", { class: `badge ${state}` }, status)),
    transferring || state === "done" || acked > 0 ? progress : null,
    transferring || acked > 0
      ? h("p", { class: "receiver-detail" },
        `${formatBytes(acked)} of ${formatBytes(total)} (${percent} %)`,
        transferring ? ` · ${meter.describe(acked, total)}` : "")
      : null,
    explain(receiver) ? h("p", { class: "receiver-detail" }, explain(receiver)) : null,
    receiver.path !== null && state !== "failed" && state !== "lost"
      ? h("p", { class: "receiver-detail receiver-path" }, describePath(receiver.path, receiver.connections)) : null,
    retry && givenUp(receiver)
      ? h("button", { type: "button", class: "button secondary", onclick: retry }, "Try again") : null,
    receiver.digests.length
      ? h("p", { class: "digest" }, `peerbeam digest${receiver.digests.length > 1 ? "s" : ""}`,
        ...receiver.digests.map((d) => h("code", {}, d)))
      : null,
    receiver.digests.length ? h("p", { class: "hint" }, DIGEST_HINT) : null,
  ];
  row.replaceChildren(...parts.filter((part) => part !== null));
}

/**
 * No connection reached this receiver, or its connection was lost: the user may try again
 * (the receiver may also come back by itself).
 * @param {ReceiverRow} receiver
 */
function givenUp(receiver) {
  return receiver.state === "lost" || receiver.code === NO_PATH || receiver.code === RELAY_FAILED;
}

/**
 * What to say under a receiver's state: the machine's detail, as a sentence.
 * @param {ReceiverRow} receiver
 */
function explain(receiver) {
  if (receiver.state === "lost") return "Connection lost; waiting for them to come back.";
  if (receiver.code === NO_PATH) return "No connection to them could be made: there is no direct path between your networks (a firewall or a strict network is in the way), and no relay (TURN) helped.";
  if (receiver.code === RELAY_FAILED) return "No connection to them could be made: there is no direct path between your networks, and the relay server (TURN) did not answer.";
  if (receiver.state === "done" || !receiver.detail) return "";
  return `${receiver.detail[0].toUpperCase()}${receiver.detail.slice(1)}.`;
}
