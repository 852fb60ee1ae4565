"""The photo library (shared/photos, its SOURCES.md) as a corpus source, and as the record of where
its images come from when training reads them in place.

A photo library is a folder with train/ (colour photographs to train on), val/ (photos from other
repositories, to validate on), bw/ (genuine black-and-white photos: no colour truth) and
manifest.csv, one row per image: split, file, repo, commit, path, width, height (of the original),
category, licence. Its images were filtered, resized and deduplicated where the library was made, so
the corpus copies them byte for byte (a second lossy encoding would only lose detail), after checking
that each one decodes and taking its dHash, so that a package picture copying one of them is dropped.
train/ goes to the corpus's train/, val/ to photo-val/. bw/ stays out of the corpus: with no colour
to learn from or to measure against, it is for looking at what a model does (from the library itself).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from PIL import Image

from colorit.errors import ColoritError
from colorit.train.corpus import (
    UNREADABLE,
    Analysis,
    Provenance,
    SourceCounts,
    analyse_in_workers,
    dhash64,
    read_csv,
    unreadable,
)

SOURCE_KIND = "photo-library"
LIBRARY_COLUMNS = ("split", "file", "repo", "commit", "path", "width", "height", "category", "licence")
# The library's split -> the corpus's; bw/ has no colour truth and is left out.
CORPUS_SPLITS = {"train": "train", "val": "photo-val"}


@dataclass(frozen=True)
class PhotoLibrary:
    root: Path
    rows: tuple[dict[str, str], ...]  # manifest.csv

    @classmethod
    def open(cls, root: Path) -> PhotoLibrary:
        """The library at root; ColoritError when root/manifest.csv is missing or not a library's."""
        manifest = root / "manifest.csv"
        rows = read_csv(manifest, LIBRARY_COLUMNS, "photo library manifest")
        for line, row in enumerate(rows, start=2):
            if not (row["width"].isdigit() and row["height"].isdigit()):
                raise ColoritError(f"{manifest}:{line}: width and height must be whole numbers")
        return cls(root, tuple(rows))

    def image(self, row: dict[str, str]) -> Path:
        return self.root / row["split"] / row["file"]


def provenance(row: dict[str, str]) -> Provenance:
    return Provenance(SOURCE_KIND, row["repo"], row["commit"], row["path"], row["licence"], row["category"])


def analyse(path: Path, provenance: Provenance, split: str, source_pixels: int) -> Analysis:
    """A library image as it is: its bytes to copy, its size and dHash (decoding it proves it readable)."""
    try:
        encoded = path.read_bytes()
        with Image.open(io.BytesIO(encoded)) as img:
            dhash = dhash64(img)
            width, height = img.size
    except UNREADABLE as exc:
        return unreadable(provenance, split, exc)
    return Analysis(
        provenance,
        split,
        None,
        source_pixels=source_pixels,
        width=width,
        height=height,
        dhash=dhash,
        encoded=encoded,
        suffix=path.suffix.lower(),
    )


@dataclass(frozen=True)
class PhotoLibrarySource:
    library: PhotoLibrary
    kind: ClassVar[str] = SOURCE_KIND
    # Near-duplicates were removed across all of the library's splits where it was made; a second
    # pass here would drop a few more (another hash implementation, resized images) and leave val/
    # short of the library's.
    deduplicated: ClassVar[bool] = True

    def collect(self, jobs: int, report: Callable[[str], None]) -> tuple[list[SourceCounts], list[Analysis]]:
        """Every train/ and val/ image of the library, one count per repository."""
        rows = sorted((row for row in self.library.rows if row["split"] in CORPUS_SPLITS), key=lambda row: row["repo"])
        counts: dict[str, SourceCounts] = {}
        for row in rows:
            counts.setdefault(row["repo"], SourceCounts(SOURCE_KIND, row["repo"])).found += 1
        analyses = analyse_in_workers(
            analyse,
            [self.library.image(row) for row in rows],
            [provenance(row) for row in rows],
            [CORPUS_SPLITS[row["split"]] for row in rows],
            [int(row["width"]) * int(row["height"]) for row in rows],
            jobs=jobs,
            desc=self.library.root.name,
        )
        return list(counts.values()), analyses


def library_provenance(files: Iterable[Path]) -> dict[Path, Provenance]:
    """The photo library's record of each of files that is one of a library's images, however it is
    reached (a link to the library's train/, say): the file resolves to LIBRARY/SPLIT/FILE, and
    LIBRARY/manifest.csv has a row for SPLIT and FILE. Other files are left out."""
    records: dict[Path, dict[tuple[str, str], Provenance]] = {}
    found = {}
    for file in files:
        resolved = file.resolve()
        root = resolved.parent.parent
        if root not in records:
            records[root] = _records(root)
        record = records[root].get((resolved.parent.name, resolved.name))
        if record is not None:
            found[file] = record
    return found


def _records(root: Path) -> dict[tuple[str, str], Provenance]:
    if not (root / "manifest.csv").is_file():
        return {}
    try:
        library = PhotoLibrary.open(root)
    except ColoritError:  # another kind of manifest (a corpus's): not a library
        return {}
    return {(row["split"], row["file"]): provenance(row) for row in library.rows}
