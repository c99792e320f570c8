"""The deploy tool's AWS steps against moto: stack change sets, site upload, invalidation.

`chalice deploy`-style API Gateway calls cannot run against moto, and neither can
the SAM transform; everything up to that boundary runs here for real.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import boto3
import pytest
from botocore.stub import ANY as ANY_PARAM
from botocore.stub import Stubber
from moto import mock_aws

from peerbeam.cli import build_parser as peerbeam_parser
from peerbeam.deploy import commands
from peerbeam.deploy.site import (
    EDGE_LONG,
    IMMUTABLE,
    SHORT,
    PublishResult,
    client_config,
    collect,
    publish,
)
from peerbeam.deploy.stack import StackDeployer, StackError

REGION = "us-east-1"
OUTPUTS = {
    "RestApiURL": "https://rest123.execute-api.us-east-1.amazonaws.com/api",
    "WebSocketURL": "wss://ws456.execute-api.us-east-1.amazonaws.com/api",
}


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def webclient(tmp_path: Path) -> Path:
    root = tmp_path / "webclient"
    (root / "js" / "ui").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "index.html").write_text("<!doctype html><title>peerbeam</title>")
    (root / "app.css").write_text("body{}")
    (root / "js" / "main.js").write_text("import './ui/view.js';")
    (root / "js" / "ui" / "view.js").write_text("export {};")
    (root / "js" / "vendor.0123abcd.js").write_text("// hashed")
    (root / "icon.svg").write_text("<svg/>")
    (root / "manifest.webmanifest").write_text("{}")
    (root / ".DS_Store").write_text("junk")
    (root / "tests" / "spec.js").write_text("// not shipped")
    return root


def site_resources() -> tuple[Any, Any, str, str]:
    s3 = boto3.client("s3", region_name=REGION)
    cloudfront = boto3.client("cloudfront", region_name=REGION)
    s3.create_bucket(Bucket="site")
    distribution = cloudfront.create_distribution(
        DistributionConfig={
            "CallerReference": "test",
            "Comment": "site",
            "Enabled": True,
            "Origins": {
                "Quantity": 1,
                "Items": [{"Id": "site", "DomainName": "site.s3.us-east-1.amazonaws.com",
                           "S3OriginConfig": {"OriginAccessIdentity": ""}}],
            },
            "DefaultCacheBehavior": {"TargetOriginId": "site",
                                     "ViewerProtocolPolicy": "redirect-to-https"},
        }
    )["Distribution"]
    return s3, cloudfront, "site", distribution["Id"]


def publish_to(site: tuple[Any, Any, str, str], webclient: Path,
               outputs: dict[str, str] = OUTPUTS) -> PublishResult:
    s3, cloudfront, bucket, distribution_id = site
    files = collect(webclient, client_config(outputs))
    return publish(s3, cloudfront, bucket, distribution_id, files)


def invalidations(cloudfront: Any, distribution_id: str) -> int:
    listing = cloudfront.list_invalidations(DistributionId=distribution_id)["InvalidationList"]
    return int(listing["Quantity"])


def test_upload_sets_types_and_cache_headers(aws: None, webclient: Path) -> None:
    s3, cloudfront, bucket, distribution_id = site_resources()
    files = collect(webclient, client_config(OUTPUTS))
    result = publish(s3, cloudfront, bucket, distribution_id, files)

    expected = {
        "index.html": ("text/html; charset=utf-8", SHORT),
        "config.json": ("application/json", SHORT),
        "manifest.webmanifest": ("application/manifest+json", SHORT),
        "app.css": ("text/css; charset=utf-8", EDGE_LONG),
        "js/main.js": ("text/javascript; charset=utf-8", EDGE_LONG),
        "js/ui/view.js": ("text/javascript; charset=utf-8", EDGE_LONG),
        "js/vendor.0123abcd.js": ("text/javascript; charset=utf-8", IMMUTABLE),
        "icon.svg": ("image/svg+xml", EDGE_LONG),
    }
    assert sorted(result.uploaded) == sorted(expected)  # no dotfiles, no tests
    for key, (content_type, cache_control) in expected.items():
        head = s3.head_object(Bucket=bucket, Key=key)
        assert (head["ContentType"], head["CacheControl"]) == (content_type, cache_control), key
    config = json.loads(s3.get_object(Bucket=bucket, Key="config.json")["Body"].read())
    assert config == {"api_url": OUTPUTS["RestApiURL"], "ws_url": OUTPUTS["WebSocketURL"]}
    assert result.invalidation_id is not None
    assert invalidations(cloudfront, distribution_id) == 1


def test_second_publish_changes_nothing(aws: None, webclient: Path) -> None:
    site = site_resources()
    _, cloudfront, _, distribution_id = site
    publish_to(site, webclient)
    again = publish_to(site, webclient)
    assert again.uploaded == [] and again.deleted == [] and again.invalidation_id is None
    assert len(again.unchanged) == 8
    assert invalidations(cloudfront, distribution_id) == 1


def test_only_changes_are_uploaded_and_invalidated(aws: None, webclient: Path) -> None:
    site = s3, cloudfront, bucket, distribution_id = site_resources()
    publish_to(site, webclient)
    (webclient / "js" / "main.js").write_text("import './ui/view.js'; // v2")
    (webclient / "app.css").unlink()
    moved = {**OUTPUTS, "WebSocketURL": "wss://new789.execute-api.us-east-1.amazonaws.com/api"}
    result = publish_to(site, webclient, moved)
    assert sorted(result.uploaded) == ["config.json", "js/main.js"]
    assert result.deleted == ["app.css"]
    assert result.invalidated_paths == ["/app.css", "/config.json", "/js/main.js"]
    assert "app.css" not in {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    invalidation = cloudfront.get_invalidation(
        DistributionId=distribution_id, Id=result.invalidation_id
    )
    assert invalidation["Invalidation"]["InvalidationBatch"]["Paths"]["Items"] == [
        "/app.css", "/config.json", "/js/main.js"
    ]


def test_changed_headers_alone_are_republished(aws: None, webclient: Path) -> None:
    site = s3, _, bucket, _ = site_resources()
    publish_to(site, webclient)
    s3.copy_object(Bucket=bucket, Key="icon.svg", CopySource={"Bucket": bucket, "Key": "icon.svg"},
                   ContentType="text/plain", MetadataDirective="REPLACE")
    result = publish_to(site, webclient)
    assert result.uploaded == ["icon.svg"]
    assert s3.head_object(Bucket=bucket, Key="icon.svg")["ContentType"] == "image/svg+xml"


def deployer(cloudformation: Any = None) -> StackDeployer:
    return StackDeployer(
        cloudformation=cloudformation or boto3.client("cloudformation", region_name=REGION),
        s3=boto3.client("s3", region_name=REGION),
        stack_name="peerbeam-dev",
        artifact_bucket="artifacts",
        region=REGION,
        poll_seconds=0,
        log=lambda message: None,
    )


def write_template(directory: Path, template: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "sam.json"
    path.write_text(json.dumps(template))
    return path


def artifact_keys() -> dict[str, Any]:
    listing = boto3.client("s3", region_name=REGION).list_objects_v2(Bucket="artifacts")
    return {item["Key"]: item["LastModified"] for item in listing.get("Contents", [])}


def test_code_and_template_are_uploaded_once(aws: None, tmp_path: Path) -> None:
    template = {
        "Resources": {
            name: {"Type": "AWS::Serverless::Function",
                   "Properties": {"CodeUri": "./deployment.zip", "Handler": handler}}
            for name, handler in (("A", "app.app"), ("B", "app.websocket_connect"))
        }
    }
    path = write_template(tmp_path / "dist", template)
    (tmp_path / "dist" / "deployment.zip").write_bytes(b"PK zip bytes")
    stack = deployer()
    stack.ensure_artifact_bucket()
    url = stack.prepare_template(path)
    keys = artifact_keys()
    assert len(keys) == 2  # one zip for both functions, one template
    s3 = boto3.client("s3", region_name=REGION)
    template_key = url.split(".amazonaws.com/", 1)[1]
    uploaded = json.loads(s3.get_object(Bucket="artifacts", Key=template_key)["Body"].read())
    code = [r["Properties"]["CodeUri"] for r in uploaded["Resources"].values()]
    assert code[0] == code[1] and code[0]["Bucket"] == "artifacts"
    assert code[0]["Key"].startswith("peerbeam-dev/") and code[0]["Key"].endswith(".zip")
    assert stack.prepare_template(path) == url
    assert artifact_keys() == keys  # nothing uploaded again
    block = s3.get_public_access_block(Bucket="artifacts")["PublicAccessBlockConfiguration"]
    assert all(block.values())


# -- CloudFormation: moto cannot run the SAM transform, so its answers are stubbed --------

STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/peerbeam-dev/1"
CHANGE_SET_ID = "arn:aws:cloudformation:us-east-1:123456789012:changeSet/peerbeam-1/1"
ANY = ANY_PARAM


# The parameters a stack made with the current template has (None: a stack without any).
CURRENT_PARAMETERS = ("ExtraAllowedOrigins", "PointInTimeRecovery", "PriceClass",
                      "RestRequestsPerFiveMinutes", "TurnRelay")


def stack_description(status: str, outputs: dict[str, str], stack: str = "peerbeam-dev",
                      parameters: tuple[str, ...] = CURRENT_PARAMETERS) -> dict[str, Any]:
    return {"Stacks": [{
        "StackName": stack, "StackId": STACK_ID, "StackStatus": status,
        "CreationTime": datetime(2025, 1, 1, tzinfo=UTC),
        "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()],
        "Parameters": [{"ParameterKey": k, "ParameterValue": "x"} for k in parameters],
    }]}


def missing_stack(stubber: Stubber) -> None:
    stubber.add_client_error(
        "describe_stacks", service_error_code="ValidationError",
        service_message="Stack with id peerbeam-dev does not exist", http_status_code=400,
    )


def expect_change_set(stubber: Stubber, change_type: str, parameters: list[dict[str, Any]],
                      stack: str = "peerbeam-dev") -> None:
    stubber.add_response(
        "create_change_set", {"Id": CHANGE_SET_ID, "StackId": STACK_ID},
        {"StackName": stack, "ChangeSetName": ANY, "ChangeSetType": change_type,
         "TemplateURL": ANY, "Parameters": parameters,
         "Capabilities": ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"], "Description": ANY},
    )


def expect_deploy(stubber: Stubber, creating: bool, outputs: dict[str, str],
                  parameters: list[dict[str, Any]], stack: str = "peerbeam-dev") -> None:
    """A change set with changes, executed, and the stack's outputs."""
    if creating:
        missing_stack(stubber)
    else:
        stubber.add_response("describe_stacks", stack_description("UPDATE_COMPLETE", outputs))
    expect_change_set(stubber, "CREATE" if creating else "UPDATE", parameters, stack)
    stubber.add_response("describe_change_set", {
        "Status": "CREATE_COMPLETE",
        "Changes": [{"Type": "Resource", "ResourceChange": {"Action": "Add"}}],
    })
    stubber.add_response("execute_change_set", {})
    done = "CREATE_COMPLETE" if creating else "UPDATE_COMPLETE"
    stubber.add_response("describe_stacks", stack_description(done, outputs))
    stubber.add_response("describe_stacks", stack_description(done, outputs))


