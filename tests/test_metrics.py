"""colorit.metrics against published values and independent implementations, on real photos."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import color as skcolor
from skimage import data
from skimage import metrics as skmetrics
from sklearn.datasets import load_sample_image

from colorit import metrics

# Sharma, Wu & Dalal (2005), "The CIEDE2000 color-difference formula: implementation notes,
# supplementary test data, and mathematical observations", Table 1: L1 a1 b1, L2 a2 b2, dE00.
# Pairs 9-15 straddle the hue-angle wrap-around that naive implementations get wrong.
SHARMA_PAIRS = np.array(
    [
        (50, 2.6772, -79.7751, 50, 0, -82.7485, 2.0425),
        (50, 3.1571, -77.2803, 50, 0, -82.7485, 2.8615),
        (50, 2.8361, -74.0200, 50, 0, -82.7485, 3.4412),
        (50, -1.3802, -84.2814, 50, 0, -82.7485, 1.0000),
        (50, 0, 0, 50, -1, 2, 2.3669),
        (50, -1, 2, 50, 0, 0, 2.3669),
        (50, 2.49, -0.001, 50, -2.49, 0.0009, 7.1792),
        (50, 2.49, -0.001, 50, -2.49, 0.0011, 7.2195),
        (50, -0.001, 2.49, 50, 0.0009, -2.49, 4.8045),
        (50, -0.001, 2.49, 50, 0.0011, -2.49, 4.7461),
        (50, 2.5, 0, 50, 0, -2.5, 4.3065),
        (50, 2.5, 0, 73, 25, -18, 27.1492),
        (50, 2.5, 0, 61, -5, 29, 22.8977),
        (50, 2.5, 0, 56, -27, -3, 31.9030),
        (50, 2.5, 0, 58, 24, 15, 19.4535),
        (60.2574, -34.0099, 36.2677, 60.4626, -34.1751, 39.4387, 1.2644),
    ]
)


def skimage_ssim(output: np.ndarray, reference: np.ndarray) -> float:
    """Wang et al.'s SSIM as scikit-image documents the settings that reproduce it."""
    return skmetrics.structural_similarity(
        output,
        reference,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255,
        channel_axis=-1 if output.ndim == 3 else None,
    )


def noisy(image: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0.0, sigma, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert(Image.fromarray(image).mode))


def with_chroma_scaled(rgb: np.ndarray, factor: float) -> np.ndarray:
    lab = skcolor.rgb2lab(rgb)
    lab[..., 1:] *= factor
    return (np.clip(skcolor.lab2rgb(lab), 0, 1) * 255).round().astype(np.uint8)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return data.astronaut()


@pytest.fixture(scope="module")
def china() -> np.ndarray:
    return load_sample_image("china.jpg")


@pytest.mark.parametrize("sigma", [3.0, 20.0, 60.0])
def test_psnr_and_ssim_match_scikit_image_on_noisy_photo(astronaut, sigma):
    degraded = noisy(astronaut, sigma)
    assert metrics.psnr(degraded, astronaut) == pytest.approx(
        skmetrics.peak_signal_noise_ratio(astronaut, degraded, data_range=255), abs=1e-9
    )
    assert metrics.ssim(degraded, astronaut) == pytest.approx(skimage_ssim(degraded, astronaut), abs=1e-9)


def test_psnr_and_ssim_match_scikit_image_on_compressed_and_grey_photos(china):
    compressed = jpeg_roundtrip(china, quality=10)
    assert metrics.psnr(compressed, china) == pytest.approx(
        skmetrics.peak_signal_noise_ratio(china, compressed, data_range=255), abs=1e-9
    )
    assert metrics.ssim(compressed, china) == pytest.approx(skimage_ssim(compressed, china), abs=1e-9)
    camera = data.camera()
    shifted = np.roll(camera, 2, axis=1)
    assert metrics.ssim(shifted, camera) == pytest.approx(skimage_ssim(shifted, camera), abs=1e-9)


def test_psnr_and_ssim_order_degradations_and_are_exact_for_identical_images(astronaut):
    assert metrics.psnr(astronaut, astronaut) == float("inf")
    assert metrics.ssim(astronaut, astronaut) == pytest.approx(1.0, abs=1e-12)
    mild, strong = noisy(astronaut, 5.0), noisy(astronaut, 40.0)
    assert metrics.psnr(strong, astronaut) < metrics.psnr(mild, astronaut) < 60
    assert metrics.ssim(strong, astronaut) < metrics.ssim(mild, astronaut) < 1.0


def test_metrics_refuse_images_of_different_shapes(astronaut):
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.psnr(astronaut[:100], astronaut)
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.ciede2000(skcolor.rgb2lab(astronaut[:, :100]), skcolor.rgb2lab(astronaut))


