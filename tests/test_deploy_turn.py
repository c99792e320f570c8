"""The relay instance's first boot, up to coturn: cloud-init rendered as CloudFormation
renders it, and the script it installs run against SSM (a moto server on 127.0.0.1).

coturn itself is started with the configuration written here in tests/test_nat.py, where
it relays a transfer between two network namespaces.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from peerbeam.deploy.turn import ensure_secret
from tests.fixtures.relay import (
    CONFIG_TEMPLATE,
    SETTINGS,
    UNIT_DROP_IN,
    install,
    moto_ssm,
    render_cloud_init,
    tls_certificate,
    write_coturn_config,
)

PUBLIC_IP = "198.18.0.1"
PARAMETER = "/peerbeam/prod/turn-secret"


@pytest.fixture
def ssm_endpoint() -> Iterator[str]:
    with moto_ssm() as endpoint:
        yield endpoint


def ssm_client(endpoint: str) -> object:
    return boto3.client("ssm", region_name="us-east-1", endpoint_url=endpoint,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def test_cloud_init_is_complete_and_fits_in_user_data() -> None:
    cloud_init = render_cloud_init("prod", PUBLIC_IP)
    assert {"coturn", "python3-boto3"} <= set(cloud_init["packages"])
    files = {entry["path"]: entry["content"] for entry in cloud_init["write_files"]}
    settings = dict(line.split("=", 1) for line in files[SETTINGS].splitlines())
    assert settings == {
        "REGION": "us-east-1", "SECRET_PARAMETER": PARAMETER, "PUBLIC_IP": PUBLIC_IP,
        "SESSION_MBPS": "50", "TOTAL_MBPS": "200", "TOTAL_ALLOCATIONS": "200",
        "TLS_CERTIFICATE": "",  # no certificate configured: no TLS
    }
    unit = files[UNIT_DROP_IN]
    assert "ExecStartPre=+/usr/local/sbin/peerbeam-turn-config" in unit
    assert "ExecStart=/usr/bin/turnserver -c /etc/turnserver.conf" in unit
    # The secret is fetched at start, never written into user data.
    assert "static-auth-secret=@SECRET@" in files[CONFIG_TEMPLATE]
    from peerbeam.deploy.turn import relay_fragment

    user_data, _ = relay_fragment("prod")["Resources"]["TurnLaunchTemplate"]["Properties"][
        "LaunchTemplateData"]["UserData"]["Fn::Base64"]["Fn::Sub"]
    assert len(user_data.encode()) < 16 * 1024  # EC2's limit for user data


def test_boot_script_writes_coturn_config_with_the_deployed_secret(
        ssm_endpoint: str, tmp_path: Path) -> None:
    assert ensure_secret(ssm_client(ssm_endpoint), PARAMETER)  # what `peerbeam deploy` does
    secret = ssm_client(ssm_endpoint).get_parameter(  # type: ignore[attr-defined]
        Name=PARAMETER, WithDecryption=True)["Parameter"]["Value"]
    files = install(render_cloud_init("prod", PUBLIC_IP), tmp_path / "instance")
    output = tmp_path / "instance" / "etc" / "turnserver.conf"
    result = write_coturn_config(files, output, ssm_endpoint)
    assert result.returncode == 0, result.stderr
    config = output.read_text()
    options = [line for line in config.splitlines() if line and not line.startswith("#")]
    assert f"static-auth-secret={secret}" in options
    assert f"external-ip={PUBLIC_IP}" in options
    assert {"use-auth-secret", "no-tcp-relay", "no-multicast-peers", "listening-port=3478",
            "user-quota=12", "total-quota=200", "max-bps=6250000", "bps-capacity=25000000",
            } <= set(options)
    denied = {line.split("=", 1)[1] for line in options if line.startswith("denied-peer-ip=")}
    assert {"10.0.0.0-10.255.255.255", "172.16.0.0-172.31.255.255",
            "192.168.0.0-192.168.255.255", "127.0.0.0-127.255.255.255",
            "169.254.0.0-169.254.255.255", "100.64.0.0-100.127.255.255", "::1"} <= denied
    assert not re.search(r"@[A-Z_]+@", config)
    assert stat.S_IMODE(output.stat().st_mode) == 0o640  # the secret is not world-readable


def test_boot_script_without_a_secret_writes_nothing(ssm_endpoint: str, tmp_path: Path) -> None:
    files = install(render_cloud_init("prod", PUBLIC_IP), tmp_path / "instance")
    output = tmp_path / "instance" / "etc" / "turnserver.conf"
    result = write_coturn_config(files, output, ssm_endpoint)
    assert result.returncode != 0 and "ParameterNotFound" in result.stderr
    assert not output.exists()  # coturn does not start with a config lacking its secret


def test_boot_script_refuses_a_secret_that_would_break_the_config(
        ssm_endpoint: str, tmp_path: Path) -> None:
    ssm_client(ssm_endpoint).put_parameter(  # type: ignore[attr-defined]
        Name=PARAMETER, Value="abc\nallow-loopback-peers", Type="SecureString")
    files = install(render_cloud_init("prod", PUBLIC_IP), tmp_path / "instance")
    output = tmp_path / "instance" / "etc" / "turnserver.conf"
    result = write_coturn_config(files, output, ssm_endpoint)
    assert result.returncode != 0 and "white space" in result.stderr
    assert not output.exists()


def test_with_a_certificate_coturn_also_speaks_tls_on_443(
        ssm_endpoint: str, tmp_path: Path) -> None:
    ssm = ssm_client(ssm_endpoint)
    ensure_secret(ssm, PARAMETER)
    chain_and_key, _ = tls_certificate(PUBLIC_IP)
    ssm.put_parameter(  # type: ignore[attr-defined]
        Name="/peerbeam/prod/turn-tls", Value=chain_and_key, Type="SecureString",
        Tier="Advanced")
    cloud_init = render_cloud_init("prod", PUBLIC_IP, tls_certificate="/peerbeam/prod/turn-tls")
    files = install(cloud_init, tmp_path / "instance")
    output = tmp_path / "instance" / "etc" / "turnserver.conf"
    result = write_coturn_config(files, output, ssm_endpoint)
    assert result.returncode == 0, result.stderr
    options = output.read_text().splitlines()
    pem = output.with_name("turn-tls.pem")
    assert {"tls-listening-port=443", f"cert={pem}", f"pkey={pem}"} <= set(options)
    assert "no-tls" not in options and "no-dtls" in options
    assert pem.read_text() == chain_and_key
    assert stat.S_IMODE(pem.stat().st_mode) == 0o640
    unit = {e["path"]: e["content"] for e in cloud_init["write_files"]}[UNIT_DROP_IN]
    assert "AmbientCapabilities=CAP_NET_BIND_SERVICE" in unit  # coturn's user may bind 443


def test_without_a_certificate_no_tls(ssm_endpoint: str, tmp_path: Path) -> None:
    ensure_secret(ssm_client(ssm_endpoint), PARAMETER)
    files = install(render_cloud_init("prod", PUBLIC_IP), tmp_path / "instance")
    output = tmp_path / "instance" / "etc" / "turnserver.conf"
    assert write_coturn_config(files, output, ssm_endpoint).returncode == 0
    options = output.read_text().splitlines()
    assert "no-tls" in options and not [o for o in options if o.startswith("tls-")]
    assert not output.with_name("turn-tls.pem").exists()


def test_a_certificate_parameter_without_a_certificate_is_refused(
        ssm_endpoint: str, tmp_path: Path) -> None:
    ssm = ssm_client(ssm_endpoint)
    ensure_secret(ssm, PARAMETER)
    ssm.put_parameter(Name="/peerbeam/prod/turn-tls", Value="not a pem",  # type: ignore[attr-defined]
                      Type="SecureString")
    cloud_init = render_cloud_init("prod", PUBLIC_IP, tls_certificate="/peerbeam/prod/turn-tls")
    files = install(cloud_init, tmp_path / "instance")
    output = tmp_path / "instance" / "etc" / "turnserver.conf"
    result = write_coturn_config(files, output, ssm_endpoint)
    assert result.returncode != 0 and "no PEM certificate and key" in result.stderr
    assert not output.exists()
