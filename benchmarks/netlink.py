"""An emulated wide-area link between network namespaces, for benchmarks (needs root).

Wraps the netem-lite tool (`netns-link`: veth + bridge + an NFQUEUE delay/loss/rate
emulator, since this kernel has no netem). Its location: $NETEM_LITE, else the shared
tools directory beside the repository. Namespaces: ``{prefix}A`` (sender, SUBNET.1),
``{prefix}B`` (receiver, SUBNET.2), ``{prefix}S`` (signaling server, SUBNET.3); only A↔B
traffic is delayed, nothing can leave the machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
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

    def command(self, namespace: str, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", namespace, *argv]


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
