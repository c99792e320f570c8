"""`peerbeam serve`, `peerbeam send` and `peerbeam receive` as real processes on loopback."""

from __future__ import annotations

import hashlib
import signal
import time
from pathlib import Path

from tests.fixtures.cli import (
    SendProcess,
    network_bytes,
    random_file,
    receive,
    start_receive,
)
from tests.fixtures.servers import LocalServer

MiB = 1024 * 1024


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(MiB):
            digest.update(block)
    return digest.hexdigest()


def assert_same(sources: list[Path], out: Path) -> None:
    for source in sources:
        received = out / source.name
        assert received.is_file(), sorted(p.name for p in out.iterdir())
        assert received.stat().st_size == source.stat().st_size
        assert sha256(received) == sha256(source)
    assert not list(out.glob("*.peerbeam-part"))
    assert not (out / ".peerbeam").exists()


def delivered(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) if out.exists() else []


def test_files_of_several_sizes_in_one_link(local_server: LocalServer, tmp_path: Path) -> None:
    sources = [
        random_file(tmp_path / "empty.txt", 0),
        random_file(tmp_path / "one-byte.bin", 1, seed=1),
        random_file(tmp_path / "odd size.dat", 3 * MiB + 12345, seed=2),
        random_file(tmp_path / "exact.bin", 2 * MiB, seed=3),
    ]
    sender = SendProcess(local_server.base, sources)
    try:
        result = receive(sender.link, tmp_path / "out")
        assert result.returncode == 0, result.stderr
        assert_same(sources, tmp_path / "out")
        assert "odd size.dat" in result.stderr  # names and sizes shown
        assert "Connected to the sender: direct, on the local network" in result.stderr
        sender.wait_for_log("connected: direct, on the local network")
        assert sorted(Path(line).name for line in result.stdout.split()) or result.stdout
    finally:
        sender.stop()


def test_large_file_arrives_identical(local_server: LocalServer, tmp_path: Path) -> None:
    source = random_file(tmp_path / "large.bin", 64 * MiB + 777, seed=4)
    sender = SendProcess(local_server.base, [source])
    try:
        result = receive(sender.link, tmp_path / "out", timeout=240)
        assert result.returncode == 0, result.stderr
        assert_same([source], tmp_path / "out")
    finally:
        sender.stop()


def test_tampered_key_is_refused(local_server: LocalServer, tmp_path: Path) -> None:
    source = random_file(tmp_path / "secret.bin", 100_000)
    sender = SendProcess(local_server.base, [source])
    try:
        base, _, key = sender.link.rpartition(".")
        tampered = base + "." + ("A" if key[0] != "A" else "B") + key[1:]
        result = receive(tampered, tmp_path / "out", timeout=60)
        assert result.returncode != 0
        assert "refused this link" in result.stderr
        assert delivered(tmp_path / "out") == []
        cut = receive(sender.link[:-3], tmp_path / "out2", timeout=30)
        assert cut.returncode == 2 and "cut off" in cut.stderr
    finally:
        sender.stop()


def test_password(local_server: LocalServer, tmp_path: Path) -> None:
    source = random_file(tmp_path / "pw.bin", 200_000)
    sender = SendProcess(local_server.base, [source], "--password", "correct horse")
    try:
        assert sender.link.endswith(".p")  # the link says a password is set
        wrong = receive(sender.link, tmp_path / "wrong", "--password", "battery staple")
        assert wrong.returncode != 0 and "Wrong password" in wrong.stderr
        missing = receive(sender.link, tmp_path / "missing")
        assert missing.returncode != 0 and "needs a password" in missing.stderr
        assert delivered(tmp_path / "wrong") == delivered(tmp_path / "missing") == []
        right = receive(sender.link, tmp_path / "right", "--password", "correct horse")
        assert right.returncode == 0, right.stderr
        assert_same([source], tmp_path / "right")
    finally:
        sender.stop()


def test_a_sender_that_asks_no_password_is_refused_when_one_is_expected(
    local_server: LocalServer, tmp_path: Path
) -> None:
    """Whoever holds the link but not the password could play the sender, ask for no
    password and pass with the link key alone: `--password`, and a link that says a
    password is set (`.p`), refuse it."""
    source = random_file(tmp_path / "bait.bin", 50_000)
    sender = SendProcess(local_server.base, [source])  # no password
    try:
        assert not sender.link.endswith(".p")
        given = receive(sender.link, tmp_path / "given", "--password", "hunter2")
        flagged = receive(sender.link + ".p", tmp_path / "flagged")
        for result in (given, flagged):
            assert result.returncode == 1, result.stderr
            assert "did not ask for one" in result.stderr
        assert delivered(tmp_path / "given") == delivered(tmp_path / "flagged") == []
    finally:
        sender.stop()


