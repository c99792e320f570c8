"""Where the receiver keeps files, partial and finished, so it can resume.

In the target directory ``DIR``:

- ``DIR/<name>.peerbeam-part``: the bytes of a file still arriving;
- ``DIR/.peerbeam/<transfer>-<index>.json``: its record (sender's name, size,
  chunk size, where the data is, how many chunks were last fsync'ed);
- ``DIR/.peerbeam/<transfer>-<index>.digests``: the raw 32-byte digest of every
  chunk written so far, appended as chunks land.

A chunk is acknowledged once written (the OS has it: it survives a killed
process). Every SYNC_EVERY chunks the data and digests are fsync'ed and the
record notes that count; on resume, chunks past it are re-hashed from disk before
they are claimed, so a crash can cost at most that much re-transfer, never a
wrong byte. A finished file is renamed to its name (numbered if taken), and its
record stays until the whole transfer is complete, so a re-run skips it.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from ..transfer import CHUNK_SIZE, chunk_count, chunk_digest, chunk_length, file_digest
from ..transfer.filenames import numbered_filename, sanitize_filename
from ..transfer.messages import FileEntry, Manifest

JOURNAL = ".peerbeam"
PART_SUFFIX = ".peerbeam-part"
SYNC_EVERY = 64
DIGEST_SIZE = 32


class StorageError(Exception):
    """Cannot write where asked (permissions, disk full)."""


@dataclass
class Record:
    transfer: str
    index: int
    name: str  # as the sender named it
    size: int
    chunk_size: int
    saved_name: str  # the sanitised name in DIR
    synced_chunks: int = 0
    complete: bool = False


class PartialFile:
    """One file of a transfer on disk, growing chunk by chunk."""

    def __init__(self, directory: Path, record: Record) -> None:
        self.directory = directory
        self.record = record
        self._data_fd: int | None = None
        self._digest_fd: int | None = None
        self.digests: list[bytes] = []

    @property
    def key(self) -> str:
        return f"{self.record.transfer}-{self.record.index}"

    @property
    def record_path(self) -> Path:
        return self.directory / JOURNAL / f"{self.key}.json"

    @property
    def digests_path(self) -> Path:
        return self.directory / JOURNAL / f"{self.key}.digests"

    @property
    def part_path(self) -> Path:
        return self.directory / (self.record.saved_name + PART_SUFFIX)

    @property
    def final_path(self) -> Path:
        return self.directory / self.record.saved_name

    def save_record(self) -> None:
        path = self.record_path
        path.parent.mkdir(exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(self.record)))
        os.replace(temporary, path)

    # -- what is held -----------------------------------------------------------

    def load_held(self) -> list[bytes]:
        """Digests of the chunks held from chunk 0 on, checked against the disk where
        they were not yet fsync'ed. Sets self.digests."""
        if self.record.complete:
            if self.final_path.is_file() and self.final_path.stat().st_size == self.record.size:
                self.digests = self._read_digests()
                if len(self.digests) == chunk_count(self.record.size):
                    return self.digests
            self.record.complete = False
            self.digests = []
            return []
        digests = self._read_digests()
        size = self.part_path.stat().st_size if self.part_path.exists() else 0
        digests = digests[: chunk_count(min(size, self.record.size))]
        held: list[bytes] = []
        if digests:
            with open(self.part_path, "rb") as handle:
                for index, digest in enumerate(digests):
                    if index >= self.record.synced_chunks:
                        length = chunk_length(self.record.size, index)
                        data = os.pread(handle.fileno(), length, index * CHUNK_SIZE)
                        if len(data) != length or chunk_digest(data) != digest:
                            break
                    held.append(digest)
        self.digests = held
        return held

    def _read_digests(self) -> list[bytes]:
        if not self.digests_path.exists():
            return []
        raw = self.digests_path.read_bytes()
        usable = len(raw) - len(raw) % DIGEST_SIZE
        return [raw[i : i + DIGEST_SIZE] for i in range(0, usable, DIGEST_SIZE)]

    @property
    def held_offset(self) -> int:
        return min(len(self.digests) * CHUNK_SIZE, self.record.size)

    @property
    def prefix(self) -> bytes:
        return file_digest(self.digests)

    # -- writing --------------------------------------------------------------------

    def open_for_writing(self, start_chunk: int) -> None:
        """Keep chunks below start_chunk (held, confirmed by the sender), drop the rest."""
        if self.record.complete:
            return
        self.digests = self.digests[:start_chunk]
        self.record.synced_chunks = min(self.record.synced_chunks, start_chunk)
        self.save_record()
        try:
            self._data_fd = os.open(self.part_path, os.O_RDWR | os.O_CREAT, 0o644)
            os.ftruncate(self._data_fd, min(start_chunk * CHUNK_SIZE, self.record.size))
            self._digest_fd = os.open(self.digests_path, os.O_RDWR | os.O_CREAT, 0o644)
            os.ftruncate(self._digest_fd, len(self.digests) * DIGEST_SIZE)
            os.lseek(self._digest_fd, 0, os.SEEK_END)
        except OSError as error:
            raise StorageError(f"cannot write {self.part_path}: {error.strerror}") from error

    def write_chunk(self, chunk: int, data: bytes | bytearray, digest: bytes) -> None:
        """Blocking: call from a worker thread. The chunk is written when this returns."""
        assert self._data_fd is not None and self._digest_fd is not None
        if chunk != len(self.digests):
            raise StorageError(f"chunk {chunk} written out of order")
        try:
            view = memoryview(data)
            position = chunk * CHUNK_SIZE
            while view:
                written = os.pwrite(self._data_fd, view, position)
                view, position = view[written:], position + written
            os.write(self._digest_fd, digest)
        except OSError as error:
            raise StorageError(f"cannot write {self.part_path}: {error.strerror}") from error
        self.digests.append(digest)
        if len(self.digests) - self.record.synced_chunks >= SYNC_EVERY:
            self.sync()

    def sync(self) -> None:
        if self._data_fd is None or self._digest_fd is None:
            return
        os.fsync(self._data_fd)
        os.fsync(self._digest_fd)
        self.record.synced_chunks = len(self.digests)
        self.save_record()

    def finish(self) -> Path:
        """All chunks verified: close, move to its own name, remember it is complete."""
        if self.record.complete:
            return self.final_path
        self.sync()
        self.close()
        if not self.part_path.exists():  # an empty file never had a chunk written
            self.part_path.touch()
        final = self.final_path
        number = 1
        while final.exists():
            final = self.directory / numbered_filename(self.record.saved_name, number)
            number += 1
        os.replace(self.part_path, final)
        self.record.saved_name = final.name
        self.record.complete = True
        self.save_record()
        return final

    def close(self) -> None:
        for fd in (self._data_fd, self._digest_fd):
            if fd is not None:
                os.close(fd)
        self._data_fd = self._digest_fd = None

    def forget(self) -> None:
        self.close()
        self.record_path.unlink(missing_ok=True)
        self.digests_path.unlink(missing_ok=True)


