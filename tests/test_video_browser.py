"""The page's film player in real headless Chromium (Debian's package) through Playwright, against the
real server: a clip is sent as a job, its progress shown, and the result plays beside the original."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image
from skimage import color
from test_browser import CHROMIUM, browser, page, save_screenshot, server_url  # noqa: F401 - fixtures
from video_clips import greyed, pan_frames, write_film

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]
FRAMES = 25  # one second at 25 frames/s


@pytest.fixture
def tab(page):  # noqa: F811 - test_browser's fresh tab on the real server
    return page


@pytest.fixture(scope="module")
def grey_clip(tmp_path_factory):
    return write_film(tmp_path_factory.mktemp("films") / "street.mp4", greyed(pan_frames("chelsea", FRAMES)))


def wait_for_players(tab) -> None:
    tab.wait_for_function(
        """() => !document.getElementById('film-players').hidden
            && document.getElementById('film-result').readyState >= 2
            && document.getElementById('film-original').readyState >= 2""",
        timeout=120_000,
    )


def video_pixels(tab, element_id: str) -> np.ndarray:
    """The frame a player shows, read back through a canvas."""
    url = tab.evaluate(
        """(id) => {
            const video = document.getElementById(id);
            const canvas = document.createElement('canvas');
            canvas.width = video.videoWidth;
            canvas.height = video.videoHeight;
            canvas.getContext('2d').drawImage(video, 0, 0);
            return canvas.toDataURL('image/png');
        }""",
        element_id,
    )
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))


def mean_chroma(rgb: np.ndarray) -> float:
    lab = color.rgb2lab(rgb)
    return float(np.hypot(lab[..., 1], lab[..., 2]).mean())


def test_a_film_plays_beside_its_original(tab, grey_clip):
    tab.set_input_files("#film-input", str(grey_clip))
    tab.wait_for_function("() => document.getElementById('film-status').textContent.includes('street.mp4')")
    wait_for_players(tab)
    facts = tab.evaluate(
        """() => ['film-original', 'film-result'].map((id) => {
            const video = document.getElementById(id);
            return [video.videoWidth, video.videoHeight, video.duration];
        })"""
    )
    for width, height, duration in facts:
        assert (width, height) == (160, 120) and duration == pytest.approx(FRAMES / 25, abs=0.05)
    assert mean_chroma(video_pixels(tab, "film-original")) < 1.0
    assert mean_chroma(video_pixels(tab, "film-result")) > 2.0
    # Playing the colorized film plays the original with it.
    tab.evaluate("() => document.getElementById('film-result').play()")
    tab.wait_for_function("() => !document.getElementById('film-original').paused")
    tab.evaluate("() => document.getElementById('film-result').pause()")
    tab.wait_for_function("() => document.getElementById('film-original').paused")
    href = tab.get_attribute("#film-download", "href")
    assert href.startswith("/api/video-jobs/") and href.endswith("/result")
    with tab.expect_download() as download:
        tab.click("#film-download")
    assert download.value.suggested_filename == "street-colorized.mp4"
    save_screenshot(tab, "web-film.png")


def test_a_film_dropped_on_the_page_goes_to_the_film_player(tab, grey_clip):
    data = base64.b64encode(grey_clip.read_bytes()).decode()
    tab.evaluate(
        """(data) => {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], 'dropped.mp4', { type: 'video/mp4' }));
            document.getElementById('dropzone').dispatchEvent(
                new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
        }""",
        data,
    )
    wait_for_players(tab)
    assert tab.evaluate("() => document.body.dataset.state") == "empty"  # the photo viewer was not asked


def test_a_file_that_is_no_film_is_said_so(tab, tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("not a film")
    tab.set_input_files("#film-input", str(text))
    tab.wait_for_function("() => !document.getElementById('film-message').hidden")
    assert "not a readable video" in tab.text_content("#film-message")
    assert tab.is_hidden("#film-players")