def expect_no_change(stubber: Stubber, outputs: dict[str, str],
                     parameters: list[dict[str, Any]], stack: str = "peerbeam-dev") -> None:
    stubber.add_response("describe_stacks", stack_description("UPDATE_COMPLETE", outputs))
    expect_change_set(stubber, "UPDATE", parameters, stack)
    stubber.add_response("describe_change_set", {
        "Status": "FAILED",
        "StatusReason": "The submitted information didn't contain changes. Submit different "
                        "information to create a change set.",
    })
    stubber.add_response("delete_change_set", {}, {"ChangeSetName": ANY, "StackName": stack})
    stubber.add_response("describe_stacks", stack_description("UPDATE_COMPLETE", outputs))


def stubbed_cloudformation() -> tuple[Any, Stubber]:
    client = boto3.client("cloudformation", region_name=REGION)
    return client, Stubber(client)


def test_stack_create_then_no_change(aws: None, tmp_path: Path) -> None:
    path = write_template(tmp_path / "dist", {"Resources": {}})
    client, stubber = stubbed_cloudformation()
    outputs = {"SiteURL": "https://d111.cloudfront.net/"}
    create_parameters = [{"ParameterKey": "PointInTimeRecovery", "ParameterValue": "false"}]
    update_parameters: list[dict[str, Any]] = [
        *create_parameters, {"ParameterKey": "ExtraAllowedOrigins", "UsePreviousValue": True}
    ]
    update_parameters.sort(key=lambda p: p["ParameterKey"])
    expect_deploy(stubber, True, outputs, create_parameters)
    expect_no_change(stubber, outputs, update_parameters)
    parameters = {"PointInTimeRecovery": "false", "ExtraAllowedOrigins": None}
    with stubber:
        created = deployer(client).deploy(path, parameters)
        assert created.changed and created.outputs == outputs
        again = deployer(client).deploy(path, parameters)
        assert not again.changed and again.outputs == outputs
        stubber.assert_no_pending_responses()


