"""Image-quality numbers for colorization, in numpy only (no scipy, no torch).

Every function compares an output with its ground truth. RGB inputs are 8-bit arrays HxWx3
(values 0..255); Lab inputs are float arrays [..., 3] in CIE Lab units.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

RGB_DATA_RANGE = 255.0

# Wang et al. 2004: Gaussian window of sigma 1.5 truncated at radius 5 (11x11), K1 = 0.01, K2 = 0.03.
SSIM_SIGMA = 1.5
SSIM_RADIUS = 5
SSIM_K1 = 0.01
SSIM_K2 = 0.03

# Zhang et al. 2016: the ab-error CDF is read at every integer threshold 0..150.
AUC_MAX_THRESHOLD = 150
# Ground-truth chroma from which a pixel counts as saturated ("the colour that is there to get right").
SATURATED_CHROMA = 20.0


def psnr(output: np.ndarray, reference: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB over all pixels and channels; inf for identical images."""
    _check_same_shape(output, reference)
    mse = np.mean((output.astype(np.float64) - reference.astype(np.float64)) ** 2)
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(RGB_DATA_RANGE**2 / mse))


def ssim(output: np.ndarray, reference: np.ndarray) -> float:
    """Mean structural similarity (Wang et al. 2004), averaged over channels.

    Statistics are taken over the Gaussian window only where it fits inside the image ("valid"
    filtering), so no border padding enters the mean.
    """
    _check_same_shape(output, reference)
    x = _with_channel_axis(np.asarray(output, dtype=np.float64))
    y = _with_channel_axis(np.asarray(reference, dtype=np.float64))
    if min(x.shape[:2]) < 2 * SSIM_RADIUS + 1:
        raise ValueError(f"SSIM needs images of at least {2 * SSIM_RADIUS + 1} px a side, got {x.shape[:2]}")
    # One filtering pass over all five statistics at once is about twice as fast as five passes.
    window_means = _gaussian_window_mean(np.concatenate([x, y, x * x, y * y, x * y], axis=-1))
    mean_x, mean_y, mean_xx, mean_yy, mean_xy = np.split(window_means, 5, axis=-1)
    var_x = mean_xx - mean_x**2
    var_y = mean_yy - mean_y**2
    cov_xy = mean_xy - mean_x * mean_y
    c1 = (SSIM_K1 * RGB_DATA_RANGE) ** 2
    c2 = (SSIM_K2 * RGB_DATA_RANGE) ** 2
    ssim_map = ((2 * mean_x * mean_y + c1) * (2 * cov_xy + c2)) / ((mean_x**2 + mean_y**2 + c1) * (var_x + var_y + c2))
    return float(ssim_map.mean(axis=(0, 1)).mean())


def _with_channel_axis(image: np.ndarray) -> np.ndarray:
    return image[..., np.newaxis] if image.ndim == 2 else image


def _gaussian_kernel() -> np.ndarray:
    offsets = np.arange(-SSIM_RADIUS, SSIM_RADIUS + 1, dtype=np.float64)
    weights = np.exp(-0.5 * (offsets / SSIM_SIGMA) ** 2)
    return weights / weights.sum()


def _gaussian_window_mean(image: np.ndarray) -> np.ndarray:
    """Separable Gaussian filter over axes 0 and 1, keeping only fully covered positions."""
    return _filter_valid(_filter_valid(image, axis=0), axis=1)


def _filter_valid(image: np.ndarray, axis: int) -> np.ndarray:
    kernel = _gaussian_kernel()
    out_length = image.shape[axis] - 2 * SSIM_RADIUS

    def shifted(offset: int) -> np.ndarray:
        window = [slice(None)] * image.ndim
        window[axis] = slice(offset, offset + out_length)
        return image[tuple(window)]

    result = shifted(SSIM_RADIUS) * kernel[SSIM_RADIUS]
    pair = np.empty_like(result)
    # The kernel is symmetric: add the two taps that share a weight before multiplying.
    for offset in range(SSIM_RADIUS):
        np.add(shifted(offset), shifted(2 * SSIM_RADIUS - offset), out=pair)
        pair *= kernel[offset]
        result += pair
    return result