def test_ciede2000_reproduces_sharmas_published_test_data():
    differences = metrics.ciede2000(SHARMA_PAIRS[:, :3], SHARMA_PAIRS[:, 3:6])
    np.testing.assert_allclose(differences, SHARMA_PAIRS[:, 6], atol=5e-5)


def test_ciede2000_matches_scikit_image_on_real_photos(astronaut, china):
    height, width = 400, 500
    first = skcolor.rgb2lab(astronaut[:height, :width])
    others = [
        skcolor.rgb2lab(china[:height, :width]),
        skcolor.rgb2lab(data.coffee()[:height, :width]),
        skcolor.rgb2lab(with_chroma_scaled(astronaut[:height, :width], 0.4)),
    ]
    for other in others:
        ours = metrics.ciede2000(first, other)
        assert ours.shape == (height, width)
        np.testing.assert_allclose(ours, skcolor.deltaE_ciede2000(first, other), atol=1e-9)
        np.testing.assert_allclose(ours, metrics.ciede2000(other, first), atol=1e-9)
    assert np.all(metrics.ciede2000(first, first) == 0)


def test_ab_auc_is_100_for_identical_images_and_falls_as_ab_error_grows(china):
    truth = skcolor.rgb2lab(china)
    assert metrics.ab_auc(truth, truth) == 100.0
    aucs = []
    for chroma in (0.8, 0.5, 0.0):
        output = skcolor.rgb2lab(with_chroma_scaled(china, chroma))
        aucs.append(metrics.ab_auc(output, truth))
    assert 100.0 > aucs[0] > aucs[1] > aucs[2] > 50.0


def test_ab_auc_of_a_uniform_ab_shift_counts_the_thresholds_it_misses(china):
    truth = skcolor.rgb2lab(china)
    shifted = truth.copy()
    shifted[..., 1] += 6.3
    shifted[..., 2] -= 8.4  # every pixel is off by 10.5 in ab: within t for t = 11..150
    assert metrics.ab_auc(shifted, truth) == pytest.approx(100.0 * 140 / 151)


def test_pooled_error_cdf_equals_the_cdf_of_all_pixels_together(astronaut, china):
    errors = [
        metrics.ab_error(skcolor.rgb2lab(with_chroma_scaled(image, 0.3)), skcolor.rgb2lab(image))
        for image in (astronaut, china)
    ]
    pooled = metrics.AbErrorCdf.of(errors[0]) + metrics.AbErrorCdf.of(errors[1])
    everything = np.concatenate([error.ravel() for error in errors])
    direct = 100.0 * np.mean([np.mean(everything <= threshold) for threshold in range(151)])
    assert pooled.total == everything.size
    assert pooled.auc() == pytest.approx(direct, abs=1e-9)
    assert metrics.AbErrorCdf().auc() is None


def test_saturated_auc_ignores_grey_pixels(astronaut):
    truth = skcolor.rgb2lab(astronaut)
    saturated = metrics.saturated_mask(truth)
    assert 0.05 < saturated.mean() < 0.95  # the photo has both kinds of pixels
    wrong_where_grey = truth.copy()
    wrong_where_grey[~saturated, 1] += 60.0
    assert metrics.ab_auc(wrong_where_grey, truth, saturated_only=True) == 100.0
    assert metrics.ab_auc(wrong_where_grey, truth) < 100.0 - 30.0 * (~saturated).mean()
    wrong_where_saturated = truth.copy()
    wrong_where_saturated[saturated, 1] += 60.0
    assert metrics.ab_auc(wrong_where_saturated, truth, saturated_only=True) < 70.0


def test_saturated_auc_of_a_grey_ground_truth_is_undefined():
    grey = skcolor.rgb2lab(skcolor.gray2rgb(data.camera()))
    assert metrics.ab_auc(grey, grey, saturated_only=True) is None


def test_colourfulness_is_zero_for_grey_high_for_colourful_photos_and_follows_chroma(china):
    assert metrics.colourfulness(skcolor.gray2rgb(data.camera())) == 0.0
    flower = load_sample_image("flower.jpg")
    assert metrics.colourfulness(flower) > 50  # "highly colourful" starts at 59 on Hasler & Suesstrunk's scale
    assert metrics.colourfulness(china) > 30
    values = [metrics.colourfulness(with_chroma_scaled(flower, factor)) for factor in (1.0, 0.6, 0.3)]
    assert values[0] > values[1] > values[2] > 0


def test_colourfulness_of_a_uniform_colour_is_its_weighted_opponent_mean():
    red = np.zeros((8, 8, 3), dtype=np.uint8)
    red[..., 0] = 255
    # rg = 255 and yb = 127.5 everywhere: no spread, so 0.3 * hypot(255, 127.5).
    assert metrics.colourfulness(red) == pytest.approx(0.3 * np.hypot(255.0, 127.5))
