"""The TURN shared secret, read at run time from SSM Parameter Store.

The secret is never in the repository, the Chalice config or the CloudFormation
template: ``PEERBEAM_TURN_SECRET_PARAMETER`` names a SecureString parameter,
read with decryption on first use and cached for ``CACHE_SECONDS`` (so a rotated
secret reaches warm Lambda containers within minutes). If the parameter cannot be
read, room members get STUN only and the error is logged: signaling keeps working.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

CACHE_SECONDS = 300

_lock = threading.Lock()
_cache: dict[str, tuple[str, float]] = {}


def _ssm_client() -> Any:
    import boto3

    return boto3.client("ssm")


def load(
    parameter: str,
    *,
    client_factory: Callable[[], Any] = _ssm_client,
    clock: Callable[[], float] = time.monotonic,
) -> str:
    """The decrypted parameter value, or '' when it cannot be read and none is cached."""
    if not parameter:
        return ""
    with _lock:
        cached = _cache.get(parameter)
        if cached is not None and clock() - cached[1] < CACHE_SECONDS:
            return cached[0]
        try:
            response = client_factory().get_parameter(Name=parameter, WithDecryption=True)
            value = str(response["Parameter"]["Value"])
        except Exception:  # any failure: keep serving (stale secret, or STUN only)
            log.exception("cannot read the TURN secret from parameter %s", parameter)
            return cached[0] if cached is not None else ""
        _cache[parameter] = (value, clock())
        return value


def clear_cache() -> None:
    with _lock:
        _cache.clear()