class ReceiveDirectory:
    """A target directory and the records of partial transfers in it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def _records(self) -> list[Record]:
        journal = self.directory / JOURNAL
        if not journal.is_dir():
            return []
        records = []
        for path in sorted(journal.glob("*.json")):
            try:
                records.append(Record(**json.loads(path.read_text())))
            except (ValueError, TypeError):
                continue  # a damaged record: ignore it, the data is re-sent
        return records

    def match(self, manifest: Manifest) -> list[PartialFile]:
        """A PartialFile per manifest file: same transfer first, then same name and
        size from another transfer (protocol.md §10), else a new one."""
        records = self._records()
        used: set[tuple[str, int]] = set()
        taken = {r.saved_name for r in records}
        files: list[PartialFile] = []
        for index, entry in enumerate(manifest.files):
            record = self._find(records, used, manifest, index, entry)
            if record is None:
                record = Record(manifest.transfer, index, entry.name, entry.size,
                                manifest.chunk_size, self._free_name(entry.name, taken))
            else:
                used.add((record.transfer, record.index))
            taken.add(record.saved_name)
            partial = PartialFile(self.directory, record)
            partial.load_held()
            files.append(partial)
        return files

    @staticmethod
    def _find(records: list[Record], used: set[tuple[str, int]], manifest: Manifest,
              index: int, entry: FileEntry) -> Record | None:
        for same_transfer in (True, False):
            for record in records:
                if (record.transfer, record.index) in used:
                    continue
                if same_transfer and (record.transfer != manifest.transfer or record.index != index):
                    continue
                if (record.name, record.size, record.chunk_size) == (
                    entry.name, entry.size, manifest.chunk_size
                ):
                    return record
        return None

    def _free_name(self, name: str, taken: set[str]) -> str:
        base = sanitize_filename(name)
        candidate, number = base, 1
        while (
            candidate in taken
            or (self.directory / candidate).exists()
            or (self.directory / (candidate + PART_SUFFIX)).exists()
        ):
            candidate = numbered_filename(base, number)
            number += 1
        return candidate

    def clean_journal(self, files: list[PartialFile]) -> None:
        """The transfer is complete: drop its records."""
        for partial in files:
            partial.forget()
        journal = self.directory / JOURNAL
        if journal.is_dir() and not any(journal.iterdir()):
            journal.rmdir()
