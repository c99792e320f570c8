"""Secrets on disk (a TLS key, a receiver's signaling token): private from the first byte.

Writing a file and then chmod-ing it leaves a moment in which anyone on the machine may
open it (and keep the descriptor). These files are created with mode 0600 and exclusive
creation under a temporary name, then renamed into place.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def write_private(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(temporary, 0o600)  # whatever the umask took away, never more than this
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
