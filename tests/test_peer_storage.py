"""The CLI receiver's storage: hostile names stay inside the directory; names stay unique
where the file system folds case or normalises Unicode; resume records; lazily opened
files; a refusal when the disk cannot hold the files."""

from __future__ import annotations

import os
import resource
import shutil
from pathlib import Path

import pytest

from peerbeam.peer.storage import SYNC_EVERY, PartialFile, ReceiveDirectory, StorageError
from peerbeam.transfer import CHUNK_SIZE, chunk_digest
from peerbeam.transfer.constants import MAX_FILES
from peerbeam.transfer.messages import FileEntry, Manifest
from peerbeam.transfer.resume import match_records


def manifest(*entries: tuple[str, int], transfer: str = "transfer-1") -> Manifest:
    return Manifest(transfer, tuple(FileEntry(name, size) for name, size in entries))


def prepared(directory: ReceiveDirectory, offer: Manifest) -> list[PartialFile]:
    """What the receiver machine would choose: the protocol's matching of held records."""
    plan = match_records(offer, directory.held(offer))
    return directory.prepare(offer, [record.id if record else None for record in plan])


def test_hostile_names_stay_inside(tmp_path: Path) -> None:
    names = ["../../etc/passwd", "/abs/path", "a/b\\c", "CON", "x\x00y", "..", "same", "same"]
    files = prepared(ReceiveDirectory(tmp_path / "out"), manifest(*((n, 1) for n in names)))
    saved = [f.part_path.resolve() for f in files] + [f.final_path.resolve() for f in files]
    root = (tmp_path / "out").resolve()
    assert all(path.parent == root for path in saved)
    assert len({f.record.saved_name for f in files}) == len(names)  # duplicates numbered


def test_names_differing_only_in_case_or_normalisation_get_their_own_files(tmp_path: Path) -> None:
    """On macOS and Windows "Report.txt" and "report.txt" are one file, and so are the
    composed and decomposed spellings of "Müller.txt" on macOS."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "NOTES.md").write_text("already here")
    names = ["Report.txt", "report.txt", "REPORT.TXT", "Mu\u0308ller.txt", "M\u00fcller.txt", "notes.md"]
    files = prepared(ReceiveDirectory(out), manifest(*((n, 1) for n in names)))
    folded = [f.record.saved_name.casefold() for f in files]
    assert len(set(folded)) == len(names), folded
    assert "notes.md" not in folded  # NOTES.md is taken on a case-insensitive disk


def test_partial_file_is_found_again_and_checked_on_disk(tmp_path: Path) -> None:
    out = tmp_path / "out"
    offer = manifest(("movie.mkv", 5 * CHUNK_SIZE))
    chunks = [os.urandom(CHUNK_SIZE) for _ in range(3)]
    [first] = prepared(ReceiveDirectory(out), offer)
    for index, data in enumerate(chunks):
        first.write_chunk(index, data, chunk_digest(data))
    first.close()
    # Same transfer: all three written chunks are claimed (re-hashed: none was fsync'ed).
    [again] = prepared(ReceiveDirectory(out), offer)
    assert again.held_bytes == 3 * CHUNK_SIZE
    # A chunk damaged on disk after it was written is not claimed.
    with open(again.part_path, "r+b") as handle:
        handle.seek(CHUNK_SIZE + 10)
        handle.write(b"\xff")
    [damaged] = prepared(ReceiveDirectory(out), offer)
    assert damaged.held_bytes == CHUNK_SIZE
    # Another transfer offering the same name and size is matched (the sender checks the prefix).
    [other] = prepared(ReceiveDirectory(out), manifest(("movie.mkv", 5 * CHUNK_SIZE), transfer="transfer-2"))
    assert other.held_bytes == CHUNK_SIZE
    bigger = manifest(("movie.mkv", 6 * CHUNK_SIZE), transfer="transfer-3")
    [different] = prepared(ReceiveDirectory(out), bigger)
    assert different.held_bytes == 0 and different.record.saved_name != "movie.mkv"


def test_a_finished_file_is_never_offered_to_another_transfer(tmp_path: Path) -> None:
    out = tmp_path / "out"
    data = os.urandom(100)
    [done] = prepared(ReceiveDirectory(out), manifest(("secret.txt", 100)))
    done.write_chunk(0, data, chunk_digest(data))
    done.finish()
    [same] = prepared(ReceiveDirectory(out), manifest(("secret.txt", 100)))
    assert same.held_bytes == 100  # the same transfer: complete, nothing to fetch
    [other] = prepared(ReceiveDirectory(out), manifest(("secret.txt", 100), transfer="transfer-2"))
    assert other.held_bytes == 0 and other.record.saved_name != "secret.txt"


def test_a_complete_file_restarted_from_zero_is_written_beside_the_old_one(tmp_path: Path) -> None:
    out = tmp_path / "out"
    old, new = os.urandom(100), os.urandom(100)
    directory = ReceiveDirectory(out)
    [done] = prepared(directory, manifest(("a.bin", 100)))
    done.write_chunk(0, old, chunk_digest(old))
    done.finish()
    [again] = prepared(directory, manifest(("a.bin", 100)))
    assert again.record.complete
    again.reset(directory.free_name("a.bin", set()))
    again.write_chunk(0, new, chunk_digest(new))
    final = again.finish()
    assert (out / "a.bin").read_bytes() == old and final.read_bytes() == new and final.name != "a.bin"


def test_synced_chunks_are_trusted_without_rehashing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    offer = manifest(("big", (SYNC_EVERY + 1) * CHUNK_SIZE))
    [partial] = prepared(ReceiveDirectory(out), offer)
    data = bytes(CHUNK_SIZE)
    for index in range(SYNC_EVERY):
        partial.write_chunk(index, data, chunk_digest(data))
    partial.close()
    assert partial.record.synced_chunks == SYNC_EVERY
    [again] = prepared(ReceiveDirectory(out), offer)
    assert again.held_bytes == SYNC_EVERY * CHUNK_SIZE


def test_files_are_opened_one_at_a_time(tmp_path: Path) -> None:
    """The most files a link may carry, with a descriptor limit far below two per file, and
    no trace of the files that were not reached yet."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    try:
        many = manifest(*((f"f{i}.txt", 1) for i in range(MAX_FILES)))
        files = prepared(ReceiveDirectory(tmp_path / "out"), many)
        assert not list((tmp_path / "out").glob("*.peerbeam-part"))
        for index, partial in enumerate(files):
            data = bytes([index % 256])
            partial.write_chunk(0, data, chunk_digest(data))
            partial.finish()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert len(list((tmp_path / "out").glob("f*.txt"))) == MAX_FILES


