"""Files being sent: metadata for the manifest, chunk reads with their digests.

The sender machine keeps the digests for the life of the offer (32 bytes per MiB), so a
receiver that resumes has its prefix checked without reading the file again, and a chunk
that reads back differently is noticed (the file changed).
"""

from __future__ import annotations

import asyncio
import mimetypes
import os
import time
from dataclasses import dataclass
from pathlib import Path

from ..transfer import CHUNK_SIZE, chunk_count, chunk_digest, chunk_length
from ..transfer.messages import FileEntry
from . import faults


@dataclass
class SourceFile:
    path: Path
    size: int
    mtime_ms: int

    @classmethod
    def open(cls, path: Path) -> SourceFile:
        stat = path.stat()
        if not path.is_file():
            raise ValueError(f"{path} is not a regular file")
        return cls(path, stat.st_size, int(stat.st_mtime * 1000))

    @property
    def entry(self) -> FileEntry:
        mime = mimetypes.guess_type(self.path.name)[0] or ""
        return FileEntry(self.path.name, self.size, mime, self.mtime_ms)

    @property
    def chunks(self) -> int:
        return chunk_count(self.size)

    def _read(self, index: int) -> tuple[bytes, bytes]:
        if delay := faults.slow_read():
            time.sleep(delay)  # runs in a worker thread, like the read itself
        length = chunk_length(self.size, index)
        with open(self.path, "rb", buffering=0) as handle:
            data = os.pread(handle.fileno(), length, index * CHUNK_SIZE)
        if len(data) != length:
            raise OSError(f"{self.path.name} changed while it was being sent")
        return data, chunk_digest(data)

    async def read(self, index: int) -> tuple[bytes, bytes]:
        """Chunk bytes and digest, read and hashed off the event loop."""
        return await asyncio.to_thread(self._read, index)
