"""`make package` output: cfn-lint clean, and it holds what the deployment needs."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from peerbeam import website
from peerbeam.deploy.package import MERGE_TEMPLATE, package

REPO = Path(__file__).resolve().parents[1]
FUNCTIONS = {
    "APIHandler": "app.app",
    "WebsocketConnect": "app.websocket_connect",
    "WebsocketMessage": "app.websocket_message",
    "WebsocketDisconnect": "app.websocket_disconnect",
}
TABLE_ITEM_ACTIONS = {
    "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
    "dynamodb:Query", "dynamodb:BatchWriteItem", "dynamodb:ConditionCheckItem",
}


@pytest.fixture(scope="module", params=["prod", "dev"])
def packaged(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[tuple[str, Path]]:
    stage = request.param
    yield stage, package(stage, tmp_path_factory.mktemp(f"dist-{stage}"))


@pytest.fixture(scope="module")
def template(packaged: tuple[str, Path]) -> dict[str, Any]:
    return json.loads(packaged[1].read_text())


def resources_of(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in template["Resources"].items() if res["Type"] == kind}


def when_on(statement: dict[str, Any]) -> dict[str, Any]:
    """A statement, or what a conditional one ({"Fn::If": [cond, it, NoValue]}) grants."""
    if "Fn::If" in statement:
        _, granted, otherwise = statement["Fn::If"]
        assert otherwise == {"Ref": "AWS::NoValue"}
        return dict(granted)
    return statement


def statements(template: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every IAM statement: role policies and the bucket policy."""
    for role in resources_of(template, "AWS::IAM::Role").values():
        for policy in role["Properties"].get("Policies", []):
            yield from map(when_on, policy["PolicyDocument"]["Statement"])
    for policy in resources_of(template, "AWS::S3::BucketPolicy").values():
        yield from policy["Properties"]["PolicyDocument"]["Statement"]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_cfn_lint_is_clean(packaged: tuple[str, Path]) -> None:
    from cfnlint.api import lint_file  # type: ignore[import-untyped]  # cfn-lint ships no type hints

    matches = lint_file(packaged[1])
    assert not matches, "\n".join(str(match) for match in matches)


def test_deployment_package_is_app_and_chalicelib_only(packaged: tuple[str, Path]) -> None:
    import zipfile

    names = zipfile.ZipFile(packaged[1].parent / "deployment.zip").namelist()
    assert "app.py" in names and "chalicelib/settings.py" in names
    assert not [name for name in names if name.startswith(("peerbeam/", "tests/", "webclient/"))]


def test_table_is_on_demand_with_ttl(template: dict[str, Any]) -> None:
    (table,) = resources_of(template, "AWS::DynamoDB::Table").values()
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert {k["AttributeName"]: k["KeyType"] for k in props["KeySchema"]} == {
        "pk": "HASH", "sk": "RANGE"
    }
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] == {
        "Ref": "PointInTimeRecovery"
    }


def test_websocket_api_and_its_three_routes(template: dict[str, Any]) -> None:
    (api,) = resources_of(template, "AWS::ApiGatewayV2::Api").values()
    assert api["Properties"]["ProtocolType"] == "WEBSOCKET"
    routes = {
        res["Properties"]["RouteKey"]
        for res in resources_of(template, "AWS::ApiGatewayV2::Route").values()
    }
    assert routes == {"$connect", "$default", "$disconnect"}


def test_lambda_functions_learn_the_table_api_and_site(template: dict[str, Any]) -> None:
    functions = resources_of(template, "AWS::Serverless::Function")
    assert {name: res["Properties"]["Handler"] for name, res in functions.items()} == FUNCTIONS
    for function in functions.values():
        env = function["Properties"]["Environment"]["Variables"]
        assert env["PEERBEAM_STORE"] == "dynamodb"
        assert env["PEERBEAM_TABLE"] == {"Ref": "RoomsTable"}
        # REST handlers (DELETE /rooms) post to WebSocket members: they need the API id.
        assert env["PEERBEAM_WEBSOCKET_API_ID"] == {"Ref": "WebsocketAPI"}
        assert env["PEERBEAM_WEBSOCKET_STAGE"] == "api"
        assert "${WebsocketAPI}" in env["PEERBEAM_WS_URL"]["Fn::Sub"]
        assert "${SiteDistribution.DomainName}" in env["PEERBEAM_ALLOWED_ORIGINS"]["Fn::Sub"]
        assert env["PEERBEAM_TURN_SECRET_PARAMETER"].startswith("/peerbeam/")
        # The secret itself is never in the template.
        assert "PEERBEAM_TURN_SECRET" not in env


