"""The studio in a real browser: the server on a free port, headless Chromium driven by Selenium, downloads into a folder.

Selenium Manager never runs: the driver is the system's chromedriver, passed through a Service, and the browser the
system's chromium. The browser tests skip only where those are not installed.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SHOTS_ENV = "MOTIONFORGE_STUDIO_SHOTS"  # a folder: the browser tests also write the README's screenshots there


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(condition: Callable[[], object], timeout: float = 30.0, what: str = "the page") -> object:
    """Poll condition until it returns something true; fail naming what was awaited after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture(scope="session")
def studio() -> Iterator[tuple[str, Path]]:
    """The studio's server on a free local port: its address and the folder of its sessions."""
    from motionforge.studio import launch

    demo, address, root = launch(port=free_port(), block=False)
    yield address, root
    demo.close()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder the browser downloads into."""
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="session")
def browser(downloads: Path) -> Iterator[object]:
    """Headless Chromium through the system's chromedriver (skipped where they are not installed)."""
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.skip("no chromium and chromedriver installed (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1800", "--disable-dev-shm-usage",
                 "--autoplay-policy=no-user-gesture-required", "--mute-audio"):  # fmt: skip
        options.add_argument(flag)
    options.add_experimental_option(
        "prefs",
        {
            "download.default_directory": str(downloads),
            "download.prompt_for_download": False,
            "profile.default_content_setting_values.automatic_downloads": 1,
        },
    )
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    yield driver
    driver.quit()


@pytest.fixture
def shots() -> Path | None:
    """Where to write the README's screenshots (MOTIONFORGE_STUDIO_SHOTS, relative to the repository's root), or None."""
    folder = os.environ.get(SHOTS_ENV)
    return Path(__file__).resolve().parents[2] / folder if folder else None


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """The studio's tests run torch on one thread (the server's previews and the renders share the CPU with the browser)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
