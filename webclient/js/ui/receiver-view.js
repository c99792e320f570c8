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
import { describe, planText, savedText } from "./receiver-text.js";

/** Progress-only updates repaint at most this often. */
const PROGRESS_MS = 250;

/** @typedef {import("../receiver.js").Saved & {url: string | null, discarded: boolean}} Download
 *  a finished file, where it went; `url`: the kept private copy, offered as "Save" */

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

  const stateKey = () => `${session.state}|${session.status.remaining ?? ""}|${session.choosing}|${session.retryable}|${
    session.plan?.kind ?? ""}|${session.storage.activity?.what ?? ""}|${downloads.length}`;
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
      view.replaceChildren(...build(session, retry, downloads));
      const focus = view.querySelector("[data-autofocus]") ?? view.querySelector("h1");
      /** @type {HTMLElement | null} */ (focus)?.focus();
    }
    update(view, session, meter);
  };
  /** @param {ReceiverSession} current */
  const run = (current) => {
    current.addEventListener("saved", (e) => {
      const saved = /** @type {CustomEvent<import("../receiver.js").Saved>} */ (e).detail;
      downloads.push({ ...saved, url: saved.file ? offerDownload(saved.name, saved.file) : null, discarded: false });
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
 * Hand a finished file (the browser's private copy, where no Service Worker can stream it
 * to the downloads) to the user as a download of the disk-backed file; its URL stays for a
 * "Save" link.
 * @param {string} name
 * @param {File} file
 */
function offerDownload(name, file) {
  const url = URL.createObjectURL(file);
  const anchor = h("a", { href: url, download: name, hidden: true });
  document.body.append(anchor);
  anchor.click();
  anchor.remove();
  return url;
}

/**
 * @param {ReceiverSession} s
 * @param {() => void} retry
 * @param {Download[]} downloads
 */
function build(s, retry, downloads) {
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
    const plan = s.plan && s.manifest ? planText(s.plan, s.manifest.files.length) : null;
    if (plan) parts.push(h("p", { id: "receive-plan", class: plan.blocked ? "error" : "hint", role: plan.blocked ? "alert" : "note" }, plan.text));
    parts.push(h("div", { class: "actions" },
      h("button", { type: "button", class: "button primary", "data-autofocus": true, onclick: () => s.accept(), disabled: state === "saving" || !plan || plan.blocked }, "Accept"),
      h("button", { type: "button", class: "button secondary", onclick: () => s.decline() }, "Decline")));
  }
  if (s.busy || state === "done") {
    parts.push(h("progress", { id: "receive-progress", max: 100, value: 0, "aria-label": "Progress" }));
    parts.push(h("p", { id: "receive-numbers", class: "numbers" }));
    parts.push(h("p", { id: "receive-path", class: "hint" }));
    parts.push(h("p", { id: "receive-activity", class: "hint", role: "status" }));
  }
  if (s.busy) {
    parts.push(h("p", { class: "keep-open", role: "note" }, h("strong", {}, "Keep this tab open"), " until the transfer is done."));
  }
  if (state === "done") {
    parts.push(h("ul", { id: "saved-files", class: "file-list", "aria-label": "Where the files went" }, ...downloads.map((d) => savedRow(s, d))));
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

/**
 * One finished file: where it went; a private copy that was kept has a Save link and a
 * button that deletes it.
 * @param {ReceiverSession} s
 * @param {Download} d
 */
function savedRow(s, d) {
  const size = s.manifest?.files[d.index]?.size ?? 0;
  const where = h("span", { class: "where" }, savedText(d.kind, Boolean(d.url) && !d.discarded));
  const row = h("li", { "data-kind": d.kind }, h("span", { class: "name", title: d.name }, d.name), where);
  if (d.url && !d.discarded) {
    const url = d.url;
    const discard = h("button", {
      type: "button", class: "button secondary",
      onclick: () => {
        URL.revokeObjectURL(url);
        d.discarded = true;
        void s.storage.discard(d.index).finally(() => {
          where.textContent = savedText(d.kind, false);
          row.querySelectorAll("a, button").forEach((e) => e.remove());
        });
      },
    }, `Delete the copy (${formatBytes(size)})`);
    row.append(h("a", { href: url, download: d.name, class: "button secondary" }, `Save ${d.name}`), discard);
  }
  return row;
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
 */
function update(view, s, meter) {
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
  const activity = view.querySelector("#receive-activity");
  const busy = s.storage.activity;
  if (activity) {
    const text = busy && busy.what !== "persist"
      ? `${busy.what === "copy" ? "Saving to" : "Handing to the browser's downloads:"} ${busy.name}… ${busy.total ? Math.floor((busy.done / busy.total) * 100) : 100} %`
      : "";
    if (activity.textContent !== text) activity.textContent = text;
  }
}
