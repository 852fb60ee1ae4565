import math

import numpy as np
import pytest
from conftest import chroma, grey_of, mean_dL, photo_rgb
from hypothesis import given, settings
from hypothesis import strategies as st

from colorit import pipeline
from colorit.color import luminance_L, rgb_to_lab
from colorit.errors import HintError
from colorit.pipeline import colorize_array, working_size


def test_grey_photo_gets_colour_at_full_size_with_its_luminance(grey_photo, default_model):
    out = colorize_array(grey_photo, default_model)
    assert out.shape == grey_photo.shape + (3,) and out.dtype == np.uint8
    assert mean_dL(out, grey_photo) < 0.5
    assert chroma(out).mean() > 1, "the output has colour"


def test_both_bundled_models_keep_luminance(seed_model):
    grey = grey_of(photo_rgb("astronaut", 200))
    out = colorize_array(grey, seed_model)
    assert out.shape == (200, 200, 3) and mean_dL(out, grey) < 0.5


def test_render_size_changes_work_not_output_size(default_model):
    grey = grey_of(photo_rgb("china", 240))
    small, large = (colorize_array(grey, default_model, render_size=size) for size in (64, 240))
    assert small.shape == large.shape == grey.shape + (3,)
    assert mean_dL(small, grey) < 0.5 and mean_dL(large, grey) < 0.5
    assert not np.array_equal(small, large)


@pytest.mark.parametrize(
    "size, render, expected",
    [
        ((4000, 3000), 384, (384, 288)),
        ((3000, 4000), 384, (288, 384)),
        ((200, 100), 384, (200, 100)),
        ((10000, 10), 384, (384, 1)),
    ],
)
def test_working_size_keeps_aspect_and_never_upscales(size, render, expected):
    assert working_size(*size, render) == expected


def test_sixteen_bit_input_keeps_sixteen_bit_precision(default_model):
    grey16 = grey_of(photo_rgb("grace_hopper"), np.uint16)
    out = colorize_array(grey16, default_model)
    assert out.dtype == np.uint16 and out.shape == grey16.shape + (3,)
    assert mean_dL(out, grey16) < 0.05, "16-bit output keeps luminance far finer than 8-bit could"
    assert np.count_nonzero(out % 257) > out.size // 2, "values are not just 8-bit values scaled up"


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_alpha_channel_is_kept_exactly(default_model, dtype):
    rgb = photo_rgb("chelsea").astype(dtype) * (257 if dtype == np.uint16 else 1)
    height, width = rgb.shape[:2]
    alpha = (np.linspace(0, np.iinfo(dtype).max, width)[None, :] * np.ones((height, 1))).astype(dtype)
    for pixels in (np.dstack([rgb, alpha]), np.dstack([grey_of(rgb), alpha])):
        out = colorize_array(pixels, default_model)
        assert out.shape == (height, width, 4) and out.dtype == dtype
        np.testing.assert_array_equal(out[..., 3], alpha)
        assert mean_dL(out[..., :3], pixels[..., :-1] if pixels.shape[-1] == 4 else pixels[..., 0]) < 0.5


def test_colour_input_is_colorized_from_its_luminance(default_model):
    rgb = photo_rgb("coffee")
    from_colour, from_grey = colorize_array(rgb, default_model), colorize_array(grey_of(rgb), default_model)
    assert mean_dL(from_colour, rgb) < 0.5
    # the greyed copy differs only by rounding L to 8-bit greys, so the colours barely differ
    assert np.abs(from_colour.astype(int) - from_grey).mean() < 2.5


def test_sepia_input_loses_its_tint(default_model):
    grey = grey_of(photo_rgb("astronaut"))
    sepia = np.clip(grey[..., None] * np.array([1.07, 0.74, 0.43]) + np.array([20, 18, 10]), 0, 255).astype(np.uint8)
    out, reference = colorize_array(sepia, default_model), colorize_array(grey_of(sepia), default_model)
    assert mean_dL(out, sepia) < 0.5
    assert np.abs(out.astype(int) - reference).mean() < 2.5


def test_saturation_scales_chroma(default_model):
    grey = grey_of(photo_rgb("chelsea"))
    none, normal, double = (colorize_array(grey, default_model, saturation=s) for s in (0.0, 1.0, 2.0))
    assert np.abs(none.astype(int) - none[..., :1]).max() <= 1, "saturation 0 gives grey"
    assert chroma(double).mean() > 1.3 * chroma(normal).mean()  # less than 2x where the gamut clips
    assert mean_dL(double, grey) < 0.5
    with pytest.raises(ValueError):
        colorize_array(grey, default_model, saturation=-1)


@pytest.mark.parametrize("shape", [(1, 1), (1, 300), (300, 1), (2, 3), (33, 65)])
def test_tiny_and_thin_images_work(default_model, shape):
    grey = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    out = colorize_array(grey, default_model)
    assert out.shape == shape + (3,) and mean_dL(out, grey) < 0.5


def test_strips_join_seamlessly(default_model, monkeypatch):
    """A photo larger than the working size, recombined in strips of 7 rows and in one piece: the same
    colours. Each strip's box is computed in floating point, so a channel that falls on a rounding edge of
    the 8-bit output may differ by one level, at a few scattered pixels; a seam would differ along rows."""
    grey = grey_of(photo_rgb("grace_hopper", 300))
    assert max(grey.shape) > default_model.default_render_size  # ab is upsampled: the strips' boxes matter
    whole = colorize_array(grey, default_model).astype(int)
    monkeypatch.setattr(pipeline, "STRIP_PIXELS", 7 * grey.shape[1])
    in_strips = colorize_array(grey, default_model).astype(int)
    differ = np.abs(in_strips - whole).max(axis=2)
    assert differ.max() <= 1 and np.count_nonzero(differ) <= differ.size // 10_000


