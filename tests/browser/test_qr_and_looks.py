"""The QR code (our own encoder) read by a real decoder (zbar), and screenshots of both
views at desktop and phone widths for a human to look at."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Page, expect
from pyzbar.pyzbar import ZBarSymbol, decode  # type: ignore[import-untyped]  # pyzbar ships no type hints

from tests.fixtures.servers import LocalServer

from .conftest import MIB, Pages, write_file
from .test_transfer import create_link, wait_done

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def qr_text(png: bytes) -> list[bytes]:
    image = Image.open(io.BytesIO(png)).convert("L")
    return [symbol.data for symbol in decode(image, symbols=[ZBarSymbol.QRCODE])]


def test_share_qr_decodes_to_exactly_the_link(
    server: LocalServer, pages: Pages, browser_a, tmp_path: Path
) -> None:
    sender = pages.open(browser_a, device_scale_factor=2)
    link = create_link(sender, server, [write_file(tmp_path / "photo.jpg", 1000)])
    assert qr_text(sender.locator("#qr svg").screenshot()) == [link.encode()]


@pytest.mark.parametrize("length", [1, 14, 15, 42, 78, 106, 134, 154, 180, 213])
def test_qr_every_version(server: LocalServer, pages: Pages, browser_a, length: int) -> None:
    """Lengths at and across version boundaries (1..10, with version info from 7 on)."""
    page = pages.open(browser_a)
    page.goto(server.base + "/")
    text = (f"https://peerbeam.example/{length}/#" + "AbC-_9xyz0" * 30)[:length]
    page.evaluate(
        """async (text) => {
          const { qrSvg } = await import("/js/qr.js");
          const svg = qrSvg(text, "test code");
          svg.id = "under-test";
          svg.style.width = svg.style.height = "480px";
          document.body.prepend(svg);
        }""",
        text,
    )
    assert qr_text(page.locator("#under-test").screenshot()) == [text.encode()]


def shots_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = os.environ.get("PEERBEAM_SCREENSHOTS")
    path = Path(directory) if directory else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_screenshots(
    server: LocalServer, pages: Pages, browser_a, browser_b, tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Sender and receiver views, desktop and phone. Saved for looking at (the path is
    printed); the test checks the layout does not overflow sideways on a phone."""
    out = shots_dir(tmp_path_factory)
    files = [write_file(tmp_path / "Holiday video 2024 (final cut).mkv", 3 * MIB + 5, seed=9),
             write_file(tmp_path / "notes.txt", 1234, seed=10)]

    def shoot(page: Page, name: str) -> None:
        page.screenshot(path=out / f"{name}.png", full_page=True)
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name} scrolls sideways by {overflow}px"

    for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        sender = pages.open(browser_a, viewport=viewport)
        sender.goto(server.base + "/")
        expect(sender.locator("#send-view")).to_be_visible()  # the script is ready for files
        sender.set_input_files("#file-input", [str(f) for f in files])
        shoot(sender, f"{label}-1-sender-files")
        sender.get_by_role("button", name="Create link").click()
        expect(sender.locator("#share-link")).to_be_visible()
        link = sender.locator("#share-link").input_value()

        receiver = pages.open(browser_b, viewport=viewport)
        receiver.goto(link)
        expect(receiver.get_by_role("button", name="Accept")).to_be_visible()
        shoot(receiver, f"{label}-2-receiver-offer")
        shoot(sender, f"{label}-3-sender-waiting")
        receiver.get_by_role("button", name="Accept").click()
        wait_done(receiver, sender)
        shoot(receiver, f"{label}-4-receiver-done")
        shoot(sender, f"{label}-5-sender-done")

    gone = pages.open(browser_b, viewport=PHONE)
    gone.goto(server.base + "/#NoSuchRoom1.AAECAwQFBgcICQoLDA0ODw")
    expect(gone.get_by_role("alert")).to_be_visible()
    shoot(gone, "phone-6-receiver-link-gone")
    print(f"\nscreenshots: {out}")
