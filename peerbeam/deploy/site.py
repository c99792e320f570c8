"""Publish the web client to the site bucket and invalidate what changed.

Each object gets its content type and a Cache-Control that CloudFront honours
(its cache policy takes TTLs from the object):

- ``index.html``, ``config.json``, other ``.html`` / ``.webmanifest``:
  ``public, max-age=60``. Entry points: a deploy reaches everyone within a minute.
- names with a content hash (``app.3f9a1c2e.js``): ``public, max-age=31536000, immutable``.
  A new version is a new name.
- everything else (plain ES modules, styles, icons):
  ``public, max-age=0, must-revalidate, s-maxage=31536000``. A year at the edge (each
  deploy invalidates what changed); browsers revalidate with the ETag (a cheap 304), so
  a page never mixes modules of two versions: the web client has no build step that
  would put versions into file names.

Idempotent: an object whose MD5 (the S3 ETag of a single-part upload) and
headers already match is left alone, objects no longer in the web client are
deleted, and CloudFront is invalidated only for paths that changed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peerbeam.website import content_type

CONFIG_KEY = "config.json"
SHORT = "public, max-age=60"
IMMUTABLE = "public, max-age=31536000, immutable"
EDGE_LONG = "public, max-age=0, must-revalidate, s-maxage=31536000"
SHORT_SUFFIXES = (".html", ".webmanifest")
HASHED_NAME = re.compile(r"\.[0-9a-f]{8,}\.[a-z0-9]+$")
# Not part of the site: tooling and tests that may live next to the web client.
SKIPPED_DIRS = {"node_modules", "test", "tests", "__pycache__"}
# CloudFront bills invalidation paths; past this many, one wildcard is cheaper.
MAX_INVALIDATION_PATHS = 15


@dataclass(frozen=True)
class SiteFile:
    key: str
    body: bytes
    content_type: str
    cache_control: str

    @property
    def md5(self) -> str:
        return hashlib.md5(self.body, usedforsecurity=False).hexdigest()


@dataclass
class PublishResult:
    uploaded: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    invalidation_id: str | None = None
    invalidated_paths: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.uploaded or self.deleted)


def cache_control(key: str) -> str:
    name = key.rsplit("/", 1)[-1]
    if key == CONFIG_KEY or name.endswith(SHORT_SUFFIXES):
        return SHORT
    if HASHED_NAME.search(name):
        return IMMUTABLE
    return EDGE_LONG


def client_config(outputs: dict[str, str]) -> dict[str, str]:
    """The web client's config.json (same shape as `peerbeam serve`'s /config.json)."""
    return {"api_url": outputs["RestApiURL"].rstrip("/"), "ws_url": outputs["WebSocketURL"]}


def config_file(config: dict[str, str]) -> SiteFile:
    body = (json.dumps(config, indent=2, sort_keys=True) + "\n").encode("utf-8")
    return SiteFile(CONFIG_KEY, body, content_type(CONFIG_KEY), cache_control(CONFIG_KEY))


def collect(webclient_dir: Path, config: dict[str, str]) -> list[SiteFile]:
    """Every file of the web client, plus the generated config.json (which wins)."""
    files: dict[str, SiteFile] = {}
    root = webclient_dir.resolve()
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if not path.is_file() or any(
            part.startswith(".") or part in SKIPPED_DIRS for part in relative.parts
        ):
            continue
        key = relative.as_posix()
        files[key] = SiteFile(key, path.read_bytes(), content_type(key), cache_control(key))
    files[CONFIG_KEY] = config_file(config)
    return [files[key] for key in sorted(files)]


def _existing(s3: Any, bucket: str) -> dict[str, str]:
    """Key → ETag (without quotes) of every object in the bucket."""
    found: dict[str, str] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            found[item["Key"]] = item["ETag"].strip('"')
    return found


def _up_to_date(s3: Any, bucket: str, file: SiteFile, etag: str | None) -> bool:
    if etag != file.md5:
        return False
    head = s3.head_object(Bucket=bucket, Key=file.key)
    return bool(
        head.get("ContentType") == file.content_type
        and head.get("CacheControl") == file.cache_control
    )


def invalidation_paths(keys: list[str]) -> list[str]:
    paths = sorted({"/" + key for key in keys})
    if "/index.html" in paths:
        paths.insert(0, "/")  # the default root object is cached under "/" too
    if len(paths) > MAX_INVALIDATION_PATHS:
        return ["/*"]
    return paths


def publish(
    s3: Any,
    cloudfront: Any,
    bucket: str,
    distribution_id: str,
    files: list[SiteFile],
    *,
    prune: bool = True,
) -> PublishResult:
    result = PublishResult()
    existing = _existing(s3, bucket)
    for file in files:
        if _up_to_date(s3, bucket, file, existing.get(file.key)):
            result.unchanged.append(file.key)
            continue
        s3.put_object(
            Bucket=bucket,
            Key=file.key,
            Body=file.body,
            ContentType=file.content_type,
            CacheControl=file.cache_control,
            ContentMD5=base64.b64encode(bytes.fromhex(file.md5)).decode("ascii"),
        )
        result.uploaded.append(file.key)
    if prune:
        wanted = {file.key for file in files}
        stale = sorted(key for key in existing if key not in wanted)
        for start in range(0, len(stale), 1000):
            batch = [{"Key": key} for key in stale[start : start + 1000]]
            s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
        result.deleted = stale
    if result.changed:
        paths = invalidation_paths(result.uploaded + result.deleted)
        reference = hashlib.sha256(
            f"{time.time_ns()}:{','.join(paths)}".encode()
        ).hexdigest()[:32]
        response = cloudfront.create_invalidation(
            DistributionId=distribution_id,
            InvalidationBatch={
                "Paths": {"Quantity": len(paths), "Items": paths},
                "CallerReference": reference,
            },
        )
        result.invalidation_id = response["Invalidation"]["Id"]
        result.invalidated_paths = paths
    return result