@pytest.mark.parametrize("shape", [(1, 1), (31, 33), (64, 96), (100, 7)])
def test_predict_pads_and_crops_back(default_model, seed_model, shape):
    L = np.random.default_rng(0).uniform(0, 100, shape).astype(np.float32)
    for session in (default_model, seed_model):
        ab, confidence = session.predict(L)
        assert ab.shape == (2,) + shape and ab.dtype == np.float32 and np.isfinite(ab).all()
        assert confidence is None or (confidence.shape == shape and confidence.dtype == np.float32)


def test_model_without_hint_input_refuses_hints(seed_model):
    grey = grey_of(photo_rgb("coffee", 64))
    with pytest.raises(HintError, match="takes no hints"):
        colorize_array(grey, seed_model, hints=[{"x": 3, "y": 3, "color": "#ff0000"}])
    assert colorize_array(grey, seed_model, hints=[]).shape == grey.shape + (3,)


def _hue(ab: np.ndarray) -> float:
    return math.degrees(math.atan2(ab[1], ab[0]))


def test_red_hint_makes_its_region_red_and_leaves_far_regions_alone(default_model):
    """Meaningful with the trained default model: a red point hint recolours the region around it, and
    most of the far third stays as it was. (The network's hint attention may carry the hint to the same
    fur on the far side: that part of the cat can change, the rest of the picture not.)"""
    grey = grey_of(photo_rgb("chelsea", 256))
    L = luminance_L(grey)
    height, width = grey.shape
    # a mid-grey point in the left third, where red can be saturated
    ys, xs = np.mgrid[20 : height - 20, 20 : width // 3]
    y, x = min(zip(ys.ravel(), xs.ravel()), key=lambda p: abs(L[p] - 50))
    hints = [{"x": float(x) + 0.5, "y": float(y) + 0.5, "color": "#e01010", "radius": 3}]
    plain = rgb_to_lab(colorize_array(grey, default_model))
    hinted = rgb_to_lab(colorize_array(grey, default_model, hints=hints))
    region = hinted[y - 2 : y + 3, x - 2 : x + 3, 1:].reshape(-1, 2).mean(axis=0)
    assert -15 < _hue(region) < 75, f"hue {_hue(region):.0f} deg is not red"
    assert np.hypot(*region) > 20
    far = np.abs(hinted[:, 2 * width // 3 :, 1:] - plain[:, 2 * width // 3 :, 1:]).sum(axis=-1)
    near = np.abs(hinted[y - 2 : y + 3, x - 2 : x + 3, 1:] - plain[y - 2 : y + 3, x - 2 : x + 3, 1:]).sum(axis=-1)
    assert np.median(far) < 3  # at least half of the far third unchanged
    assert far.mean() < near.mean() / 4


@settings(max_examples=25, deadline=None)
@given(
    height=st.integers(1, 300),
    width=st.integers(1, 300),
    channels=st.sampled_from([1, 2, 3, 4]),
    dtype=st.sampled_from([np.uint8, np.uint16]),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_size_layout_and_depth(default_model, height, width, channels, dtype, seed):
    rng = np.random.default_rng(seed)
    shape = (height, width) if channels == 1 else (height, width, channels)
    pixels = rng.integers(0, np.iinfo(dtype).max + 1, shape, dtype=dtype)
    out = colorize_array(pixels, default_model)
    assert out.dtype == dtype and out.shape == (height, width, 4 if channels in (2, 4) else 3)
    colour = pixels if channels == 1 else pixels[..., 0] if channels == 2 else pixels[..., :3]
    assert mean_dL(out[..., :3], colour) < 0.5
    if channels in (2, 4):
        np.testing.assert_array_equal(out[..., 3], pixels[..., -1])


GREY_SUBJECTS = ("moon", "clock", "text", "coins", "camera")
# Issue 19's bound, not reached by the bundled default for these (the README's targets table, from
# benchmarks/grey_subjects.py): it paints the moon's craters red, the clock's wall and the coins' cloth
# blue, and the cameraman gets a blue sky and a green lawn, right for that photo but above it. Strict: a
# model that meets the bound makes these fail until the mark is taken off.
NOT_YET_QUIET = pytest.mark.xfail(strict=True, reason="the retrained default is too colourful here (README targets)")


@pytest.mark.parametrize(
    "name", [pytest.param(name, marks=NOT_YET_QUIET) if name != "text" else name for name in GREY_SUBJECTS]
)
def test_genuinely_grey_subjects_stay_quiet(default_model, name):
    """Moon craters, a clock, chalk on a slate, coins, a cameraman: a colorizer that paints these magenta
    and green has learnt that everything is colourful (Hasler & Suesstrunk: below 20 is "slightly colourful")."""
    from skimage import data

    from colorit.metrics import colourfulness

    assert colourfulness(colorize_array(getattr(data, name)(), default_model)) <= 20


@pytest.mark.parametrize("name", GREY_SUBJECTS)
def test_grey_subjects_keep_their_own_luminance(default_model, name):
    from skimage import data

    grey = getattr(data, name)()
    assert mean_dL(colorize_array(grey, default_model), grey) < 0.5
