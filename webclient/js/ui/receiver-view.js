// @ts-check
/**
 * The receiver's page: what the session says (in the words of receiver-text.js), the
 * password form, the offered files, Accept, progress, the path the connection takes, done;
 * Try again after a give-up; the downloads of finished files; and the page's lifecycle
 * (screen kept awake, a warning before closing, resume records saved when the page goes
 * away).
 */
import { ReceiverSession } from "../receiver.js";
import { sanitizeFilename } from "../protocol/filenames.js";
import { byId, h } from "./dom.js";
import { DIGEST_HINT, describePath, formatBytes, RateMeter } from "./format.js";
import { KeepAwake } from "./keep-awake.js";
import { describe } from "./receiver-text.js";

/** Progress-only updates repaint at most this often. */
const PROGRESS_MS = 250;

/** @typedef {{name: string, url: string}} Download */

/**
 * @param {import("../protocol/link.js").Link} link
 * @param {{apiUrl: string, wsUrl: string}} config
 */
export function showReceiver(link, config) {
  const view = byId("receive-view");
  view.hidden = false;
  let session = new ReceiverSession(link, config);
  const keepAwake = new KeepAwake();
  const meter = new RateMeter();
  /** @type {Download[]} */
  const downloads = [];
  let shown = "";

  // Resume records are written in batches: save what is pending when the page goes away
  // or to the background (best effort: what is lost is only not claimed next time).
  const flush = () => void session.flush();
  window.addEventListener("pagehide", flush);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") flush();
  });

  const stateKey = () => `${session.state}|${session.status.remaining ?? ""}|${session.choosing}|${session.retryable}`;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let pending;
  const render = () => {
    clearTimeout(pending);
    pending = undefined;
    keepAwake.set(session.busy);
    meter.sample(session.held);
    const key = stateKey();
    if (key !== shown) {
      shown = key;
      view.replaceChildren(...build(session, retry));
      const focus = view.querySelector("[data-autofocus]") ?? view.querySelector("h1");
      /** @type {HTMLElement | null} */ (focus)?.focus();
    }
    update(view, session, meter, downloads);
  };
  /** @param {ReceiverSession} current */
  const run = (current) => {
    current.addEventListener("saved", (e) => {
      const saved = /** @type {CustomEvent<import("../receiver.js").Saved>} */ (e).detail;
      if (saved.file) downloads.push(offerDownload(saved.name, saved.file));
      current.changed();
    });
    // A new state shows at once; progress alone (a change per chunk received) repaints at
    // most every PROGRESS_MS: a layout and paint per chunk costs the transfer CPU time.
    current.addEventListener("change", () => {
      if (current !== session) return;
      if (stateKey() !== shown) render();
      else pending ??= setTimeout(render, PROGRESS_MS);
    });
    current.start().catch((error) => current.unreachable(error));
  };
  // Try again: a fresh attempt on the same page, resuming what is held.
  const retry = () => {
    session = session.again();
    shown = "";
    run(session);
    render();
  };
  setInterval(render, 1000);
  render();
  run(session);
}

/**
 * Hand a finished file (the browser's private copy) to the user as a download.
 * @param {string} name
 * @param {File} file
 * @returns {Download}
 */
function offerDownload(name, file) {
  const url = URL.createObjectURL(file);
  const anchor = h("a", { href: url, download: name, hidden: true });
  document.body.append(anchor);
  anchor.click();
  anchor.remove();
  return { name, url };
}

/**
 * @param {ReceiverSession} s
 * @param {() => void} retry
 */
