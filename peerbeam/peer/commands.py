"""`peerbeam send` and `peerbeam receive`: the terminal faces of the aiortc peer.

stdout carries only what a script wants (the link, first line, for `send`; the saved
paths for `receive`); everything for humans (QR code, progress, messages) goes to
stderr.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp

from ..private_files import write_private
from ..transfer import LinkError, make_link, new_link_key, parse_link
from ..transfer.messages import Manifest
from ..transfer.receiver_machine import NO_PATH, RELAY_FAILED
from . import api
from .progress import Progress, human_bytes
from .receiver import Receiver, TransferRefused
from .sender import Offer, ReceiverReport, Sender
from .signaling import SignalingClient, SignalingRefused
from .source import SourceFile
from .timing import TIMING_ERROR
from .wording import receiver_failed, terminal_safe

DEFAULT_SERVER = "http://127.0.0.1:8000"
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NO_PATH = 3  # never connected: no path between the networks, no working relay


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def use_uvloop() -> None:
    """uvloop roughly doubles aiortc's throughput (~36 MB/s against 8–21 MB/s on the default
    loop over loopback: docs/measurements.md)."""
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def run(coroutine: Any) -> int:
    if TIMING_ERROR:
        coroutine.close()
        say(f"peerbeam: {TIMING_ERROR}")
        return EXIT_USAGE
    use_uvloop()
    logging.basicConfig(level=os.environ.get("PEERBEAM_LOG", "WARNING"), stream=sys.stderr)
    return int(asyncio.run(coroutine))


def show_qr(link: str) -> None:
    import segno

    if sys.stderr.isatty():
        segno.make(link, error="m").terminal(out=sys.stderr, compact=True)


# -- send ------------------------------------------------------------------------


async def send(paths: list[Path], server: str | None, password: str | None, one_time: bool,
               expires: int | None, max_receivers: int | None, relay_only: bool = False,
               max_rate: float | None = None, connections: int | None = None) -> int:
    try:
        files = [SourceFile.open(path) for path in paths]
    except (OSError, ValueError) as error:
        say(f"peerbeam: cannot send: {error}")
        return EXIT_USAGE
    site = server or os.environ.get("PEERBEAM_SERVER") or DEFAULT_SERVER
    body: dict[str, Any] = {"one_time": one_time}
    if expires is not None:
        body["expires_in"] = expires
    if max_receivers is not None:
        body["max_receivers"] = max_receivers
    try:
        config = await api.discover(site)
        room = await api.create_room(config.api_url, body)
    except api.ApiError as error:
        say(f"peerbeam: the server refused: {error.message}")
        return EXIT_FAILED
    except (aiohttp.ClientError, OSError) as error:
        say(f"peerbeam: cannot reach {site}: {error}")
        return EXIT_FAILED
    key = new_link_key()
    link = make_link(config.site_url, room["room"], key, password is not None)
    print(link, flush=True)
    show_qr(link)
    offer = Offer(files, room["room"], key, password, max_rate)
    names = ", ".join(f"{f.path.name} ({human_bytes(f.size)})" for f in files)
    say(f"Offering {names}. Keep this running until the receivers are done; Ctrl-C stops.")

    progress: dict[str, Progress] = {}
    shown_path: dict[str, str] = {}

    def listener(report: ReceiverReport) -> None:
        bar = progress.get(report.peer)
        if report.state == "authenticating" and report.path and shown_path.get(report.peer) != report.path:
            shown_path[report.peer] = report.path
            say(f"Receiver {report.peer[:6]} connected: {report.path}")
        if report.state == "sending" and bar is None:
            bar = progress[report.peer] = Progress(f"→ {report.peer[:6]}", report.total_bytes)
            bar.resume_from(report.acked_bytes)
        if bar is not None:
            bar.update(report.acked_bytes)
        if report.state == "done":
            if bar is not None:
                bar.finish()
            over = f", {report.lanes} connections" if report.lanes > 1 else ""
            say(f"Receiver {report.peer[:6]} has everything ({report.path}{over}); "
                f"peerbeam digests: {' '.join(report.digests)}")
        elif report.state == "failed":
            say(f"Receiver {report.peer[:6]}: {receiver_failed(report.code, report.error)}")

    async def close_room() -> None:
        try:
            await asyncio.wait_for(api.close_room(config.api_url, room["room"], room["owner_token"]), 5)
        except (api.ApiError, aiohttp.ClientError, OSError, TimeoutError):
            pass  # the room expires by itself

    signaling = SignalingClient(room["ws_url"], room["room"], "sender", room["owner_token"])
    try:
        await signaling.connect()
    except (SignalingRefused, aiohttp.ClientError, OSError, TimeoutError) as error:
        say(f"peerbeam: cannot join the room on the signaling server: {error}")
        await close_room()
        return EXIT_FAILED
    sender = Sender(offer, signaling, listener, relay_only=relay_only, one_time=one_time,
                    connections=connections)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    serving = asyncio.create_task(sender.run())
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({serving, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    failure = serving.exception() if serving in done and not serving.cancelled() else None
    if serving not in done:
        sender.stop()  # tell every receiver, then close
        await asyncio.wait({serving}, timeout=0.5)
        serving.cancel()
        await asyncio.wait({serving}, timeout=1)
    await close_room()
    await asyncio.wait_for(signaling.close(), 2)
    if failure is None and (stop.is_set() or sender.finished.is_set()):
        return 0
    # The serving loop ended by itself: that is a bug, say so instead of exiting quietly.
    say(f"peerbeam: sending stopped unexpectedly ({failure!r})")
    return EXIT_FAILED


# -- receive ---------------------------------------------------------------------


def _membership_path(directory: Path, room: str) -> Path:
    return directory / ".peerbeam" / f"member-{room}.json"


def _load_membership(directory: Path, room: str) -> tuple[str | None, str | None]:
    """A re-run into the same directory comes back as the same receiver (one-time links)."""
    try:
        saved = json.loads(_membership_path(directory, room).read_text())
        return saved.get("peer"), saved.get("token")
    except (OSError, ValueError):
        return None, None


def _save_membership(directory: Path, room: str, peer: str, token: str) -> None:
    path = _membership_path(directory, room)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, json.dumps({"peer": peer, "token": token}).encode())


async def receive(link: str, directory: Path, password: str | None,
                  relay_only: bool = False, max_rate: float | None = None,
                  give_up_after: float | None = None) -> int:
    try:
        parsed = parse_link(link)
    except LinkError as error:
        say(f"peerbeam: {error}")
        return EXIT_USAGE
    try:
        config = await api.discover(parsed.base_url)
        await api.room_state(config.api_url, parsed.room)
    except api.ApiError as error:
        say(f"peerbeam: {error.message}")
        return EXIT_FAILED
    except (aiohttp.ClientError, OSError) as error:
        say(f"peerbeam: cannot reach {parsed.base_url}: {error}")
        return EXIT_FAILED
    directory.mkdir(parents=True, exist_ok=True)
    peer, token = _load_membership(directory, parsed.room)
    signaling = SignalingClient(config.ws_url, parsed.room, "receiver", token)
    signaling.peer_id = peer
    try:
        await signaling.connect()
    except SignalingRefused as refusal:
        if peer is None:
            say(f"peerbeam: {refusal}")
            return EXIT_FAILED
        # The saved membership is gone (room re-created?): join as a new receiver.
        signaling = SignalingClient(config.ws_url, parsed.room, "receiver")
        try:
            await signaling.connect()
        except SignalingRefused as second:
            say(f"peerbeam: {second}")
            return EXIT_FAILED
    assert signaling.peer_id is not None
    _save_membership(directory, parsed.room, signaling.peer_id, signaling.token)

    bar: Progress | None = None

    def on_manifest(manifest: Manifest) -> None:
        total = sum(f.size for f in manifest.files)
        say(f"Receiving {len(manifest.files)} file(s), {human_bytes(total)}:")
        for entry in manifest.files:
            say(f"  {terminal_safe(entry.name)}  {human_bytes(entry.size)}")

    def on_progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = Progress("←", total)
            bar.resume_from(done)
        bar.update(done)

    def on_connected(path: str) -> None:
        say(f"Connected to the sender: {path}")

    receiver = Receiver(signaling, parsed.room, parsed.key, directory, password,
                        on_manifest=on_manifest, on_progress=on_progress, relay_only=relay_only,
                        max_rate=max_rate, rejoined=signaling.peer_id == peer,
                        expect_password=parsed.password, on_connected=on_connected,
                        give_up_after=give_up_after)
    try:
        result = await receiver.run()
    except TransferRefused as refusal:
        say(f"peerbeam: {refusal}")
        return EXIT_NO_PATH if refusal.code in (NO_PATH, RELAY_FAILED) else EXIT_FAILED
    finally:
        await signaling.close()
    if bar is not None:
        bar.finish()
    membership = _membership_path(directory, parsed.room)
    membership.unlink(missing_ok=True)
    try:
        membership.parent.rmdir()  # only when nothing else of ours is left there
    except OSError:
        pass
    say(f"{human_bytes(result.bytes_transferred)} came over the network in this run "
        f"({result.bytes_transferred} bytes), {receiver.path}")
    if result.accept_to_first_byte is not None:
        say(f"first byte {result.accept_to_first_byte:.3f} s after accepting")
    for path, digest in zip(result.files, result.digests, strict=True):
        print(path, flush=True)
        say(f"verified {terminal_safe(path.name)}  peerbeam digest {digest}"
            " (check a copy: peerbeam digest FILE)")
    return 0
