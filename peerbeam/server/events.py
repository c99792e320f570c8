"""API Gateway-shaped events for the app.py handlers.

REST events use Chalice's own local converter (the same one ``chalice local``
uses); WebSocket events follow API Gateway's WebSocket proxy integration.
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Mapping
from typing import Any

from chalice.local import LambdaEventConverter, RouteMatcher

LOCAL_API_ID = "local"
LOCAL_STAGE = "local"


def new_connection_id() -> str:
    # API Gateway connection ids look like 'L0SM9cOFvHcCIhw=': opaque base64.
    return base64.b64encode(secrets.token_bytes(10)).decode("ascii")


class RestEvents:
    def __init__(self, routes: list[str]) -> None:
        self._converter = LambdaEventConverter(RouteMatcher(routes))

    def build(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes | None
    ) -> dict[str, Any]:
        """Raise ValueError when no route matches (the gateway answers 404)."""
        event = self._converter.create_lambda_event(method, path, dict(headers), body or None)
        context = event["requestContext"]
        context.update(
            {
                "stage": LOCAL_STAGE,
                "apiId": LOCAL_API_ID,
                "requestId": secrets.token_hex(8),
                "requestTimeEpoch": int(time.time() * 1000),
            }
        )
        event["resource"] = context["resourcePath"]
        event["path"] = context["path"]
        event["httpMethod"] = method
        event["isBase64Encoded"] = event.get("isBase64Encoded", False)
        if isinstance(event.get("body"), bytes):
            event["body"] = event["body"].decode("utf-8", "replace")
        query = event.get("multiValueQueryStringParameters")
        event["queryStringParameters"] = (
            {key: values[-1] for key, values in query.items()} if query else None
        )
        return event


def websocket_event(
    route_key: str,
    connection_id: str,
    domain_name: str,
    *,
    body: str | None = None,
    query: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    event_type = {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(route_key, "MESSAGE")
    event: dict[str, Any] = {
        "requestContext": {
            "routeKey": route_key,
            "eventType": event_type,
            "connectionId": connection_id,
            "domainName": domain_name,
            "stage": LOCAL_STAGE,
            "apiId": LOCAL_API_ID,
            "requestId": secrets.token_hex(8),
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": source_ip},
        },
        "isBase64Encoded": False,
    }
    if route_key == "$connect":
        event["queryStringParameters"] = dict(query) if query else None
        event["headers"] = dict(headers or {})
    if body is not None:
        event["body"] = body
    return event
