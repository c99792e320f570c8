"""A plain, non-editable `pip install .` gives a peerbeam that serves the web client.

The wheel is built from a copy of the working tree (what a clone holds, so the build
leaves nothing behind in the repository) and installed with its own files into a fresh
virtual environment; that environment borrows the test environment's third-party
packages (aiohttp, chalice, aiortc...) through a .pth file, but not peerbeam, app or
chalicelib: those come from the wheel alone. `peerbeam serve` then runs from a directory
outside the repository.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import urllib.request
from pathlib import Path

import pytest

from peerbeam import website
from tests.fixtures.servers import REPO, LocalServer

pytestmark = pytest.mark.timeout(240)

# The installed environment must not see the source tree.
ISOLATED = {"PYTHONPATH": "", "PYTHONNOUSERSITE": "1", "PYTHONSAFEPATH": "1"}


def copy_working_tree(target: Path) -> Path:
    """Tracked and untracked-but-not-ignored files, symbolic links kept as links."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, check=True, capture_output=True,
    ).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if not source.is_symlink() and not source.exists():
            continue  # deleted in the working tree, not yet committed
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            destination.symlink_to(os.readlink(source))
        else:
            shutil.copy2(source, destination)
    return target


def run(*command: str | Path, cwd: Path) -> str:
    result = subprocess.run(
        [str(part) for part in command], cwd=cwd, capture_output=True, text=True,
        env={**os.environ, **ISOLATED},
    )
    assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment with peerbeam installed from its wheel; its directory."""
    work = tmp_path_factory.mktemp("wheel")
    source = copy_working_tree(work / "source")
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir",
        work / "wheels", source, cwd=work)
    (wheel,) = (work / "wheels").glob("peerbeam-*.whl")
    venv = work / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=work)
    python = venv / "bin" / "python"
    site_packages = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                             cwd=work).strip())
    (site_packages / "test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--quiet", wheel,
        cwd=work)
    return venv


def test_the_wheel_holds_the_whole_web_client(installed: Path) -> None:
    python = installed / "bin" / "python"
    where = run(python, "-c", "import app, chalicelib, peerbeam.website as w; "
                "print(app.__file__, chalicelib.__file__, w.WEBCLIENT_DIR, sep='\\n')",
                cwd=installed.parent).split()
    site_packages = (installed / "lib").resolve()
    for path in where:
        assert Path(path).resolve().is_relative_to(site_packages), where
    packaged = Path(where[2])
    assert not packaged.is_symlink()
    shipped = sorted(p.relative_to(packaged).as_posix() for p in packaged.rglob("*") if p.is_file())
    source = sorted(
        p.relative_to(website.WEBCLIENT_DIR).as_posix()
        for p in website.WEBCLIENT_DIR.rglob("*") if p.is_file()
    )
    assert shipped == source


def test_installed_peerbeam_serves_the_page(installed: Path) -> None:
    outside = installed.parent / "elsewhere"
    outside.mkdir()
    server = LocalServer(outside / "data", env=ISOLATED, command=[str(installed / "bin" / "peerbeam")],
                         cwd=outside)
    server.start()
    try:
        with urllib.request.urlopen(f"{server.base}/", timeout=5) as response:
            assert response.headers["Content-Type"] == "text/html; charset=utf-8"
            assert response.headers["Content-Security-Policy"] == website.content_security_policy()
            page = response.read().decode()
        entry = re.search(r'<script type="module" src="([^"]+)"', page)
        assert entry, page
        # The entry module, and one from a subdirectory (package data is copied recursively).
        for module in (entry.group(1), "js/protocol/messages.js"):
            with urllib.request.urlopen(f"{server.base}/{module.lstrip('/')}", timeout=5) as response:
                assert response.headers["Content-Type"] == "text/javascript; charset=utf-8"
                assert b"import" in response.read()
        with urllib.request.urlopen(f"{server.base}/config.json", timeout=5) as response:
            assert response.headers["Content-Type"] == "application/json; charset=utf-8"
            assert response.read().startswith(b'{"api_url": "http://127.0.0.1:')
    finally:
        server.stop()
    assert "Traceback" not in server.log()
