"""Copy a corpus made by `colorit corpus build` at a smaller size, as WebP, so that it travels to a
GPU machine (the device tool carries 64 MiB with the repository).

Usage: python scripts/compact_corpus.py CORPUS OUT [--max-side 512] [--quality 80]

Every image of train/, val/, photo-val/ and cutouts/ (and their folders per kind of source) is shrunk to
--max-side (never enlarged; training decodes at most 512 px anyway) and written as the same path under
OUT with the suffix .webp; cut-outs keep their transparency. manifest.csv is copied, so a card can still
name where each picture came from.
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from PIL import Image

from colorit.io import find_images, write_bytes_atomic
from colorit.train.corpus import SPLITS


def compact(job: tuple[Path, Path, str, int, int]) -> int:
    """Bytes written; 0, with a one-line message, for a picture that cannot be read."""
    source, target, mode, max_side, quality = job
    encoded = io.BytesIO()
    try:
        with Image.open(source) as im:
            im = im.convert(mode)
            im.thumbnail((max_side, max_side), Image.LANCZOS)
            im.save(encoded, "WEBP", quality=quality)
    except OSError as exc:
        print(f"compact_corpus: {source}: skipped, {exc}", file=sys.stderr)
        return 0
    write_bytes_atomic(target, encoded.getvalue(), overwrite=True)
    return encoded.tell()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--max-side", type=int, default=512)
    parser.add_argument("--quality", type=int, default=80)
    args = parser.parse_args()
    jobs = []
    for split in SPLITS:
        (args.out / split).mkdir(parents=True, exist_ok=True)
        mode = "RGBA" if split == "cutouts" else "RGB"
        for source in find_images(args.corpus / split):
            target = (args.out / source.relative_to(args.corpus)).with_suffix(".webp")
            jobs.append((source, target, mode, args.max_side, args.quality))
    with ProcessPoolExecutor() as pool:
        total = sum(pool.map(compact, jobs, chunksize=16))
    if (args.corpus / "manifest.csv").is_file():
        shutil.copy(args.corpus / "manifest.csv", args.out / "manifest.csv")
    print(f"{len(jobs)} images, {total / 2**20:.1f} MiB in {args.out}")


if __name__ == "__main__":
    main()
