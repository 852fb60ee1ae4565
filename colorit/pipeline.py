"""Full-resolution colorization: L in, ab predicted at a working size, ab upsampled, recombined with L.

The luminance of the input is never resampled: only the chroma (ab) the network predicts is, and the
eye is far less sensitive to chroma detail than to luminance detail.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from colorit.color import lab_planes_to_rgb, luminance_L
from colorit.confidence import grey_where_unsure, no_confidence_error, unsure_grey_strength
from colorit.errors import ImageError
from colorit.hints import Hint, parse_hints, propagate_hints, render_hints
from colorit.limits import MAX_RENDER_SIZE, MAX_SATURATION
from colorit.reference import blend_references
from colorit.session import ModelSession

# Rows are recombined in strips of about this many pixels: the float32 temporaries of one strip stay
# in the CPU cache, and a 24-megapixel image never needs full-size Lab or RGB float arrays.
STRIP_PIXELS = 1 << 16
# Downscaling the luminance for the network first reduces by an integer factor with a box filter
# when the image is at least this many times the working size (Pillow's reducing_gap).
REDUCING_GAP = 3.0


def working_size(width: int, height: int, render_size: int) -> tuple[int, int]:
    """(w, h) for the network: the longer side is render_size (never upscaled), aspect ratio kept."""
    if render_size < 1:
        raise ValueError(f"render_size must be a positive number of pixels, got {render_size}")
    scale = min(1.0, render_size / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _split_alpha(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    if pixels.ndim == 2:
        return pixels, None
    if pixels.ndim != 3 or pixels.shape[-1] not in (1, 2, 3, 4):
        raise ValueError(f"expected HxW, HxWx2, HxWx3 or HxWx4 pixels, got shape {pixels.shape}")
    channels = pixels.shape[-1]
    colour = pixels[..., 0] if channels <= 2 else pixels[..., :3]
    return colour, (pixels[..., -1] if channels in (2, 4) else None)


def _as_hints(hints, L: np.ndarray, source: str) -> list[Hint]:
    if isinstance(hints, (list, tuple)) and all(isinstance(hint, Hint) for hint in hints):
        return list(hints)
    return parse_hints(hints, L, source=source)


def resize_plane(plane: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A float32 plane resized to size (w, h) as the network's working image is made from L."""
    if plane.shape[::-1] == size:
        return plane
    image = Image.fromarray(plane, "F")
    return np.asarray(image.resize(size, Image.Resampling.BILINEAR, reducing_gap=REDUCING_GAP))


