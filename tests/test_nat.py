"""Real NAT routers (network namespaces, tests/fixtures/nat.py): plain `peerbeam send` and
`peerbeam receive`, nothing forced, find the path that exists.

The relay is the one `make deploy TURN=1` runs: Debian's coturn with the configuration the
instance's cloud-init writes (tests/fixtures/relay.py renders it and runs its script), so
its quotas and denied peer ranges are in force here too.

Needs root for the namespaces; CI runs as root.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from peerbeam.deploy.turn import ensure_secret, secret_parameter
from tests.fixtures.cli import SendProcess, random_file, receive
from tests.fixtures.nat import (
    ENDPOINT_INDEPENDENT,
    NO_UDP,
    PUBLIC_IP,
    SYMMETRIC,
    TURN_PORT,
    WEB_ONLY,
    Internet,
    Site,
    internet,
    missing_tools,
)
from tests.fixtures.relay import (
    install,
    moto_ssm,
    render_cloud_init,
    tls_certificate,
    write_coturn_config,
)
from tests.fixtures.turn import wait_for_relayed, wait_until_all_closed

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="NAT tests build network namespaces, which needs root (CI runs as root)"
)

SIZE = 2 * 1024 * 1024 + 17
# What the deploy hands out with a TLS certificate configured (the certificate names the
# relay's address here, a domain name in production).
TURN_URLS = (f"turn:{PUBLIC_IP}:{TURN_PORT}?transport=udp,turn:{PUBLIC_IP}:{TURN_PORT}"
             f"?transport=tcp,turns:{PUBLIC_IP}:443?transport=tcp")
TLS_PARAMETER = "/peerbeam/prod/turn-tls"


@dataclass(frozen=True)
class DeployedRelay:
    config: Path  # what peerbeam-turn-config wrote for coturn
    secret: str  # what `peerbeam deploy` put into SSM
    certificate_authority: Path  # the peers trust the relay's TLS certificate through it

    @property
    def peer_env(self) -> dict[str, str]:
        # The peers inside the namespaces gather their real (namespace) addresses.
        return {"PEERBEAM_ICE_LOOPBACK": "0", "PEERBEAM_TURN_PROBE_TIMEOUT": "1.5",
                "SSL_CERT_FILE": str(self.certificate_authority)}


@pytest.fixture(scope="module")
def deployed_relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeployedRelay]:
    """The relay instance's configuration, made as on first boot (SSM: a moto server),
    with a TLS certificate configured."""
    root = tmp_path_factory.mktemp("relay-instance")
    chain_and_key, authority = tls_certificate(PUBLIC_IP)
    (root / "ca.pem").write_text(authority)
    with moto_ssm() as endpoint:
        ssm = boto3.client("ssm", region_name="us-east-1", endpoint_url=endpoint)
        name = secret_parameter("prod")
        assert ensure_secret(ssm, name)  # what `peerbeam deploy` does
        secret = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
        ssm.put_parameter(Name=TLS_PARAMETER, Value=chain_and_key, Type="SecureString",
                          Tier="Advanced")  # what the operator does for TLS
        files = install(render_cloud_init("prod", PUBLIC_IP, TLS_PARAMETER), root)
        result = write_coturn_config(files, root / "turnserver.conf", endpoint)
        assert result.returncode == 0, result.stderr
    yield DeployedRelay(root / "turnserver.conf", secret, root / "ca.pem")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[Internet]:
    problems = missing_tools()
    assert not problems, f"missing {', '.join(problems)}: run `make system-deps`"
    with internet(tmp_path / "net") as net:
        yield net


def serve(world: Internet, relay: DeployedRelay, offer_turn: bool = True) -> str:
    """The deployed coturn and `peerbeam serve` with the environment the deploy gives the
    functions: the relay's STUN, and its TURN URLs (UDP, then TCP) unless ``offer_turn`` is
    False."""
    env = {"PEERBEAM_STUN_URLS": f"stun:{PUBLIC_IP}:{TURN_PORT}"}
    if offer_turn:
        env |= {"PEERBEAM_TURN_URLS": TURN_URLS, "PEERBEAM_TURN_SECRET": relay.secret}
    world.start_coturn(relay.config, tls=True)
    return world.start_signaling(env)


def transfer(world: Internet, relay: DeployedRelay, sender_site: Site, receiver_site: Site,
             tmp_path: Path, *args: str, path: str | None = None) -> Path:
    """`send` in one site, `receive` in the other; the received file, verified. `path`:
    what both sides must tell their user about the path the data took."""
    source = random_file(tmp_path / "across.bin", SIZE, seed=5)
    sender = SendProcess(serve(world, relay), [source], *args, env=relay.peer_env,
                         prefix=sender_site.host.prefix)
    try:
        result = receive(sender.link, tmp_path / "out", *args, timeout=90, env=relay.peer_env,
                         prefix=receiver_site.host.prefix)
        assert result.returncode == 0, (
            f"receiver:\n{result.stderr}\nsender:\n{sender.log()}\ncoturn:\n"
            f"{world.log('coturn')[-3000:]}"
        )
        if path is not None:
            assert f"Connected to the sender: {path}" in result.stderr, result.stderr
            sender.wait_for_log(f"connected: {path}")
    finally:
        sender.stop()
    received = tmp_path / "out" / "across.bin"
    assert hashlib.sha256(received.read_bytes()).digest() == hashlib.sha256(
        source.read_bytes()).digest()
    return received


def test_symmetric_nats_relay_through_turn(world: Internet, deployed_relay: DeployedRelay,
                                           tmp_path: Path) -> None:
    a, b = world.add_site(SYMMETRIC), world.add_site(SYMMETRIC)
    transfer(world, deployed_relay, a, b, tmp_path, path="relayed through a TURN server")
    carried = wait_for_relayed(lambda: world.log("coturn"), SIZE,
                               until=lambda carried: all(s.closed for s in carried))
    assert {s.transport for s in carried} == {"udp"}  # UDP works: TURN/UDP was chosen
    # The peers' private addresses (host candidates) are refused as relay destinations.
    assert "error 403: Forbidden IP" in world.log("coturn")


def test_udp_blocked_relays_over_turn_tcp(world: Internet, deployed_relay: DeployedRelay,
                                          tmp_path: Path) -> None:
    """One side's firewall drops all UDP; TCP to the TURN server still goes out."""
    a = world.add_site(SYMMETRIC, firewall=NO_UDP)
    b = world.add_site(SYMMETRIC)
    transfer(world, deployed_relay, a, b, tmp_path)
    # The sender's firewall lets no UDP out: the file left it through TURN over TCP.
    wait_for_relayed(lambda: world.log("coturn"), SIZE, until=lambda carried: any(
        s.transport == "tcp" and s.usage("rb") >= SIZE for s in carried))


