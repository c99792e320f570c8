"""The receiver's storage: hostile names stay inside the directory; resume records."""

from __future__ import annotations

import os
from pathlib import Path

from peerbeam.peer.storage import SYNC_EVERY, ReceiveDirectory
from peerbeam.transfer import CHUNK_SIZE, chunk_digest
from peerbeam.transfer.messages import FileEntry, Manifest


def manifest(*entries: tuple[str, int], transfer: str = "transfer-1") -> Manifest:
    return Manifest(transfer, tuple(FileEntry(name, size) for name, size in entries))


def test_hostile_names_stay_inside(tmp_path: Path) -> None:
    names = ["../../etc/passwd", "/abs/path", "a/b\\c", "CON", "x\x00y", "..", "same", "same"]
    files = ReceiveDirectory(tmp_path / "out").match(manifest(*((n, 1) for n in names)))
    saved = [f.part_path.resolve() for f in files] + [f.final_path.resolve() for f in files]
    root = (tmp_path / "out").resolve()
    assert all(path.parent == root for path in saved)
    assert len({f.record.saved_name for f in files}) == len(names)  # duplicates numbered


def test_partial_file_is_found_again_and_checked_on_disk(tmp_path: Path) -> None:
    out = tmp_path / "out"
    chunks = [os.urandom(CHUNK_SIZE) for _ in range(3)]
    [first] = ReceiveDirectory(out).match(manifest(("movie.mkv", 5 * CHUNK_SIZE)))
    first.open_for_writing(0)
    for index, data in enumerate(chunks):
        first.write_chunk(index, data, chunk_digest(data))
    first.close()
    # Same transfer: all three written chunks are claimed (re-hashed: none was fsync'ed).
    [again] = ReceiveDirectory(out).match(manifest(("movie.mkv", 5 * CHUNK_SIZE)))
    assert again.held_offset == 3 * CHUNK_SIZE
    # A chunk damaged on disk after it was written is not claimed.
    with open(again.part_path, "r+b") as handle:
        handle.seek(CHUNK_SIZE + 10)
        handle.write(b"\xff")
    [damaged] = ReceiveDirectory(out).match(manifest(("movie.mkv", 5 * CHUNK_SIZE)))
    assert damaged.held_offset == CHUNK_SIZE
    # Another transfer offering the same name and size is matched (the sender checks the prefix).
    [other] = ReceiveDirectory(out).match(
        manifest(("movie.mkv", 5 * CHUNK_SIZE), transfer="transfer-2")
    )
    assert other.held_offset == CHUNK_SIZE
    [different] = ReceiveDirectory(out).match(
        manifest(("movie.mkv", 6 * CHUNK_SIZE), transfer="transfer-3")
    )
    assert different.held_offset == 0 and different.record.saved_name != "movie.mkv"


def test_synced_chunks_are_trusted_without_rehashing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    size = (SYNC_EVERY + 1) * CHUNK_SIZE
    [partial] = ReceiveDirectory(out).match(manifest(("big", size)))
    partial.open_for_writing(0)
    data = bytes(CHUNK_SIZE)
    for index in range(SYNC_EVERY):
        partial.write_chunk(index, data, chunk_digest(data))
    partial.close()
    assert partial.record.synced_chunks == SYNC_EVERY
    [again] = ReceiveDirectory(out).match(manifest(("big", size)))
    assert again.held_offset == SYNC_EVERY * CHUNK_SIZE