def test_one_time_link_serves_one_receiver(local_server: LocalServer, tmp_path: Path) -> None:
    source = random_file(tmp_path / "once.bin", 300_000)
    sender = SendProcess(local_server.base, [source], "--one-time")
    try:
        first = receive(sender.link, tmp_path / "first")
        assert first.returncode == 0, first.stderr
        assert_same([source], tmp_path / "first")
        second = receive(sender.link, tmp_path / "second", timeout=60)
        assert second.returncode != 0
        assert any(text in second.stderr for text in ("already been used", "unknown or has expired"))
        assert delivered(tmp_path / "second") == []
        assert sender.process.wait(20) == 0  # a one-time sender is done after its receiver
    finally:
        sender.stop()


def test_expired_room_is_refused(tmp_path: Path) -> None:
    server = LocalServer(tmp_path / "srv", env={"PEERBEAM_MIN_EXPIRES_IN": "1"})
    server.start()
    source = random_file(tmp_path / "late.bin", 1000)
    sender = SendProcess(server.base, [source], "--expires", "1")
    try:
        time.sleep(2.2)
        late = receive(sender.link, tmp_path / "out", timeout=30)
        assert late.returncode != 0 and "unknown or has expired" in late.stderr
        assert delivered(tmp_path / "out") == []
    finally:
        sender.stop()
        server.stop()


def test_two_receivers_at_once(local_server: LocalServer, tmp_path: Path) -> None:
    source = random_file(tmp_path / "shared.bin", 12 * MiB + 5, seed=6)
    sender = SendProcess(local_server.base, [source])
    try:
        first = start_receive(sender.link, tmp_path / "a")
        second = start_receive(sender.link, tmp_path / "b")
        for process in (first, second):
            _, stderr = process.communicate(timeout=180)
            assert process.returncode == 0, stderr
        assert_same([source], tmp_path / "a")
        assert_same([source], tmp_path / "b")
        assert sender.log().count("has everything") == 2
    finally:
        sender.stop()


def test_corrupted_chunk_is_detected_and_resent(local_server: LocalServer, tmp_path: Path) -> None:
    source = random_file(tmp_path / "flaky.bin", 5 * MiB, seed=7)
    sender = SendProcess(local_server.base, [source], env={"PEERBEAM_FAULTS": "corrupt=0:2"})
    try:
        result = receive(sender.link, tmp_path / "out")
        assert result.returncode == 0, result.stderr
        assert_same([source], tmp_path / "out")
        assert "corrupting file 0 chunk 2" in sender.log()
        assert network_bytes(result.stderr) > 5 * MiB  # detected, and sent again
    finally:
        sender.stop()


def test_receiver_killed_midway_resumes_with_the_remainder(
    local_server: LocalServer, tmp_path: Path
) -> None:
    size = 48 * MiB
    source = random_file(tmp_path / "resume.bin", size, seed=8)
    sender = SendProcess(local_server.base, [source])
    out = tmp_path / "out"
    try:
        first = start_receive(sender.link, out)
        part = out / "resume.bin.peerbeam-part"
        deadline = time.monotonic() + 120
        # With several connections chunks land out of order: the part file's size runs up
        # to a window (16 chunks) ahead of the run from chunk 0 that resume keeps, so wait
        # for 32 MiB to be sure that at least 16 MiB are held.
        while not (part.exists() and part.stat().st_size >= 32 * MiB):
            assert time.monotonic() < deadline and first.poll() is None, first.stderr
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait()
        held = part.stat().st_size
        second = receive(sender.link, out, timeout=180)
        assert second.returncode == 0, second.stderr
        assert_same([source], out)
        transferred = network_bytes(second.stderr)
        assert transferred < size - 12 * MiB, (held, transferred)
        assert transferred >= size - held
    finally:
        sender.stop()


def test_dropped_connection_resumes_by_itself(local_server: LocalServer, tmp_path: Path) -> None:
    size = 24 * MiB
    source = random_file(tmp_path / "drop.bin", size, seed=9)
    sender = SendProcess(local_server.base, [source])
    try:
        result = receive(sender.link, tmp_path / "out", env={"PEERBEAM_FAULTS": f"drop={8 * MiB}"})
        assert result.returncode == 0, result.stderr
        assert_same([source], tmp_path / "out")
        # Resumed, not restarted: at most the unacknowledged window came twice.
        assert network_bytes(result.stderr) < size + 20 * MiB
    finally:
        sender.stop()