def test_site_bucket_is_private_behind_cloudfront(template: dict[str, Any]) -> None:
    (bucket,) = resources_of(template, "AWS::S3::Bucket").values()
    assert bucket["Properties"]["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True,
        "IgnorePublicAcls": True, "RestrictPublicBuckets": True,
    }
    (distribution,) = resources_of(template, "AWS::CloudFront::Distribution").values()
    config = distribution["Properties"]["DistributionConfig"]
    (origin,) = config["Origins"]
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": ["SiteOriginAccessControl", "Id"]}
    assert config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "redirect-to-https"
    short = {b["PathPattern"] for b in config["CacheBehaviors"]}
    assert short == {"/config.json", "/index.html"}
    (reader,) = [s for s in statements(template) if s["Effect"] == "Allow"
                 and s.get("Principal") == {"Service": "cloudfront.amazonaws.com"}]
    assert reader["Action"] == "s3:GetObject"
    assert "${SiteDistribution}" in json.dumps(reader["Condition"])


def test_security_headers_match_the_local_server(template: dict[str, Any]) -> None:
    """The deployed site sends every header of peerbeam.website, as peerbeam serve does."""
    (policy,) = resources_of(template, "AWS::CloudFront::ResponseHeadersPolicy").values()
    config = policy["Properties"]["ResponseHeadersPolicyConfig"]
    headers = config["SecurityHeadersConfig"]
    assert headers["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31536000
    assert all(field["Override"] for field in headers.values())

    def directives(csp: str) -> dict[str, str]:
        return dict(part.strip().split(" ", 1) for part in csp.split(";"))

    local = website.security_headers()
    deployed = directives(headers["ContentSecurityPolicy"]["ContentSecurityPolicy"]["Fn::Sub"])
    served = directives(local.pop("Content-Security-Policy"))
    # Identical, except that connect-src names the API Gateway endpoints instead of ws:/wss:.
    assert {k: v for k, v in deployed.items() if k != "connect-src"} == {
        k: v for k, v in served.items() if k != "connect-src"
    }
    assert deployed["connect-src"].startswith("'self' ")
    assert "wss://${WebsocketAPI}.execute-api" in deployed["connect-src"]
    assert local.pop("X-Content-Type-Options") == "nosniff" and "ContentTypeOptions" in headers
    assert headers["FrameOptions"]["FrameOption"] == local.pop("X-Frame-Options")
    assert headers["ReferrerPolicy"]["ReferrerPolicy"] == local.pop("Referrer-Policy")
    custom = config["CustomHeadersConfig"]["Items"]
    assert custom == [
        {"Header": name, "Value": value, "Override": True} for name, value in local.items()
    ]


def test_headers_policy_is_rendered_not_written_twice(template: dict[str, Any]) -> None:
    """The merge template leaves the policy to peerbeam.website, and the site refers to it."""
    assert "SiteHeadersPolicy" not in json.loads(MERGE_TEMPLATE.read_text())["Resources"]
    distribution = template["Resources"]["SiteDistribution"]["Properties"]["DistributionConfig"]
    behaviours = [distribution["DefaultCacheBehavior"], *distribution["CacheBehaviors"]]
    assert all(b["ResponseHeadersPolicyId"] == {"Ref": "SiteHeadersPolicy"} for b in behaviours)


def test_iam_is_least_privilege(template: dict[str, Any], packaged: tuple[str, Path]) -> None:
    stage = packaged[0]
    actions: set[str] = set()
    for statement in statements(template):
        for action in as_list(statement["Action"]):
            assert action != "*" and not re.fullmatch(r"(dynamodb|s3):\*", action), action
            actions.add(action)
        if statement["Effect"] == "Allow":
            for resource in as_list(statement["Resource"]):
                text = json.dumps(resource)
                assert text not in ('"*"',), statement
    dynamodb = {action for action in actions if action.startswith("dynamodb:")}
    assert dynamodb == TABLE_ITEM_ACTIONS  # no Scan, no table management
    roles = resources_of(template, "AWS::IAM::Role")
    assert set(roles) == {f"{name.replace('APIHandler', 'ApiHandler')}Role" for name in FUNCTIONS
                          } | {"TurnRole"}  # the optional relay's, tested below
    del roles["TurnRole"]
    for role in roles.values():
        (policy,) = role["Properties"]["Policies"]
        by_sid = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
        assert by_sid["RoomTableItems"]["Resource"]["Fn::Sub"].endswith(":table/${RoomsTable}")
        manage = by_sid["PostToOwnWebSocketConnections"]
        assert manage["Action"] == ["execute-api:ManageConnections"]
        assert ":${WebsocketAPI}/api/" in manage["Resource"]["Fn::Sub"]
        assert by_sid["ReadTurnSecret"]["Action"] == ["ssm:GetParameter"]
        assert by_sid["ReadTurnSecret"]["Resource"]["Fn::Sub"].endswith(
            f":parameter/peerbeam/{stage}/turn-secret"
        )
        logs = set(by_sid["WriteOwnLogs"]["Action"])
        assert logs == {"logs:CreateLogStream", "logs:PutLogEvents"}


def test_outputs_name_the_site_and_both_apis(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert outputs["SiteURL"]["Value"] == {"Fn::Sub": "https://${SiteDistribution.DomainName}/"}
    assert outputs["RestApiURL"]["Value"]["Fn::Sub"].startswith("https://${RestAPI}.execute-api")
    assert outputs["WebSocketURL"]["Value"]["Fn::Sub"].startswith("wss://${WebsocketAPI}.")
    for name in ("SiteBucketName", "SiteDistributionId"):
        assert name in outputs


def test_chalice_config_stages() -> None:
    config = json.loads((REPO / ".chalice" / "config.json").read_text())
    assert config["autogen_policy"] is False
    for stage in ("dev", "prod"):
        settings = config["stages"][stage]
        assert settings["iam_policy_file"] == f"policy-{stage}.json"
        assert settings["log_retention_in_days"] > 0
    text = json.dumps(config)
    assert "PEERBEAM_TURN_SECRET\"" not in text  # only the parameter's name


# -- the optional TURN relay (TURN=1, stack parameter TurnRelay) --------------------------

TURN_RESOURCES = {
    "TurnVpc": "AWS::EC2::VPC", "TurnInternetGateway": "AWS::EC2::InternetGateway",
    "TurnGatewayAttachment": "AWS::EC2::VPCGatewayAttachment", "TurnSubnet": "AWS::EC2::Subnet",
    "TurnRouteTable": "AWS::EC2::RouteTable", "TurnDefaultRoute": "AWS::EC2::Route",
    "TurnSubnetRoutes": "AWS::EC2::SubnetRouteTableAssociation",
    "TurnSecurityGroup": "AWS::EC2::SecurityGroup", "TurnRole": "AWS::IAM::Role",
    "TurnInstanceProfile": "AWS::IAM::InstanceProfile", "TurnLogGroup": "AWS::Logs::LogGroup",
    "TurnAllocationsMetric": "AWS::Logs::MetricFilter", "TurnIp": "AWS::EC2::EIP",
    "TurnLaunchTemplate": "AWS::EC2::LaunchTemplate", "TurnInstance": "AWS::EC2::Instance",
    "TurnIpAssociation": "AWS::EC2::EIPAssociation", "TurnTlsIngress": "AWS::EC2::SecurityGroupIngress",
}
TURN_CONDITIONS = {name: "WithTurnRelay" for name in TURN_RESOURCES} | {"TurnTlsIngress": "WithTurnTls"}


def test_turn_relay_is_off_unless_asked_for(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["TurnRelay"]
    assert parameter["Default"] == "false" and parameter["AllowedValues"] == ["true", "false"]
    assert template["Conditions"]["WithTurnRelay"] == {
        "Fn::Equals": [{"Ref": "TurnRelay"}, "true"]
    }
    relay = {name: res for name, res in template["Resources"].items() if name.startswith("Turn")}
    assert {name: res["Type"] for name, res in relay.items()} == TURN_RESOURCES
    assert {name: res["Condition"] for name, res in relay.items()} == TURN_CONDITIONS
    assert template["Outputs"]["TurnAddress"]["Condition"] == "WithTurnRelay"
    # TLS needs the relay, a domain name and a certificate.
    assert template["Conditions"]["WithTurnTls"] == {"Fn::And": [
        {"Condition": "WithTurnRelay"},
        {"Fn::Not": [{"Fn::Equals": [{"Ref": "TurnTlsDomain"}, ""]}]},
        {"Fn::Not": [{"Fn::Equals": [{"Ref": "TurnTlsCertificate"}, ""]}]},
    ]}


def test_turn_relay_exposes_turn_and_relay_ports_only(template: dict[str, Any]) -> None:
    group = template["Resources"]["TurnSecurityGroup"]["Properties"]
    assert group["VpcId"] == {"Ref": "TurnVpc"}
    ingress = {(r["IpProtocol"], r["FromPort"], r["ToPort"]) for r in group["SecurityGroupIngress"]}
    assert ingress == {("udp", 3478, 3478), ("tcp", 3478, 3478), ("udp", 49152, 65535)}
    egress = {(r["IpProtocol"], r["FromPort"], r["ToPort"]) for r in group["SecurityGroupEgress"]}
    assert egress == {("udp", 0, 65535), ("tcp", 443, 443), ("tcp", 80, 80)}
    tls = template["Resources"]["TurnTlsIngress"]["Properties"]
    assert (tls["GroupId"], tls["IpProtocol"], tls["FromPort"], tls["ToPort"]) == (
        {"Ref": "TurnSecurityGroup"}, "tcp", 443, 443)
    launch = template["Resources"]["TurnLaunchTemplate"]["Properties"]["LaunchTemplateData"]
    assert launch["MetadataOptions"]["HttpTokens"] == "required"  # IMDSv2 only
    assert "KeyName" not in launch  # no SSH key, no port 22
    (disk,) = launch["BlockDeviceMappings"]
    assert disk["Ebs"]["Encrypted"] is True
    image = template["Parameters"]["TurnImage"]
    assert image["Type"] == "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>"
    assert image["Default"].startswith("/aws/service/canonical/ubuntu/server/")
    assert launch["ImageId"] == {"Ref": "TurnImage"}
    # A changed launch template (user data, image, type) replaces the instance.
    instance = template["Resources"]["TurnInstance"]["Properties"]
    assert instance["LaunchTemplate"]["Version"] == {
        "Fn::GetAtt": ["TurnLaunchTemplate", "LatestVersionNumber"]
    }
    association = template["Resources"]["TurnIpAssociation"]["Properties"]
    assert association["InstanceId"] == {"Ref": "TurnInstance"}


def test_turn_relay_role_reads_its_secret_and_writes_its_log(
        template: dict[str, Any], packaged: tuple[str, Path]) -> None:
    stage = packaged[0]
    role = template["Resources"]["TurnRole"]["Properties"]
    principal = role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
    assert principal == {"Service": "ec2.amazonaws.com"}
    assert "ManagedPolicyArns" not in role
    (policy,) = role["Policies"]
    by_sid = {s["Sid"]: s for s in map(when_on, policy["PolicyDocument"]["Statement"])}
    assert set(by_sid) == {"ReadTurnSecret", "ReadTurnCertificate", "WriteRelayLogs"}
    conditional = [s for s in policy["PolicyDocument"]["Statement"] if "Fn::If" in s]
    assert [s["Fn::If"][0] for s in conditional] == ["WithTurnTls"]  # only with TLS on
    assert by_sid["ReadTurnCertificate"]["Action"] == ["ssm:GetParameter"]
    assert by_sid["ReadTurnCertificate"]["Resource"]["Fn::Sub"].endswith(
        ":parameter${TurnTlsCertificate}")
    assert by_sid["ReadTurnSecret"]["Action"] == ["ssm:GetParameter"]
    assert by_sid["ReadTurnSecret"]["Resource"]["Fn::Sub"].endswith(
        f":parameter/peerbeam/{stage}/turn-secret"
    )
    assert set(by_sid["WriteRelayLogs"]["Action"]) == {
        "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"
    }
    assert by_sid["WriteRelayLogs"]["Resource"] == {"Fn::Sub": "${TurnLogGroup.Arn}"}


def test_functions_hand_out_the_relay_first_udp_then_tcp(template: dict[str, Any]) -> None:
    config = json.loads((REPO / ".chalice" / "config.json").read_text())
    public_stun = config["environment_variables"]["PEERBEAM_STUN_URLS"]
    for name in FUNCTIONS:
        env = template["Resources"][name]["Properties"]["Environment"]["Variables"]
        condition, relay, without = env["PEERBEAM_TURN_URLS"]["Fn::If"]
        assert condition == "WithTurnRelay" and without == ""
        udp_tcp = "turn:${TurnIp}:3478?transport=udp,turn:${TurnIp}:3478?transport=tcp"
        assert relay == {"Fn::If": [
            "WithTurnTls",
            {"Fn::Sub": f"{udp_tcp},turns:${{TurnTlsDomain}}:443?transport=tcp"},
            {"Fn::Sub": udp_tcp},
        ]}
        condition, relay, without = env["PEERBEAM_STUN_URLS"]["Fn::If"]
        assert relay == {"Fn::Sub": f"stun:${{TurnIp}}:3478,{public_stun}"}
        assert without == public_stun


# -- per-client limits and error shapes (issue 12) --------------------------------------


def test_rest_api_has_a_per_address_rate_limit(template: dict[str, Any]) -> None:
    """AWS WAF in front of the REST stage: a rate-based rule per IP, answered 429 in the
    contract's shape; the limit is a stack parameter (0 leaves the web ACL out)."""
    parameter = template["Parameters"]["RestRequestsPerFiveMinutes"]
    assert parameter["Type"] == "Number" and parameter["MinValue"] == 0
    (acl_name, acl), = resources_of(template, "AWS::WAFv2::WebACL").items()
    assert acl["Condition"] == "LimitRestRequests"
    assert "RestRequestsPerFiveMinutes" in json.dumps(template["Conditions"]["LimitRestRequests"])
    props = acl["Properties"]
    assert props["Scope"] == "REGIONAL" and props["DefaultAction"] == {"Allow": {}}
    (rule,) = props["Rules"]
    statement = rule["Statement"]["RateBasedStatement"]
    assert statement["Limit"] == {"Ref": "RestRequestsPerFiveMinutes"}
    assert statement["AggregateKeyType"] == "IP"
    response = rule["Action"]["Block"]["CustomResponse"]
    assert response["ResponseCode"] == 429
    body = props["CustomResponseBodies"][response["CustomResponseBodyKey"]]
    assert body["ContentType"] == "APPLICATION_JSON"
    assert json.loads(body["Content"])["code"] == "rate_limited"
    assert {"Name": "Retry-After", "Value": "300"} in response["ResponseHeaders"]
    (association,) = resources_of(template, "AWS::WAFv2::WebACLAssociation").values()
    assert association["Condition"] == "LimitRestRequests"
    assert association["Properties"]["WebACLArn"] == {"Fn::GetAtt": [acl_name, "Arn"]}
    # ${RestAPI.Stage}: SAM's name for the stage it generates, which makes the association
    # wait for the stage (a plain ${RestAPI} would not).
    assert association["Properties"]["ResourceArn"]["Fn::Sub"].endswith(
        "::/restapis/${RestAPI}/stages/${RestAPI.Stage}"
    )


def test_stages_set_their_own_limits(packaged: tuple[str, Path]) -> None:
    from peerbeam.deploy.commands import STAGE_PARAMETERS

    stage = packaged[0]
    assert int(STAGE_PARAMETERS[stage]["RestRequestsPerFiveMinutes"]) >= 10  # WAF's minimum
    config = json.loads((REPO / ".chalice" / "config.json").read_text())
    per_minute = config["stages"][stage]["environment_variables"]["PEERBEAM_CONNECTS_PER_MINUTE"]
    assert int(per_minute) > 0


def test_api_gateway_errors_have_the_contract_shape(template: dict[str, Any]) -> None:
    responses = {
        res["Properties"]["ResponseType"]: res["Properties"]
        for res in resources_of(template, "AWS::ApiGateway::GatewayResponse").values()
    }
    assert set(responses) >= {"MISSING_AUTHENTICATION_TOKEN", "THROTTLED", "REQUEST_TOO_LARGE",
                              "UNSUPPORTED_MEDIA_TYPE", "DEFAULT_4XX", "DEFAULT_5XX"}
    assert responses["MISSING_AUTHENTICATION_TOKEN"]["StatusCode"] == "404"
    assert responses["THROTTLED"]["StatusCode"] == "429"
    for props in responses.values():
        assert props["RestApiId"] == {"Ref": "RestAPI"}
        (kind, body), = props["ResponseTemplates"].items()
        assert kind == "application/json"
        # $context.error.messageString is already a quoted JSON string.
        parsed = json.loads(body.replace("$context.error.messageString", '"text"'))
        assert set(parsed) == {"code", "message"}