def ciede2000(lab_1: np.ndarray, lab_2: np.ndarray) -> np.ndarray:
    """Per-pixel CIEDE2000 colour difference (Sharma, Wu & Dalal 2005; kL = kC = kH = 1)."""
    _check_same_shape(lab_1, lab_2)
    lab_1 = np.asarray(lab_1, dtype=np.float64)
    lab_2 = np.asarray(lab_2, dtype=np.float64)
    l_1, a_1, b_1 = np.moveaxis(lab_1, -1, 0)
    l_2, a_2, b_2 = np.moveaxis(lab_2, -1, 0)

    mean_chroma = (np.hypot(a_1, b_1) + np.hypot(a_2, b_2)) / 2
    # G stretches a* so that near-neutral colours get hue differences in proportion.
    g = 0.5 * (1 - _chroma_weight(mean_chroma))
    chroma_1 = np.hypot((1 + g) * a_1, b_1)
    chroma_2 = np.hypot((1 + g) * a_2, b_2)
    hue_1 = np.arctan2(b_1, (1 + g) * a_1) % (2 * np.pi)
    hue_2 = np.arctan2(b_2, (1 + g) * a_2) % (2 * np.pi)
    both_chromatic = (chroma_1 * chroma_2) != 0

    hue_step = _wrap_to_pi(hue_2 - hue_1)
    delta_hue = 2 * np.sqrt(chroma_1 * chroma_2) * np.sin(np.where(both_chromatic, hue_step, 0.0) / 2)
    delta_lightness = l_2 - l_1
    delta_chroma = chroma_2 - chroma_1

    mean_lightness = (l_1 + l_2) / 2
    mean_chroma_prime = (chroma_1 + chroma_2) / 2
    # The mean of two angles, taken on the shorter arc; with an achromatic colour the hue is the other's.
    mean_hue = np.where(both_chromatic, (hue_1 + hue_step / 2) % (2 * np.pi), hue_1 + hue_2)

    t = (
        1
        - 0.17 * np.cos(mean_hue - np.radians(30))
        + 0.24 * np.cos(2 * mean_hue)
        + 0.32 * np.cos(3 * mean_hue + np.radians(6))
        - 0.20 * np.cos(4 * mean_hue - np.radians(63))
    )
    rotation_angle = np.radians(30) * np.exp(-(((np.degrees(mean_hue) - 275) / 25) ** 2))
    rotation = -np.sin(2 * rotation_angle) * 2 * _chroma_weight(mean_chroma_prime)
    lightness_from_mid = (mean_lightness - 50) ** 2
    scale_lightness = 1 + 0.015 * lightness_from_mid / np.sqrt(20 + lightness_from_mid)
    scale_chroma = 1 + 0.045 * mean_chroma_prime
    scale_hue = 1 + 0.015 * mean_chroma_prime * t

    term_lightness = delta_lightness / scale_lightness
    term_chroma = delta_chroma / scale_chroma
    term_hue = delta_hue / scale_hue
    squared = term_lightness**2 + term_chroma**2 + term_hue**2 + rotation * term_chroma * term_hue
    return np.sqrt(np.maximum(squared, 0.0))


def _chroma_weight(chroma: np.ndarray) -> np.ndarray:
    """sqrt(C^7 / (C^7 + 25^7)): 0 for neutral colours, towards 1 for saturated ones."""
    chroma_7 = chroma**7
    return np.sqrt(chroma_7 / (chroma_7 + 25.0**7))


def _wrap_to_pi(angle: np.ndarray) -> np.ndarray:
    """Angle difference moved into [-pi, pi], the direction of the shorter arc."""
    return np.where(angle > np.pi, angle - 2 * np.pi, np.where(angle < -np.pi, angle + 2 * np.pi, angle))


def ab_error(lab_output: np.ndarray, lab_reference: np.ndarray) -> np.ndarray:
    """Per-pixel Euclidean distance in the ab plane."""
    _check_same_shape(lab_output, lab_reference)
    difference = np.asarray(lab_output, np.float64)[..., 1:3] - np.asarray(lab_reference, np.float64)[..., 1:3]
    return np.hypot(difference[..., 0], difference[..., 1])


def saturated_mask(lab_reference: np.ndarray) -> np.ndarray:
    """Pixels whose ground-truth chroma sqrt(a^2 + b^2) is at least SATURATED_CHROMA."""
    return np.hypot(lab_reference[..., 1], lab_reference[..., 2]) >= SATURATED_CHROMA


@dataclass
class AbErrorCdf:
    """Cumulative counts of per-pixel ab error, so the CDF can be pooled over many images.

    within[t] is the number of pixels with error <= t for t = 0..150; total counts all pixels.
    """

    within: np.ndarray = field(default_factory=lambda: np.zeros(AUC_MAX_THRESHOLD + 1, dtype=np.int64))
    total: int = 0

    @classmethod
    def of(cls, errors: np.ndarray) -> AbErrorCdf:
        # For an integer t, error <= t exactly when ceil(error) <= t.
        steps = np.minimum(np.ceil(errors.ravel()), AUC_MAX_THRESHOLD + 1).astype(np.int64)
        within = np.cumsum(np.bincount(steps, minlength=AUC_MAX_THRESHOLD + 2))[: AUC_MAX_THRESHOLD + 1]
        return cls(within=within, total=int(errors.size))

    def __add__(self, other: AbErrorCdf) -> AbErrorCdf:
        return AbErrorCdf(within=self.within + other.within, total=self.total + other.total)

    def auc(self) -> float | None:
        """Area under the CDF in %: the mean over t = 0..150 of the fraction of pixels within t; None if empty."""
        if self.total == 0:
            return None
        return float(100.0 * np.mean(self.within / self.total))


def ab_auc(lab_output: np.ndarray, lab_reference: np.ndarray, saturated_only: bool = False) -> float | None:
    """AuC of the ab-error CDF for one image (Zhang et al. 2016), in %; optionally only saturated pixels."""
    errors = ab_error(lab_output, lab_reference)
    if saturated_only:
        errors = errors[saturated_mask(lab_reference)]
    return AbErrorCdf.of(errors).auc()


