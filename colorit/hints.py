"""User point hints: parse and validate them, and render them into the network's hint channels.

A hint is {"x": .., "y": .., "color": "#rrggbb", "radius": ..}: x, y and radius in pixels of the
original image, or, with "relative": true, x and y as fractions (0..1) of the width and height and
radius as a fraction of the longer side. Instead of "color", "ab": [a, b] gives Lab chroma directly.
A colour given in RGB becomes ab at the luminance of the image under the hint, keeping the colour's
chromaticity, so "red" on a light wall means light red there.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

import numpy as np

from colorit.color import L_to_luminance, color_at_luminance
from colorit.errors import HintError
from colorit.limits import MAX_HINTS, MAX_HINTS_JSON_BYTES

AB_SCALE = 110.0  # the model contract: hint channels carry ab / 110
MAX_AB = 128.0  # sRGB colours stay within about +-110
# Default radius as a fraction of the longer side: at the usual working sizes (288 to 384 px) this is a
# patch of 3 to 5 px, within the 1..9 px patches the hint network is trained with.
DEFAULT_RADIUS_FRACTION = 1 / 192
_HEX_COLOR = re.compile(r"#?([0-9a-fA-F]{6}|[0-9a-fA-F]{3})")


@dataclass(frozen=True)
class Hint:
    """A colour hint at (x, y) with a radius, all in pixels of the original image; ab in Lab units."""

    x: float
    y: float
    ab: tuple[float, float]
    radius: float


def _load(data, source: str) -> list:
    if isinstance(data, (bytes, bytearray, memoryview, str)) and len(data) > MAX_HINTS_JSON_BYTES:
        # before decoding and parsing: a huge document costs time and memory
        raise HintError(f"{source}: JSON too long ({len(data)} characters, at most {MAX_HINTS_JSON_BYTES})")
    if isinstance(data, (bytes, bytearray, memoryview)):
        data = bytes(data).decode("utf-8", errors="replace")
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise HintError(f"{source}: not valid JSON ({exc})") from None
        except RecursionError:
            raise HintError(f"{source}: JSON nested too deeply") from None
    if isinstance(data, dict) and "hints" in data:
        data = data["hints"]  # a list wrapped in an object, which the web page's importer also takes
    if not isinstance(data, (list, tuple)):
        raise HintError(f"{source}: expected a list of hints, got {type(data).__name__}")
    return list(data)


def _finite(value, key: str, where: str) -> float:
    try:
        number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
    except OverflowError:  # an integer beyond float's range, which JSON allows
        number = math.inf
    if not math.isfinite(number):
        shown = (
            f"an integer of {len(str(value))} digits" if math.isinf(number) and isinstance(value, int) else repr(value)
        )
        raise HintError(f"{where}: '{key}' must be a finite number, got {shown}")
    return number


def _number(entry: dict, key: str, where: str) -> float:
    return _finite(entry.get(key), key, where)


def parse_color(text, where: str) -> tuple[float, float, float]:
    """'#rrggbb' or '#rgb' -> sRGB floats in 0..1."""
    match = _HEX_COLOR.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise HintError(f"{where}: bad colour {text!r} (expected '#rrggbb')")
    digits = match.group(1)
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    red, green, blue = (int(digits[i : i + 2], 16) / 255.0 for i in (0, 2, 4))
    return red, green, blue


def _ab_of(entry: dict, L: np.ndarray, x: float, y: float, radius: float, where: str) -> tuple[float, float]:
    if "ab" in entry and "color" not in entry:
        ab = entry["ab"]
        if not (isinstance(ab, (list, tuple)) and len(ab) == 2):
            raise HintError(f"{where}: 'ab' must be a pair of numbers, got {ab!r}")
        a, b = (_finite(value, "ab", where) for value in ab)
        if max(abs(a), abs(b)) > MAX_AB:
            raise HintError(f"{where}: 'ab' components must lie within +-{MAX_AB:g}, got {ab!r}")
        return a, b
    if "color" not in entry:
        raise HintError(f"{where}: missing 'color' (e.g. \"#c03020\")")
    rgb = parse_color(entry["color"], where)
    rows, cols = _patch(x, y, radius, L.shape)
    luminance = float(L_to_luminance(np.float32(L[rows, cols].mean())))
    lab = color_at_luminance(np.array(rgb), luminance)
    return float(lab[1]), float(lab[2])


def _parse_one(entry, index: int, L: np.ndarray, source: str) -> Hint:
    where = f"{source}: hint {index + 1}"
    if not isinstance(entry, dict):
        raise HintError(f"{where}: expected an object with x, y, color, got {type(entry).__name__}")
    height, width = L.shape
    x, y = _number(entry, "x", where), _number(entry, "y", where)
    relative = bool(entry.get("relative", False))
    longer = max(width, height)
    if "radius" in entry:
        radius = _number(entry, "radius", where)
        if radius <= 0:
            raise HintError(f"{where}: radius must be positive, got {radius}")
        # A patch wider than the image covers all of it: larger radii change nothing but overflow.
        radius = min(radius * longer if relative else radius, float(longer))
    else:
        radius = max(longer * DEFAULT_RADIUS_FRACTION, 1.0)
    if relative:
        if not (0 <= x <= 1 and 0 <= y <= 1):
            raise HintError(f"{where}: relative x, y must lie in 0..1, got ({x}, {y})")
        x, y = x * width, y * height
    if not (0 <= x <= width and 0 <= y <= height):
        raise HintError(f"{where}: ({x:g}, {y:g}) lies outside the {width}x{height} image")
    return Hint(x=x, y=y, ab=_ab_of(entry, L, x, y, radius, where), radius=radius)


def parse_hints(data, L: np.ndarray, *, max_hints: int = MAX_HINTS, source: str = "hints") -> list[Hint]:
    """Validate hints against the image whose luminance is L (HxW, 0..100).

    data: a list of dicts, or JSON text/bytes holding such a list (or {"hints": [...]}).
    Raises HintError with a one-line message starting with `source`.
    """
    entries = _load(data, source)
    if len(entries) > max_hints:
        raise HintError(f"{source}: {len(entries)} hints, at most {max_hints} allowed")
    return [_parse_one(entry, i, L, source) for i, entry in enumerate(entries)]


def hint_count(data) -> int:
    """How many hints `data` (anything parse_hints takes, or parsed Hints; None: none) holds: for an
    output's provenance, once colorizing has validated them."""
    return 0 if data is None else len(_load(data, "hints"))


