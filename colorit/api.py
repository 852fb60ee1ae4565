"""`colorit.colorize(image, ...)`: the type that goes in is the type that comes out (as rembg's remove)."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
from PIL import Image

from colorit.io import DEFAULT_MAX_PIXELS, EXTENSIONS, Picture, encode_image, picture_from_pil, read_image, to_pil
from colorit.pipeline import colorize_array
from colorit.session import ModelSession, load_model


def colorize_picture(picture: Picture, session: ModelSession, **options) -> Picture:
    """The colorized Picture (same metadata); options as for colorize_array."""
    return dataclasses.replace(picture, pixels=colorize_array(picture.pixels, session, **options))


def output_format_of(picture: Picture) -> str:
    """The input's own format when colorit can write it, else PNG."""
    return picture.format if picture.format in EXTENSIONS else "PNG"


def colorize(
    image,
    *,
    model: str | os.PathLike | ModelSession = "default",
    render_size: int | None = None,
    saturation: float = 1.0,
    hints=None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
):
    """Colorize a black-and-white (or any) image at full resolution.

    image: a PIL image -> PIL image (RGB or RGBA); a numpy array (HxW, HxWx2, HxWx3, HxWx4; uint8,
    uint16 or float 0..1) -> array of the same dtype; bytes of an image file -> bytes in the same
    format (PNG for formats colorit does not write), 16-bit kept in PNG and TIFF; a path or binary
    file object -> PIL image. Files are turned upright by their EXIF orientation; alpha is kept.
    model: a bundled model name, a path to an .onnx file, or a session from load_model.
    hints: point hints, e.g. [{"x": 120, "y": 80, "color": "#c03020"}] (see colorit.hints).
    """
    session = model if isinstance(model, ModelSession) else load_model(model)
    options = {"render_size": render_size, "saturation": saturation, "hints": hints}
    if isinstance(image, np.ndarray):
        return colorize_array(image, session, **options)
    if isinstance(image, Image.Image):
        return to_pil(colorize_picture(picture_from_pil(image), session, **options))
    if isinstance(image, (bytes, bytearray, memoryview)):
        picture = read_image(image, max_pixels=max_pixels)
        return encode_image(colorize_picture(picture, session, **options), output_format_of(picture))
    if isinstance(image, (str, os.PathLike)) or hasattr(image, "read"):
        return to_pil(colorize_picture(read_image(image, max_pixels=max_pixels), session, **options))
    raise TypeError(f"colorize() takes a PIL image, numpy array, bytes, path or file, not {type(image).__name__}")
