"""Open a report in Debian's headless Chromium over CDP (selenium + chromedriver), network cut.

Every host name resolves to nothing (`--host-resolver-rules`), so a report that needs the
network shows it as console errors; the background services Chromium would call are off.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@dataclass(frozen=True)
class Page:
    errors: list[str]  # console and page errors (SEVERE log entries)
    figures: int  # plotly figure divs
    rendered: int  # figure divs holding a rendered .main-svg


def open_offline(path: Path, screenshot: Path) -> Page:
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        if os.environ.get("CI"):
            pytest.fail("chromium and chromium-driver are missing: .ci/run installs them")
        pytest.skip("Debian's chromium and chromium-driver are not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    profile = tempfile.mkdtemp(prefix="chromium-")
    options = Options()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-quic", "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={profile}", "--window-size=1280,2400",
    ):  # fmt: skip
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        driver.get(path.resolve().as_uri())
        WebDriverWait(driver, 30).until(
            lambda d: d.execute_script("return document.readyState") == "complete"
        )
        figures, rendered = driver.execute_script(
            "const divs = Array.from(document.querySelectorAll('.plotly-graph-div'));"
            "return [divs.length, divs.filter(d => d.querySelector('.main-svg')).length];"
        )
        errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        driver.save_screenshot(str(screenshot))
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    return Page(errors, int(figures), int(rendered))
