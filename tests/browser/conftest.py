"""The staff console in a real browser: Debian's headless Chromium driven by Playwright, against
`referral-service serve` running as a subprocess. Screenshots go to test-artifacts/console/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives headless Chromium (/usr/bin/chromium)")


@pytest.fixture
def browser_page(tmp_path: Path) -> Iterator[Any]:
    """A tablet-sized page in a fresh Chromium profile."""
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is absent: install it with .ci/browser-deps.sh")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 820, "height": 1180},  # a 10-inch tablet, portrait
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(10_000)
            yield page
        finally:
            context.close()


@pytest.fixture
def screenshot(browser_page: Any):  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        browser_page.screenshot(path=str(path), full_page=True)
        return path

    return take