function build(s, retry) {
  const { title, alert } = describe(s);
  const state = s.state;
  /** @type {(HTMLElement | null)[]} */
  const parts = [
    h("h1", { id: "receive-title", tabindex: "-1" }, title),
    h("p", { class: alert ? "error big" : "lead", id: "receive-status", role: alert ? "alert" : "status" }),
  ];
  if (state === "password") parts.push(passwordForm(s));
  if (s.manifest && ["offer", "saving", "receiving", "reconnecting", "done"].includes(state)) parts.push(fileTable(s));
  if (state === "offer" || state === "saving") {
    parts.push(h("div", { class: "actions" },
      h("button", { type: "button", class: "button primary", "data-autofocus": true, onclick: () => s.accept(), disabled: state === "saving" }, "Accept"),
      h("button", { type: "button", class: "button secondary", onclick: () => s.decline() }, "Decline")));
  }
  if (s.busy || state === "done") {
    parts.push(h("progress", { id: "receive-progress", max: 100, value: 0, "aria-label": "Progress" }));
    parts.push(h("p", { id: "receive-numbers", class: "numbers" }));
    parts.push(h("p", { id: "receive-path", class: "hint" }));
  }
  if (s.busy) {
    parts.push(h("p", { class: "keep-open", role: "note" }, h("strong", {}, "Keep this tab open"), " until the transfer is done."));
  }
  if (state === "done") {
    parts.push(h("div", { id: "downloads", class: "downloads" }));
    parts.push(h("p", { class: "digest" }, `peerbeam digest${s.digests.length > 1 ? "s" : ""} `, ...s.digests.map((d) => h("code", {}, d))));
    parts.push(h("p", { class: "hint" }, DIGEST_HINT));
  }
  if (s.retryable) {
    parts.push(h("div", { class: "actions" },
      h("button", { type: "button", class: "button primary", "data-autofocus": true, onclick: retry }, "Try again")));
  }
  if (state === "stopped") parts.push(h("p", {}, h("a", { href: "./", class: "button secondary" }, "Send files yourself")));
  return parts.filter((p) => p !== null);
}

/** @param {ReceiverSession} s */
function passwordForm(s) {
  const input = /** @type {HTMLInputElement} */ (h("input", { type: "password", id: "receive-password", autocomplete: "current-password", "data-autofocus": true, required: true }));
  const error = h("p", { class: "error", role: "alert", id: "password-error" });
  return h("form", {
    class: "password-form",
    onsubmit: (event) => {
      event.preventDefault();
      try {
        s.submitPassword(input.value);
      } catch {
        error.textContent = "Enter the password the sender gave you.";
      }
    },
  },
  h("label", { for: "receive-password" }, "Password"),
  h("div", { class: "link-row" }, input, h("button", { type: "submit", class: "button primary" }, "Unlock")),
  error);
}

/** @param {ReceiverSession} s */
function fileTable(s) {
  const manifest = /** @type {import("../protocol/messages.js").Manifest} */ (s.manifest);
  return h("div", {},
    h("ul", { class: "file-list", "aria-label": "Files" }, ...manifest.files.map((file) =>
      h("li", {},
        h("span", { class: "name", title: file.name }, sanitizeFilename(file.name)),
        h("span", { class: "size" }, formatBytes(file.size))))),
    h("p", { class: "total" }, `${manifest.files.length} ${manifest.files.length === 1 ? "file" : "files"}, ${formatBytes(s.total)} in total`));
}

/**
 * @param {HTMLElement} view
 * @param {ReceiverSession} s
 * @param {RateMeter} meter
 * @param {Download[]} downloads
 */
function update(view, s, meter, downloads) {
  const message = describe(s).message;
  const status = view.querySelector("#receive-status");
  if (status && status.textContent !== message) status.textContent = message;
  const percent = s.total ? Math.floor((s.held / s.total) * 100) : 100;
  const progress = /** @type {HTMLProgressElement | null} */ (view.querySelector("#receive-progress"));
  if (progress) progress.value = percent;
  const numbers = view.querySelector("#receive-numbers");
  if (numbers) {
    const rate = s.state === "receiving" ? meter.describe(s.held, s.total) : "";
    numbers.textContent = `${formatBytes(s.held)} of ${formatBytes(s.total)} (${percent} %)${rate ? " · " + rate : ""}`;
  }
  const path = view.querySelector("#receive-path");
  if (path) path.textContent = describePath(s.path, s.connections);
  const list = view.querySelector("#downloads");
  if (list && list.childElementCount !== downloads.length) {
    list.replaceChildren(...downloads.map((d) => h("a", { href: d.url, download: d.name, class: "button secondary" }, `Save ${d.name}`)));
  }
}
