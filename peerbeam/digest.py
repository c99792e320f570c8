"""`peerbeam digest FILE...`: the digest both sides of a transfer show, for a copy on disk.

The *peerbeam digest* of a file is SHA-256 over the raw SHA-256s of its 1 MiB chunks
(docs/protocol.md 8.5): it is what the web page and `peerbeam send`/`receive` display after
a transfer, and it is not the file's plain SHA-256, which `sha256sum` prints. This command
prints both, from one read of the file, in the tagged form of `sha256sum --tag`:

    peerbeam-digest (movie.mkv) = 3a7b…
    SHA256 (movie.mkv) = e3b0…

(`sha256sum -c` accepts the second line as it is.)
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from .transfer import CHUNK_SIZE, chunk_digest, file_digest

EXIT_OK = 0
EXIT_UNREADABLE = 2


def digests_of(path: Path) -> tuple[bytes, bytes]:
    """(peerbeam digest, SHA-256) of a file, reading it once in chunk-sized blocks."""
    chunks: list[bytes] = []
    whole = hashlib.sha256()
    with open(path, "rb") as source:
        while block := source.read(CHUNK_SIZE):
            chunks.append(chunk_digest(block))
            whole.update(block)
    return file_digest(chunks), whole.digest()


def run(paths: Sequence[Path], out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Print both digests of every file; an unreadable one is reported and skipped."""
    status = EXIT_OK
    for path in paths:
        try:
            ours, plain = digests_of(path)
        except OSError as error:
            print(f"peerbeam: cannot read {path}: {error.strerror or error}", file=err)
            status = EXIT_UNREADABLE
            continue
        print(f"peerbeam-digest ({path}) = {ours.hex()}", file=out)
        print(f"SHA256 ({path}) = {plain.hex()}", file=out, flush=True)
    return status
