"""Encode colour pictures into image files: PNG (colorit.png), JPEG, WebP and TIFF at 8 or 16 bits,
with the metadata read from the input (ICC profile, DPI, EXIF), JPEG and WebP quality, and the
provenance that marks a file as colorized (colorit.provenance)."""

from __future__ import annotations

import dataclasses
import io
import os
import warnings
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from colorit.errors import ColoritWarning, OutputError
from colorit.io import Picture, cpu_count, write_bytes_atomic
from colorit.png import png_bytes
from colorit.provenance import Provenance

# JPEG and WebP quality unless told otherwise (--quality): colour is what colorit adds, and lower
# qualities smear it first.
DEFAULT_QUALITY = 95
SOFTWARE_TAG = 0x0131
XMP_TAG = 700  # TIFF's tag for an XMP packet
# A JPEG's EXIF segment holds at most this many bytes.
JPEG_MAX_EXIF_BYTES = 65533

# Output format names (as Pillow spells them) by what users type, and the extension each gets.
FORMATS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP", "tif": "TIFF", "tiff": "TIFF"}
EXTENSIONS = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "TIFF": ".tiff"}


def output_format(name: str) -> str:
    """'png', 'jpg', '.JPEG', 'tiff', ... -> Pillow's format name; ValueError if not an output format."""
    key = name.lower().lstrip(".")
    if key in FORMATS:
        return FORMATS[key]
    raise ValueError(f"unsupported output format {name!r} (choose from png, jpg, webp, tiff)")


def to_8bit(pixels: np.ndarray) -> np.ndarray:
    if pixels.dtype == np.uint8:
        return pixels
    return ((pixels.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def _flatten_on_white(pixels: np.ndarray) -> np.ndarray:
    """RGBA -> RGB over a white background, for formats without alpha."""
    if pixels.shape[-1] != 4:
        return pixels
    alpha = pixels[..., 3:].astype(np.float32) / 255.0
    return np.round(pixels[..., :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)


def _tiff16_bytes(picture: Picture, provenance: Provenance | None) -> bytes:
    """Uncompressed TIFF with 16-bit RGB(A) samples, ICC profile and resolution (Pillow cannot write
    16-bit colour). EXIF is left out: it would need its own sub-directory, which tifffile does not write."""
    buffer = io.BytesIO()
    xmp = provenance.xmp() if provenance else None
    tifffile.imwrite(
        buffer,
        picture.pixels,
        photometric="rgb",
        extrasamples=("unassalpha",) if picture.pixels.shape[-1] == 4 else None,
        iccprofile=picture.icc_profile,
        resolution=picture.dpi or (72.0, 72.0),
        resolutionunit="inch",
        metadata=None,
        software=provenance.software if provenance else False,
        extratags=[(XMP_TAG, 1, len(xmp), xmp, True)] if xmp else (),  # 1: BYTE, as the XMP spec has it
    )
    return buffer.getvalue()


def _pillow_bytes(picture: Picture, fmt: str, quality: int, provenance: Provenance | None) -> bytes:
    pixels = to_8bit(picture.pixels)
    if fmt == "JPEG":
        pixels = _flatten_on_white(pixels)
    options: dict = {}
    if picture.icc_profile:
        options["icc_profile"] = picture.icc_profile
    exif = picture.exif
    if provenance and fmt == "TIFF":
        # Pillow writes a TIFF's tags from the EXIF directory: the XMP packet goes in beside them.
        exif = _exif_with(exif, {XMP_TAG: provenance.xmp()})
    elif provenance:
        options["xmp"] = provenance.xmp()
    if exif and fmt == "JPEG" and len(exif) > JPEG_MAX_EXIF_BYTES:
        message = f"{picture.source}: EXIF of {len(exif)} bytes does not fit a JPEG (64 kB); written without it"
        warnings.warn(message, ColoritWarning, 2)
    elif exif:
        options["exif"] = exif
    if picture.dpi and fmt != "WEBP":
        options["dpi"] = picture.dpi
    # TIFF stays uncompressed: Pillow's compressed (libtiff) writer cannot carry the EXIF sub-directory.
    if fmt == "JPEG":
        # 4:4:4: colour is what colorit adds, and subsampling it would also shift L* where it changes
        options.update(quality=quality, subsampling=0)
    elif fmt == "WEBP":
        options["quality"] = quality
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt, **options)
    return buffer.getvalue()


def _exif_with(exif: bytes | None, tags: dict) -> bytes:
    """EXIF bytes with `tags` set in its first directory (a new EXIF block when there was none)."""
    directory = Image.Exif()
    if exif:
        directory.load(exif)
    directory.update(tags)
    return directory.tobytes()


def encode_image(
    picture: Picture,
    fmt: str,
    *,
    threads: int | None = None,
    quality: int | None = None,
    provenance: Provenance | None = None,
) -> bytes:
    """Encode colour pixels (HxWx3 or HxWx4, uint8 or uint16) with the picture's metadata.

    fmt: png, jpg/jpeg, webp or tiff. 16-bit samples stay 16-bit in PNG and TIFF; JPEG has no
    alpha, so transparent pixels are flattened onto white there. threads: for PNG compression
    (default: all CPUs). quality: of JPEG and WebP, 1..100 (default DEFAULT_QUALITY); the other
    formats are lossless. provenance: marks the file as colorized (colorit.provenance) in its XMP,
    EXIF Software tag and, in a PNG, text.
    """
    fmt = output_format(fmt)
    if picture.pixels.ndim != 3 or picture.pixels.shape[-1] not in (3, 4):
        raise ValueError(f"expected HxWx3 or HxWx4 colour pixels, got shape {picture.pixels.shape}")
    if quality is not None and not 1 <= quality <= 100:
        raise ValueError(f"quality must lie in 1..100, got {quality}")
    if provenance and not (fmt == "TIFF" and picture.pixels.dtype == np.uint16):
        picture = dataclasses.replace(picture, exif=_exif_with(picture.exif, {SOFTWARE_TAG: provenance.software}))
    if fmt == "PNG":
        texts = (
            {
                "Software": provenance.software,
                "Comment": provenance.description(),
                "XML:com.adobe.xmp": provenance.xmp().decode("utf-8"),
            }
            if provenance
            else None
        )
        return png_bytes(
            picture.pixels,
            threads=threads or cpu_count(),
            icc_profile=picture.icc_profile,
            dpi=picture.dpi,
            exif=picture.exif,
            texts=texts,
        )
    if fmt == "TIFF" and picture.pixels.dtype == np.uint16:
        return _tiff16_bytes(picture, provenance)
    return _pillow_bytes(picture, fmt, quality or DEFAULT_QUALITY, provenance)


def to_pil(picture: Picture) -> Image.Image:
    """A PIL image of colour pixels (8-bit: Pillow has no 16-bit colour mode), metadata in .info."""
    image = Image.fromarray(to_8bit(picture.pixels))
    for key, value in (("icc_profile", picture.icc_profile), ("dpi", picture.dpi), ("exif", picture.exif)):
        if value:
            image.info[key] = value
    return image


def write_image(
    path: str | os.PathLike,
    picture: Picture,
    *,
    fmt: str | None = None,
    overwrite: bool = False,
    protected=(),
    threads: int | None = None,
) -> Path:
    """Encode (format from fmt or the path's extension) and write atomically; see write_bytes_atomic."""
    path = Path(path)
    try:
        fmt = output_format(fmt or path.suffix)
    except ValueError as exc:
        raise OutputError(f"{path}: {exc}") from None
    data = encode_image(picture, fmt, threads=threads)
    return write_bytes_atomic(path, data, overwrite=overwrite, protected=protected)
