// @ts-check
/** Entry point: a link in the fragment means "receive", otherwise "send". */
import { loadConfig } from "./config.js";
import { parseLink } from "./protocol/link.js";
import { byId, h } from "./ui/dom.js";
import { showReceiver } from "./ui/receiver-view.js";
import { showSender } from "./ui/sender-view.js";
import { cleanUpFinished } from "./storage/cleanup.js";

/** What this browser lacks for peerbeam, in words. */
function missingApis() {
  const missing = [];
  if (!window.isSecureContext || !crypto.subtle) missing.push("a secure (https) connection for encryption");
  if (typeof RTCPeerConnection !== "function") missing.push("WebRTC");
  if (typeof indexedDB === "undefined") missing.push("IndexedDB");
  return missing;
}

async function main() {
  const missing = missingApis();
  if (missing.length) {
    const view = byId("receive-view");
    view.hidden = false;
    view.replaceChildren(
      h("h1", {}, "This browser cannot run peerbeam"),
      h("p", { class: "error big", role: "alert" }, `It lacks ${missing.join(", ")}. Use a current Chrome, Edge, Firefox or Safari.`));
    return;
  }
  const config = await loadConfig();
  const fragment = location.hash.slice(1);
  if (fragment) {
    let link;
    try {
      link = parseLink(location.href);
    } catch (error) {
      const view = byId("receive-view");
      view.hidden = false;
      view.replaceChildren(
        h("h1", {}, "This link is not complete"),
        h("p", { class: "error big", role: "alert" }, `It looks cut off or damaged: ${/** @type {Error} */ (error).message}. Ask the sender to send it again.`),
        h("p", {}, h("a", { href: "./", class: "button secondary" }, "Send files yourself")));
      return;
    }
    showReceiver(link, config);
  } else {
    showSender(config);
  }
  void cleanUpFinished();
}

// A different link pasted into the address bar of an open page: start over with it.
window.addEventListener("hashchange", () => location.reload());

main().catch((error) => {
  const view = byId("receive-view");
  view.hidden = false;
  view.replaceChildren(h("h1", {}, "Something went wrong"), h("p", { class: "error big", role: "alert" }, String(error?.message ?? error)));
});