def _span(centre: float, radius: float, size: int) -> tuple[int, int]:
    """Pixel index range [start, stop) of a square patch, at least the pixel holding the centre."""
    start = min(max(math.floor(centre - radius), 0), size - 1)
    stop = min(max(math.floor(centre + radius) + 1, start + 1), size)
    return start, stop


def _patch(x: float, y: float, radius: float, shape: tuple[int, int]) -> tuple[slice, slice]:
    """Rows and columns of the square of half-side radius around (x, y) in an array of `shape`."""
    height, width = shape
    return slice(*_span(y, radius, height)), slice(*_span(x, radius, width))


def _at_working_size(hints, full_size: tuple[int, int], work_size: tuple[int, int]) -> list[Hint]:
    """The hints with position and radius in pixels of the working image; sizes are (width, height)."""
    (full_width, full_height), (width, height) = full_size, work_size
    scale_x, scale_y = width / full_width, height / full_height
    return [Hint(hint.x * scale_x, hint.y * scale_y, hint.ab, hint.radius * (scale_x + scale_y) / 2) for hint in hints]


def render_hints(hints, full_size: tuple[int, int], work_size: tuple[int, int]) -> np.ndarray:
    """Hint channels [3, h, w] float32 (a/110, b/110, mask) at the working size.

    full_size and work_size are (width, height), as Pillow gives them. Each hint fills a square of
    half-side `radius` (scaled to the working size), at least one pixel; later hints win overlaps.
    """
    width, height = work_size
    channels = np.zeros((3, height, width), dtype=np.float32)
    for hint in _at_working_size(hints, full_size, work_size):
        rows, cols = _patch(hint.x, hint.y, hint.radius, (height, width))
        channels[0, rows, cols] = hint.ab[0] / AB_SCALE
        channels[1, rows, cols] = hint.ab[1] / AB_SCALE
        channels[2, rows, cols] = 1.0
    return channels


