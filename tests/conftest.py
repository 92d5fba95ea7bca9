"""Shared fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo() -> Path:
    """The repository root."""
    return REPO


#: Debian's Chromium (``apt-get install chromium``; ``.ci/run`` installs it).
CHROMIUM = Path(os.environ.get("KARYOFLOW_CHROMIUM", "/usr/bin/chromium"))
#: Flags for a closed network: no background connections, no sandbox as root.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser_page():
    """A Playwright page in headless Debian Chromium (nothing is downloaded).

    Playwright gives the browser a fresh temporary profile.

    Skipped when Chromium is absent, except under ``CI=true`` where that is a failure.
    """
    if not CHROMIUM.exists():
        message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(20_000)
            yield page
        finally:
            browser.close()


@pytest.fixture(autouse=True)
def _isolated_tracking_environment(monkeypatch):
    """Keep one test's MLflow store out of the next.

    ``mlflow.set_tracking_uri()`` exports ``MLFLOW_TRACKING_URI`` into the process
    environment, which :func:`karyoflow.engine.tracking.resolve_tracking_uri` rightly
    prefers over the configured store (a team's server); within one pytest process that
    would send a later test's runs to an earlier test's store.
    """
    from karyoflow.engine.tracking import TRACKING_ENV as names

    for name in names:
        monkeypatch.delenv(name, raising=False)
    yield
    # what the test exported (mlflow.set_tracking_uri) goes too: monkeypatch only restores
    # variables it deleted, and a module-scoped fixture set up before the next test's
    # delenv (e.g. a whole workflow run) would otherwise inherit this test's store
    for name in names:
        os.environ.pop(name, None)
