"""Browser tests: headless Debian chromium driven by its chromedriver (.ci/run installs both).

They skip, saying why, when either binary is missing. Screenshots go to
$JOURNEYHUB_VAR_DIR/screenshots, kept after the run as artifacts."""

import os
import shutil
from pathlib import Path

import pytest
from django.conf import settings

CHROMIUM = os.environ.get("CHROMIUM_BINARY", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER_BINARY", "/usr/bin/chromedriver")
WINDOW = (1440, 1000)
WAIT_SECONDS = 10  # for pages and the audience count to settle; a healthy run takes < 1 s each


def _missing() -> str:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (Path(path).exists() or shutil.which(path)):
            return f"{path} is missing: install Debian's chromium and chromium-driver"
    return ""


@pytest.fixture(scope="session")
def browser():
    if reason := _missing():
        pytest.skip(reason)
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", f"--window-size={WINDOW[0]},{WINDOW[1]}", "--lang=en"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


@pytest.fixture
def screenshot(browser):
    """``screenshot("name")`` saves the whole page as var/screenshots/<name>.png and prints
    the path."""
    folder = Path(settings.VAR_DIR) / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> Path:
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(WINDOW[0], max(WINDOW[1], min(int(height), 6000)))
        browser.execute_script("window.scrollTo(0, 0)")
        path = folder / f"{name}.png"
        browser.save_screenshot(str(path))
        browser.set_window_size(*WINDOW)
        print(f"screenshot: {path}")
        return path

    take.folder = folder
    return take
