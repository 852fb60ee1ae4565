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


def with_hue_rotated(lab: np.ndarray, degrees: float) -> np.ndarray:
    rotated = lab.copy()
    angle = np.radians(degrees)
    rotated[..., 1] = lab[..., 1] * np.cos(angle) - lab[..., 2] * np.sin(angle)
    rotated[..., 2] = lab[..., 1] * np.sin(angle) + lab[..., 2] * np.cos(angle)
    return rotated


@pytest.fixture(scope="module")
def flower_lab() -> np.ndarray:
    """Red, yellow, green and blue pixels in one photo."""
    return skcolor.rgb2lab(load_sample_image("flower.jpg"))


def test_hue_families_split_the_lab_hue_circle_at_50_100_200_and_290_degrees():
    angles = np.array([0.1, 49.9, 50.1, 99.9, 100.1, 199.9, 200.1, 289.9, 290.1, 359.9])
    lab = np.stack([np.full(angles.shape, 50.0), 40 * np.cos(np.radians(angles)), 40 * np.sin(np.radians(angles))], -1)
    assert metrics.hue_family(lab).tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    # Brick red, mustard, leaf green, sky blue; pure sRGB blue (0, 0, 255) is at 306 degrees: "purple".
    rgb = np.array([[200, 40, 40], [230, 200, 40], [0, 160, 0], [100, 160, 230], [0, 0, 255]], np.uint8)
    families = [metrics.HUE_FAMILIES[index] for index in metrics.hue_family(skcolor.rgb2lab(rgb))]
    assert families == ["red", "orange/yellow", "green", "blue", "purple"]


def test_hue_family_recall_is_total_for_the_truth_and_nil_for_grey(flower_lab, china):
    for truth in (flower_lab, skcolor.rgb2lab(china)):
        counts = metrics.hue_family_recall(truth, truth)
        assert counts.truth.sum() == metrics.saturated_mask(truth).sum() > 0
        assert counts.recall() == 100.0 and counts.grey_share() == 0.0
        grey = truth.copy()
        grey[..., 1:] = 0
        counts = metrics.hue_family_recall(grey, truth)
        assert counts.recall() == 0.0 and counts.grey_share() == 100.0
    per_family = metrics.hue_family_recall(flower_lab, flower_lab).recall_per_family()
    assert per_family == {"red": 100.0, "orange/yellow": 100.0, "green": 100.0, "blue": 100.0, "purple": None}


def test_a_hue_turned_half_way_round_is_never_in_its_family_and_a_slight_turn_mostly_is(flower_lab):
    # The widest family spans 100 degrees, so 180 degrees off always leaves it; chroma is unchanged.
    opposite = metrics.hue_family_recall(with_hue_rotated(flower_lab, 180), flower_lab)
    assert opposite.recall() == 0.0 and opposite.grey_share() == 0.0
    slight = metrics.hue_family_recall(with_hue_rotated(flower_lab, 3), flower_lab)
    assert 90.0 < slight.recall() < 100.0


def test_desaturated_output_counts_as_left_grey_exactly_below_output_chroma_10(flower_lab):
    faded = flower_lab.copy()
    faded[..., 1:] *= 0.3
    counts = metrics.hue_family_recall(faded, flower_lab)
    truth_chroma = np.hypot(flower_lab[..., 1], flower_lab[..., 2])
    saturated = truth_chroma[truth_chroma >= 20]
    assert counts.grey_share() == pytest.approx(100.0 * np.mean(saturated * 0.3 < 10), abs=1e-9)
    # Fading keeps the hue: whatever is not left grey keeps its family.
    assert counts.recall() + counts.grey_share() == pytest.approx(100.0)
    assert 0 < counts.grey_share() < 100


def test_hue_family_counts_pool_pixels_not_image_means(flower_lab, china):
    china_lab = skcolor.rgb2lab(china)
    height = min(flower_lab.shape[0], china_lab.shape[0])
    truths = [flower_lab[:height], china_lab[:height]]
    outputs = [with_hue_rotated(truth, 40) for truth in truths]
    per_image = [metrics.hue_family_recall(output, truth) for output, truth in zip(outputs, truths)]
    pooled = per_image[0] + per_image[1]
    side_by_side = metrics.hue_family_recall(np.concatenate(outputs, axis=1), np.concatenate(truths, axis=1))
    for name in ("truth", "matched", "grey"):
        np.testing.assert_array_equal(getattr(pooled, name), getattr(side_by_side, name))
    assert pooled.recall() == pytest.approx(side_by_side.recall())
    assert pooled.recall() != pytest.approx(np.mean([counts.recall() for counts in per_image]))
    assert metrics.HueFamilyCounts().recall() is None and metrics.HueFamilyCounts().grey_share() is None
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.hue_family_recall(outputs[0][:10], truths[0])
