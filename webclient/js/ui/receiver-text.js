// @ts-check
/**
 * Everything the receiving page says, as plain text: a title and a sentence for every
 * state and machine status, and for every way a receive ends — the codes of the receiver
 * machine's `end` (protocol.md sections 12 and 14.2) and the signaling refusals the page
 * explains (docs/signaling.md). Chosen by code, never by the wording of a message; a
 * detail (a peer's message, which digest differed) is only ever quoted.
 */
import {
  AUTH_FAILED, BAD_FRAME, BAD_MANIFEST, BAD_VERSION, BUSY, CANCELLED, DECLINED, DISK_FULL, DONE,
  GAVE_UP, INTEGRITY, INTERNAL, NO_PATH, PASSWORD_DOWNGRADE, RELAY_FAILED, ROOM_CLOSED, SENDER_GONE,
  SOURCE_ERROR, STORAGE_ERROR, TIMEOUT, WRONG_LINK, WRONG_PASSWORD,
} from "../protocol/errors.js";
import { CONNECTION_REPLACED, ROOM_FULL, ROOM_LOCKED, ROOM_NOT_FOUND } from "../signaling.js";
import { formatBytes } from "./format.js";

/**
 * @typedef {import("../receiver.js").ReceiverState} ReceiverState
 * @typedef {import("../receiver.js").Outcome} Outcome
 * @typedef {import("../storage/plan.js").Plan} Plan
 * @typedef {import("../storage/plan.js").FileKind} FileKind
 * @typedef {{state: ReceiverState, status: Record<string, any>, outcome: Outcome | null,
 *            total: number, choosing: boolean, asking?: boolean}} Snapshot what a ReceiverSession shows
 */

/** @type {Record<ReceiverState, string>} */
const TITLES = {
  checking: "Opening the link…",
  connecting: "Connecting…",
  waiting: "Waiting for the sender",
  password: "Password required",
  verifying: "Checking…",
  offer: "Files for you",
  saving: "Files for you",
  receiving: "Receiving",
  reconnecting: "Reconnecting…",
  done: "Done",
  stopped: "This transfer cannot continue",
};

/** Refusals that mean this link cannot be used at all (not: this attempt failed). */
const UNUSABLE = new Set([ROOM_NOT_FOUND, ROOM_LOCKED, ROOM_FULL]);

const TAMPERED = "Could not verify the sender — the connection may have been tampered with.";

/**
 * @param {string} sentence
 * @param {string} detail
 */
const quoting = (sentence, detail) => (detail ? `${sentence}: ${detail}.` : `${sentence}.`);

/**
 * The sentence for how a receive ended. `remote`: the sender said so (its `error`).
 * @param {Outcome} outcome
 * @returns {string}
 */
export function outcomeText({ code, detail, remote }) {
  switch (code) {
    case DONE:
      return "All files received and verified.";
    case DECLINED:
      return "You declined these files. Nothing was saved.";
    case WRONG_LINK:
      return "Wrong password or link. Check that you have the whole link and the right password.";
    case WRONG_PASSWORD:
      return "Wrong password, and no tries are left. Check the password with the sender, then open the link again.";
    case AUTH_FAILED:
      return TAMPERED;
    case PASSWORD_DOWNGRADE:
      return `${TAMPERED} This link needs a password, but the other side did not ask for one.`;
    case SENDER_GONE:
      return "The sender did not come back. Try again when they are online: what arrived is kept.";
    case NO_PATH:
      return `${quoting("No connection to the sender could be made", detail)} There is no direct path between your networks (a firewall or a strict network is in the way), and no relay (TURN) helped. Try again, or from another network (or ask the sender to).`;
    case RELAY_FAILED:
      return "No connection to the sender could be made: there is no direct path between your networks, and the relay server (TURN) did not answer. Try again later, or from another network.";
    case GAVE_UP:
      return "The connection to the sender was lost and did not come back. What arrived is kept: Try again to resume.";
    case ROOM_CLOSED:
      return "This link is closed: the sender stopped sharing, or it expired.";
    case CANCELLED:
      return remote ? "The sender stopped the transfer." : "You stopped the transfer.";
    case DISK_FULL:
      return remote ? "The transfer stopped: the other side has no space left."
        : `${quoting("There is not enough space to save these files", detail)} Free some space (in this browser's site data, or on the disk), or allow this site to keep data permanently, or open the link in Chrome or Edge, which save straight to a file; then open the link again to resume.`;
    case STORAGE_ERROR:
      return remote ? "The transfer stopped: the other side cannot save the files." : quoting("Cannot save the files", detail);
    case SOURCE_ERROR:
      return quoting("The sender cannot read the files any more", detail);
    case INTEGRITY:
      return quoting("The files did not arrive intact", detail);
    case TIMEOUT:
      return "The sender stopped answering.";
    case BUSY:
      return "The sender is serving too many receivers right now. Try again later.";
    case BAD_VERSION:
      return "The sender uses a different version of peerbeam. Both sides need an up-to-date version.";
    case BAD_FRAME:
    case BAD_MANIFEST:
      return quoting(remote ? "The sender could not understand this page" : "The sender sent something this page cannot accept", detail);
    case ROOM_NOT_FOUND:
      return "This link has expired or does not exist. Ask the sender for a new one.";
    case ROOM_LOCKED:
      return "This one-time link has already been used by someone else.";
    case ROOM_FULL:
      return "Too many people are receiving from this link right now. Try again later.";
    case CONNECTION_REPLACED:
      return "This transfer continues in another tab or window.";
    case INTERNAL:
    default: // a code this page does not know is shown like internal (protocol.md 12)
      return quoting("The transfer failed", detail);
  }
}