def recombine(L: np.ndarray, ab_work: np.ndarray, out: np.ndarray, threads: int) -> None:
    """out[..., :3] = RGB of (L, ab upsampled to L's size), strip by strip, strips in parallel.

    Each strip upsamples its own rows of ab with Pillow's box argument, which places the samples where a
    single full-size resize would (to float precision: an 8-bit channel on a rounding edge may come out
    one level apart). Bilinear rather than bicubic: chroma needs no sharpening, and bicubic's overshoot
    would put coloured halos along edges.
    """
    height, width = L.shape
    work_height, work_width = ab_work.shape[1:]
    planes = [Image.fromarray(ab_work[i], "F") for i in range(2)]
    rows = max(1, STRIP_PIXELS // width)
    scale = work_height / height

    def recombine_strip(top: int) -> None:
        bottom = min(height, top + rows)
        box = (0, top * scale, work_width, bottom * scale)
        a, b = (np.asarray(plane.resize((width, bottom - top), Image.Resampling.BILINEAR, box=box)) for plane in planes)
        lab_planes_to_rgb(L[top:bottom], a, b, out=out[top:bottom, :, :3])

    tops = range(0, height, rows)
    if threads <= 1 or len(tops) == 1:
        for top in tops:
            recombine_strip(top)
        return
    # numpy and Pillow release the GIL in their loops, so threads share the strips.
    with ThreadPoolExecutor(max_workers=min(threads, len(tops))) as pool:
        list(pool.map(recombine_strip, tops))


def _check_input(pixels: np.ndarray) -> None:
    """Refuse what would crash further down (empty images) or silently spoil the whole result (NaN
    spreads through the resize and the network; huge numbers overflow)."""
    if pixels.ndim >= 2 and 0 in pixels.shape[:2]:
        raise ImageError(f"image: empty ({pixels.shape[1]}x{pixels.shape[0]} pixels)")
    if np.issubdtype(pixels.dtype, np.floating) and not np.isfinite(pixels).all():
        bad = int(np.count_nonzero(~np.isfinite(pixels)))
        raise ImageError(f"image: {bad} of {pixels.size} values are NaN or infinite (float pixels must lie in 0..1)")
    if np.issubdtype(pixels.dtype, np.floating) and pixels.size and not 0 <= pixels.min() <= pixels.max() <= 1:
        raise ImageError(_float_range_message(float(pixels.min()), float(pixels.max())))


def _float_range_message(low: float, high: float) -> str:
    """Why float pixels outside 0..1 are refused, and what to do: 0..255 (after .astype(float)) would
    otherwise come out all white."""
    if low >= 0 and high <= 255:
        fix = "for 8-bit values divide by 255 (array / 255) or pass array.astype(np.uint8)"
    elif low >= 0 and high <= 65535:
        fix = "for 16-bit values divide by 65535 or pass array.astype(np.uint16)"
    else:
        fix = "scale them into 0..1"
    return f"image: float pixels must lie in 0..1, these lie in {low:g}..{high:g}; {fix}"


def check_options(render_size: int | None, saturation: float) -> None:
    """Refuse a working size or saturation outside the limits (ValueError)."""
    if not (math.isfinite(saturation) and 0 <= saturation <= MAX_SATURATION):
        raise ValueError(f"saturation must lie in 0..{MAX_SATURATION:g}, got {saturation}")
    if render_size is not None and not 1 <= render_size <= MAX_RENDER_SIZE:
        raise ValueError(f"render_size must lie in 1..{MAX_RENDER_SIZE} pixels, got {render_size}")


def colour_at_working_size(
    L: np.ndarray,
    session: ModelSession,
    *,
    render_size: int | None = None,
    saturation: float = 1.0,
    hints=None,
    hints_source: str = "hints",
    reference=None,
    unsure_grey: float | None = None,
    hint_propagation: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The chroma of full-resolution L (HxW, 0..100) at the working size: (L_work [h, w], ab [2, h, w]
    in Lab units, the network's own confidence [h, w] 0..1 or None for a model without one).

    The network's ab, greyed where it is unsure, references and hints applied, scaled by saturation;
    options as for colorize_array. Films (colorit.video) take it frame by frame.
    """
    check_options(render_size, saturation)
    height, width = L.shape
    work_size = working_size(width, height, render_size or session.default_render_size)
    strength = unsure_grey_strength(session.card, unsure_grey, session.name, session.has_confidence)
    hint_list = _as_hints(hints, L, hints_source) if hints is not None else []
    hint_channels = render_hints(hint_list, (width, height), work_size) if hint_list else None
    L_work = resize_plane(L, work_size)
    ab, confidence = session.predict(L_work, hint_channels)
    network_ab = ab.copy() if hint_list and hint_propagation else None
    grey_where_unsure(ab, confidence, strength)
    if reference is not None:
        blend_references(
            ab, L_work, reference, threads=session.threads, work_side=render_size or session.default_render_size
        )
    if hint_list and hint_propagation:
        propagate_hints(ab, L_work, hint_list, (width, height), guide=network_ab)
    if saturation != 1.0:
        ab *= np.float32(saturation)
    return L_work, ab, confidence


def colorize_array(
    pixels: np.ndarray,
    session: ModelSession,
    *,
    render_size: int | None = None,
    saturation: float = 1.0,
    hints=None,
    hints_source: str = "hints",
    reference=None,
    unsure_grey: float | None = None,
    with_confidence: bool = False,
    hint_propagation: bool = True,
):
    """Colorize HxW grey or HxWx3 colour pixels (uint8, uint16 or float 0..1) at full resolution.

    Returns HxWx3 of the same dtype; HxWx2 / HxWx4 input (with alpha) gives HxWx4 with the alpha
    unchanged. A colour input is colorized from its luminance. render_size: the longer side of the
    network's working image (default: the model card's). saturation scales the predicted chroma.
    hints: Hint objects, or dicts / JSON parsed with hints.parse_hints against this image
    (error messages start with hints_source). reference: a colour photo, or a list of them, whose
    colours carry over to matching things (see colorit.reference); hints win where both speak.
    unsure_grey: where the network is unsure, its chroma is scaled by confidence ** unsure_grey
    (default: the card's unsure_grey_strength, else 0 = off; see colorit.confidence); hints and
    references are applied after it, so they are never greyed. with_confidence: return (output,
    the network's confidence HxW float32 0..1 at full resolution) instead; needs a model that has one.
    hint_propagation: False leaves hints to the network alone (to measure how well it follows them).
    """
    pixels = np.asarray(pixels)
    _check_input(pixels)
    colour, alpha = _split_alpha(pixels)
    L = luminance_L(colour)
    height, width = L.shape
    if with_confidence and not session.has_confidence:
        raise no_confidence_error(session.name)
    _, ab, confidence = colour_at_working_size(
        L,
        session,
        render_size=render_size,
        saturation=saturation,
        hints=hints,
        hints_source=hints_source,
        reference=reference,
        unsure_grey=unsure_grey,
        hint_propagation=hint_propagation,
    )
    out = np.empty((height, width, 3 if alpha is None else 4), dtype=pixels.dtype)
    recombine(L, ab, out, session.threads)
    if alpha is not None:
        out[..., 3] = alpha
    if with_confidence:
        assert confidence is not None  # has_confidence was checked before the network ran
        return out, np.clip(resize_plane(confidence, (width, height)), 0.0, 1.0)
    return out
