"""The web page in real headless Chromium (Debian's package) driven by Playwright, against the real server."""

from __future__ import annotations

import base64
import io
import json
import socket
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import provenance_in
from PIL import Image
from skimage import color, data

from colorit import __version__
from colorit.limits import MAX_SATURATION

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
MAX_PIXELS = 2_000_000  # the server's limit here, so that a modest photo shows the too-large message
MIN_COLOUR_CHROMA = 2.0  # mean Lab chroma; a grey photo has ~0

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server_url():
    import uvicorn

    from colorit.server.app import create_app

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(max_pixels=MAX_PIXELS), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:  # uvicorn offers no event to wait on
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server_url):
    context = browser.new_context(viewport={"width": 1280, "height": 860}, accept_downloads=True)
    tab = context.new_page()
    tab.goto(server_url + "/")
    # functions, not expressions: Playwright evaluates an expression with eval, which the page's CSP forbids
    tab.wait_for_function("() => document.querySelectorAll('#model-select option').length > 0")
    yield tab
    context.close()


@pytest.fixture(scope="module")
def grey_coffee(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("photos") / "coffee.jpg"
    Image.fromarray(data.coffee()).convert("L").save(path, quality=92)
    return path


def upload_and_wait(page, path: Path) -> None:
    count = result_count(page)
    page.set_input_files("#file-input", str(path))
    wait_for_result(page, count + 1)


def result_count(page) -> int:
    return int(page.evaluate("document.body.dataset.resultCount"))


def wait_for_result(page, count: int) -> None:
    page.wait_for_function(
        "n => Number(document.body.dataset.resultCount) >= n && document.body.dataset.state === 'ready'",
        arg=count,
        timeout=60_000,
    )


def shown_result(page) -> np.ndarray:
    """The pixels of the result image as the page has it, read back through a canvas."""
    url = page.evaluate(
        """() => {
            const img = document.getElementById('result-image');
            const canvas = document.createElement('canvas');
            canvas.width = img.naturalWidth;
            canvas.height = img.naturalHeight;
            canvas.getContext('2d').drawImage(img, 0, 0);
            return canvas.toDataURL('image/png');
        }"""
    )
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))


def mean_chroma(rgb: np.ndarray) -> float:
    lab = color.rgb2lab(rgb)
    return float(np.hypot(lab[..., 1], lab[..., 2]).mean())


def redness(rgb: np.ndarray, x: int, y: int, half: int = 8) -> float:
    return float(color.rgb2lab(rgb[y - half : y + half, x - half : x + half])[..., 1].mean())


def screen_point(page, x: float, y: float) -> tuple[float, float]:
    """Where image pixel (x, y) of the result lies on the screen."""
    box = page.locator("#picture").bounding_box()
    width, height = page.locator("#result-image").evaluate("img => [img.naturalWidth, img.naturalHeight]")
    return box["x"] + (x + 0.5) * box["width"] / width, box["y"] + (y + 0.5) * box["height"] / height