# Hint propagation. The network takes hints as input and carries them through its hint attention,
# but it stops short of the hint's colour around the point; so each hint also pulls the predicted chroma
# towards its colour with a joint-bilateral weight: near the point, at a similar luminance and where the
# network predicted a similar colour (the same object, as likely as not), fading to nothing elsewhere.
# At the point itself the colour is the hint's. The luminance sigma was tuned on 15 validation images
# with 10 simulated hints (PSNR); the spatial and predicted-colour sigmas and FULL_PULL_WEIGHT were then
# chosen by benchmarks/hint_propagation_sweep.py (10 hints on the photo library's photo-val, among the
# settings where the propagation keeps a hint local). They matter little next to the network's own
# response to hints (benchmarks/results/hint_propagation_sweep.md, hints_photo_val_network_only.json).
SPREAD_FRACTION = 0.3  # spatial sigma, a fraction of the working image's longer side
LUMINANCE_SIGMA = 20.0  # L units
PREDICTED_AB_SIGMA = 10.0  # ab units
# A pixel takes the whole (weighted mean) pull of the hints that reach it once their summed weight
# reaches FULL_PULL_WEIGHT, and a share in proportion below it, so that pixels no hint reaches keep
# the network's colour. At 1 the rest of a hinted object kept much of its wrong colour (a weight of
# 0.3 moved it 30 % of the way).
FULL_PULL_WEIGHT = 0.3


def propagate_hints(
    ab: np.ndarray, L_work: np.ndarray, hints, full_size: tuple[int, int], guide: np.ndarray | None = None
) -> None:
    """Pull ab [2, h, w] (in place, at the working size) towards each hint's colour.

    guide: the network's own ab [2, h, w], if ab was changed since (greyed where unsure, blended with a
    reference): the pull spreads over pixels whose predicted colour resembles the hinted one, and
    greyed pixels would all look alike.
    """
    height, width = L_work.shape
    rows = np.arange(height, dtype=np.float32)[:, None]
    cols = np.arange(width, dtype=np.float32)[None, :]
    predicted = ab.copy()
    guide = predicted if guide is None else guide
    total_weight = np.zeros((height, width), dtype=np.float32)
    total_pull = np.zeros_like(ab)
    for hint in _at_working_size(hints, full_size, (width, height)):
        patch_rows, patch_cols = _patch(hint.x, hint.y, hint.radius, (height, width))
        predicted_here = predicted[:, patch_rows, patch_cols].mean(axis=(1, 2))
        shortfall = np.asarray(hint.ab, dtype=np.float32) - predicted_here
        sigma = max(SPREAD_FRACTION * max(width, height), 3 * hint.radius)
        exponent = ((rows - hint.y) ** 2 + (cols - hint.x) ** 2) / (2 * sigma**2)
        exponent = exponent + (L_work - L_work[patch_rows, patch_cols].mean()) ** 2 / (2 * LUMINANCE_SIGMA**2)
        guide_here = guide[:, patch_rows, patch_cols].mean(axis=(1, 2))
        exponent += ((guide - guide_here[:, None, None]) ** 2).sum(axis=0) / (2 * PREDICTED_AB_SIGMA**2)
        weight = np.exp(-exponent)
        total_weight += weight
        total_pull += weight * shortfall[:, None, None]
    # Where hints overlap, their pulls are averaged rather than added.
    ab += total_pull / np.maximum(total_weight, FULL_PULL_WEIGHT)
