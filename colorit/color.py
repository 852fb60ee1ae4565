"""sRGB (D65) <-> CIE Lab in numpy float32, with a gamut clip that keeps luminance exactly.

Luminance Y is a fixed linear combination of linear-light R, G, B, and a grey of luminance Y is
(Y, Y, Y). Blending an out-of-gamut colour towards that grey in linear RGB therefore leaves Y, and
with it L, untouched; clamping channels one by one would not.
"""

from __future__ import annotations

import functools

import numpy as np

# Linear sRGB -> XYZ (IEC 61966-2-1). The white point is taken from the matrix's row sums so that
# R = G = B maps exactly onto the neutral axis (a = b = 0).
RGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ],
    dtype=np.float64,
)
XYZ_TO_RGB = np.linalg.inv(RGB_TO_XYZ)
WHITE_X, WHITE_Y, WHITE_Z = RGB_TO_XYZ.sum(axis=1)
LUMA_WEIGHTS = (RGB_TO_XYZ[1] / WHITE_Y).astype(np.float32)  # Y of linear R, G, B

_DELTA = 6.0 / 29.0
# Index resolution of the linear -> 8-bit sRGB table: fine enough that even the darkest codes,
# where sRGB is steepest (0.0003 linear per code), land on the right value.
_LINEAR_STEPS = 65535
_LOOKUP_CHUNK = 1 << 20


def srgb_to_linear(v: np.ndarray) -> np.ndarray:
    """sRGB-encoded values in 0..1 -> linear light, float32."""
    v = np.asarray(v, dtype=np.float32)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(v: np.ndarray) -> np.ndarray:
    """Linear light in 0..1 -> sRGB-encoded values, float32."""
    v = np.clip(np.asarray(v, dtype=np.float32), 0.0, 1.0)
    return np.where(v <= 0.0031308, v * 12.92, 1.055 * v ** (1 / 2.4) - 0.055).astype(np.float32)


def _lab_f(t: np.ndarray) -> np.ndarray:
    return np.where(t > _DELTA**3, np.cbrt(t), t / (3 * _DELTA**2) + 4.0 / 29.0).astype(np.float32)


def _lab_f_inverse(t: np.ndarray) -> np.ndarray:
    return np.where(t > _DELTA, t * t * t, 3 * _DELTA**2 * (t - 4.0 / 29.0)).astype(np.float32)


def luminance_to_L(y: np.ndarray) -> np.ndarray:
    """Relative luminance Y (0..1) -> L* (0..100), float32."""
    return (116.0 * _lab_f(np.asarray(y, dtype=np.float32)) - 16.0).astype(np.float32)


def L_to_luminance(L: np.ndarray) -> np.ndarray:
    """L* (0..100) -> relative luminance Y (0..1), float32."""
    return _lab_f_inverse((np.asarray(L, dtype=np.float32) + 16.0) / 116.0)


@functools.cache
def _linear_table(levels: int) -> np.ndarray:
    """Linear light for every code of an integer sRGB encoding with `levels` codes."""
    return srgb_to_linear(np.arange(levels, dtype=np.float32) / (levels - 1))


@functools.cache
def _grey_L_table(levels: int) -> np.ndarray:
    """L* for every grey code of an integer sRGB encoding with `levels` codes."""
    return luminance_to_L(_linear_table(levels))


@functools.cache
def _linear_to_srgb8_table() -> np.ndarray:
    """8-bit sRGB code for linear light in [i, i + 1) / _LINEAR_STEPS, indexed by i (truncation)."""
    codes = linear_to_srgb((np.arange(_LINEAR_STEPS + 1, dtype=np.float32) + 0.5) / _LINEAR_STEPS)
    return np.round(codes * 255).astype(np.uint8)


def _levels(dtype: np.dtype) -> int | None:
    if dtype == np.uint8:
        return 256
    if dtype == np.uint16:
        return 65536
    if np.issubdtype(dtype, np.floating):
        return None
    raise TypeError(f"pixels must be uint8, uint16 or float in 0..1, not {dtype}")


