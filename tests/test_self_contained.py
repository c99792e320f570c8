"""The product stands alone: its code and docs cite only files in this repository."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

from tests.fixtures.servers import REPO

# A design note or a shared folder outside the repository (spelled so that this file
# does not match itself).
OUTSIDE = re.compile(r"DESIGN" r"\.md|\.\./shared\b")
# `docs/<name>.md` or `docs/<name>.json` named anywhere: code comments, docstrings, docs.
DOC_PATH = re.compile(r"(?<![\w/.-])docs/[\w./-]+\.(?:md|json)")
# A relative Markdown link: [text](target) without a scheme or a bare #anchor.
MARKDOWN_LINK = re.compile(r"\]\((?![a-z][a-z0-9+.-]*:|#)([^)\s#]+)")


def text_files() -> Iterator[tuple[str, str]]:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, check=True, capture_output=True,
    ).stdout.decode().split("\0")
    for name in filter(None, listed):
        path = REPO / name
        if name.endswith("package-lock.json") or path.is_symlink() or not path.is_file():
            continue
        try:
            yield name, path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # images and other binary files


def test_nothing_cites_files_outside_the_repository() -> None:
    found = [
        f"{name}:{text.count(chr(10), 0, match.start()) + 1}: {match.group()}"
        for name, text in text_files()
        for match in OUTSIDE.finditer(text)
    ]
    assert not found, "cite a file in this repository instead:\n" + "\n".join(found)


def test_cited_docs_and_markdown_links_exist() -> None:
    missing: list[str] = []
    for name, text in text_files():
        for match in DOC_PATH.finditer(text):
            if not (REPO / match.group()).exists():
                missing.append(f"{name}: {match.group()}")
        if name.endswith(".md"):
            for match in MARKDOWN_LINK.finditer(text):
                target = (REPO / Path(name).parent / match.group(1)).resolve()
                if not target.exists():
                    missing.append(f"{name}: ({match.group(1)})")
    assert not missing, "no such file:\n" + "\n".join(missing)