def test_files_that_do_not_fit_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    free = shutil.disk_usage(tmp_path).free
    with pytest.raises(StorageError) as refused:
        prepared(ReceiveDirectory(tmp_path / "out"), manifest(("huge.iso", free + CHUNK_SIZE)))
    assert refused.value.code == "disk_full"
    assert not list((tmp_path / "out").iterdir())


def test_chunks_written_out_of_order_are_held_once_the_run_reaches_them(tmp_path: Path) -> None:
    """Several connections deliver chunks in any order, and a lost ack brings one again:
    what is held (and claimed on resume) is always the run of chunks from 0."""
    out = tmp_path / "out"
    offer = manifest(("lanes.bin", 4 * CHUNK_SIZE))
    chunks = [os.urandom(CHUNK_SIZE) for _ in range(4)]
    [partial] = prepared(ReceiveDirectory(out), offer)
    for index in (2, 0, 3):
        partial.write_chunk(index, chunks[index], chunk_digest(chunks[index]))
    assert partial.held_bytes == CHUNK_SIZE  # chunk 1 is missing: 2 and 3 are not held yet
    partial.write_chunk(0, chunks[0], chunk_digest(chunks[0]))  # again: harmless
    with pytest.raises(StorageError):
        partial.write_chunk(0, chunks[1], chunk_digest(chunks[1]))  # again, but different
    partial.close()
    [resumed] = prepared(ReceiveDirectory(out), offer)
    assert resumed.held_bytes == CHUNK_SIZE  # a restart claims only the run
    resumed.write_chunk(1, chunks[1], chunk_digest(chunks[1]))
    for index in (3, 2):
        resumed.write_chunk(index, chunks[index], chunk_digest(chunks[index]))
    assert resumed.held_bytes == 4 * CHUNK_SIZE
    assert resumed.finish().read_bytes() == b"".join(chunks)