def _lookup(table: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """table[codes], a million at a time: numpy converts the indices to 64-bit integers first, and
    for a 24-megapixel image that temporary alone would be 200 MB."""
    out = np.empty(codes.shape, dtype=table.dtype)
    flat_codes, flat_out = codes.reshape(-1), out.reshape(-1)
    for start in range(0, flat_codes.size, _LOOKUP_CHUNK):
        chunk = slice(start, start + _LOOKUP_CHUNK)
        np.take(table, flat_codes[chunk], out=flat_out[chunk], mode="clip")  # "clip": unbuffered
    return out


def _to_linear(pixels: np.ndarray) -> np.ndarray:
    levels = _levels(pixels.dtype)
    if levels is None:
        return srgb_to_linear(np.clip(pixels, 0.0, 1.0))
    return _lookup(_linear_table(levels), pixels)


def luminance_L(pixels: np.ndarray) -> np.ndarray:
    """L* (0..100, float32, HxW) of grey HxW or RGB HxWx3 pixels (uint8, uint16 or float 0..1)."""
    pixels = np.asarray(pixels)
    if pixels.ndim == 2:
        levels = _levels(pixels.dtype)
        if levels is None:
            return luminance_to_L(srgb_to_linear(np.clip(pixels, 0.0, 1.0)))
        return _lookup(_grey_L_table(levels), pixels)
    if pixels.ndim != 3 or pixels.shape[-1] != 3:
        raise ValueError(f"expected HxW or HxWx3 pixels, got shape {pixels.shape}")
    L = np.empty(pixels.shape[:2], dtype=np.float32)
    rows = max(1, _LOOKUP_CHUNK // (3 * pixels.shape[1] or 1))  # bounded float temporaries
    for top in range(0, pixels.shape[0], rows):
        linear = _to_linear(pixels[top : top + rows])
        # einsum, not @: no BLAS threads (see _lab_planes_to_linear)
        L[top : top + rows] = luminance_to_L(np.einsum("...c,c->...", linear, LUMA_WEIGHTS))
    return L


def _linear_to_lab(linear: np.ndarray) -> np.ndarray:
    xyz = np.einsum("...c,rc->...r", linear, RGB_TO_XYZ.astype(np.float32))
    fx = _lab_f(xyz[..., 0] / np.float32(WHITE_X))
    fy = _lab_f(xyz[..., 1] / np.float32(WHITE_Y))
    fz = _lab_f(xyz[..., 2] / np.float32(WHITE_Z))
    return np.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=-1).astype(np.float32)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB [..., 3] (float 0..1, or uint8/uint16) -> CIE Lab (D65) float32 [..., 3]."""
    return _linear_to_lab(_to_linear(np.asarray(rgb)))


def clip_towards_grey(linear: np.ndarray, y: np.ndarray, top: float = 1.0) -> None:
    """Bring linear R, G, B (rows of a [3, n] array) into 0..top in place, blending each pixel
    that is outside towards the grey of its luminance y ([n], same scale: white is top).

    Each such pixel gets the largest blend factor t in 0..1 that keeps every channel in range.
    """
    red, green, blue = linear
    highest = np.maximum(np.maximum(red, green), blue)
    lowest = np.minimum(np.minimum(red, green), blue)
    outside = highest > top
    outside |= lowest < 0.0
    (columns,) = np.nonzero(outside)
    if columns.size == 0:
        return
    # Few pixels outside (the usual case): work on those alone. Many: on all, where t comes out as 1
    # for the pixels inside, which is cheaper than gathering and scattering most of the array.
    sparse = columns.size < y.size // 4
    if sparse:
        linear_out, y, highest, lowest = linear[:, columns], y[columns], highest[columns], lowest[columns]
    else:
        linear_out = linear
    # y lies between the smallest and the largest channel, so both denominators are >= 0 and
    # each ratio is >= 1 for a channel that is in range.
    tiny = np.float32(1e-12 * top)
    t = np.minimum((top - y) / np.maximum(highest - y, tiny), y / np.maximum(y - lowest, tiny))
    np.minimum(t, 1.0, out=t)
    linear_out -= y
    linear_out *= t
    linear_out += y
    if sparse:
        linear[:, columns] = linear_out


def _lab_f_inverse_in_place(t: np.ndarray) -> None:
    """t = f^-1(t): the cube, and the linear toe where t <= 6/29 (very dark or saturated pixels)."""
    toe = None
    if t.min() <= _DELTA:
        toe = t <= _DELTA
        toe_values = (t - 4.0 / 29.0) * np.float32(3 * _DELTA**2)
    square = t * t
    t *= square
    if toe is not None:
        np.copyto(t, toe_values, where=toe)


def _lab_planes_to_linear(L: np.ndarray, a: np.ndarray, b: np.ndarray, top: float) -> np.ndarray:
    """Linear R, G, B scaled so that white is `top`, as rows of a [3, n] array, gamut-clipped
    towards grey; computed on whole rows at once to keep numpy calls and temporaries few."""
    fy = np.maximum(np.asarray(L, dtype=np.float32).reshape(-1), 0.0)
    np.minimum(fy, 100.0, out=fy)
    fy += 16.0
    fy *= np.float32(1 / 116)
    # rows: f(X/Xn), f(Z/Zn), f(Y/Yn), turned in place into X/Xn, Z/Zn, Y/Yn
    xzy = np.empty((3, fy.size), dtype=np.float32)
    np.multiply(np.asarray(a, dtype=np.float32).reshape(-1), np.float32(1 / 500), out=xzy[0])
    np.multiply(np.asarray(b, dtype=np.float32).reshape(-1), np.float32(-1 / 200), out=xzy[1])
    xzy[:2] += fy
    xzy[2] = fy
    _lab_f_inverse_in_place(xzy)
    # einsum, not @: matmul would hand this to BLAS, whose threads spin after each call and starve
    # the strips running in parallel (and ONNX Runtime).
    linear = np.einsum("ij,jn->in", _xzy_to_rgb_matrix(top), xzy)
    xzy[2] *= np.float32(top)  # the luminance on the output's scale
    clip_towards_grey(linear, xzy[2], top)
    return linear


@functools.cache
def _xzy_to_rgb_matrix(top: float) -> np.ndarray:
    """Linear RGB (white = top) from the rows X/Xn, Z/Zn, Y/Yn: white point and scale folded in."""
    columns = XYZ_TO_RGB[:, [0, 2, 1]] * np.array([WHITE_X, WHITE_Z, WHITE_Y])
    return (columns * top).astype(np.float32)


def lab_planes_to_rgb(L: np.ndarray, a: np.ndarray, b: np.ndarray, dtype=np.float32, *, out=None) -> np.ndarray:
    """L, a, b planes (same shape) -> sRGB [..., 3] of `dtype`: uint8, uint16 or float (0..1).

    Out-of-gamut colours are blended towards the grey of the same luminance, so L is kept.
    8-bit output goes through a lookup table on quantised linear values instead of a power function.
    `out`, if given, is a [..., 3] array (a view is fine) of the planes' shape that receives the result.
    """
    shape = np.shape(L)
    if out is None:
        out = np.empty(shape + (3,), dtype=dtype)
    if out.dtype == np.uint8:
        linear = _lab_planes_to_linear(L, a, b, float(_LINEAR_STEPS))
        encoded = np.take(_linear_to_srgb8_table(), linear.astype(np.uint16))
    else:
        encoded = linear_to_srgb(_lab_planes_to_linear(L, a, b, 1.0))
        if out.dtype == np.uint16:
            encoded = np.round(encoded * 65535.0)
    # channel by channel: numpy copies strided rows far faster than a transposed block
    for channel in range(3):
        out[..., channel] = encoded[channel].reshape(shape)
    return out


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """CIE Lab [..., 3] -> sRGB float32 [..., 3] in 0..1, gamut-clipped towards grey (L kept)."""
    lab = np.asarray(lab, dtype=np.float32)
    return lab_planes_to_rgb(lab[..., 0], lab[..., 1], lab[..., 2], np.float32)


def color_at_luminance(rgb: np.ndarray, luminance: float) -> np.ndarray:
    """The colour of sRGB `rgb` (float 0..1, shape [3]) re-lit to `luminance`, as Lab [3].

    The chromaticity (hue and saturation in linear light) is kept and the light level replaced;
    where the brighter or darker colour leaves the gamut it is blended towards grey. A black input
    has no chromaticity and gives grey.
    """
    linear = srgb_to_linear(np.asarray(rgb, dtype=np.float32).reshape(3))
    own_luminance = float(LUMA_WEIGHTS @ linear)
    if own_luminance > 0:
        linear = linear * np.float32(luminance / own_luminance)
    else:
        linear = np.full(3, luminance, dtype=np.float32)
    clip_towards_grey(linear.reshape(3, 1), np.full(1, luminance, dtype=np.float32))  # in place, through the view
    return _linear_to_lab(linear)