def test_odd_file_name_is_saved_inside_the_directory(
    local_server: LocalServer, tmp_path: Path
) -> None:
    source = random_file(tmp_path / "we?ird*name:.txt", 10)
    sender = SendProcess(local_server.base, [source])
    try:
        result = receive(sender.link, tmp_path / "out")
        assert result.returncode == 0, result.stderr
        saved = list((tmp_path / "out").iterdir())
        assert len(saved) == 1 and saved[0].parent == tmp_path / "out"
        assert saved[0].read_bytes() == source.read_bytes()
    finally:
        sender.stop()


def test_the_most_files_a_link_may_carry_under_a_low_descriptor_limit(
    local_server: LocalServer, tmp_path: Path
) -> None:
    """MAX_FILES small files to a receiver allowed 256 open files: files are opened one at
    a time, and every message that lists them all fits one text frame."""
    import resource
    import subprocess

    from peerbeam.transfer.constants import MAX_FILES
    from tests.fixtures.cli import PEERBEAM
    from tests.fixtures.servers import REPO

    folder = tmp_path / "many"
    folder.mkdir()
    sources = [random_file(folder / f"part {index:03}.txt", index % 7, seed=index)
               for index in range(MAX_FILES)]
    sender = SendProcess(local_server.base, sources)

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    try:
        result = subprocess.run([*PEERBEAM, "receive", sender.link, "-o", str(tmp_path / "out")], cwd=REPO,
                                capture_output=True, text=True, timeout=240, preexec_fn=low_limit)
        assert result.returncode == 0, result.stderr[-3000:]
        assert_same(sources, tmp_path / "out")
    finally:
        sender.stop()


def test_receiver_gives_up_when_the_sender_never_comes_back(
    local_server: LocalServer, tmp_path: Path
) -> None:
    """A transfer that had progress keeps asking for a connection for --give-up-after
    seconds since its last progress, then stops with a clear message, keeping its part."""
    source = random_file(tmp_path / "abandoned.bin", 8 * MiB, seed=12)
    sender = SendProcess(local_server.base, [source], "--max-rate", "1M")
    fast = {"PEERBEAM_TIMING": "ping_after=0.5,dead_after=2"}
    try:
        receiver = start_receive(sender.link, tmp_path / "out", "--give-up-after", "4", env=fast)
        part = tmp_path / "out" / "abandoned.bin.peerbeam-part"
        deadline = time.monotonic() + 60
        while not (part.exists() and part.stat().st_size >= MiB):
            assert time.monotonic() < deadline and receiver.poll() is None
            time.sleep(0.05)
        sender.process.send_signal(signal.SIGKILL)  # gone without closing the room
        vanished = time.monotonic()
        _, stderr = receiver.communicate(timeout=60)
        waited = time.monotonic() - vanished
        assert receiver.returncode == 1, stderr
        assert "did not come back in time" in stderr
        assert 4 <= waited < 20, waited  # silence (2 s) + give-up-after (4 s), then it stops
        assert part.exists()  # kept for a later resume
    finally:
        sender.stop()


def test_several_connections_carry_one_transfer_and_survive_losing_one(
    local_server: LocalServer, tmp_path: Path
) -> None:
    """Protocol v1.1: three connections (lanes) between the same two peers share the
    chunks; one of them is closed mid-transfer as a network failure would, and the
    transfer goes on, re-sending at most the chunks in flight."""
    size = 40 * MiB + 9
    source = random_file(tmp_path / "lanes.bin", size, seed=13)
    sender = SendProcess(local_server.base, [source], "--connections", "3", "--max-rate", "12M")
    try:
        result = receive(sender.link, tmp_path / "out", timeout=180,
                         env={"PEERBEAM_FAULTS": f"drop_lane={16 * MiB}", "PEERBEAM_LOG": "INFO"})
        assert result.returncode == 0, result.stderr
        assert_same([source], tmp_path / "out")
        sender.wait_for_log("has everything")
        assert "3 connections" in sender.log(), sender.log()  # the lanes of one session
        assert "connection lost" not in result.stderr  # the first connection never dropped
        assert network_bytes(result.stderr) < size + 6 * MiB  # a lane's window, not the transfer's
    finally:
        sender.stop()
