"""The studio driven as a user drives it: click a track onto the sample, paint the brush, watch the preview, render,
download the command and the control files, run the command, and get the render's frames byte for byte."""

from __future__ import annotations

import itertools
import json
import shlex
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from motionforge.cli import main
from tests.studio.conftest import wait_for

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


class Page:
    """The studio's page in the browser, in the words of what a user does on it."""

    def __init__(self, driver, address: str) -> None:
        self.driver = driver
        driver.get(address)
        wait_for(lambda: self.canvas_image() is not None, 60, "the picture")
        wait_for(lambda: "ready" in self.text("#studio-preview-info"), 60, "the first preview")

    def find(self, css: str):
        """The first element matching css, or None."""
        from selenium.webdriver.common.by import By

        found = self.driver.find_elements(By.CSS_SELECTOR, css)
        return found[0] if found else None

    def text(self, css: str) -> str:
        """The visible text of an element ('' when absent)."""
        element = self.find(css)
        return element.text if element is not None else ""

    def canvas_image(self):
        """The picture's <img> once it has loaded."""
        image = self.find("#studio-canvas img")
        return image if image is not None and self.driver.execute_script("return arguments[0].naturalWidth", image) else None

    def click_picture(self, x: float, y: float) -> None:
        """Click the picture at its pixel (x, y), and wait for the preview that follows the edit."""
        from selenium.webdriver.common.action_chains import ActionChains

        before = self.text("#studio-preview-info")
        image = self.canvas_image()
        natural = self.driver.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", image)
        shown = image.size
        dx = (x + 0.5) * shown["width"] / natural[0] - shown["width"] / 2
        dy = (y + 0.5) * shown["height"] / natural[1] - shown["height"] / 2
        ActionChains(self.driver).move_to_element_with_offset(image, round(dx), round(dy)).click().perform()
        self.wait_preview(before)

    def drag_picture(self, path: list[tuple[float, float]]) -> None:
        """Press on the picture at the path's first pixel, move through the others, release; wait for the preview."""
        from selenium.webdriver.common.action_chains import ActionChains

        before = self.text("#studio-preview-info")
        image = self.canvas_image()
        natural = self.driver.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", image)
        scale = image.size["width"] / natural[0], image.size["height"] / natural[1]
        offsets = [
            ((x + 0.5) * scale[0] - image.size["width"] / 2, (y + 0.5) * scale[1] - image.size["height"] / 2) for x, y in path
        ]
        actions = (
            ActionChains(self.driver)
            .move_to_element_with_offset(image, round(offsets[0][0]), round(offsets[0][1]))
            .click_and_hold()
        )
        for (x0, y0), (x1, y1) in itertools.pairwise(offsets):
            actions = actions.move_by_offset(round(x1 - x0), round(y1 - y0))
        actions.release().perform()
        self.wait_preview(before)

    def wait_preview(self, before: str) -> None:
        """Wait for a new preview (its line changes with every one)."""
        wait_for(lambda: self.text("#studio-preview-info") not in ("", before), 60, "the preview after the edit")

    def choose_mode(self, label: str) -> None:
        """Pick what a click on the picture does."""
        from selenium.webdriver.common.by import By

        self.find("#studio-mode").find_element(By.XPATH, f".//label[contains(., '{label}')]").click()

    def press(self, css: str) -> None:
        """Click a button."""
        element = wait_for(lambda: (e := self.find(css)) is not None and e.is_displayed() and e, 60, css)
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
        element.click()

    def idle(self) -> None:
        """Wait until no component shows a pending event."""
        busy = "return document.querySelectorAll('[data-testid=status-tracker]:not(.hide)').length"
        wait_for(lambda: self.driver.execute_script(busy) == 0, 60, "the page to settle")

    def set_number(self, css: str, value: str) -> None:
        """Type a value into a number box and leave it."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys

        shown = lambda: [e for e in self.driver.find_elements(By.CSS_SELECTOR, f"{css} input") if e.is_displayed()]
        box = wait_for(shown, 30, f"the box {css}")[0]
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(value, Keys.TAB)


def downloaded(folder: Path, name: str) -> Path:
    """The file the browser downloaded under name, once complete."""
    path = folder / name
    wait_for(lambda: path.is_file() and not list(folder.glob("*.crdownload")), 30, f"the download of {name}")
    return path


def test_draw_preview_render_and_reproduce_from_the_command(studio, browser, downloads, shots, tmp_path, capsys) -> None:
    address, root = studio
    page = Page(browser, address)
    start = time.perf_counter()
    page.press("#studio-end-track")  # the sample's own tracks are loaded; start a new one
    page.click_picture(150, 330)  # a track on the arm: two clicks
    page.click_picture(190, 300)
    page.choose_mode("move a point")
    page.drag_picture([(190, 300), (195, 295), (200, 290)])  # its end dragged further
    page.choose_mode("paint brush")
    page.drag_picture([(130, 340), (150, 330), (170, 320)])  # the arm brushed with a stroke: only it moves along its track
    wait_for(lambda: page.find("#dl-brush") is not None and page.find("#dl-brush").is_displayed(), 30, "the brush download")
    print(f"four edits, each with its preview: {time.perf_counter() - start:.1f} s")
    if shots is not None:
        page.idle()
        shots.mkdir(parents=True, exist_ok=True)
        save_shot(browser, shots / "studio-draw.png", "#studio-canvas", "#studio-flow")

    page.press("#run-backbone-settings .label-wrap")  # the warp backbone's Config fields, as widgets of their type
    assert page.find("#w-backbone-padding input") is not None  # a str field whose comment lists its choices: a dropdown
    page.set_number("#w-backbone-occlusion", "0.75")
    wait_for(lambda: "backbone.occlusion=0.75" in page.text("#run-command"), 30, "the setting in the command")
    page.press("#run-render")
    wait_for(lambda: page.find("#dl-command") is not None and page.find("#dl-command").is_displayed(), 60, "the render")
    if shots is not None:
        page.idle()
        save_shot(browser, shots / "studio-render.png", "#run-backbone", "#dl-command")
    for button, name in (("#dl-command", "command.sh"), ("#dl-tracks", "tracks.json"), ("#dl-brush", "brush.png")):
        page.press(button)
        downloaded(downloads, name)

    tracks = json.loads((downloads / "tracks.json").read_text())["tracks"]
    assert len(tracks) == 5  # the sample's four and the new one
    assert np.allclose(tracks[-1]["points"], [[150, 330], [200, 290]], atol=1.5)
    mask = np.asarray(Image.open(downloads / "brush.png")) > 0  # [H, W]
    assert mask[330, 150] and mask[340, 130] and mask[320, 170] and not mask[330, 220]

    command = (downloads / "command.sh").read_text().strip()
    assert command.startswith("motionforge animate ") and "adapters=[trajectory,brush]" in command
    run = tmp_path / "cli-run"
    capsys.readouterr()
    import os

    os.chdir(downloads)  # the command names its files by name: run it where they were downloaded
    assert main([*shlex.split(command)[1:], f"hydra.run.dir={run}"]) == 0
    studio_frames = sorted(next(root.glob("*/render-1/run/frames")).iterdir())
    command_frames = sorted((run / "frames").iterdir())
    assert [p.name for p in studio_frames] == [p.name for p in command_frames] and len(studio_frames) == 16
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(studio_frames, command_frames))


def test_a_track_file_from_another_tool_loads_into_the_editor(studio, browser) -> None:
    address, root = studio
    page = Page(browser, address)
    fetched = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert fetched and all(url.startswith(address.rstrip("/")) for url in fetched)  # nothing from the network
    before = page.text("#studio-preview-info")
    page.press("#studio-load .label-wrap")
    upload = wait_for(lambda: page.find("#up-tracks input[type=file]"), 30, "the track upload")
    upload.send_keys(str(EXAMPLES / "spline_editor.json"))  # KJNodes SplineEditor's coord_str: a point per frame per spline
    page.wait_preview(before)
    newest = max(root.glob("*/files"), key=lambda folder: folder.stat().st_mtime)
    tracks = json.loads((newest / "tracks.json").read_text())["tracks"]
    assert len(tracks) == 7 and len(tracks[0]["points"]) == 16 and tracks[0]["points"][0] == [405, 205]


@pytest.mark.xfail(reason="timing-dependent: in a full run the render may finish before the click lands (known flake)", strict=False)
def test_a_diffusion_render_shows_its_progress_and_the_cancel_button_stops_it(studio, browser) -> None:
    from selenium.webdriver.common.keys import Keys

    address, root = studio
    page = Page(browser, address)
    choice = page.find("#run-backbone input")
    choice.click()
    choice.send_keys(Keys.CONTROL, "a")
    choice.send_keys("animatediff_tiny", Keys.ENTER)
    wait_for(lambda: "backbone=animatediff_tiny" in page.text("#run-command"), 30, "the backbone in the command")
    for box, value in (("#run-steps", "500"), ("#run-height", "32"), ("#run-width", "32")):
        page.set_number(box, value)
    wait_for(lambda: "steps=500" in page.text("#run-command") and "width=32" in page.text("#run-command"), 30, "the settings")
    page.press("#run-render")
    wait_for(lambda: "denoising" in page.text("#run-video"), 60, "the progress bar")
    page.press("#run-cancel")
    wait_for(lambda: "the render was cancelled; nothing of it was kept" in page.text("#studio-error"), 30, "the cancellation")
    newest = max(root.glob("*/files"), key=lambda folder: folder.stat().st_mtime).parent
    wait_for(lambda: not list(newest.glob("render-*")), 30, "the cancelled render's folder to go")


def test_bad_input_shows_the_command_lines_sentence(studio, browser, capsys) -> None:
    address, _ = studio
    page = Page(browser, address)
    page.set_number("#run-frames", "1")
    wait_for(lambda: "error" in page.text("#studio-error"), 30, "the error line")
    assert main(["animate", "num_frames=1", "output.save=false"]) == 2
    cli = next(line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")).removeprefix("error: ")
    shown = next(line for line in page.text("#studio-error").splitlines() if line.startswith("error:"))
    assert shown.removeprefix("error:").strip() == cli


def save_shot(driver, path: Path, first: str, last: str) -> None:
    """Save the part of the page from one element's top to another's bottom as a small PNG (256 colours)."""
    import io

    from selenium.webdriver.common.by import By

    seek_end = "document.querySelectorAll('video').forEach(v => { v.pause(); v.currentTime = Math.max(0, v.duration - 0.2); })"
    driver.execute_script(seek_end)  # show the clips' late frames, where the motion is
    time.sleep(0.5)
    size = driver.get_window_size()
    height = driver.execute_script("return document.body.scrollHeight")
    driver.set_window_size(size["width"], height + 200)  # the whole page in one screenshot
    top = driver.find_element(By.CSS_SELECTOR, first).rect["y"]
    bottom = max(e.rect["y"] + e.rect["height"] for e in driver.find_elements(By.CSS_SELECTOR, last))
    shot = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")
    ratio = shot.width / driver.execute_script("return window.innerWidth")
    crop = shot.crop((0, max(0, int((top - 12) * ratio)), shot.width, min(shot.height, int((bottom + 12) * ratio))))
    driver.set_window_size(size["width"], size["height"])
    crop.thumbnail((1100, 1100))
    crop.quantize(256, dither=Image.Dither.NONE).save(path, optimize=True)
