"""`peerbeam digest FILE...` as a real process: the peerbeam digest (docs/protocol.md 8.5)
and the plain SHA-256, which `sha256sum -c` accepts as printed."""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

from tests.fixtures.cli import PEERBEAM, random_file
from tests.fixtures.servers import REPO

MiB = 1024 * 1024
LINE = re.compile(r"^(peerbeam-digest|SHA256) \((.*)\) = ([0-9a-f]{64})$")


def digest(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PEERBEAM, "digest", *map(str, paths)], cwd=REPO,
                          capture_output=True, text=True, timeout=60)


def by_file(stdout: str) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for line in stdout.splitlines():
        match = LINE.match(line)
        assert match, f"unexpected line {line!r}"
        out.setdefault(match[2], {})[match[1]] = match[3]
    return out


def chunk_tree(data: bytes) -> str:
    """SHA-256 over the 32-byte SHA-256 of every 1 MiB chunk, written out independently."""
    tree = hashlib.sha256()
    for at in range(0, len(data), MiB):
        tree.update(hashlib.sha256(data[at : at + MiB]).digest())
    return tree.hexdigest()


def test_both_digests_of_files_of_every_shape(tmp_path: Path) -> None:
    files = [
        random_file(tmp_path / "empty", 0),
        random_file(tmp_path / "one byte", 1, seed=1),
        random_file(tmp_path / "one chunk", MiB, seed=2),
        random_file(tmp_path / "two chunks and 3", 2 * MiB + 3, seed=3),
    ]
    result = digest(*files)
    assert result.returncode == 0, result.stderr
    shown = by_file(result.stdout)
    for path in files:
        data = path.read_bytes()
        assert shown[str(path)] == {"peerbeam-digest": chunk_tree(data),
                                    "SHA256": hashlib.sha256(data).hexdigest()}
    # Not the same thing: only the empty file has equal digests (SHA-256 of nothing).
    assert shown[str(files[0])]["peerbeam-digest"].startswith("e3b0c442")
    assert shown[str(files[3])]["peerbeam-digest"] != shown[str(files[3])]["SHA256"]
    # The SHA256 lines are what `sha256sum --tag` prints: `sha256sum -c` checks them.
    tagged = "".join(f"{line}\n" for line in result.stdout.splitlines() if line.startswith("SHA256 "))
    check = subprocess.run(["sha256sum", "--strict", "-c"], input=tagged, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.count(": OK") == len(files)


def test_an_unreadable_file_is_reported_and_the_others_still_printed(tmp_path: Path) -> None:
    present = random_file(tmp_path / "present.bin", 1000, seed=4)
    result = digest(tmp_path / "missing.bin", present)
    assert result.returncode == 2
    missing = tmp_path / "missing.bin"
    assert result.stderr.strip() == f"peerbeam: cannot read {missing}: No such file or directory"
    assert list(by_file(result.stdout)) == [str(present)]
