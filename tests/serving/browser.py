"""Headless Chromium driven by selenium: the system's chromium and chromedriver (Debian's `chromium` and
`chromium-driver`), never a downloaded browser. A fake microphone (a beep) answers getUserMedia."""

import shutil

import pytest

FLAGS = (
    "--headless=new",
    "--no-sandbox",  # CI runs as root
    "--disable-dev-shm-usage",
    "--window-size=1200,1600",
    "--use-fake-ui-for-media-stream",  # grant the microphone without asking
    "--use-fake-device-for-media-stream",  # and make it a beep
    "--autoplay-policy=no-user-gesture-required",
)


def chromium():
    """A headless Chromium session; skips the test, saying why, where there is no browser to drive."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (pip install -e .[test])")
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (browser and driver):
        pytest.skip("no chromium and chromedriver here (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in FLAGS:
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=options)