def save_screenshot(page, name: str = "web.png") -> None:
    """For a person to look at after a run (the README's come from scripts/make_web_screenshots.py)."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))


def test_upload_compare_and_download(page, grey_coffee):
    upload_and_wait(page, grey_coffee)
    assert mean_chroma(shown_result(page)) > MIN_COLOUR_CHROMA

    slider = page.get_by_label("Before / after")
    slider.fill("20")
    assert page.locator("#stage").evaluate("stage => stage.style.getPropertyValue('--split')") == "20%"
    slider.focus()
    page.keyboard.press("ArrowRight")
    assert page.locator("#stage").evaluate("stage => stage.style.getPropertyValue('--split')") == "21%"

    page.get_by_label("Side by side").check()
    assert page.locator("#stage").get_attribute("data-layout") == "side"
    assert page.locator("#original-side").is_visible()
    page.get_by_label("Side by side").uncheck()

    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download full resolution").click()
    download = download_info.value
    assert download.suggested_filename == "coffee-colorized.jpg"
    downloaded = Image.open(download.path())
    assert (downloaded.format, downloaded.size) == ("JPEG", Image.open(grey_coffee).size)
    assert mean_chroma(np.asarray(downloaded.convert("RGB"))) > MIN_COLOUR_CHROMA
    # issue 21: the download says it was colorized, by which version and model
    provenance = provenance_in(downloaded)
    assert (provenance["Colorized"], provenance["Version"], provenance["Model"]) == ("True", __version__, "default")


def test_saturation_and_render_size_rerun_the_colorization(page, grey_coffee):
    upload_and_wait(page, grey_coffee)
    count = result_count(page)
    page.get_by_role("slider", name="Saturation").fill("0")
    wait_for_result(page, count + 1)
    assert mean_chroma(shown_result(page)) < 0.5
    page.get_by_label("Render size").select_option("256")
    wait_for_result(page, count + 2)
    assert shown_result(page).shape[:2] == (400, 600)


def test_hints_click_recolour_drag_undo_delete_save_and_load(page, grey_coffee, tmp_path):
    upload_and_wait(page, grey_coffee)
    x, y = 280, 160  # a mid-grey patch: dark ones leave little room for chroma
    before = shown_result(page)

    count = result_count(page)
    page.mouse.click(*screen_point(page, x, y))
    pins = page.locator(".pin")
    assert pins.count() == 1
    # The picker starts at the colour the model gives that point now.
    expected_start = "#" + "".join(f"{channel:02x}" for channel in before[y, x])
    assert page.get_by_label("Pin colour").input_value() == expected_start
    wait_for_result(page, count + 1)

    page.get_by_label("Pin colour").fill("#d01010")
    wait_for_result(page, count + 2)
    after = shown_result(page)
    assert redness(after, x, y) > redness(before, x, y) + 10
    save_screenshot(page)

    start_left = pins.first.evaluate("pin => pin.style.left")
    pin_x, pin_y = screen_point(page, x, y)
    page.mouse.move(pin_x, pin_y)
    page.mouse.down()
    page.mouse.move(pin_x + 60, pin_y + 30, steps=6)
    page.mouse.up()
    wait_for_result(page, count + 3)
    assert pins.first.evaluate("pin => pin.style.left") != start_left

    page.keyboard.press("Control+z")
    wait_for_result(page, count + 4)
    assert pins.first.evaluate("pin => pin.style.left") == start_left

    with page.expect_download() as download_info:
        page.get_by_role("button", name="Save pins").click()
    saved = json.loads(Path(download_info.value.path()).read_text())
    assert saved == [{"x": x, "y": y, "color": "#d01010", "radius": saved[0]["radius"]}]
    assert saved[0]["radius"] > 0

    pins.first.click()
    page.keyboard.press("Delete")
    assert pins.count() == 0
    wait_for_result(page, count + 5)

    hints_file = tmp_path / "coffee-hints.json"
    hints_file.write_text(json.dumps(saved))
    page.set_input_files("#load-hints", str(hints_file))
    wait_for_result(page, count + 6)
    assert pins.count() == 1
    assert redness(shown_result(page), x, y) > redness(before, x, y) + 10


def test_pins_work_from_the_keyboard(page, grey_coffee):
    upload_and_wait(page, grey_coffee)
    count = result_count(page)
    page.get_by_role("button", name="Add pin").focus()
    page.keyboard.press("Enter")
    pin = page.locator(".pin")
    assert pin.count() == 1 and pin.evaluate("pin => pin === document.activeElement")
    wait_for_result(page, count + 1)
    centre = pin.get_attribute("aria-label")
    assert centre.endswith("at 300, 200")
    page.keyboard.press("ArrowRight")
    assert pin.get_attribute("aria-label").endswith("at 303, 200")
    page.keyboard.press("Delete")
    assert pin.count() == 0
    page.keyboard.press("Control+z")
    assert pin.count() == 1 and pin.get_attribute("aria-label").endswith("at 303, 200")


def test_a_tiff_is_previewed_and_downloaded_as_tiff(page, tmp_path):
    """Chromium cannot show TIFF: the page previews a PNG and downloads the TIFF separately."""
    tiff = tmp_path / "cat.tif"
    Image.fromarray(data.chelsea()).convert("L").save(tiff)
    upload_and_wait(page, tiff)
    assert mean_chroma(shown_result(page)) > MIN_COLOUR_CHROMA
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download full resolution").click()
    assert download_info.value.suggested_filename == "cat-colorized.tiff"
    downloaded = Image.open(download_info.value.path())
    assert (downloaded.format, downloaded.size) == ("TIFF", (451, 300))


def test_errors_are_shown_from_the_server(page, tmp_path):
    text_file = tmp_path / "notes.txt"
    text_file.write_text("not a picture\n")
    page.set_input_files("#file-input", str(text_file))
    message = page.get_by_role("alert")
    message.wait_for(state="visible")
    assert "notes.txt" in message.inner_text() and "not an image" in message.inner_text()

    big = tmp_path / "big.png"
    Image.fromarray(data.camera()).resize((2000, 1500)).save(big)
    page.set_input_files("#file-input", str(big))
    page.wait_for_function("() => document.getElementById('message').textContent.includes('big.png')")
    assert "over the limit" in message.inner_text()


def split_of(page) -> float:
    return float(page.locator("#stage").evaluate("stage => stage.style.getPropertyValue('--split')").rstrip("%"))


def drag(page, start: tuple[float, float], end: tuple[float, float]) -> None:
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=8)
    page.mouse.up()


def test_the_divider_is_dragged_and_a_drag_on_the_picture_drops_no_pin(page, grey_coffee):
    """Issue 21: dragging on the picture dropped a pin instead of moving the before/after divider."""
    upload_and_wait(page, grey_coffee)
    count = result_count(page)
    knob = page.locator("#divider .divider-knob").bounding_box()
    picture = page.locator("#picture").bounding_box()
    knob_centre = (knob["x"] + knob["width"] / 2, knob["y"] + knob["height"] / 2)
    drag(page, knob_centre, (picture["x"] + 0.2 * picture["width"], knob_centre[1] + 40))
    assert abs(split_of(page) - 20) <= 1
    assert page.get_by_label("Before / after").input_value() == str(round(split_of(page)))
    # the original now shows over the left fifth only
    assert page.locator("#original-overlay").evaluate("img => getComputedStyle(img).clipPath").startswith("inset(")
    # a drag across the picture, away from the divider: neither a pin nor a move of the divider
    drag(page, screen_point(page, 350, 100), screen_point(page, 450, 300))
    assert page.locator(".pin").count() == 0
    assert abs(split_of(page) - 20) <= 1
    page.wait_for_timeout(500)  # longer than the page's debounce: a pin would have asked for a new result
    assert result_count(page) == count
    # a click still pins
    page.mouse.click(*screen_point(page, 400, 200))
    assert page.locator(".pin").count() == 1
    wait_for_result(page, count + 1)


def grey_file(tmp_path: Path, name: str, pixels: np.ndarray) -> Path:
    path = tmp_path / name
    Image.fromarray(pixels).convert("L").save(path)
    return path


def wait_for_queue(page) -> None:
    page.wait_for_function(
        """() => document.getElementById('queue').dataset.state === 'idle'
            && document.body.dataset.state !== 'working'""",
        timeout=120_000,
    )


def test_several_photos_are_colorized_listed_and_zipped_with_their_pins(page, tmp_path):
    """Issue 21: of several dropped files only the first was colorized."""
    coffee = grey_file(tmp_path, "coffee.jpg", data.coffee())
    cat = grey_file(tmp_path, "cat.png", data.chelsea())
    rocket = grey_file(tmp_path, "rocket.webp", data.rocket())
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture\n")
    page.set_input_files("#file-input", [str(coffee), str(cat), str(notes), str(rocket)])
    queue = page.get_by_role("region", name="Photos")
    queue.wait_for(state="visible")
    wait_for_queue(page)
    rows = queue.locator(".queue-item")
    assert rows.count() == 4
    assert [rows.nth(i).get_attribute("data-status") for i in range(4)] == ["done", "done", "failed", "done"]
    assert "not an image" in rows.nth(2).inner_text()

    # the cat, shown and pinned red: its pin goes into the zip, and comes back when it is shown again
    count = result_count(page)
    queue.get_by_role("button", name="cat.png").click()
    wait_for_result(page, count + 1)
    x, y = 320, 240  # mid-grey fur, right of the divider (which takes clicks at the middle)
    page.mouse.click(*screen_point(page, x, y))
    page.get_by_label("Pin colour").fill("#d01010")
    wait_for_queue(page)
    queue.get_by_role("button", name="coffee.jpg").click()
    page.wait_for_function("() => document.querySelectorAll('.pin').length === 0")
    queue.get_by_role("button", name="cat.png").click()
    page.wait_for_function("() => document.querySelectorAll('.pin').length === 1")
    wait_for_queue(page)
    save_screenshot(page, "web-queue.png")

    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download all (.zip)").click()
    assert download_info.value.suggested_filename == "colorized.zip"
    with zipfile.ZipFile(download_info.value.path()) as archive:
        assert archive.testzip() is None  # every CRC right
        names = archive.namelist()
        assert names == ["coffee-colorized.jpg", "cat-colorized.png", "rocket-colorized.webp"]
        results = {name: Image.open(io.BytesIO(archive.read(name))) for name in names}
    for name, source in [
        ("coffee-colorized.jpg", coffee),
        ("cat-colorized.png", cat),
        ("rocket-colorized.webp", rocket),
    ]:
        assert results[name].size == Image.open(source).size
        assert mean_chroma(np.asarray(results[name].convert("RGB"))) > MIN_COLOUR_CHROMA
    assert provenance_in(results["cat-colorized.png"])["Hints"] == "1"  # its pin, counted in its metadata
    plain_cat = post_colorize(page, cat)
    zipped_cat = np.asarray(results["cat-colorized.png"].convert("RGB"))
    assert redness(zipped_cat, x, y) > redness(plain_cat, x, y) + 10


def post_colorize(page, path: Path) -> np.ndarray:
    """The server's colorization of a file with the page's default settings and no pins."""
    response = page.request.post(
        page.url.rstrip("/") + "/api/colorize",
        multipart={"file": {"name": path.name, "mimeType": "application/octet-stream", "buffer": path.read_bytes()}},
    )
    assert response.ok, response.text()
    return np.asarray(Image.open(io.BytesIO(response.body())).convert("RGB"))


def test_a_colour_photo_is_said_to_be_recoloured(page, tmp_path, grey_coffee):
    photo = tmp_path / "holiday.jpg"
    Image.fromarray(data.astronaut()).save(photo)
    upload_and_wait(page, photo)
    notice = page.locator("#notice")
    assert notice.is_visible()
    assert "holiday.jpg is already in colour" in notice.inner_text() and "replaced" in notice.inner_text()
    upload_and_wait(page, grey_coffee)
    assert not notice.is_visible()


def test_the_saturation_slider_reaches_the_command_line_maximum(page, grey_coffee):
    upload_and_wait(page, grey_coffee)
    slider = page.get_by_role("slider", name="Saturation")
    assert float(slider.get_attribute("max")) == MAX_SATURATION
    at_one = mean_chroma(shown_result(page))
    count = result_count(page)
    slider.fill(str(MAX_SATURATION))
    wait_for_result(page, count + 1)
    assert page.locator("#saturation-value").inner_text() == f"{MAX_SATURATION:.2f}"
    assert mean_chroma(shown_result(page)) > 1.5 * at_one


def test_the_page_fits_a_phone_screen(browser, server_url, grey_coffee, tmp_path):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    phone = context.new_page()
    phone.goto(server_url + "/")
    phone.wait_for_function("() => document.querySelectorAll('#model-select option').length > 0")
    cat = grey_file(tmp_path, "a-cat-photo-with-a-long-name-from-a-phone-camera.png", data.chelsea())
    count = result_count(phone)
    phone.set_input_files("#file-input", [str(grey_coffee), str(cat)])
    wait_for_result(phone, count + 1)
    wait_for_queue(phone)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    assert phone.get_by_role("button", name="Download full resolution").is_visible()
    # the divider's knob is a finger's size and lies on the picture
    knob = phone.locator("#divider .divider-knob").bounding_box()
    picture = phone.locator("#picture").bounding_box()
    assert knob["width"] >= 32 and knob["height"] >= 32
    assert picture["x"] <= knob["x"] and knob["x"] + knob["width"] <= picture["x"] + picture["width"]
    download_all = phone.get_by_role("button", name="Download all (.zip)")
    download_all.scroll_into_view_if_needed()
    assert download_all.is_enabled()
    assert download_all.bounding_box()["x"] + download_all.bounding_box()["width"] <= 390
    save_screenshot(phone, "web-phone.png")
    context.close()
