"""Which partial files a receiver already holds for a manifest (docs/protocol.md §10).

A record is what a receiver keeps per file it has been receiving: the transfer and file
index it came from, the name, size and chunk size, whether it is complete, and the digests
of the chunks it holds durably (the longest run from chunk 0). The storage differs (a
journal beside the file for the CLI, IndexedDB in browsers); the rule of matching is one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .messages import Manifest


@dataclass(frozen=True)
class Record:
    id: str
    transfer: str
    index: int
    name: str
    size: int
    chunk_size: int
    complete: bool = False
    digests: tuple[bytes, ...] = field(default=())  # held chunks, from chunk 0


def match_records(manifest: Manifest, records: Sequence[Record]) -> list[Record | None]:
    """Per manifest file, first match wins, each record used once:

    1. a record of the same transfer, same file index, name and size; else
    2. a record of another transfer with the same name, size and chunk size that is not
       complete. A complete record belongs to a finished transfer: offering its digest to
       another sender would tell that sender what a file of this name holds.
    """
    used: set[str] = set()
    plan: list[Record | None] = []
    for index, entry in enumerate(manifest.files):
        candidates = [r for r in records if r.id not in used and r.name == entry.name
                      and r.size == entry.size and r.chunk_size == manifest.chunk_size]
        match = next((r for r in candidates if r.transfer == manifest.transfer and r.index == index), None)
        if match is None:
            match = next((r for r in candidates if r.transfer != manifest.transfer and not r.complete), None)
        if match is not None:
            used.add(match.id)
        plan.append(match)
    return plan
