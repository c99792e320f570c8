"""A per-address cap on WebSocket ``$connect`` for the AWS deployment.

API Gateway throttles a whole stage, and AWS WAF cannot be attached to a WebSocket
API, so one client could otherwise open connections (and take receiver slots, and
cost Lambda invocations) as fast as the stage allows. Each address gets
``connects_per_minute`` handshakes per fixed one-minute window, counted in the rooms
table: one conditional ``UpdateItem`` per ``$connect``, the counter item expiring
(TTL) with its window. The local server limits joins with its own token buckets
(``peerbeam/server/limits.py``) before a handshake reaches app.py.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from .addresses import client_key
from .errors import RateLimited

WINDOW_SECONDS = 60
COUNTER_SK = "limit"


class DynamoConnectLimiter:
    def __init__(self, client: Any, table_name: str, per_minute: int) -> None:
        self._client = client
        self._table = table_name
        self._per_minute = per_minute

    def admit(self, address: str | None, now: int) -> None:
        """Count one handshake from ``address``; RateLimited when its window is used up."""
        window = now - now % WINDOW_SECONDS
        key = f"limit#connect#{client_key(address)}#{window}"
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": key}, "sk": {"S": COUNTER_SK}},
                UpdateExpression="ADD hits :one SET expires_at = :expires",
                ConditionExpression="attribute_not_exists(hits) OR hits < :limit",
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":limit": {"N": str(self._per_minute)},
                    # TTL removes the counter some time after its window ends.
                    ":expires": {"N": str(window + 2 * WINDOW_SECONDS)},
                },
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            retry_after = window + WINDOW_SECONDS - now
            raise RateLimited(
                f"Too many connections from your address; try again in {retry_after} s.",
                retry_after=retry_after,
            ) from None