/**
 * What the page says while the receive runs, from the machine's last status.
 * @param {Snapshot} session
 * @returns {string}
 */
export function statusText({ state, status, total, choosing, asking }) {
  switch (state) {
    case "connecting":
      return "Connecting to the sender…";
    case "waiting":
      return "The sender is not online right now. Keep this page open: the transfer starts when they are back.";
    case "password": {
      const remaining = status.remaining;
      if (typeof remaining !== "number") return "This transfer is protected by a password.";
      return `Wrong password (${remaining} ${remaining === 1 ? "try" : "tries"} left).`;
    }
    case "verifying":
      return "Checking the link…";
    case "offer": {
      if (choosing) return "Nothing was saved. Accept again to choose where to save the files.";
      const held = status.held ?? 0;
      if (held > 0 && held >= total) return "You already received these files: Accept to check them and save them again.";
      return held > 0 ? "You already have part of this: Accept to resume where it stopped." : "";
    }
    case "saving":
      return asking
        ? "This browser asks whether this site may keep data permanently. Allow it to save the files in the browser's storage (a reload resumes them); otherwise they are downloaded as they arrive."
        : "Choosing where to save…";
    case "receiving":
      return status.reconnected ? "Reconnected, continuing…" : "Receiving…";
    case "reconnecting":
      return "Connection lost: reconnecting…";
    default:
      return "";
  }
}

/**
 * Title and sentence for the page now; `alert` when the receive is over without success.
 * @param {Snapshot} session
 * @returns {{title: string, message: string, alert: boolean}}
 */
export function describe(session) {
  const outcome = session.outcome;
  if (outcome) {
    const unusable = outcome.outcome === "failed" && UNUSABLE.has(outcome.code);
    return {
      title: unusable ? "This link cannot be used" : TITLES[session.state],
      message: outcomeText(outcome),
      alert: outcome.outcome !== "done",
    };
  }
  return { title: TITLES[session.state], message: statusText(session), alert: false };
}

const KEEP_OPEN = "This cannot resume after a reload: keep this tab open until it is done.";

/**
 * Where the files will go, said before Accept (docs/webclient.md, "Where the files go").
 * `blocked`: Accept cannot work here (nothing can hold the files).
 * @param {Plan} plan
 * @param {number} count how many files
 * @returns {{text: string, blocked: boolean}}
 */
export function planText(plan, count) {
  const them = count === 1 ? "the file" : "the files";
  const needed = formatBytes(plan.needed);
  const free = plan.free === null ? "" : formatBytes(Math.max(0, plan.free));
  switch (plan.kind) {
    case "picker":
      return {
        blocked: false,
        text: plan.staged
          ? `Accept asks where to save ${them}. They are received into this browser's storage first (${needed}; a reload resumes them), then copied to the place you pick.`
          : `Accept asks where to save ${them}; they are written there as they arrive (a reload resumes from the last checkpoint).`,
      };
    case "opfs":
      if (plan.askPersist) {
        return {
          blocked: false,
          text: `${count === 1 ? "This file needs" : "These files need"} ${needed}, but this browser lets this site store only ${free} unless you allow it to keep data permanently. Accept asks for that: allow it, and ${them} are received into this browser's storage (a reload resumes them), then downloaded. Otherwise they are downloaded as they arrive, and that cannot resume after a reload.`,
        };
      }
      return {
        blocked: false,
        text: `${count === 1 ? "The file is" : "The files are"} received into this browser's storage (${needed}${free ? ` of ${free} free` : ""}; a reload resumes ${count === 1 ? "it" : "them"}), then downloaded by the browser.`,
      };
    case "stream":
      return {
        blocked: false,
        text: `${count === 1 ? "The file is" : "The files are"} downloaded by the browser as ${count === 1 ? "it arrives" : "they arrive"} (${
          plan.reason === "no_storage" ? "this window does not let the site store files" : `this browser lets this site store only ${free}`}). ${KEEP_OPEN}`,
      };
    default:
      return {
        blocked: true,
        text: plan.reason === "no_storage"
          ? `This window cannot save ${them}: it lets this site neither store files nor stream downloads (private windows do that). Open the link in a normal window.`
          : `${count === 1 ? "This file needs" : "These files need"} ${needed}, but this browser lets this site store only ${free} more. Free space in this browser's site data, or allow this site to keep data permanently (in the site's permissions), or open the link in Chrome or Edge, which save straight to a file; then open the link again.`,
      };
  }
}

/**
 * Where a finished file went, for the Done page.
 * @param {FileKind} kind
 * @param {boolean} kept the browser's private copy is kept (it could not be handed over by a stream)
 */
export function savedText(kind, kept) {
  switch (kind) {
    case "picker":
    case "staged":
      return "saved to the file you picked";
    case "stream":
      return "downloaded by the browser (see its downloads)";
    default:
      return kept ? "downloaded by the browser; a copy is kept in this browser's storage" : "downloaded by the browser (see its downloads); no copy kept here";
  }
}
