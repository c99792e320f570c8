"""Shared fixtures: AWS credentials for moto, free ports, a running local server."""

from __future__ import annotations

import os

# moto intercepts boto3 calls; make sure nothing could ever reach real AWS.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_SESSION_TOKEN", "testing")
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
os.environ["AWS_REGION"] = "us-east-1"

# aiortc peers (ours, in subprocesses too) gather only 127.0.0.1: tests stay on loopback.
os.environ["PEERBEAM_ICE_LOOPBACK"] = "1"

pytest_plugins = ["tests.fixtures.servers", "tests.fixtures.turn"]
