"""The page's "where the model is unsure" overlay, in real headless Chromium against the real server."""
# The fixtures of test_browser are imported, and pytest passes them to the tests by name:
# ruff: noqa: F811

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image
from test_browser import (  # noqa: F401 (browser, grey_coffee, page and server_url are pytest fixtures)
    ARTIFACTS,
    CHROMIUM,
    browser,
    grey_coffee,
    page,
    result_count,
    screen_point,
    server_url,
    upload_and_wait,
    wait_for_result,
)

from colorit import colorize

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]


def overlay_alpha(page) -> np.ndarray:
    """The overlay canvas's alpha (0..255) as the page drew it."""
    url = page.evaluate("document.getElementById('unsure-overlay').toDataURL('image/png')")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGBA"))[..., 3]


def wait_for_overlay(page, count: int) -> None:
    page.wait_for_function("n => Number(document.body.dataset.unsureCount || 0) >= n", arg=count, timeout=60_000)


def test_the_unsure_overlay_tints_the_low_confidence_places_and_follows_the_pins(page, grey_coffee):
    upload_and_wait(page, grey_coffee)
    toggle = page.get_by_label("Where the model is unsure")
    legend = page.get_by_text("Where the model is unsure: put a hint here")
    assert not page.locator("#unsure-overlay").is_visible() and not legend.is_visible()

    toggle.check()
    wait_for_overlay(page, 1)
    assert page.locator("#unsure-overlay").is_visible() and legend.is_visible()
    alpha = overlay_alpha(page).astype(np.float64)
    _, confidence = colorize(Image.open(grey_coffee), with_confidence=True)
    unsureness = 255 - np.asarray(confidence, dtype=np.float64)
    assert alpha.shape == unsureness.shape  # 600 x 400: drawn at full size below 1024 px
    # The tint is strongest where the model is least sure, and fades out where it is sure.
    assert np.corrcoef(alpha.ravel(), unsureness.ravel())[0, 1] > 0.8
    least_sure, most_sure = np.quantile(unsureness, [0.9, 0.1])
    assert alpha[unsureness >= least_sure].mean() > alpha[unsureness <= most_sure].mean() + 50
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-unsure.png"))

    # A pin changes what the network sees: the overlay is fetched again for the new result.
    count = result_count(page)
    page.mouse.click(*screen_point(page, 400, 200))  # off the before/after divider, which takes the middle
    wait_for_result(page, count + 1)
    wait_for_overlay(page, 2)

    toggle.uncheck()
    assert not page.locator("#unsure-overlay").is_visible() and not legend.is_visible()


def test_a_model_without_confidence_turns_the_overlay_off_with_a_message(page, grey_coffee):
    upload_and_wait(page, grey_coffee)
    count = result_count(page)
    page.get_by_label("Model", exact=True).select_option("seed-ae")
    wait_for_result(page, count + 1)
    page.get_by_label("Where the model is unsure").check()
    message = page.get_by_role("alert")
    message.wait_for(state="visible")
    assert "seed-ae: gives no confidence" in message.inner_text()
    assert not page.get_by_label("Where the model is unsure").is_checked()
    assert not page.locator("#unsure-overlay").is_visible()