def test_failed_stacks_are_explained(aws: None, tmp_path: Path) -> None:
    path = write_template(tmp_path / "dist", {"Resources": {}})
    client, stubber = stubbed_cloudformation()
    stubber.add_response("describe_stacks", stack_description("ROLLBACK_COMPLETE", {}))
    stubber.add_response("describe_stacks", stack_description("UPDATE_IN_PROGRESS", {}))
    missing_stack(stubber)
    expect_change_set(stubber, "CREATE", [])
    stubber.add_response("describe_change_set", {
        "Status": "FAILED", "StatusReason": "Template format error: JSON not well-formed.",
    })
    with stubber:
        with pytest.raises(StackError, match="peerbeam destroy"):
            deployer(client).deploy(path, {})
        with pytest.raises(StackError, match="busy"):
            deployer(client).deploy(path, {})
        with pytest.raises(StackError, match="Template format error"):
            deployer(client).deploy(path, {})
        stubber.assert_no_pending_responses()


class AwsSession:
    """boto3's Session, except that CloudFormation is the stubbed client."""

    region_name = REGION

    def __init__(self, cloudformation: Any) -> None:
        self._cloudformation = cloudformation

    def client(self, name: Literal["cloudformation", "cloudfront", "s3", "sts"]) -> Any:
        if name == "cloudformation":
            return self._cloudformation
        return boto3.client(name, region_name=REGION)


