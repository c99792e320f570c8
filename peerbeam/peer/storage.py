"""Where the CLI receiver keeps files, partial and finished, so it can resume.

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

Which record serves which file is the protocol's rule (peerbeam.transfer.resume); this
module only finds the records, checks what they hold, and does the writing. Files are
opened when their first chunk arrives and closed when they are finished, so a transfer of
many files holds two descriptors at a time, not two per file.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path

from ..transfer import CHUNK_SIZE, chunk_count, chunk_digest, chunk_length
from ..transfer.errors import DISK_FULL, STORAGE_ERROR
from ..transfer.filenames import numbered_filename, sanitize_filename
from ..transfer.messages import Manifest
from ..transfer.resume import Record as HeldRecord

JOURNAL = ".peerbeam"
PART_SUFFIX = ".peerbeam-part"
SYNC_EVERY = 64
DIGEST_SIZE = 32
# Room left on the disk beyond the files themselves (journals, the file system's own needs).
FREE_SPACE_MARGIN = 64 * 1024 * 1024
_FULL = {errno.ENOSPC, errno.EDQUOT}


class StorageError(Exception):
    """Cannot write where asked. `code`: disk_full or storage_error (protocol.md §12)."""

    def __init__(self, message: str, code: str = STORAGE_ERROR) -> None:
        super().__init__(message)
        self.code = code

    @classmethod
    def of(cls, error: OSError, what: Path) -> StorageError:
        code = DISK_FULL if error.errno in _FULL else STORAGE_ERROR
        return cls(f"cannot write {what}: {error.strerror}", code)


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


def same_name_key(name: str) -> str:
    """Two names that one file system may take for the same file: case-insensitive ones
    (macOS and Windows by default) and Unicode-normalising ones (NFC vs NFD)."""
    return unicodedata.normalize("NFC", name).casefold()


class PartialFile:
    """One file of a transfer on disk, growing chunk by chunk."""

    def __init__(self, directory: Path, record: Record) -> None:
        self.directory = directory
        self.record = record
        self._data_fd: int | None = None
        self._digest_fd: int | None = None
        self.digests: list[bytes] = []  # held, from chunk 0
        # Written past the held run (chunks of several connections land in any order): on
        # disk, journaled once the run reaches them; a crash before that re-sends them.
        self.ahead: dict[int, bytes] = {}

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

    def held(self) -> HeldRecord:
        """What this file holds, as the protocol's matching sees it."""
        r = self.record
        return HeldRecord(self.key, r.transfer, r.index, r.name, r.size, r.chunk_size, r.complete,
                          tuple(self.digests))

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
    def held_bytes(self) -> int:
        return min(len(self.digests) * CHUNK_SIZE, self.record.size)

    # -- writing --------------------------------------------------------------------

    def reset(self, free_name: str) -> None:
        """The sender's prefix check failed: this file starts over from chunk 0. A file
        that was complete stays as it is, and the new one gets a name of its own."""
        self.close()
        if self.record.complete:
            self.record.complete = False
            self.record.saved_name = free_name
        self.digests = []
        self.record.synced_chunks = 0
        self.digests_path.unlink(missing_ok=True)
        self.part_path.unlink(missing_ok=True)

    def _open(self) -> None:
        """Keep the held chunks, drop whatever lies beyond them, and write from there."""
        self.ahead.clear()
        start = len(self.digests)
        self.record.synced_chunks = min(self.record.synced_chunks, start)
        try:
            self.save_record()
            self._data_fd = os.open(self.part_path, os.O_RDWR | os.O_CREAT, 0o644)
            os.ftruncate(self._data_fd, min(start * CHUNK_SIZE, self.record.size))
            self._digest_fd = os.open(self.digests_path, os.O_RDWR | os.O_CREAT, 0o644)
            os.ftruncate(self._digest_fd, start * DIGEST_SIZE)
            os.lseek(self._digest_fd, 0, os.SEEK_END)
        except OSError as error:
            self.close()
            raise StorageError.of(error, self.part_path) from error

    def write_chunk(self, chunk: int, data: bytes | bytearray, digest: bytes) -> None:
        """Blocking: call from a worker thread. The chunk is written when this returns.
        Chunks may come in any order (several connections), and again (a lost ack)."""
        if chunk < len(self.digests) and self.digests[chunk] != digest:
            raise StorageError(f"chunk {chunk} of {self.record.saved_name} came again, different")
        if self._data_fd is None:
            self._open()
        assert self._data_fd is not None and self._digest_fd is not None
        try:
            view = memoryview(data)
            position = chunk * CHUNK_SIZE
            while view:
                written = os.pwrite(self._data_fd, view, position)
                view, position = view[written:], position + written
            if chunk >= len(self.digests):
                self.ahead[chunk] = digest
            run: list[bytes] = []
            while len(self.digests) + len(run) in self.ahead:
                run.append(self.ahead.pop(len(self.digests) + len(run)))
            if run:
                os.write(self._digest_fd, b"".join(run))
        except OSError as error:
            raise StorageError.of(error, self.part_path) from error
        self.digests.extend(run)
        if len(self.digests) - self.record.synced_chunks >= SYNC_EVERY:
            self.sync()

    def sync(self) -> None:
        if self._data_fd is None or self._digest_fd is None:
            return
        try:
            os.fsync(self._data_fd)
            os.fsync(self._digest_fd)
            self.record.synced_chunks = len(self.digests)
            self.save_record()
        except OSError as error:
            raise StorageError.of(error, self.part_path) from error

    def finish(self) -> Path:
        """All chunks verified: close, move to its own name, remember it is complete."""
        if self.record.complete:
            return self.final_path
        try:
            self.sync()
            self.close()
            if not self.part_path.exists():  # a file with no chunk to write (empty, or held)
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
        except OSError as error:
            raise StorageError.of(error, self.part_path) from error
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
        self.loaded: dict[str, PartialFile] = {}

    def _records(self) -> list[Record]:
        journal = self.directory / JOURNAL
        if not journal.is_dir():
            return []
        records = []
        for path in sorted(journal.glob("*.json")):
            if not path.name.startswith("member-"):
                try:
                    records.append(Record(**json.loads(path.read_text())))
                except (ValueError, TypeError):
                    continue  # a damaged record: ignore it, the data is re-sent
        return records

    def held(self, manifest: Manifest) -> list[HeldRecord]:
        """The records that may hold files of this manifest (same name, size and chunk
        size), with what each holds checked on disk. Blocking: call from a thread."""
        wanted = {(entry.name, entry.size) for entry in manifest.files}
        self.loaded = {}
        for record in self._records():
            if (record.name, record.size) in wanted and record.chunk_size == manifest.chunk_size:
                partial = PartialFile(self.directory, record)
                partial.load_held()
                self.loaded[partial.key] = partial
        return [partial.held() for partial in self.loaded.values()]

    def prepare(self, manifest: Manifest, chosen: list[str | None]) -> list[PartialFile]:
        """A PartialFile per manifest file: the record chosen for it (by
        peerbeam.transfer.resume.match_records), or a new one under a free name. Refuses
        (disk_full) when the disk cannot hold what is still to come."""
        needed = 0
        files: list[PartialFile] = []
        taken = {same_name_key(p.record.saved_name) for p in self.loaded.values()}
        for index, (entry, key) in enumerate(zip(manifest.files, chosen, strict=True)):
            partial = self.loaded.get(key) if key is not None else None
            if partial is None:
                record = Record(manifest.transfer, index, entry.name, entry.size,
                                manifest.chunk_size, self.free_name(entry.name, taken))
                partial = PartialFile(self.directory, record)
            taken.add(same_name_key(partial.record.saved_name))
            needed += entry.size - partial.held_bytes
            files.append(partial)
        free = shutil.disk_usage(self.directory).free
        if needed + FREE_SPACE_MARGIN > free:
            raise StorageError(
                f"these files need {needed} bytes more but {self.directory} has {free} free",
                DISK_FULL)
        return files

    def free_name(self, name: str, taken: set[str]) -> str:
        """A name for `name` in DIR that no file there and no file of this transfer has,
        also when the file system ignores case or Unicode normalisation."""
        try:
            present = {same_name_key(existing) for existing in os.listdir(self.directory)}
        except OSError:
            present = set()
        base = sanitize_filename(name)
        candidate, number = base, 1
        while (same_name_key(candidate) in taken or same_name_key(candidate) in present
               or same_name_key(candidate + PART_SUFFIX) in present):
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
