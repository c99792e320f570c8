"""The signaling server's REST API, as the CLI uses it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp

TIMEOUT = aiohttp.ClientTimeout(total=20)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ServerConfig:
    site_url: str
    api_url: str
    ws_url: str


async def _json(response: aiohttp.ClientResponse) -> Any:
    text = await response.text()
    try:
        return json.loads(text) if text else None
    except ValueError:
        return {"code": "bad_response", "message": text[:200]}


async def _check(response: aiohttp.ClientResponse) -> Any:
    body = await _json(response)
    if response.status >= 400:
        body = body if isinstance(body, dict) else {}
        raise ApiError(
            response.status,
            str(body.get("code", "http_error")),
            str(body.get("message", f"HTTP {response.status}")),
        )
    return body


async def discover(site_url: str) -> ServerConfig:
    """Read {site}/config.json, which tells where the API and the WebSocket live."""
    site = site_url.rstrip("/") + "/"
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with session.get(site + "config.json") as response:
            config = await _check(response)
    return ServerConfig(site, config["api_url"].rstrip("/"), config["ws_url"])


async def create_room(api_url: str, body: dict[str, Any]) -> dict[str, Any]:
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with session.post(f"{api_url}/rooms", json=body) as response:
            return dict(await _check(response))


async def room_state(api_url: str, room: str) -> dict[str, Any]:
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with session.get(f"{api_url}/rooms/{room}") as response:
            return dict(await _check(response))


async def close_room(api_url: str, room: str, owner_token: str) -> None:
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with session.delete(
            f"{api_url}/rooms/{room}", headers={"Authorization": f"Bearer {owner_token}"}
        ) as response:
            if response.status not in (204, 404):
                await _check(response)
