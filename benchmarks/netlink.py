"""An emulated wide-area link between network namespaces, for benchmarks (needs root).

Wraps the netem-lite tool (`netns-link`: veth + bridge + an NFQUEUE delay/loss/rate
emulator, since this kernel has no netem). Its location: $NETEM_LITE, else the shared
tools directory beside the repository. Namespaces: ``{prefix}A`` (sender, SUBNET.1),
``{prefix}B`` (receiver, SUBNET.2), ``{prefix}S`` (signaling server, SUBNET.3); only A↔B
traffic is delayed, nothing can leave the machine.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from benchmarks.procs import REPO

NETEM_LITE = Path(os.environ.get("NETEM_LITE", REPO.parent / "shared" / "tools" / "netem-lite"))


def unavailable() -> str | None:
    """Why the emulated link cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    if not (NETEM_LITE / "netns-link").exists():
        return f"netem-lite not found at {NETEM_LITE} (set NETEM_LITE)"
    for tool in ("iptables-legacy", "cc", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} is missing (apt-get install iptables gcc iproute2)"
    return None


@dataclass(frozen=True)
class Link:
    prefix: str
    subnet: str

    @property
    def sender_ns(self) -> str:
        return f"{self.prefix}A"

    @property
    def receiver_ns(self) -> str:
        return f"{self.prefix}B"

    @property
    def server_ns(self) -> str:
        return f"{self.prefix}S"

    @property
    def server_ip(self) -> str:
        return f"{self.subnet}.3"

    @property
    def sender_ip(self) -> str:
        return f"{self.subnet}.1"

    @property
    def receiver_ip(self) -> str:
        return f"{self.subnet}.2"

    def command(self, namespace: str, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", namespace, *argv]

    def emulator_stats(self) -> dict[str, dict[str, object]]:
        """Counters of the two emulator processes ("AtoB", "BtoA"): packets and bytes seen,
        random drops...; empty without emulation (0 ms, no loss). netem-lite's nfq-delay
        rewrites its stats file on SIGUSR1."""
        state = Path(f"/tmp/netem-lite-state-{self.prefix}")
        out: dict[str, dict[str, object]] = {}
        for direction in ("AtoB", "BtoA"):
            try:
                pid = int((state / f"{direction}.pid").read_text())
                stats = state / f"{direction}.json"
                before = stats.stat().st_mtime_ns if stats.exists() else 0
                os.kill(pid, signal.SIGUSR1)
                for _ in range(40):
                    time.sleep(0.025)
                    if stats.exists() and stats.stat().st_mtime_ns != before:
                        break
                out[direction] = json.loads(stats.read_text())
            except (OSError, ValueError):
                continue
        return out

    def udp_receive_buffers(self, namespace: str) -> list[int]:
        """The receive-buffer size of each UDP socket on the link's subnet in a namespace."""
        text = subprocess.run(self.command(namespace, "ss", "-uamn"), capture_output=True, text=True).stdout
        return receive_buffers(text, self.subnet)

    def udp_counters(self, namespace: str) -> dict[str, int]:
        """The namespace's UDP counters (/proc/net/snmp): InDatagrams, RcvbufErrors (datagrams
        a full socket receive buffer dropped), SndbufErrors..."""
        text = subprocess.run(self.command(namespace, "cat", "/proc/net/snmp"),
                              capture_output=True, text=True).stdout
        rows = [line.split() for line in text.splitlines() if line.startswith("Udp:")]
        if len(rows) < 2:
            return {}
        return dict(zip(rows[0][1:], map(int, rows[1][1:]), strict=False))


def receive_buffers(ss_output: str, subnet: str) -> list[int]:
    """From ``ss -uamn``: the receive-buffer size (``rb``, bytes, as the kernel holds it: twice
    what SO_RCVBUF asked) of each UDP socket whose local address is in `subnet`."""
    sizes, on_link = [], False
    for line in ss_output.splitlines():
        if not line[:1].isspace():  # a socket's line; its memory follows on the next one
            fields = line.split()
            on_link = len(fields) > 3 and fields[3].startswith(f"{subnet}.")
        elif on_link and (size := re.search(r"\brb(\d+)", line)):
            sizes.append(int(size.group(1)))
    return sizes


@contextmanager
def emulated_link(rtt_ms: float = 0, loss_pct: float = 0, rate_mbit: float = 0,
                  prefix: str = "pb", subnet: str = "198.18.77") -> Iterator[Link]:
    script = str(NETEM_LITE / "netns-link")
    options = ["--rtt-ms", str(rtt_ms), "--loss", str(loss_pct), "--rate", str(rate_mbit),
               "--prefix", prefix, "--subnet", subnet]
    subprocess.run([script, "up", *options], check=True, capture_output=True, text=True)
    try:
        yield Link(prefix, subnet)
    finally:
        subprocess.run([script, "down", "--prefix", prefix], capture_output=True, text=True)
