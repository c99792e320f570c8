"""Secrets are private from their first byte: created 0600 under a temporary name and
renamed into place, never written world-readable and chmod-ed afterwards."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from peerbeam.peer.commands import _save_membership
from peerbeam.server.tls import ensure_certificate


@pytest.fixture
def modes_before_rename(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """The mode each file had at the moment it was renamed into place, by final name."""
    seen: dict[str, int] = {}
    real_replace: Callable[..., None] = os.replace

    def replace(source: str | Path, target: str | Path) -> None:
        seen[Path(target).name] = stat.S_IMODE(os.stat(source).st_mode)
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)
    old = os.umask(0)  # the most permissive umask: nothing may rely on it
    try:
        yield seen
    finally:
        os.umask(old)


def test_tls_key_is_private_from_the_start(tmp_path: Path, modes_before_rename: dict[str, int]) -> None:
    _, key_path = ensure_certificate(tmp_path, ["localhost", "127.0.0.1"])
    assert modes_before_rename[key_path.name] == 0o600
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600


def test_receiver_token_is_private_from_the_start(
    tmp_path: Path, modes_before_rename: dict[str, int]
) -> None:
    _save_membership(tmp_path, "room1", "peer-id", "secret-token")
    saved = tmp_path / ".peerbeam" / "member-room1.json"
    assert modes_before_rename[saved.name] == 0o600
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert not [p for p in saved.parent.iterdir() if p.name.endswith(".tmp")]
