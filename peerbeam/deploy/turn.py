"""The optional TURN relay of the stack: a coturn instance, its secret, its URLs.

``.chalice/turn-template.json`` holds the relay's resources, all under the condition
``WithTurnRelay`` (stack parameter ``TurnRelay``); ``.chalice/turn-cloud-init.yaml`` is
what the instance runs at first boot. ``merge_template`` adds both to
``.chalice/merge-template.json``, together with the functions' ICE variables: with the
relay on they name its STUN and TURN (UDP, then TCP) URLs, otherwise whatever
``.chalice/config.json`` says; with a TLS certificate configured, TURN over TLS comes last.
The stage's TURN secret parameter (from config.json) is
the one place both the functions and coturn read the secret from; CloudFormation cannot
create a SecureString, so ``ensure_secret`` does, once, before the stack is deployed.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

REPO = Path(__file__).resolve().parents[2]
CHALICE_DIR = REPO / ".chalice"
MERGE_TEMPLATE = CHALICE_DIR / "merge-template.json"
TURN_TEMPLATE = CHALICE_DIR / "turn-template.json"
CLOUD_INIT = CHALICE_DIR / "turn-cloud-init.yaml"
CONFIG = CHALICE_DIR / "config.json"
FUNCTIONS = ("APIHandler", "WebsocketConnect", "WebsocketMessage", "WebsocketDisconnect")
CONDITION = "WithTurnRelay"
TLS_CONDITION = "WithTurnTls"
PORT = 3478
TLS_PORT = 443
SECRET_TOKEN = "@TURN_SECRET_PARAMETER@"
USER_DATA_TOKEN = "@TURN_USER_DATA@"
# The order browsers and the Python peer try them in: UDP first, TCP when UDP is blocked.
RELAY_STUN = f"stun:${{TurnIp}}:{PORT}"
RELAY_TURN = f"turn:${{TurnIp}}:{PORT}?transport=udp,turn:${{TurnIp}}:{PORT}?transport=tcp"
# ... and TLS last, for networks that let only HTTPS out (the certificate names the domain).
RELAY_TURNS = f"turns:${{TurnTlsDomain}}:{TLS_PORT}?transport=tcp"


def stage_environment(stage: str, config_path: Path = CONFIG) -> dict[str, str]:
    """The functions' environment variables for ``stage`` as Chalice computes them."""
    config = json.loads(config_path.read_text())
    return {
        **config.get("environment_variables", {}),
        **config.get("stages", {}).get(stage, {}).get("environment_variables", {}),
    }


def secret_parameter(stage: str, config_path: Path = CONFIG) -> str:
    name = stage_environment(stage, config_path).get("PEERBEAM_TURN_SECRET_PARAMETER", "")
    if not name.startswith("/"):
        raise ValueError(
            f"stage {stage} needs PEERBEAM_TURN_SECRET_PARAMETER (an SSM parameter name "
            "starting with /) in .chalice/config.json"
        )
    return name


def _literal(text: str) -> str:
    """``text`` inside an Fn::Sub string, taken as is."""
    return text.replace("${", "${!")


def ice_variables(environment: dict[str, str]) -> dict[str, Any]:
    stun = environment.get("PEERBEAM_STUN_URLS", "")
    turn = environment.get("PEERBEAM_TURN_URLS", "")
    relay_stun = ",".join([RELAY_STUN] + ([_literal(stun)] if stun else []))
    relay_turn = {"Fn::If": [
        TLS_CONDITION, {"Fn::Sub": f"{RELAY_TURN},{RELAY_TURNS}"}, {"Fn::Sub": RELAY_TURN}
    ]}
    return {
        "PEERBEAM_STUN_URLS": {"Fn::If": [CONDITION, {"Fn::Sub": relay_stun}, stun]},
        "PEERBEAM_TURN_URLS": {"Fn::If": [CONDITION, relay_turn, turn]},
    }


def relay_fragment(stage: str) -> dict[str, Any]:
    """The relay's part of the merge template for ``stage``."""
    parameter = secret_parameter(stage)
    fragment: dict[str, Any] = json.loads(TURN_TEMPLATE.read_text().replace(SECRET_TOKEN, parameter))
    launch = fragment["Resources"]["TurnLaunchTemplate"]["Properties"]["LaunchTemplateData"]
    assert launch["UserData"] == USER_DATA_TOKEN, "turn-template.json: UserData placeholder moved"
    cloud_init = CLOUD_INIT.read_text().replace(SECRET_TOKEN, parameter)
    # The instance turns TLS on only when the stack does (domain and certificate both set).
    tls_certificate = {"Fn::If": [TLS_CONDITION, {"Ref": "TurnTlsCertificate"}, ""]}
    launch["UserData"] = {
        "Fn::Base64": {"Fn::Sub": [cloud_init, {"TlsCertificate": tls_certificate}]}
    }
    variables = ice_variables(stage_environment(stage))
    for name in FUNCTIONS:
        fragment["Resources"][name] = {"Properties": {"Environment": {"Variables": variables}}}
    return fragment


def merged(base: dict[str, Any], extra: dict[str, Any], path: str = "") -> dict[str, Any]:
    """``base`` with ``extra`` merged in, dictionaries key by key; a clash is an error."""
    result = dict(base)
    for key, value in extra.items():
        here = f"{path}/{key}"
        if key not in result:
            result[key] = value
        elif isinstance(result[key], dict) and isinstance(value, dict):
            result[key] = merged(result[key], value, here)
        else:
            raise ValueError(f"the TURN template and the merge template both set {here}")
    return result


def ensure_secret(ssm: Any, name: str) -> bool:
    """Create the TURN secret (SecureString, default key) unless it exists; True if created."""
    try:
        ssm.put_parameter(
            Name=name,
            Description="peerbeam TURN REST API secret (coturn static-auth-secret)",
            Value=secrets.token_urlsafe(32),
            Type="SecureString",
            Overwrite=False,
        )
    except ClientError as error:
        if error.response["Error"]["Code"] == "ParameterAlreadyExists":
            return False
        raise
    return True
