"""The web page's reference photo, in real headless Chromium against the real server: the other view
of a red motorcycle (scikit-image's Middlebury stereo pair) makes the greyed view's motorcycle red."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from skimage import data
from test_browser import CHROMIUM, browser, page, result_count, server_url, shown_result, wait_for_result  # noqa: F401
from test_reference import red_paint, share_with_hue

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]
WIDTH = 384


@pytest.fixture(scope="module")
def motorcycle_files(tmp_path_factory):
    """(the left view greyed, the right view in colour, the left view's red paint mask), as files."""
    folder = tmp_path_factory.mktemp("motorcycle")
    left, right, _ = data.stereo_motorcycle()
    size = (WIDTH, round(left.shape[0] * WIDTH / left.shape[1]))
    left, right = (Image.fromarray(view).resize(size, Image.Resampling.LANCZOS) for view in (left, right))
    left.convert("L").save(folder / "motorcycle-grey.png")
    right.save(folder / "garage-in-colour.jpg", quality=92)
    return folder / "motorcycle-grey.png", folder / "garage-in-colour.jpg", red_paint(np.asarray(left))


def test_a_dropped_reference_photo_gives_its_colours_and_can_be_removed(page, motorcycle_files):  # noqa: F811
    grey, reference, paint = motorcycle_files
    count = result_count(page)
    page.set_input_files("#file-input", str(grey))
    wait_for_result(page, count + 1)
    automatic = share_with_hue(shown_result(page), paint, 0, 50)
    assert page.locator("#reference-thumb").is_hidden()

    page.set_input_files("#reference-input", str(reference))
    wait_for_result(page, count + 2)
    assert page.locator("#reference-thumb").is_visible()
    assert page.locator("#reference-thumb").evaluate("img => img.complete && img.naturalWidth") == WIDTH
    guided = share_with_hue(shown_result(page), paint, 0, 50)
    assert guided > 0.7 and guided > automatic + 0.15

    page.get_by_role("button", name="Remove reference").click()
    wait_for_result(page, count + 3)
    assert page.locator("#reference-thumb").is_hidden()
    assert share_with_hue(shown_result(page), paint, 0, 50) == pytest.approx(automatic, abs=0.02)  # as before
