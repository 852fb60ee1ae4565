"""`colorit.colorize(image, ...)`: the type that goes in is the type that comes out (as rembg's remove)."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
from PIL import Image

from colorit.confidence import confidence_image, confidence_png
from colorit.encoding import EXTENSIONS, encode_image, to_pil
from colorit.hints import hint_count
from colorit.io import DEFAULT_MAX_PIXELS, Picture, picture_from_pil, read_image
from colorit.pipeline import colorize_array
from colorit.provenance import Provenance
from colorit.session import ModelSession, load_model


def colorize_picture(picture: Picture, session: ModelSession, **options) -> Picture:
    """The colorized Picture (same metadata); options as for colorize_array."""
    return dataclasses.replace(picture, pixels=colorize_array(picture.pixels, session, **options))


def colorize_picture_with_confidence(picture: Picture, session: ModelSession, **options) -> tuple[Picture, np.ndarray]:
    """(the colorized Picture, the network's confidence: HxW float32 0..1, 1 = sure)."""
    pixels, confidence = colorize_array(picture.pixels, session, with_confidence=True, **options)
    return dataclasses.replace(picture, pixels=pixels), confidence


def output_format_of(picture: Picture) -> str:
    """The input's own format when colorit can write it, else PNG."""
    return picture.format if picture.format in EXTENSIONS else "PNG"


def reference_count(reference) -> int:
    """How many reference photos a `reference` argument holds: None, one photo, or a list of them."""
    if reference is None:
        return 0
    return len(reference) if isinstance(reference, (list, tuple)) else 1


def provenance_of(session: ModelSession, hints=None, reference=None) -> Provenance:
    """What an output colorized by session with these hints and reference photos says of itself."""
    return Provenance(model=session.name, hints=hint_count(hints), references=reference_count(reference))


def colorize(
    image,
    *,
    model: str | os.PathLike | ModelSession = "default",
    render_size: int | None = None,
    saturation: float = 1.0,
    hints=None,
    reference=None,
    unsure_grey: float | None = None,
    with_confidence: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    device: str = "auto",
    provenance: bool = True,
):
    """Colorize a black-and-white (or any) image at full resolution.

    image: a PIL image -> PIL image (RGB or RGBA); a numpy array (HxW, HxWx2, HxWx3, HxWx4; uint8,
    uint16 or float 0..1) -> array of the same dtype; bytes of an image file -> bytes in the same
    format (PNG for formats colorit does not write), 16-bit kept in PNG and TIFF; a path or binary
    file object -> PIL image. Files are turned upright by their EXIF orientation; alpha is kept.
    model: a bundled model name, a path to an .onnx file, or a session from load_model.
    hints: point hints, e.g. [{"x": 120, "y": 80, "color": "#c03020"}] (see colorit.hints).
    reference: a colour photo (anything `image` may be) or a list of them: the colours of matching
    things carry over (see colorit.reference); where nothing matches the model's own colour stays,
    and a hint wins where both speak.
    unsure_grey: lean the colour towards grey where the network is unsure, chroma x confidence **
    unsure_grey (default: the model card's unsure_grey_strength; 0 = off).
    with_confidence: return (colour, confidence), the second the network's per-pixel confidence (1 =
    sure, 0 = torn between colours: a place for a hint) at full resolution, in the input's type: a
    float32 HxW array 0..1 for an array; an 8-bit grey image (white = sure) for the others, as PNG
    bytes for bytes. Needs a model with a confidence output (ColoritError otherwise).
    device: "auto" (CUDA when onnxruntime-gpu is installed and a GPU answers, else the CPU), "cpu" or
    "cuda" (falls back to the CPU with a ColoritWarning); ignored when model is a session.
    provenance: bytes out say in their metadata that ColorIt colorized them, with its version, the
    model and how many hints and reference photos (colorit.provenance); False leaves that out.
    """
    session = model if isinstance(model, ModelSession) else load_model(model, device=device)
    options = {
        "render_size": render_size,
        "saturation": saturation,
        "hints": hints,
        "unsure_grey": unsure_grey,
        "reference": reference,
    }
    if isinstance(image, np.ndarray):
        return colorize_array(image, session, with_confidence=with_confidence, **options)
    as_bytes = isinstance(image, (bytes, bytearray, memoryview))
    if isinstance(image, Image.Image):
        picture = picture_from_pil(image)
    elif as_bytes or isinstance(image, (str, os.PathLike)) or hasattr(image, "read"):
        picture = read_image(image, max_pixels=max_pixels)
    else:
        raise TypeError(f"colorize() takes a PIL image, numpy array, bytes, path or file, not {type(image).__name__}")
    if with_confidence:
        colour, confidence = colorize_picture_with_confidence(picture, session, **options)
    else:
        colour = colorize_picture(picture, session, **options)
    if as_bytes:
        marked = provenance_of(session, hints, reference) if provenance else None
        output = encode_image(colour, output_format_of(picture), provenance=marked)
        return (output, confidence_png(confidence)) if with_confidence else output
    return (to_pil(colour), confidence_image(confidence)) if with_confidence else to_pil(colour)
