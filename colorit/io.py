"""Read images safely and write files atomically: an allow-list of raster formats, pixel limit before
decoding, EXIF orientation, modes, metadata, 16-bit colour in, folders listed as the runners read
them, atomic writes that never replace what they must not (encoding: colorit.encoding)."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import secrets
import stat
import struct
import warnings
from collections.abc import Callable, Collection, Iterator
from pathlib import Path

import imagecodecs
import numpy as np
import tifffile
from PIL import Image, ImageFile, ImageOps

from colorit.errors import ColoritWarning, ImageError, ImageTooLarge, OutputError
from colorit.limits import DEFAULT_MAX_PIXELS

ORIENTATION_TAG = 0x0112

# What `colorit colorize FOLDER`, `colorit evaluate` and `colorit train` pick up.
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".jpe", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".ppm", ".pgm", ".pbm"}
# What colorit decodes, by Pillow's name: the raster formats of IMAGE_SUFFIXES (Pillow's JPEG reader
# also reads a phone's MPO). Anything else is refused unread: Pillow would run Ghostscript for EPS.
DECODED_FORMATS = ("PNG", "JPEG", "WEBP", "TIFF", "BMP", "GIF", "PPM")


def images_below(
    folder: Path, suffixes: Collection[str] = IMAGE_SUFFIXES, leave_out: Path | None = None
) -> tuple[list[Path], list[OSError]]:
    """The files below folder with one of `suffixes` (lower case), folder by folder in sorted order,
    and the errors of the folders that could not be listed. Hidden files and folders and the folder leave_out (an
    output folder inside the input) are left out. Links to folders are not followed (one to a parent
    would repeat the tree); entries are taken by name, so that reading names a FIFO or a link loop."""
    found: list[Path] = []
    unreadable: list[OSError] = []
    outside = os.path.realpath(leave_out) if leave_out is not None else None
    for directory, subdirectories, files in os.walk(folder, onerror=unreadable.append):
        # realpath, not Path.resolve: it raises on a link loop (RuntimeError before Python 3.13)
        subdirectories[:] = sorted(
            d for d in subdirectories if not d.startswith(".") and os.path.realpath(Path(directory, d)) != outside
        )
        found += [
            Path(directory, f) for f in sorted(files) if not f.startswith(".") and Path(f).suffix.lower() in suffixes
        ]
    return found, unreadable


def find_images(root: Path) -> list[Path]:
    """Image files under root, recursively, in a stable order. Hidden files are left out: macOS's
    "._photo.jpg" companions carry an image suffix but are not images."""
    return sorted(
        path
        for path in Path(root).rglob("*")
        if path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".") and path.is_file()
    )


# TIFF tags of pixel layout, strips/tiles, colour maps, resolution and ICC profile.
_LAYOUT_TAGS = {
    256,
    257,
    258,
    259,
    262,
    266,
    273,
    277,
    278,
    279,
    282,
    283,
    284,
    296,
    317,
    320,
    322,
    323,
    324,
    325,
    338,
    339,
    340,
    341,
    530,
    531,
    532,
    34675,
}
_SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N"}
# numpy equivalents of the EXIF orientations, as ImageOps.exif_transpose applies them to PIL images
_UPRIGHT: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    2: np.fliplr,
    3: lambda a: np.rot90(a, 2),
    4: np.flipud,
    5: lambda a: np.swapaxes(a, 0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.swapaxes(np.rot90(a, 2), 0, 1),
    8: np.rot90,
}
_CONVERSIONS = {
    "1": "L",
    "La": "LA",
    "PA": "RGBA",
    "RGBa": "RGBA",
    "RGBX": "RGB",
    "CMYK": "RGB",
    "YCbCr": "RGB",
    "LAB": "RGB",
    "HSV": "RGB",
}


def cpu_count() -> int:
    """CPUs this process may use (the affinity mask, which containers and `taskset` narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclasses.dataclass
class Picture:
    """Decoded pixels plus what is carried to the output.

    pixels: HxW (grey), HxWx2 (grey + alpha), HxWx3 (RGB) or HxWx4 (RGBA); uint8 or uint16.
    icc_profile: kept only when it describes RGB, since the output is RGB.
    exif: as found, less TIFF pixel-layout tags; read_image turns the pixels upright and so sets
    the orientation to 1.
    """

    pixels: np.ndarray
    source: str = "image"
    format: str | None = None
    icc_profile: bytes | None = None
    dpi: tuple[float, float] | None = None
    exif: bytes | None = None


# ---------------------------------------------------------------------------------------- reading


def _on_own_scale(values: np.ndarray) -> np.ndarray:
    """32-bit integer samples (mode I) carry no full scale: 8-bit or 16-bit values when they fit
    (an 8-bit picture saved as mode I stays as bright as it was), else stretched over 16 bits."""
    low, high = int(values.min()), int(values.max())
    if low >= 0 and high <= 255:
        return values.astype(np.uint8)
    if low >= 0 and high <= 65535:
        return values.astype(np.uint16)
    return np.round((values - low) * (65535 / (high - low))).astype(np.uint16)


def _pixels_of(image: Image.Image, source: str) -> np.ndarray:
    mode = image.mode
    if mode in _SIXTEEN_BIT_MODES:
        return np.asarray(image).astype(np.uint16)
    if mode == "I":
        return _on_own_scale(np.asarray(image))
    if mode == "P":
        image = image.convert("RGBA" if image.has_transparency_data else "RGB")
    elif mode in _CONVERSIONS:
        image = image.convert(_CONVERSIONS[mode])
    if image.mode not in ("L", "LA", "RGB", "RGBA"):
        raise ImageError(f"{source}: unsupported pixel format {mode}")
    return np.asarray(image)


def _rgb_icc_profile(image: Image.Image) -> bytes | None:
    profile = image.info.get("icc_profile")
    # Bytes 16..19 of an ICC header name the profile's colour space.
    return profile if profile and profile[16:20] == b"RGB " else None


def _exif_bytes(image: Image.Image, source: str) -> bytes | None:
    try:
        found = image.getexif()
        if not len(found):
            return None
        exif = Image.Exif()  # a copy: the caller's image keeps its own
        exif.load(found.tobytes())
        # For TIFF, Pillow's EXIF is the file's own first directory: drop the tags that describe the
        # source's pixel layout (they would corrupt the output) and those carried separately.
        for tag in _LAYOUT_TAGS.intersection(exif):
            del exif[tag]
        return exif.tobytes() if len(exif) else None
    except Exception as exc:  # Pillow's EXIF code raises struct, type and key errors on bad tags
        warnings.warn(f"{source}: damaged EXIF ({_reason(exc)}) left out", ColoritWarning, 2)
        return None


def _dpi(image: Image.Image) -> tuple[float, float] | None:
    dpi = image.info.get("dpi")
    # Files written without a resolution often claim 1 (or 0) dpi, meaning "unknown".
    if not dpi or min(dpi) <= 1:
        return None
    return float(dpi[0]), float(dpi[1])


def _picture(image: Image.Image, pixels: np.ndarray, source: str) -> Picture:
    return Picture(
        pixels=pixels,
        source=source,
        format=image.format,
        icc_profile=_rgb_icc_profile(image),
        dpi=_dpi(image),
        exif=_exif_bytes(image, source),
    )


def picture_from_pil(image: Image.Image, *, source: str = "image") -> Picture:
    """A Picture from a PIL image as it is (no EXIF rotation: the caller owns the image)."""
    if 0 in image.size:
        raise ImageError(f"{source}: empty image ({image.width}x{image.height} pixels)")
    return _picture(image, _pixels_of(image, source), source)


def _identify(stream, name: str) -> ImageFile.ImageFile:
    """Open the header as Image.open does, but only with the plugins of DECODED_FORMATS and without
    Pillow's pixel limit, which is process-wide: read_image checks its caller's own limit instead."""
    Image.init()
    prefix = stream.read(16)
    for fmt in DECODED_FORMATS:
        factory, accept = Image.OPEN[fmt]
        accepted = accept is None or accept(prefix)
        if not accepted or isinstance(accepted, str):  # a str is Pillow's "almost, but no" message
            continue
        stream.seek(0)
        try:
            return factory(stream, "")
        except (SyntaxError, IndexError, TypeError, struct.error):
            continue  # not this format after all, as in Image.open
        except (OSError, ValueError, EOFError) as exc:
            raise ImageError(f"{name}: cannot read image header ({_reason(exc)})") from None
    readable = ", ".join(DECODED_FORMATS)
    raise ImageError(f"{name}: not an image, or not one of the formats colorit reads ({readable})")


def _open(stream, name: str, max_pixels: int) -> ImageFile.ImageFile:
    image = _identify(stream, name)
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise ImageTooLarge(_too_large(name, f"{width}x{height} = {width * height} pixels", max_pixels))
    return image


def _too_large(name: str, size: str, max_pixels: int) -> str:
    return f"{name}: {size}, over the limit of {max_pixels} (refused before decoding; raise --max-pixels / max_pixels to allow it)"


def _reason(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _decode_upright(image: Image.Image, name: str) -> None:
    """Decode in place and apply the EXIF orientation, leaving orientation 1 in the image's EXIF."""
    try:
        image.load()
        exif = image.getexif()  # cached by Pillow: picture_from_pil sees this object
        if exif.get(ORIENTATION_TAG, 1) != 1:
            # in place: exif_transpose would otherwise copy even an upright image
            ImageOps.exif_transpose(image, in_place=True)
            exif[ORIENTATION_TAG] = 1
    except MemoryError:
        raise
    except Exception as exc:  # decoders raise OSError, ValueError, SyntaxError, struct and zlib errors
        reason = _reason(exc)
        if "truncated" in reason:
            raise ImageError(f"{name}: truncated image file ({reason})") from None
        raise ImageError(f"{name}: damaged or unsupported image data ({reason})") from None


def _is_sixteen_bit_colour(image: ImageFile.ImageFile) -> bool:
    """Whether the file holds 16-bit colour or grey + alpha samples, which Pillow decodes to 8 bits."""
    if image.mode not in ("RGB", "RGBA") or not image.tile:
        return False
    args = image.tile[0].args
    raw_mode = args[0] if isinstance(args, tuple) else args
    return isinstance(raw_mode, str) and ";16" in raw_mode


def _decode_sixteen_bit_colour(image: Image.Image, stream, name: str) -> np.ndarray:
    """16-bit RGB(A) or grey + alpha pixels of a PNG (imagecodecs) or TIFF (tifffile), upright by the EXIF
    orientation (left as 1 in the image's EXIF); Pillow has read the header and metadata."""
    stream.seek(0)
    try:
        if image.format == "PNG":
            pixels = imagecodecs.png_decode(stream.read())
        else:
            with tifffile.TiffFile(stream, name=os.path.basename(name)) as tiff:
                page = tiff.pages.first
                pixels = page.asarray()
                if page.axes.startswith("S"):  # planar: one plane per sample
                    pixels = np.moveaxis(pixels, 0, -1)
    except MemoryError:
        raise
    except Exception as exc:  # the codecs raise their own error types, and ValueError, OSError
        raise ImageError(f"{name}: damaged or unsupported image data ({_reason(exc)})") from None
    if pixels.dtype != np.uint16 or pixels.ndim != 3 or pixels.shape[-1] not in (2, 3, 4):  # 2: grey + alpha
        raise ImageError(f"{name}: unsupported 16-bit layout {pixels.dtype} {pixels.shape}")
    exif = image.getexif()
    orientation = exif.get(ORIENTATION_TAG, 1)
    if orientation in _UPRIGHT:
        pixels = np.ascontiguousarray(_UPRIGHT[orientation](pixels))
        exif[ORIENTATION_TAG] = 1
    return pixels


def _note_frames(image: Image.Image, name: str) -> None:
    try:
        frames = getattr(image, "n_frames", 1)
    except Exception:  # a damaged later frame (Pillow raises key, EOF, OS errors): the first may be fine
        return
    if frames > 1 and image.format != "MPO":  # an MPO's second picture is a preview, not a frame
        warnings.warn(f"{name}: {frames} frames (animated or multi-page); colorized the first only", ColoritWarning, 2)


def _decode(image: ImageFile.ImageFile, stream, name: str) -> Picture:
    _note_frames(image, name)
    if _is_sixteen_bit_colour(image):
        return _picture(image, _decode_sixteen_bit_colour(image, stream, name), name)
    _decode_upright(image, name)
    return picture_from_pil(image, source=name)


def read_image(source, *, max_pixels: int = DEFAULT_MAX_PIXELS, name: str | None = None) -> Picture:
    """Decode an image file (path, bytes, or binary file object) with EXIF orientation applied.

    The pixel count is checked from the header before any decoding. Errors are ImageError or
    ImageTooLarge with a one-line message that starts with `name` (default: the path, or "image").
    """
    if isinstance(source, (str, os.PathLike)):
        name = name or str(source)
        stream = _open_regular_file(source, name)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        name = name or "image"
        stream = io.BytesIO(source)
    else:
        name = name or str(getattr(source, "name", "image"))
        # the caller's file stays open; Pillow needs to seek, which pipes cannot
        stream = contextlib.nullcontext(source) if source.seekable() else io.BytesIO(source.read())
    with stream as stream:
        if _is_empty(stream):
            raise ImageError(f"{name}: empty file (0 bytes)")
        with _open(stream, name, max_pixels) as image:
            return _decode(image, stream, name)


def _cannot_open(name: str, error: OSError) -> ImageError:
    return ImageError(f"{name}: cannot open ({error.strerror or error})")


def _not_a_regular_file(name: str) -> ImageError:
    return ImageError(f"{name}: not a regular file")


def _open_regular_file(path, name: str):
    """A binary file object of a regular file. Non-blocking open: a FIFO named like an image would
    otherwise block until some writer appeared, and devices and folders are no images either."""
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise _cannot_open(name, exc) from None
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise _not_a_regular_file(name)
    return os.fdopen(descriptor, "rb")


def check_regular_file(path: str | os.PathLike, name: str) -> None:
    """Raise the ImageError read_image would for path when it is no regular file to read (a FIFO, a
    device, a symbolic link loop, a dangling link), without opening it: for runners that read files
    elsewhere (Ray's read tasks), where opening a FIFO would block."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise _cannot_open(name, exc) from None
    if not stat.S_ISREG(mode):
        raise _not_a_regular_file(name)


def _is_empty(stream) -> bool:
    position = stream.tell()
    empty = not stream.read(1)
    stream.seek(position)
    return empty


# ---------------------------------------------------------------------------------------- writing


def _same_file(a: Path, b: Path) -> bool:
    try:
        # realpath, not Path.resolve, which raises RuntimeError on a link loop before Python 3.13
        return os.path.realpath(a) == os.path.realpath(b) or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, *, overwrite: bool = False, protected=()) -> Iterator[Path]:
    """A temporary path beside `path` to write to, renamed onto `path` when the block ends normally.

    An interrupted write leaves no partial output, only at worst a hidden '.NAME.*.colorit-tmp' file
    that is removed on any error we see (Ctrl-C too). Refuses (OutputError) to replace an existing
    file unless overwrite, and always refuses to write onto any of the `protected` paths (the inputs).
    """
    path = Path(path)
    if any(_same_file(path, Path(p)) for p in protected):
        raise OutputError(f"{path}: refusing to write onto an input file")
    if path.exists() and not overwrite:
        raise OutputError(f"{path}: already exists (use --overwrite to replace it)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{path.parent}: cannot create folder ({exc.strerror or exc})") from None
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.colorit-tmp")
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException as exc:  # also Ctrl-C: never leave the temporary behind
        temporary.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from None
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes, *, overwrite: bool = False, protected=()) -> Path:
    """Write data to path through a temporary file in the same folder and a rename (atomic_output)."""
    with atomic_output(path, overwrite=overwrite, protected=protected) as temporary:
        # os.open with 0o666 lets the umask decide permissions, as for any ordinarily created file.
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
    return Path(path)