def test_deploy_twice_publishes_once(aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    """The whole `peerbeam deploy`: real package, artifacts and site on moto, stack stubbed."""
    s3, cloudfront, bucket, distribution_id = site_resources()
    outputs = {
        **OUTPUTS, "SiteURL": "https://d111.cloudfront.net/",
        "SiteBucketName": bucket, "SiteDistributionId": distribution_id,
    }
    client, stubber = stubbed_cloudformation()
    expect_deploy(stubber, True, outputs, [
        {"ParameterKey": "PointInTimeRecovery", "ParameterValue": "true"},
        {"ParameterKey": "RestRequestsPerFiveMinutes", "ParameterValue": "600"},
    ], stack="peerbeam-prod")
    expect_no_change(stubber, outputs, [
        {"ParameterKey": "ExtraAllowedOrigins", "UsePreviousValue": True},
        {"ParameterKey": "PointInTimeRecovery", "ParameterValue": "true"},
        {"ParameterKey": "PriceClass", "UsePreviousValue": True},  # whatever the stack has
        {"ParameterKey": "RestRequestsPerFiveMinutes", "ParameterValue": "600"},
        {"ParameterKey": "TurnRelay", "UsePreviousValue": True},
    ], stack="peerbeam-prod")
    session = AwsSession(client)
    with stubber:
        url = commands.deploy("prod", session=session, log=lambda message: None)
        assert url == "https://d111.cloudfront.net/"
        assert capsys.readouterr().out.strip() == url
        objects = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
        assert {"index.html", "config.json"} <= objects
        config = json.loads(s3.get_object(Bucket=bucket, Key="config.json")["Body"].read())
        assert config == {"api_url": OUTPUTS["RestApiURL"], "ws_url": OUTPUTS["WebSocketURL"]}
        assert invalidations(cloudfront, distribution_id) == 1
        artifacts = artifact_keys_in(session)
        commands.deploy("prod", session=session, log=lambda message: None)
        stubber.assert_no_pending_responses()
    assert invalidations(cloudfront, distribution_id) == 1  # nothing changed, nothing invalidated
    assert artifact_keys_in(session) == artifacts


def artifact_keys_in(session: AwsSession) -> dict[str, Any]:
    s3 = session.client("s3")
    bucket = next(b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].startswith(
        "peerbeam-artifacts-"))
    return {o["Key"]: o["ETag"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}


def test_destroy_empties_the_site_and_removes_the_stack(aws: None) -> None:
    s3, _, bucket, _ = site_resources()
    s3.put_object(Bucket=bucket, Key="index.html", Body=b"x")
    client, stubber = stubbed_cloudformation()
    outputs = {"SiteBucketName": bucket}
    stubber.add_response("describe_stacks", stack_description("UPDATE_COMPLETE", outputs))
    stubber.add_response("describe_stacks", stack_description("UPDATE_COMPLETE", outputs))
    stubber.add_response("describe_stacks", stack_description("UPDATE_COMPLETE", outputs))
    stubber.add_response("delete_stack", {}, {"StackName": "peerbeam-dev"})
    missing_stack(stubber)
    missing_stack(stubber)  # a second destroy finds nothing to do
    with stubber:
        assert commands.destroy("dev", session=AwsSession(client), log=lambda m: None) is True
        assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
        assert commands.destroy("dev", session=AwsSession(client), log=lambda m: None) is False
        stubber.assert_no_pending_responses()


def test_deploy_command_line() -> None:
    args = peerbeam_parser().parse_args([
        "deploy", "--stage", "prod",
        "--allowed-origin", "https://a.example", "--allowed-origin", "https://b.example",
    ])
    assert commands.stack_parameters(args.stage, args.allowed_origins, args.turn_relay) == {
        "PointInTimeRecovery": "true", "RestRequestsPerFiveMinutes": "600", "ExtraAllowedOrigins": "https://a.example,https://b.example",
        "TurnRelay": None,
    }
    # Without --allowed-origin or --[no-]turn-relay the stack keeps what it had.
    assert commands.stack_parameters("dev", None)["ExtraAllowedOrigins"] is None
    turn_on = peerbeam_parser().parse_args(["deploy", "--turn-relay"]).turn_relay
    turn_off = peerbeam_parser().parse_args(["deploy", "--no-turn-relay"]).turn_relay
    assert commands.stack_parameters("dev", None, turn_on)["TurnRelay"] == "true"
    assert commands.stack_parameters("dev", None, turn_off)["TurnRelay"] == "false"
    assert peerbeam_parser().parse_args(["destroy", "--stage", "prod"]).stage == "prod"


# -- the TURN relay: its secret exists before the stack needs it ----------------------------

def test_turn_relay_deploy_makes_the_secret_once(aws: None) -> None:
    s3, _, bucket, distribution_id = site_resources()
    outputs = {**OUTPUTS, "SiteURL": "https://d111.cloudfront.net/",
               "SiteBucketName": bucket, "SiteDistributionId": distribution_id}
    client, stubber = stubbed_cloudformation()
    expect_deploy(stubber, True, outputs, [
        {"ParameterKey": "PointInTimeRecovery", "ParameterValue": "false"},
        {"ParameterKey": "RestRequestsPerFiveMinutes", "ParameterValue": "1000"},
        {"ParameterKey": "TurnRelay", "ParameterValue": "true"},
    ])
    expect_no_change(stubber, outputs, [
        {"ParameterKey": "ExtraAllowedOrigins", "UsePreviousValue": True},
        {"ParameterKey": "PointInTimeRecovery", "ParameterValue": "false"},
        {"ParameterKey": "PriceClass", "UsePreviousValue": True},
        {"ParameterKey": "RestRequestsPerFiveMinutes", "ParameterValue": "1000"},
        {"ParameterKey": "TurnRelay", "UsePreviousValue": True},
    ])
    ssm = boto3.client("ssm", region_name=REGION)
    messages: list[str] = []
    with stubber:
        commands.deploy("dev", turn_relay=True, session=AwsSession(client), log=messages.append)
        parameter = ssm.get_parameter(Name="/peerbeam/dev/turn-secret", WithDecryption=True)
        secret = parameter["Parameter"]["Value"]
        assert parameter["Parameter"]["Type"] == "SecureString" and len(secret) >= 40
        assert "created the TURN secret /peerbeam/dev/turn-secret (SecureString)" in messages
        assert secret not in "\n".join(messages)
        # A later deploy keeps the relay and never replaces the secret (coturn has it).
        commands.deploy("dev", session=AwsSession(client), log=messages.append)
        stubber.assert_no_pending_responses()
    again = ssm.get_parameter(Name="/peerbeam/dev/turn-secret", WithDecryption=True)
    assert again["Parameter"]["Value"] == secret and again["Parameter"]["Version"] == 1


def test_no_turn_relay_touches_no_secret(aws: None) -> None:
    s3, _, bucket, distribution_id = site_resources()
    outputs = {**OUTPUTS, "SiteURL": "https://d111.cloudfront.net/",
               "SiteBucketName": bucket, "SiteDistributionId": distribution_id}
    client, stubber = stubbed_cloudformation()
    expect_deploy(stubber, True, outputs, [
        {"ParameterKey": "PointInTimeRecovery", "ParameterValue": "false"},
        {"ParameterKey": "RestRequestsPerFiveMinutes", "ParameterValue": "1000"},
        {"ParameterKey": "TurnRelay", "ParameterValue": "false"},
    ])
    with stubber:
        commands.deploy("dev", turn_relay=False, session=AwsSession(client), log=lambda m: None)
        stubber.assert_no_pending_responses()
    assert boto3.client("ssm", region_name=REGION).describe_parameters()["Parameters"] == []


def test_a_stack_older_than_a_parameter_gets_its_default(aws: None, tmp_path: Path) -> None:
    """CloudFormation refuses UsePreviousValue for a parameter the stack does not have."""
    path = write_template(tmp_path / "dist", {"Resources": {}})
    client, stubber = stubbed_cloudformation()
    outputs = {"SiteURL": "https://d111.cloudfront.net/"}
    stubber.add_response("describe_stacks", stack_description(
        "UPDATE_COMPLETE", outputs, parameters=("ExtraAllowedOrigins", "PointInTimeRecovery")))
    expect_change_set(stubber, "UPDATE", [
        {"ParameterKey": "ExtraAllowedOrigins", "UsePreviousValue": True},
        {"ParameterKey": "PointInTimeRecovery", "ParameterValue": "false"},
        {"ParameterKey": "RestRequestsPerFiveMinutes", "ParameterValue": "1000"},
    ])  # no TurnRelay: the new parameter starts at its default ("false")
    stubber.add_response("describe_change_set", {
        "Status": "FAILED", "StatusReason": "The submitted information didn't contain changes.",
    })
    stubber.add_response("delete_change_set", {}, {"ChangeSetName": ANY, "StackName": "peerbeam-dev"})
    stubber.add_response("describe_stacks", stack_description("UPDATE_COMPLETE", outputs))
    with stubber:
        deployer(client).deploy(path, commands.stack_parameters("dev", None))
        stubber.assert_no_pending_responses()


def test_ensure_secret_never_overwrites(aws: None) -> None:
    from peerbeam.deploy.turn import ensure_secret

    ssm = boto3.client("ssm", region_name=REGION)
    ssm.put_parameter(Name="/peerbeam/prod/turn-secret", Value="operator-chosen",
                      Type="SecureString")
    assert ensure_secret(ssm, "/peerbeam/prod/turn-secret") is False
    value = ssm.get_parameter(Name="/peerbeam/prod/turn-secret", WithDecryption=True)
    assert value["Parameter"]["Value"] == "operator-chosen"


def test_parameters_set_elsewhere_are_kept(aws: None, tmp_path: Path) -> None:
    """A relay resized in the console (or with --parameter) stays resized on later deploys."""
    path = write_template(tmp_path / "dist", {"Parameters": {
        "PointInTimeRecovery": {"Type": "String"}, "TurnInstanceType": {"Type": "String"},
        "TurnTotalMbps": {"Type": "Number"},
    }, "Resources": {}})
    client, stubber = stubbed_cloudformation()
    outputs = {"SiteURL": "https://d111.cloudfront.net/"}
    stubber.add_response("describe_stacks", stack_description("UPDATE_COMPLETE", outputs, parameters=(
        "PointInTimeRecovery", "TurnInstanceType", "TurnTotalMbps", "RemovedSinceThen")))
    expect_change_set(stubber, "UPDATE", [
        {"ParameterKey": "PointInTimeRecovery", "ParameterValue": "false"},
        {"ParameterKey": "TurnInstanceType", "UsePreviousValue": True},
        {"ParameterKey": "TurnTotalMbps", "ParameterValue": "900"},
    ])  # nothing for a parameter the new template no longer declares
    stubber.add_response("describe_change_set", {
        "Status": "FAILED", "StatusReason": "The submitted information didn't contain changes.",
    })
    stubber.add_response("delete_change_set", {}, {"ChangeSetName": ANY, "StackName": "peerbeam-dev"})
    stubber.add_response("describe_stacks", stack_description("UPDATE_COMPLETE", outputs))
    args = peerbeam_parser().parse_args(["deploy", "--parameter", "TurnTotalMbps=900"])
    with stubber:
        deployer(client).deploy(path, {"PointInTimeRecovery": "false", **dict(args.parameters)})
        stubber.assert_no_pending_responses()
    with pytest.raises(SystemExit):
        peerbeam_parser().parse_args(["deploy", "--parameter", "no-equals-sign"])
