// @ts-check
/**
 * Browser storage hygiene: OPFS copies of transfers that were completed on an earlier
 * visit (a copy the page could not hand over by a stream, kept for a "Save" link) and
 * OPFS files nobody has a record of are removed. Partial transfers stay for resume.
 */
import { allRecords, deleteRecord } from "./records.js";
import { canUseOpfs } from "./probe.js";
import { opfsTransfers } from "./sinks.js";

export async function cleanUpFinished() {
  if (!(await canUseOpfs())) return;
  try {
    const records = await allRecords();
    const transfers = await opfsTransfers();
    /** @type {Map<string, import("./records.js").FileRecord[]>} */
    const byTransfer = new Map();
    // A picked file being staged keeps its private copy until it is copied (complete).
    for (const record of records.filter((r) => r.kind === "opfs" || r.kind === "staged")) {
      byTransfer.set(record.transfer, [...(byTransfer.get(record.transfer) ?? []), record]);
    }
    const loadedAt = performance.timeOrigin;
    for await (const name of /** @type {any} */ (transfers).keys()) {
      const own = byTransfer.get(name);
      const finished = own && own.every((r) => r.complete && r.updated < loadedAt);
      if (!own || finished) {
        await transfers.removeEntry(name, { recursive: true }).catch(() => undefined);
        for (const record of own ?? []) await deleteRecord(record.id).catch(() => undefined);
      }
    }
  } catch {
    // Best effort: storage hygiene must never break the page.
  }
}
