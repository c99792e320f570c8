// @ts-check
/**
 * Which partial files a receiver already holds for a manifest (protocol.md section 10);
 * the Python twin is peerbeam/transfer/resume.py.
 *
 * A record is what a receiver keeps per file it has been receiving: the transfer and file
 * index it came from, the name, size and chunk size, whether it is complete, and the
 * digests of the chunks it holds durably (the longest run from chunk 0). Where it is kept
 * differs (IndexedDB here, a journal beside the file for the CLI); the rule of matching is one.
 */

/**
 * Python's `Record` (the name would shadow TypeScript's own here); fields as in the
 * `records_loaded` event of protocol.md section 14.2.
 * @typedef {{id: string, transfer: string, index: number, name: string, size: number,
 *            chunk_size: number, complete: boolean, digests: Uint8Array[]}} ResumeRecord
 */

/**
 * Per manifest file, first match wins, each record used once:
 *
 * 1. a record of the same transfer, same file index, name and size; else
 * 2. a record of another transfer with the same name, size and chunk size that is not
 *    complete. A complete record belongs to a finished transfer: offering its digest to
 *    another sender would tell that sender what a file of this name holds.
 * @param {import("./messages.js").Manifest} manifest
 * @param {ResumeRecord[]} records
 * @returns {(ResumeRecord | null)[]}
 */
export function matchRecords(manifest, records) {
  /** @type {Set<string>} */
  const used = new Set();
  return manifest.files.map((entry, index) => {
    const candidates = records.filter((r) => !used.has(r.id) && r.name === entry.name &&
      r.size === entry.size && r.chunk_size === manifest.chunkSize);
    const match =
      candidates.find((r) => r.transfer === manifest.transfer && r.index === index) ??
      candidates.find((r) => r.transfer !== manifest.transfer && !r.complete) ??
      null;
    if (match) used.add(match.id);
    return match;
  });
}
