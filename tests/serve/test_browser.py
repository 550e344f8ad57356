"""End to end in headless Chromium: the page served by ``python -m models.serve`` on 127.0.0.1 picks a class,
generates, and shows the grid at its natural size. The screenshot is kept in tests/artifacts/gallery.png."""
from __future__ import annotations

import shutil
import signal

import pytest

from infra.cli import EXIT_INTERRUPTED
from tests.serve.conftest import IMAGE_SIZE, PROJECT_ROOT, start_server, wait_for

SCREENSHOT = PROJECT_ROOT / "tests" / "artifacts" / "gallery.png"
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)
PADDING = 2  # models.images.image_grid
MISSING = [name for name in ("chromium", "chromedriver") if shutil.which(name) is None]
# Checked before any fixture runs, so that a machine without a browser does not train a run for nothing.
pytestmark = pytest.mark.skipif(
    bool(MISSING),
    reason=f"browser test skipped: {' and '.join(MISSING)} not installed (Debian packages chromium, chromium-driver)",
)


@pytest.fixture
def server_url(runs_dir, data_root, tmp_path):
    """``python -m models.serve`` on a free loopback port, stopped by its PID at the end."""
    log = tmp_path / "serve.log"
    server, url = start_server(runs_dir, data_root, log)
    try:
        yield url
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == EXIT_INTERRUPTED, log.read_text()[-2000:]


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(shutil.which("chromedriver")))
    driver.set_window_size(1280, 900)
    yield driver
    driver.quit()


def test_page_generates_a_grid_of_the_chosen_class(server_url, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    browser.get(server_url + "/")
    classes = wait_for(lambda: Select(browser.find_element(By.ID, "class")).options[1:], 30, "the class list")
    assert "T-shirt/top" in [option.text for option in classes]
    Select(browser.find_element(By.ID, "class")).select_by_visible_text("T-shirt/top")
    for field, value in (("count", "9"), ("seed", "7")):
        browser.find_element(By.ID, field).clear()
        browser.find_element(By.ID, field).send_keys(value)
    browser.find_element(By.ID, "generate").click()

    grid = browser.find_element(By.ID, "grid")
    size = wait_for(lambda: browser.execute_script("return arguments[0].naturalWidth && [arguments[0].naturalWidth, "
                                                   "arguments[0].naturalHeight]", grid), 60, "the grid to appear")
    assert size == [3 * (IMAGE_SIZE + PADDING) + PADDING] * 2
    assert browser.find_element(By.ID, "result").is_displayed()
    assert not browser.find_element(By.ID, "generate-error").is_displayed()
    assert "seed 7" in browser.find_element(By.ID, "result-caption").text
    assert "class=T-shirt%2Ftop" in browser.find_element(By.ID, "download-png").get_attribute("href")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(SCREENSHOT))
