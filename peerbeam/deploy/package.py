"""`chalice package --merge-template`: the deployable template in dist/<stage>/.

The merge template is ``.chalice/merge-template.json`` plus the resources rendered from
Python (the site's response headers policy: ``headers.py``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from . import turn
from .headers import RESOURCE_NAME as HEADERS_POLICY
from .headers import response_headers_policy

REPO = Path(__file__).resolve().parents[2]
MERGE_TEMPLATE = turn.MERGE_TEMPLATE
TEMPLATE_NAME = "sam.json"
CODE_NAME = "deployment.zip"
STAGES = ("dev", "prod")


class PackageError(RuntimeError):
    pass


def chalice_command() -> list[str]:
    """The chalice CLI of the running interpreter's environment."""
    beside = Path(sys.executable).with_name("chalice")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("chalice")
    if found is None:
        raise PackageError("The chalice command is not installed (pip install chalice).")
    return [found]


def merge_template(stage: str) -> dict[str, Any]:
    """``.chalice/merge-template.json`` with the resources rendered from Python: the
    site's response headers policy, and the optional TURN relay (peerbeam/deploy/turn.py)."""
    template: dict[str, Any] = json.loads(MERGE_TEMPLATE.read_text(encoding="utf-8"))
    resources = template["Resources"]
    if HEADERS_POLICY in resources:
        raise PackageError(f"{MERGE_TEMPLATE} must not define {HEADERS_POLICY}: it is rendered")
    resources[HEADERS_POLICY] = response_headers_policy()
    return turn.merged(template, turn.relay_fragment(stage))


def package(stage: str, out_dir: Path | None = None, region: str | None = None) -> Path:
    """Write ``sam.json`` and ``deployment.zip`` for ``stage``; return the template path.

    Needs no AWS access: chalice only wants a region name, and the template
    itself uses ``${AWS::Region}`` throughout.
    """
    if stage not in STAGES:
        raise PackageError(f"Unknown stage {stage!r}: use one of {', '.join(STAGES)}.")
    out_dir = (out_dir or REPO / "dist" / stage).resolve()
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["AWS_DEFAULT_REGION"] = region or env.get("AWS_REGION") or env.get(
        "AWS_DEFAULT_REGION", "us-east-1"
    )
    with tempfile.TemporaryDirectory(prefix="peerbeam-package-") as scratch:
        merged = Path(scratch) / "merge-template.json"
        merged.write_text(json.dumps(merge_template(stage), indent=2) + "\n", encoding="utf-8")
        command = chalice_command() + [
            "--project-dir", str(REPO),
            "package", "--stage", stage,
            "--merge-template", str(merged),
            str(out_dir),
        ]
        result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    template = out_dir / TEMPLATE_NAME
    if result.returncode != 0 or not template.exists():
        raise PackageError(f"chalice package failed:\n{result.stdout}{result.stderr}")
    return template
