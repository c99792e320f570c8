"""What the signaling server (honest or not) learns and can do."""

from __future__ import annotations

import base64
import sqlite3
from pathlib import Path

from peerbeam.transfer import parse_link
from tests.fixtures.cli import SendProcess, random_file, receive
from tests.fixtures.proxy import SignalingProxy
from tests.fixtures.servers import LocalServer


def test_a_man_in_the_middle_is_detected(local_server: LocalServer, tmp_path: Path) -> None:
    proxy = SignalingProxy(local_server.base, local_server.ws, splice=True)
    proxy.start()
    source = random_file(tmp_path / "target.bin", 500_000)
    sender = SendProcess(proxy.base, [source])
    try:
        result = receive(sender.link, tmp_path / "out", timeout=90)
        assert proxy.spliced >= 1, "the attack never ran"
        assert result.returncode != 0
        assert "refused this link" in result.stderr or "tampered" in result.stderr
        assert not (tmp_path / "out" / "target.bin").exists()
        sender.wait_for_log("could not prove it has the link")
    finally:
        sender.stop()
        proxy.stop()


def test_the_server_never_sees_key_password_names_or_bytes(
    local_server: LocalServer, tmp_path: Path
) -> None:
    proxy = SignalingProxy(local_server.base, local_server.ws)
    proxy.start()
    name = "quarterly-results-CONFIDENTIAL.xlsx"
    password = "hunter2-but-longer"
    source = random_file(tmp_path / name, 3_000_000, seed=11)
    sender = SendProcess(proxy.base, [source], "--password", password)
    try:
        result = receive(sender.link, tmp_path / "out", "--password", password)
        assert result.returncode == 0, result.stderr
    finally:
        sender.stop()
        proxy.stop()
    key = parse_link(sender.link).key
    content = source.read_bytes()
    secrets = {
        "link key (base64url)": base64.urlsafe_b64encode(key).rstrip(b"=").decode(),
        "link key (hex)": key.hex(),
        "password": password,
        "file name": name,
        "file name stem": "CONFIDENTIAL",
    }
    samples = [content[i : i + 24] for i in range(0, len(content), 250_000)]
    seen_by_server = "\n".join(proxy.recorded)
    assert "peer-joined" in seen_by_server and "offer" in seen_by_server  # it saw the signaling
    database = b"".join(p.read_bytes() for p in (local_server.data_dir).glob("rooms.sqlite3*"))
    with sqlite3.connect(local_server.data_dir / "rooms.sqlite3") as db:
        dump = "\n".join(db.iterdump())
    for where, text in (("relayed", seen_by_server), ("log", local_server.log()), ("store", dump)):
        for what, secret in secrets.items():
            assert secret not in text, f"{what} appears in the server's {where}"
    for sample in samples:
        assert sample not in seen_by_server.encode("utf-8", "surrogateescape")
        assert sample not in database
        assert base64.b64encode(sample).decode()[:24] not in seen_by_server
