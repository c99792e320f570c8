// @ts-check
/** The receiver's page: room state, password, the offered files, Accept, progress, done. */
import { Receiver } from "../receiver.js";
import { sanitizeFilename } from "../protocol/filenames.js";
import { byId, h } from "./dom.js";
import { DIGEST_HINT, formatBytes, RateMeter } from "./format.js";
import { KeepAwake } from "./keep-awake.js";

/** Progress-only updates repaint at most this often. */
const PROGRESS_MS = 250;

const TITLES = {
  checking: "Opening the link…",
  connecting: "Connecting…",
  waiting: "Waiting for the sender",
  password: "Password required",
  verifying: "Checking…",
  offer: "Files for you",
  saving: "Files for you",
  receiving: "Receiving",
  done: "Done",
  stopped: "This transfer cannot continue",
};

/**
 * @param {import("../protocol/link.js").Link} link
 * @param {{apiUrl: string, wsUrl: string}} config
 */
export function showReceiver(link, config) {
  const view = byId("receive-view");
  view.hidden = false;
  const receiver = new Receiver(link, config);
  const keepAwake = new KeepAwake();
  const meter = new RateMeter();
  let shown = "";

  const stateKey = () => `${receiver.state}|${receiver.state === "password" ? receiver.passwordRemaining : ""}`;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let pending;
  const render = () => {
    clearTimeout(pending);
    pending = undefined;
    keepAwake.set(receiver.busy);
    meter.sample(receiver.done);
    const key = stateKey();
    if (key !== shown) {
      shown = key;
      view.replaceChildren(...build(receiver));
      const focus = view.querySelector("[data-autofocus]") ?? view.querySelector("h1");
      /** @type {HTMLElement | null} */ (focus)?.focus();
    }
    update(view, receiver, meter);
  };
  // A new state shows at once; progress alone (a change per chunk received) repaints at
  // most every PROGRESS_MS: a layout and paint per chunk costs the transfer CPU time.
  receiver.addEventListener("change", () => {
    if (stateKey() !== shown) render();
    else pending ??= setTimeout(render, PROGRESS_MS);
  });
  setInterval(render, 1000);
  render();
  receiver.start().catch((error) => receiver.stop("internal", `Could not reach the service: ${error.message}`));
}

/** @param {Receiver} r */
function build(r) {
  const unusable = r.state === "stopped" && ["gone", "used", "full"].includes(r.problem);
  const title = h("h1", { id: "receive-title", tabindex: "-1" }, unusable ? "This link cannot be used" : TITLES[r.state]);
  const status = h("p", { class: r.state === "stopped" ? "error big" : "lead", id: "receive-status", role: r.state === "stopped" ? "alert" : "status" });
  /** @type {(HTMLElement | null)[]} */
  const parts = [title, status];
  if (r.state === "password") parts.push(passwordForm(r));
  if (r.manifest && ["offer", "saving", "receiving", "done"].includes(r.state)) parts.push(fileTable(r));
  if (r.state === "offer" || r.state === "saving") {
    parts.push(h("div", { class: "actions" },
      h("button", { type: "button", class: "button primary", "data-autofocus": true, onclick: () => void r.accept(), disabled: r.state === "saving" }, "Accept"),
      h("button", { type: "button", class: "button secondary", onclick: () => r.decline() }, "Decline")));
  }
  if (r.state === "receiving" || r.state === "done") {
    parts.push(h("progress", { id: "receive-progress", max: 100, value: 0, "aria-label": "Progress" }));
    parts.push(h("p", { id: "receive-numbers", class: "numbers" }));
  }
  if (r.state === "receiving") {
    parts.push(h("p", { class: "keep-open", role: "note" }, h("strong", {}, "Keep this tab open"), " until the transfer is done."));
  }
  if (r.state === "done") {
    parts.push(h("div", { id: "downloads", class: "downloads" }));
    parts.push(h("p", { class: "digest" }, `peerbeam digest${r.digests.length > 1 ? "s" : ""} `, ...r.digests.map((d) => h("code", {}, d))));
    parts.push(h("p", { class: "hint" }, DIGEST_HINT));
  }
  if (r.state === "stopped") parts.push(h("p", {}, h("a", { href: "./", class: "button secondary" }, "Send files yourself")));
  return parts.filter((p) => p !== null);
}

/** @param {Receiver} r */
function passwordForm(r) {
  const input = /** @type {HTMLInputElement} */ (h("input", { type: "password", id: "receive-password", autocomplete: "current-password", "data-autofocus": true, required: true }));
  const error = h("p", { class: "error", role: "alert", id: "password-error" });
  return h("form", {
    class: "password-form",
    onsubmit: (event) => {
      event.preventDefault();
      try {
        r.submitPassword(input.value);
      } catch {
        error.textContent = "Enter the password the sender gave you.";
      }
    },
  },
  h("label", { for: "receive-password" }, "Password"),
  h("div", { class: "link-row" }, input, h("button", { type: "submit", class: "button primary" }, "Unlock")),
  error);
}

/** @param {Receiver} r */
function fileTable(r) {
  const manifest = /** @type {import("../protocol/messages.js").Manifest} */ (r.manifest);
  return h("div", {},
    h("ul", { class: "file-list", "aria-label": "Files" }, ...manifest.files.map((file) =>
      h("li", {},
        h("span", { class: "name", title: file.name }, sanitizeFilename(file.name)),
        h("span", { class: "size" }, formatBytes(file.size))))),
    h("p", { class: "total" }, `${manifest.files.length} ${manifest.files.length === 1 ? "file" : "files"}, ${formatBytes(r.total)} in total`));
}

/**
 * @param {HTMLElement} view
 * @param {Receiver} r
 * @param {RateMeter} meter
 */
function update(view, r, meter) {
  const status = view.querySelector("#receive-status");
  if (status && status.textContent !== r.message) status.textContent = r.message;
  const progress = /** @type {HTMLProgressElement | null} */ (view.querySelector("#receive-progress"));
  if (progress) progress.value = r.total ? Math.floor((r.done / r.total) * 100) : 100;
  const numbers = view.querySelector("#receive-numbers");
  if (numbers) {
    const percent = r.total ? Math.floor((r.done / r.total) * 100) : 100;
    const rate = r.state === "receiving" ? meter.describe(r.done, r.total) : "";
    numbers.textContent = `${formatBytes(r.done)} of ${formatBytes(r.total)} (${percent} %)${rate ? " · " + rate : ""}`;
  }
  const downloads = view.querySelector("#downloads");
  if (downloads && downloads.childElementCount !== r.downloads.length) {
    downloads.replaceChildren(...r.downloads.map((d) => h("a", { href: d.url, download: d.name, class: "button secondary" }, `Save ${d.name}`)));
  }
}
