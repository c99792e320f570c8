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

# Property-based fuzzing (tests/test_fuzz_*.py): a few seconds per property in `make test`,
# far more examples in `make fuzz` (HYPOTHESIS_PROFILE=fuzz).
from hypothesis import HealthCheck, settings  # noqa: E402

_FUZZ_HEALTH = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                HealthCheck.filter_too_much, HealthCheck.data_too_large]
settings.register_profile("ci", max_examples=150, deadline=None,
                          suppress_health_check=_FUZZ_HEALTH)
settings.register_profile("fuzz", max_examples=3000, deadline=None,
                          suppress_health_check=_FUZZ_HEALTH)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

pytest_plugins = ["tests.fixtures.servers", "tests.fixtures.turn"]
