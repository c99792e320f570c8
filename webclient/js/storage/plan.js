// @ts-check
/**
 * The storage plan of a receive (docs/webclient.md, "Where the files go"): where the files
 * of an offer will be saved, decided before Accept from what this browser can do, and said
 * in words before the user clicks. Pure: no browser API, no I/O (the page probes the
 * capabilities, ReceiveStorage carries the plan out); Node tests it as it is.
 *
 * In order of preference:
 * 1. "picker": a file or folder the user picks (Chromium). Staged: received into the
 *    private file system (resumable at every chunk), copied once into the picked file at
 *    the end; when the private file system cannot hold the files, written straight into
 *    the picked file with checkpoints (resumable from the last one).
 * 2. "opfs": the browser's private file system, then downloaded by the browser. When the
 *    files do not fit the site's quota and storage is not persistent yet, Accept asks for
 *    persistent storage first (`navigator.storage.persist()`; Firefox allows a site about
 *    10 GiB without it) and the plan is made again with the quota after the answer.
 * 3. "stream": downloaded by the browser as the bytes arrive, through a Service Worker:
 *    no quota, no copy; not resumable after a reload.
 * 4. "none": nothing here can hold the files.
 * `reason` says why a plan is "stream" or "none": "no_storage" (the private file system
 * refuses this site: a private window; for "none", Service Workers too), "too_big" (over
 * the quota).
 */

/**
 * @typedef {"picker" | "opfs" | "staged" | "stream"} FileKind where one file's bytes go
 *   ("staged": a picked file received into the private file system first)
 * @typedef {{size: number, held: number, kind: FileKind | null}} PlanFile
 *   `held`: bytes held from an earlier attempt; `kind`: where those are (null: a new file)
 * @typedef {{picker: boolean, opfs: boolean, stream: boolean, free: number | null,
 *            persisted: boolean, canPersist: boolean, askedPersist: boolean}} Capabilities
 *   `picker`: a save picker for this many files; `opfs`: the private file system really
 *   opens (probed); `stream`: a download Service Worker really registers (probed); `free`:
 *   the site's quota minus its usage (null: unknown); `canPersist`: persist() exists;
 *   `askedPersist`: the user was asked already (this plan follows the answer)
 * @typedef {{kind: "picker" | "opfs" | "stream" | "none", staged: boolean, askPersist: boolean,
 *            needed: number, free: number | null, resumable: boolean,
 *            reason: "no_storage" | "too_big" | null, files: FileKind[]}} Plan
 *   `needed`: bytes the private file system must take; `files`: where each file goes
 */

/**
 * Where the files go.
 * @param {PlanFile[]} files
 * @param {Capabilities} caps
 * @returns {Plan}
 */
export function planStorage(files, caps) {
  const rest = (/** @type {PlanFile} */ f) => Math.max(0, f.size - f.held);
  // Files an earlier attempt holds in the private file system continue there.
  const kept = files.filter((f) => f.kind === "opfs" || f.kind === "staged").reduce((n, f) => n + rest(f), 0);
  const fresh = files.filter((f) => f.kind === null);
  const freshBytes = fresh.reduce((n, f) => n + rest(f), 0);
  const fits = (/** @type {number} */ bytes) => caps.free === null || bytes <= caps.free;
  const free = caps.free;
  /**
   * @param {Plan["kind"]} kind
   * @param {FileKind | null} fileKind where new files go
   * @param {Partial<Plan>} [more]
   * @returns {Plan}
   */
  const plan = (kind, fileKind, more = {}) => {
    const placed = files.map((f) => f.kind ?? fileKind ?? "opfs");
    const needed = files.reduce((n, f, i) => n + (placed[i] === "opfs" || placed[i] === "staged" ? rest(f) : 0), 0);
    return {
      kind, staged: false, askPersist: false, needed, free, reason: null, files: placed,
      resumable: kind !== "none" && placed.every((k) => k !== "stream"), ...more,
    };
  };
  if (kept && !caps.opfs) return plan("none", null, { reason: "no_storage" });
  if (!fresh.length) return fits(kept) ? plan(files.some((f) => f.kind === "picker" || f.kind === "staged") ? "picker" : "opfs", null)
    : plan("none", null, { reason: "too_big" });
  if (caps.picker) {
    const staged = caps.opfs && fits(kept + freshBytes);
    return plan("picker", staged ? "staged" : "picker", { staged });
  }
  if (caps.opfs && fits(kept + freshBytes)) return plan("opfs", "opfs");
  if (caps.opfs && !caps.persisted && caps.canPersist && !caps.askedPersist) {
    return plan("opfs", "opfs", { askPersist: true });
  }
  if (caps.stream && fits(kept)) return plan("stream", "stream", { reason: caps.opfs ? "too_big" : "no_storage" });
  return plan("none", null, { reason: caps.opfs ? "too_big" : "no_storage" });
}
