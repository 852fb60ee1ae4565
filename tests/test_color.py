import numpy as np
import pytest
from conftest import photo_rgb

from colorit.color import (
    L_to_luminance,
    color_at_luminance,
    lab_planes_to_rgb,
    lab_to_rgb,
    luminance_L,
    luminance_to_L,
    rgb_to_lab,
    srgb_to_linear,
)


def test_reference_colours_match_published_lab_values():
    # CIE Lab (D65) of the sRGB primaries and white, as tabulated e.g. by Bruce Lindbloom's calculator.
    rgb = np.array([[1, 1, 1], [0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32)
    expected = [[100, 0, 0], [0, 0, 0], [53.24, 80.09, 67.20], [87.73, -86.18, 83.18], [32.30, 79.19, -107.86]]
    np.testing.assert_allclose(rgb_to_lab(rgb), expected, atol=0.02)


def test_lab_round_trip_on_a_photo_is_exact():
    rgb = photo_rgb("astronaut").astype(np.float32) / 255
    np.testing.assert_allclose(lab_to_rgb(rgb_to_lab(rgb)), rgb, atol=1e-4)


def test_gamut_clip_keeps_luminance_and_only_desaturates():
    rng = np.random.default_rng(1)
    lab = np.stack([rng.uniform(0, 100, 20000), rng.normal(0, 90, 20000), rng.normal(0, 90, 20000)], axis=-1)
    lab = lab.astype(np.float32)
    rgb = lab_to_rgb(lab)
    assert rgb.min() >= 0 and rgb.max() <= 1
    back = rgb_to_lab(rgb)
    np.testing.assert_allclose(back[:, 0], lab[:, 0], atol=2e-3)
    # most of these colours are outside sRGB: clipping must have happened, towards grey
    chroma_in, chroma_out = np.hypot(lab[:, 1], lab[:, 2]), np.hypot(back[:, 1], back[:, 2])
    assert (chroma_out < chroma_in - 1).mean() > 0.3
    assert (chroma_out <= chroma_in + 1e-2).all()


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_integer_outputs_agree_with_float_output(dtype):
    rng = np.random.default_rng(2)
    L = rng.uniform(0, 100, (64, 80)).astype(np.float32)
    a, b = (rng.normal(0, 40, (64, 80)).astype(np.float32) for _ in range(2))
    full = np.iinfo(dtype).max
    exact = lab_planes_to_rgb(L, a, b) * full
    quantised = lab_planes_to_rgb(L, a, b, dtype)
    assert quantised.dtype == dtype and quantised.shape == (64, 80, 3)
    assert np.abs(quantised - exact).max() <= 0.5 + 1e-3 * full


def test_out_argument_fills_a_view_of_a_larger_array():
    rng = np.random.default_rng(3)
    L = rng.uniform(0, 100, (10, 12)).astype(np.float32)
    a, b = (rng.normal(0, 30, (10, 12)).astype(np.float32) for _ in range(2))
    rgba = np.full((10, 12, 4), 7, dtype=np.uint8)
    lab_planes_to_rgb(L, a, b, out=rgba[..., :3])
    np.testing.assert_array_equal(rgba[..., :3], lab_planes_to_rgb(L, a, b, np.uint8))
    assert (rgba[..., 3] == 7).all()


def test_luminance_of_grey_codes_matches_lab_of_grey_rgb():
    codes = np.arange(256, dtype=np.uint8)
    grey_rgb = np.repeat(codes[:, None], 3, axis=1).astype(np.float32) / 255
    np.testing.assert_allclose(luminance_L(codes[None])[0], rgb_to_lab(grey_rgb)[:, 0], atol=1e-3)
    # 16-bit codes v * 257 are the same greys
    np.testing.assert_allclose(luminance_L(codes[None].astype(np.uint16) * 257), luminance_L(codes[None]), atol=1e-3)
    np.testing.assert_allclose(luminance_L(codes[None].astype(np.float32) / 255), luminance_L(codes[None]), atol=1e-3)


def test_luminance_of_a_colour_photo_is_its_lab_L():
    rgb = photo_rgb("coffee")
    np.testing.assert_allclose(luminance_L(rgb), rgb_to_lab(rgb)[..., 0], atol=1e-3)


def test_luminance_rejects_unsupported_pixels():
    with pytest.raises(TypeError):
        luminance_L(np.zeros((4, 4), dtype=np.int32))
    with pytest.raises(ValueError):
        luminance_L(np.zeros((4, 4, 5), dtype=np.uint8))


def test_colour_at_its_own_luminance_is_itself():
    for rgb in ([1.0, 0.0, 0.0], [0.2, 0.5, 0.9], [0.9, 0.8, 0.1]):
        own = float(srgb_to_linear(np.array(rgb)) @ np.array([0.2126729, 0.7151522, 0.0721750]))
        np.testing.assert_allclose(
            color_at_luminance(np.array(rgb), own), rgb_to_lab(np.array(rgb, np.float32)), atol=0.05
        )


def test_colour_moved_to_another_luminance_keeps_its_chromaticity():
    rgb = np.array([0.69, 0.25, 0.19])
    darker = 0.05  # darkening never leaves the gamut, so nothing is clipped
    lab = color_at_luminance(rgb, darker)
    assert lab[0] == pytest.approx(float(luminance_to_L(darker)), abs=1e-3)
    linear_out = srgb_to_linear(lab_to_rgb(lab))
    linear_in = srgb_to_linear(rgb)
    np.testing.assert_allclose(linear_out / linear_out.sum(), linear_in / linear_in.sum(), atol=2e-3)
    # black has no chromaticity: grey at the requested luminance
    black = color_at_luminance(np.zeros(3), 0.3)
    assert abs(black[1]) < 1e-3 and abs(black[2]) < 1e-3
    assert float(L_to_luminance(black[0])) == pytest.approx(0.3, abs=1e-4)