# Hue families of the Lab hue angle atan2(b, a) in degrees: each family runs from its start to the next's.
HUE_FAMILIES = ("red", "orange/yellow", "green", "blue", "purple")
HUE_FAMILY_STARTS = (0.0, 50.0, 100.0, 200.0, 290.0)
# Output chroma below which a pixel counts as left nearly grey (it then has no hue to be right about).
NEARLY_GREY_CHROMA = 10.0


def hue_family(lab: np.ndarray) -> np.ndarray:
    """Index into HUE_FAMILIES of every pixel's Lab hue angle (meaningless where the chroma is ~0)."""
    hue = np.degrees(np.arctan2(lab[..., 2], lab[..., 1])) % 360.0
    return np.searchsorted(HUE_FAMILY_STARTS, hue, side="right") - 1


@dataclass
class HueFamilyCounts:
    """Counts over the saturated ground-truth pixels, per hue family, so they can be pooled over images.

    truth[f]: pixels whose ground truth is saturated (chroma >= SATURATED_CHROMA) and of family f;
    matched[f]: of those, the output has the same family and chroma >= NEARLY_GREY_CHROMA;
    grey[f]: of those, the output's chroma is below NEARLY_GREY_CHROMA.
    """

    truth: np.ndarray = field(default_factory=lambda: np.zeros(len(HUE_FAMILIES), dtype=np.int64))
    matched: np.ndarray = field(default_factory=lambda: np.zeros(len(HUE_FAMILIES), dtype=np.int64))
    grey: np.ndarray = field(default_factory=lambda: np.zeros(len(HUE_FAMILIES), dtype=np.int64))

    def __add__(self, other: HueFamilyCounts) -> HueFamilyCounts:
        return HueFamilyCounts(self.truth + other.truth, self.matched + other.matched, self.grey + other.grey)

    def recall(self) -> float | None:
        """% of saturated ground-truth pixels given a colour of their own hue family; None if there are none."""
        return _percent(self.matched.sum(), self.truth.sum())

    def grey_share(self) -> float | None:
        """% of saturated ground-truth pixels the output leaves nearly grey; None if there are none."""
        return _percent(self.grey.sum(), self.truth.sum())

    def recall_per_family(self) -> dict[str, float | None]:
        """recall() of each family on its own (None for a family absent from the ground truth)."""
        return {name: _percent(matched, truth) for name, matched, truth in zip(HUE_FAMILIES, self.matched, self.truth)}


def hue_family_recall(lab_output: np.ndarray, lab_reference: np.ndarray) -> HueFamilyCounts:
    """Hue-family counts of one image: for every ground-truth pixel with chroma >= SATURATED_CHROMA, does
    the output give it a colour (chroma >= NEARLY_GREY_CHROMA) of the same hue family, or leave it grey?

    Add the results of several images and call .recall() to pool over all their pixels.
    """
    _check_same_shape(lab_output, lab_reference)
    saturated = saturated_mask(lab_reference)
    truth_family = hue_family(lab_reference[saturated])
    output = lab_output[saturated]
    coloured = np.hypot(output[..., 1], output[..., 2]) >= NEARLY_GREY_CHROMA
    matched = coloured & (hue_family(output) == truth_family)

    def per_family(families: np.ndarray) -> np.ndarray:
        return np.bincount(families, minlength=len(HUE_FAMILIES)).astype(np.int64)

    return HueFamilyCounts(
        truth=per_family(truth_family),
        matched=per_family(truth_family[matched]),
        grey=per_family(truth_family[~coloured]),
    )


def _percent(part: int, whole: int) -> float | None:
    return float(100.0 * part / whole) if whole else None


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler & Suesstrunk 2003 colourfulness of an RGB image with values 0..255."""
    red, green, blue = np.moveaxis(np.asarray(rgb, dtype=np.float64), -1, 0)
    red_green = red - green
    yellow_blue = (red + green) / 2 - blue
    spread = np.hypot(red_green.std(), yellow_blue.std())
    offset = np.hypot(red_green.mean(), yellow_blue.mean())
    return float(spread + 0.3 * offset)


def _check_same_shape(first: np.ndarray, second: np.ndarray) -> None:
    if np.shape(first) != np.shape(second):
        raise ValueError(f"images differ in shape: {np.shape(first)} and {np.shape(second)}")


# Which way is better for the evaluation table's metrics: higher, lower, or (the colourfulness ratio)
# nearer the truth's 1. The share left grey has no better side of its own.
BETTER_WHEN = {
    "psnr": "higher",
    "ciede2000": "lower",
    "auc": "higher",
    "saturated_auc": "higher",
    "hue_recall": "higher",
    "colourfulness_ratio": "nearer one",
}


def at_least_as_good(key: str, value: float, other: float) -> bool:
    """Whether value is at least as good as other on the evaluation table's metric key (see BETTER_WHEN)."""
    better_when = BETTER_WHEN[key]
    if better_when == "higher":
        return value >= other
    if better_when == "lower":
        return value <= other
    return abs(value - 1) <= abs(other - 1)
