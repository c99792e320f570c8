"""`peerbeam deploy` / `destroy` (and `python -m peerbeam.deploy package`).

The argument helpers are imported by `peerbeam`'s own parser, so the AWS modules
are imported only when a deploy command runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import turn
from .package import STAGES, package

if TYPE_CHECKING:
    from .site import PublishResult
    from .stack import StackDeployer

# Template parameters that differ per stage (the rest keep the template defaults).
# RestRequestsPerFiveMinutes: AWS WAF's per-address limit on the REST API (docs/deploy.md,
# "Rate limits"); 0 removes the web ACL and its monthly charge.
STAGE_PARAMETERS: dict[str, dict[str, str]] = {
    "dev": {"PointInTimeRecovery": "false", "RestRequestsPerFiveMinutes": "1000"},
    "prod": {"PointInTimeRecovery": "true", "RestRequestsPerFiveMinutes": "600"},
}

Log = Callable[[str], None]


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def add_stage_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stage", choices=STAGES, default="dev")
    parser.add_argument("--region", default=None, help="AWS region (default: your AWS config)")
    parser.add_argument("--profile", default=None, help="AWS profile (default: your AWS config)")


def add_deploy_arguments(parser: argparse.ArgumentParser) -> None:
    add_stage_arguments(parser)
    parser.add_argument(
        "--allowed-origin", action="append", dest="allowed_origins", default=None,
        metavar="ORIGIN",
        help="another browser origin allowed to use the API, e.g. a custom domain "
        "(repeatable; the CloudFront site is always allowed; default: keep the previous)",
    )
    parser.add_argument(
        "--turn-relay", action=argparse.BooleanOptionalAction, default=None,
        help="run a coturn TURN relay in the stack, for networks where direct connections "
        "fail (docs/deploy.md; default: keep what the stage has, off on a new stage)",
    )
    parser.add_argument(
        "--parameter", action="append", dest="parameters", default=[], type=_parameter,
        metavar="KEY=VALUE",
        help="set a stack parameter, e.g. TurnInstanceType=c7g.large (repeatable; "
        "parameters not named keep the stage's values; docs/deploy.md)",
    )
    parser.add_argument(
        "--artifact-bucket", default=None,
        help="bucket for code and templates (default: peerbeam-artifacts-ACCOUNT-REGION)",
    )


def _parameter(text: str) -> tuple[str, str]:
    key, equals, value = text.partition("=")
    if not equals or not key.isalnum():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def session_for(region: str | None, profile: str | None) -> Any:
    import boto3

    session = boto3.session.Session(profile_name=profile, region_name=region)
    if not session.region_name:
        raise SystemExit("No AWS region: pass --region or set AWS_REGION.")
    return session


def deployer_for(
    session: Any, stage: str, artifact_bucket: str | None, log: Log
) -> StackDeployer:
    from .stack import StackDeployer, artifact_bucket_name, stack_name

    region = session.region_name
    if artifact_bucket is None:
        account = session.client("sts").get_caller_identity()["Account"]
        artifact_bucket = artifact_bucket_name(account, region)
    return StackDeployer(
        cloudformation=session.client("cloudformation"),
        s3=session.client("s3"),
        stack_name=stack_name(stage),
        artifact_bucket=artifact_bucket,
        region=region,
        log=log,
    )


def stack_parameters(stage: str, allowed_origins: list[str] | None,
                     turn_relay: bool | None = None,
                     extra: list[tuple[str, str]] | None = None) -> dict[str, str | None]:
    parameters: dict[str, str | None] = dict(STAGE_PARAMETERS[stage])
    parameters["ExtraAllowedOrigins"] = (
        None if allowed_origins is None else ",".join(allowed_origins)
    )
    parameters["TurnRelay"] = None if turn_relay is None else str(turn_relay).lower()
    parameters.update(extra or [])
    return parameters


def publish_site(
    session: Any, outputs: dict[str, str], webclient_dir: Path | None = None
) -> PublishResult:
    from peerbeam.website import WEBCLIENT_DIR

    from .site import client_config, collect, publish

    files = collect(webclient_dir or WEBCLIENT_DIR, client_config(outputs))
    return publish(
        session.client("s3"),
        session.client("cloudfront"),
        outputs["SiteBucketName"],
        outputs["SiteDistributionId"],
        files,
    )


def deploy(
    stage: str,
    *,
    region: str | None = None,
    profile: str | None = None,
    allowed_origins: list[str] | None = None,
    turn_relay: bool | None = None,
    parameters: list[tuple[str, str]] | None = None,
    artifact_bucket: str | None = None,
    log: Log = _log,
    session: Any = None,
) -> str:
    """Package, deploy the stack, publish the web client; the site URL."""
    session = session or session_for(region, profile)
    log(f"packaging stage {stage}")
    template = package(stage, region=session.region_name)
    if turn_relay is not False:
        # The relay (now, or kept from an earlier deploy) reads it at boot: it must exist first.
        name = turn.secret_parameter(stage)
        if turn.ensure_secret(session.client("ssm"), name):
            log(f"created the TURN secret {name} (SecureString)")
    deployer = deployer_for(session, stage, artifact_bucket, log)
    result = deployer.deploy(
        template, stack_parameters(stage, allowed_origins, turn_relay, parameters)
    )
    site = publish_site(session, result.outputs)
    log(
        f"web client: {len(site.uploaded)} uploaded, {len(site.deleted)} deleted, "
        f"{len(site.unchanged)} unchanged"
    )
    if site.invalidation_id:
        log(f"CloudFront invalidation {site.invalidation_id}: {' '.join(site.invalidated_paths)}")
    url = result.outputs["SiteURL"]
    print(url, flush=True)
    return url


def destroy(
    stage: str,
    *,
    region: str | None = None,
    profile: str | None = None,
    artifact_bucket: str | None = None,
    log: Log = _log,
    session: Any = None,
) -> bool:
    """Empty the site bucket, delete the stack and its artifacts."""
    from .stack import empty_prefix

    session = session or session_for(region, profile)
    deployer = deployer_for(session, stage, artifact_bucket, log)
    if deployer.describe() is None:
        log(f"stack {deployer.stack_name} does not exist; nothing to remove")
        return False
    bucket = deployer.outputs().get("SiteBucketName")
    if bucket:
        removed = empty_prefix(session.client("s3"), bucket)
        log(f"emptied {bucket} ({removed} objects)")
    log(f"deleting stack {deployer.stack_name}")
    deployer.delete()
    log(f"stack {deployer.stack_name} removed")
    return True


def run(args: argparse.Namespace) -> int:
    """Dispatch a parsed `deploy` / `destroy` / `package` command."""
    if args.command == "package":
        template = package(args.stage, region=args.region)
        print(template)
        return 0
    if args.command == "deploy":
        deploy(
            args.stage,
            region=args.region,
            profile=args.profile,
            allowed_origins=args.allowed_origins,
            turn_relay=args.turn_relay,
            parameters=args.parameters,
            artifact_bucket=args.artifact_bucket,
        )
        return 0
    if args.command == "destroy":
        destroy(args.stage, region=args.region, profile=args.profile)
        return 0
    raise AssertionError(f"unhandled command {args.command}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m peerbeam.deploy")
    commands = parser.add_subparsers(dest="command", required=True)
    add_stage_arguments(
        commands.add_parser("package", help="write the CloudFormation template to dist/STAGE/")
    )
    add_deploy_arguments(commands.add_parser("deploy", help="deploy the stack and the web client"))
    add_stage_arguments(commands.add_parser("destroy", help="remove the stack and the web client"))
    return parser


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))
