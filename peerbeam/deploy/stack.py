"""Deploy the packaged template as one CloudFormation stack, through a change set.

What ``aws cloudformation package`` + ``deploy`` do, with boto3: upload the Lambda
code and the template to an artifact bucket (content-addressed: unchanged code is
not uploaded again), create a change set, and execute it only if it changes
something. A second deploy of the same code and configuration changes nothing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]
# CloudFormation's answers for a change set that would change nothing.
NO_CHANGE_REASONS = ("didn't contain changes", "No updates are to be performed")
BUSY_SUFFIX = "_IN_PROGRESS"


class StackError(RuntimeError):
    pass


def stack_name(stage: str) -> str:
    return f"peerbeam-{stage}"


def artifact_bucket_name(account_id: str, region: str) -> str:
    return f"peerbeam-artifacts-{account_id}-{region}"


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


@dataclass
class StackResult:
    outputs: dict[str, str]
    changed: bool


@dataclass
class StackDeployer:
    cloudformation: Any
    s3: Any
    stack_name: str
    artifact_bucket: str
    region: str
    poll_seconds: float = 5.0
    timeout_seconds: float = 45 * 60
    log: Callable[[str], None] = field(default=print)

    # -- artifacts ---------------------------------------------------------------

    def ensure_artifact_bucket(self) -> None:
        """A private bucket for code and templates; objects expire after 30 days."""
        try:
            self.s3.head_bucket(Bucket=self.artifact_bucket)
            return
        except ClientError as error:
            if error.response["Error"]["Code"] not in ("404", "NoSuchBucket", "NotFound"):
                raise
        self.log(f"creating artifact bucket {self.artifact_bucket}")
        kwargs: dict[str, Any] = {"Bucket": self.artifact_bucket}
        if self.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        self.s3.create_bucket(**kwargs)
        self.s3.put_public_access_block(
            Bucket=self.artifact_bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
        self.s3.put_bucket_lifecycle_configuration(
            Bucket=self.artifact_bucket,
            LifecycleConfiguration={
                "Rules": [
                    {
                        "ID": "expire-old-artifacts",
                        "Status": "Enabled",
                        "Filter": {"Prefix": ""},
                        "Expiration": {"Days": 30},
                    }
                ]
            },
        )

    def upload_artifact(self, data: bytes, suffix: str) -> str:
        """Store ``data`` under a key derived from its content; return the key."""
        digest = _md5(data)
        key = f"{self.stack_name}/{digest}{suffix}"
        try:
            head = self.s3.head_object(Bucket=self.artifact_bucket, Key=key)
            if head.get("ETag", "").strip('"') == digest:
                return key
        except ClientError as error:
            if error.response["Error"]["Code"] not in ("404", "NoSuchKey", "NotFound"):
                raise
        self.s3.put_object(
            Bucket=self.artifact_bucket,
            Key=key,
            Body=data,
            ContentMD5=base64.b64encode(bytes.fromhex(digest)).decode("ascii"),
        )
        return key

    def prepare_template(self, template_path: Path) -> str:
        """Upload the code, point every function at it, upload the template; its URL."""
        template = json.loads(template_path.read_text())
        uploaded: dict[str, str] = {}
        for resource in template.get("Resources", {}).values():
            if resource.get("Type") != "AWS::Serverless::Function":
                continue
            code_uri = resource["Properties"].get("CodeUri")
            if not isinstance(code_uri, str):
                continue
            local = (template_path.parent / code_uri).resolve()
            if str(local) not in uploaded:
                uploaded[str(local)] = self.upload_artifact(local.read_bytes(), ".zip")
            resource["Properties"]["CodeUri"] = {
                "Bucket": self.artifact_bucket,
                "Key": uploaded[str(local)],
            }
        body = json.dumps(template, sort_keys=True, indent=1).encode("utf-8")
        key = self.upload_artifact(body, ".template.json")
        return f"https://{self.artifact_bucket}.s3.{self.region}.amazonaws.com/{key}"

    # -- the stack ---------------------------------------------------------------

    def describe(self) -> dict[str, Any] | None:
        try:
            stacks = self.cloudformation.describe_stacks(StackName=self.stack_name)["Stacks"]
        except ClientError as error:
            if "does not exist" in error.response["Error"].get("Message", ""):
                return None
            raise
        return stacks[0] if stacks else None

    def outputs(self) -> dict[str, str]:
        stack = self.describe()
        if stack is None:
            raise StackError(f"Stack {self.stack_name} does not exist.")
        return {item["OutputKey"]: item["OutputValue"] for item in stack.get("Outputs", [])}

    def deploy(self, template_path: Path, parameters: dict[str, str | None]) -> StackResult:
        """Create or update the stack. ``None`` parameter values, and the stack's parameters
        not named here, keep their values."""
        existing = self.describe()
        status = existing["StackStatus"] if existing else None
        if status and status.endswith(BUSY_SUFFIX) and status != "REVIEW_IN_PROGRESS":
            raise StackError(f"Stack {self.stack_name} is busy ({status}); try again later.")
        if status == "ROLLBACK_COMPLETE":
            raise StackError(
                f"Stack {self.stack_name} failed to create (ROLLBACK_COMPLETE). "
                "Remove it with `peerbeam destroy`, then deploy again."
            )
        creating = status in (None, "REVIEW_IN_PROGRESS")
        previous = {p["ParameterKey"] for p in (existing or {}).get("Parameters", [])}
        # Parameters set outside `peerbeam deploy` (console, update-stack) stay as they are.
        declared = json.loads(template_path.read_text()).get("Parameters", {})
        parameters = {**{key: None for key in previous if key in declared}, **parameters}
        self.ensure_artifact_bucket()
        template_url = self.prepare_template(template_path)
        change_set = self._create_change_set(template_url, parameters, creating, previous)
        if change_set is None:
            self.log(f"stack {self.stack_name}: no changes")
            return StackResult(self.outputs(), changed=False)
        self.log(f"stack {self.stack_name}: {'creating' if creating else 'updating'}")
        self.cloudformation.execute_change_set(
            ChangeSetName=change_set, StackName=self.stack_name
        )
        final = self._wait_for_stack()
        wanted = "CREATE_COMPLETE" if creating else "UPDATE_COMPLETE"
        if final != wanted:
            raise StackError(
                f"Stack {self.stack_name} ended in {final}; see its events in the CloudFormation "
                "console."
            )
        return StackResult(self.outputs(), changed=True)

    def _parameters(
        self, parameters: dict[str, str | None], creating: bool, previous: set[str]
    ) -> list[dict[str, Any]]:
        """``None`` keeps the stack's value; a parameter the stack does not have yet (a
        newer template) gets its default, as CloudFormation refuses UsePreviousValue there."""
        result: list[dict[str, Any]] = []
        for key, value in sorted(parameters.items()):
            if value is not None:
                result.append({"ParameterKey": key, "ParameterValue": value})
            elif not creating and key in previous:
                result.append({"ParameterKey": key, "UsePreviousValue": True})
        return result

    def _create_change_set(
        self, template_url: str, parameters: dict[str, str | None], creating: bool,
        previous: set[str],
    ) -> str | None:
        """The change set's name, or None when it would change nothing (then deleted)."""
        name = f"peerbeam-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
        self.cloudformation.create_change_set(
            StackName=self.stack_name,
            ChangeSetName=name,
            ChangeSetType="CREATE" if creating else "UPDATE",
            TemplateURL=template_url,
            Parameters=self._parameters(parameters, creating, previous),
            Capabilities=CAPABILITIES,
            Description="peerbeam deploy",
        )
        deadline = time.monotonic() + self.timeout_seconds
        while True:
            described = self.cloudformation.describe_change_set(
                ChangeSetName=name, StackName=self.stack_name
            )
            status = described["Status"]
            if status == "CREATE_COMPLETE":
                if creating or described.get("Changes"):
                    return name
                break
            if status == "FAILED":
                reason = described.get("StatusReason", "")
                if not creating and any(text in reason for text in NO_CHANGE_REASONS):
                    break
                raise StackError(f"Change set for {self.stack_name} failed: {reason}")
            if time.monotonic() > deadline:
                raise StackError(f"Change set for {self.stack_name} took too long ({status}).")
            time.sleep(self.poll_seconds)
        self.cloudformation.delete_change_set(ChangeSetName=name, StackName=self.stack_name)
        return None

    def _wait_for_stack(self) -> str:
        deadline = time.monotonic() + self.timeout_seconds
        while True:
            stack = self.describe()
            status = stack["StackStatus"] if stack else "DELETE_COMPLETE"
            if not status.endswith(BUSY_SUFFIX):
                return status
            if time.monotonic() > deadline:
                raise StackError(f"Stack {self.stack_name} took too long ({status}).")
            time.sleep(self.poll_seconds)

    def delete(self) -> bool:
        """Delete the stack and its artifacts; False if there was no stack."""
        if self.describe() is None:
            return False
        self.cloudformation.delete_stack(StackName=self.stack_name)
        final = self._wait_for_stack()
        if final != "DELETE_COMPLETE":
            raise StackError(f"Stack {self.stack_name} could not be deleted ({final}).")
        self._delete_artifacts()
        return True

    def _delete_artifacts(self) -> None:
        try:
            self.s3.head_bucket(Bucket=self.artifact_bucket)
        except ClientError:
            return
        empty_prefix(self.s3, self.artifact_bucket, f"{self.stack_name}/")


def empty_prefix(s3: Any, bucket: str, prefix: str = "") -> int:
    """Delete every object under ``prefix``; return how many."""
    deleted = 0
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
            deleted += len(keys)
    return deleted