def test_web_only_firewall_relays_over_turn_tls(world: Internet, deployed_relay: DeployedRelay,
                                               tmp_path: Path) -> None:
    """One side lets nothing out but TCP to 443: TURN over TLS, the last URL, works."""
    a = world.add_site(SYMMETRIC)
    b = world.add_site(SYMMETRIC, firewall=WEB_ONLY)
    transfer(world, deployed_relay, a, b, tmp_path)
    # The file reached the receiver through its TLS connection to the relay.
    wait_for_relayed(lambda: world.log("coturn"), SIZE, until=lambda carried: any(
        s.transport == "tls" and s.usage("sb") >= SIZE for s in carried))


def test_endpoint_independent_nats_connect_directly(
        world: Internet, deployed_relay: DeployedRelay, tmp_path: Path) -> None:
    a, b = world.add_site(ENDPOINT_INDEPENDENT), world.add_site(ENDPOINT_INDEPENDENT)
    transfer(world, deployed_relay, a, b, tmp_path, path="direct, over the internet")
    allocations = wait_until_all_closed(lambda: world.log("coturn"))
    assert len(allocations) >= 2  # the relay was there for both peers ...
    relayed = max(max(s.usage("rb"), s.usage("sb")) for s in allocations)
    assert relayed < SIZE // 4, f"{relayed} bytes went through the relay"  # ... and unused


def test_relay_only_transfer_through_the_deployed_relay(
        world: Internet, deployed_relay: DeployedRelay, tmp_path: Path) -> None:
    a, b = world.add_site(ENDPOINT_INDEPENDENT), world.add_site(ENDPOINT_INDEPENDENT)
    transfer(world, deployed_relay, a, b, tmp_path, "--relay-only")
    carried = wait_for_relayed(lambda: world.log("coturn"), SIZE, until=lambda carried: (
        any(s.usage("rb") >= SIZE for s in carried) and any(s.usage("sb") >= SIZE for s in carried)
    ))
    assert len(carried) >= 2  # out of the sender into the relay, out of the relay to the receiver


def test_symmetric_nats_without_relay_both_sides_give_up_within_a_minute(
        world: Internet, deployed_relay: DeployedRelay, tmp_path: Path, within: float = 60) -> None:
    """Symmetric NATs and a server without TURN: there is no path, and both sides say so,
    with the real timers: the receiver exits with its own code (3, docs/cli.md)."""
    relay = deployed_relay
    a, b = world.add_site(SYMMETRIC), world.add_site(SYMMETRIC)
    server = serve(world, relay, offer_turn=False)  # STUN only
    source = random_file(tmp_path / "nowhere.bin", SIZE, seed=6)
    sender = SendProcess(server, [source], env=relay.peer_env, prefix=a.host.prefix)
    started = time.monotonic()
    try:
        result = receive(sender.link, tmp_path / "out", timeout=within + 15, env=relay.peer_env,
                         prefix=b.host.prefix)
        assert time.monotonic() - started < within, "the receiver took too long to give up"
        assert result.returncode == 3, result.stderr  # its own documented code
        assert re.search(r"no direct path.*relay", result.stderr, re.S), result.stderr
        sender.wait_for_log(r"no direct path.*relay", timeout=max(1, within - (
            time.monotonic() - started)))
    finally:
        sender.stop()
