"""`colorit colorize PATH... -o OUTDIR`: files and folders, full resolution, resumable, in parallel."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from colorit.cli import non_negative_float, positive_int

OUTPUT_FORMATS = ("png", "jpg", "jpeg", "webp", "tif", "tiff")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "colorize",
        help="colorize images and folders of images",
        description="Colorize black-and-white images at full resolution. Folders are searched recursively "
        "and their layout is kept under OUTDIR. Existing outputs are skipped unless --overwrite.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files and folders")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="folder for the results (created if needed)")
    p.add_argument("--model", default="default", help="bundled model name or path to an .onnx file (default: default)")
    p.add_argument("--render-size", type=positive_int, metavar="N", help="longer side of the network's working image (default: from the model card)")
    p.add_argument("--saturation", type=non_negative_float, default=1.0, metavar="F", help="scale the colours' chroma (default 1.0; 0 = grey)")
    p.add_argument("--format", choices=OUTPUT_FORMATS, help="output format (default: the input's own; PNG for other formats)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--workers", type=positive_int, default=1, metavar="N", help="parallel processes (default 1)")
    p.add_argument("--hints", metavar="FILE.json", help="colour hints for a single input image (JSON list of {x, y, color})")
    p.add_argument("--max-pixels", type=positive_int, metavar="N", help="refuse larger images before decoding (default 200000000)")
    p.set_defaults(run=run)


class UsageError(Exception):
    """A problem with the command line as a whole: exit status 2, nothing processed."""


@dataclass(frozen=True)
class Settings:
    """What every image is colorized with (pickled along with each job for the worker processes)."""

    model: str
    threads: int | None
    render_size: int | None
    saturation: float
    max_pixels: int | None
    overwrite: bool
    hints: str | None
    hints_source: str


@dataclass(frozen=True)
class Job:
    source: Path
    target: Path


def _images_in(folder: Path, suffixes, outdir: Path) -> list[Path]:
    """Image files below folder, sorted; hidden files and folders and the output folder left out
    (so that `-o photos/colorized` does not colorize its own results on the next run)."""
    found = []
    outdir = outdir.resolve()
    for directory, subdirectories, files in os.walk(folder):
        subdirectories[:] = sorted(
            d for d in subdirectories if not d.startswith(".") and Path(directory, d).resolve() != outdir
        )
        found += [Path(directory, f) for f in sorted(files) if not f.startswith(".") and Path(f).suffix.lower() in suffixes]
    return found


def _target(outdir: Path, relative: Path, fmt: str | None) -> Path:
    from colorit.io import EXTENSIONS, FORMATS

    if fmt:
        return outdir / relative.with_suffix(EXTENSIONS[FORMATS[fmt]])
    if relative.suffix.lower().lstrip(".") in FORMATS:
        return outdir / relative
    return outdir / relative.with_suffix(".png")


def _plan(args, report) -> tuple[list[Job], int]:
    """Jobs for every input image; reports inputs that cannot be done. Returns (jobs, failures)."""
    from colorit.io import IMAGE_SUFFIXES

    outdir = Path(args.output)
    jobs: list[Job] = []
    failures = 0
    for text in args.paths:
        path = Path(text)
        if path.is_dir():
            images = _images_in(path, IMAGE_SUFFIXES, outdir)
            if not images:
                raise UsageError(f"{path}: no images in this folder (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
            jobs += [Job(image, _target(outdir, image.relative_to(path), args.format)) for image in images]
        elif path.exists():
            jobs.append(Job(path, _target(outdir, Path(path.name), args.format)))
        else:
            report(f"colorit: {path}: no such file or folder")
            failures += 1
    sources = {job.source.resolve() for job in jobs}
    claimed: dict[Path, Path] = {}
    kept = []
    for job in jobs:
        target = job.target.resolve()
        if target in sources:
            report(f"colorit: {job.source}: output {job.target} would replace an input; choose another -o")
        elif target in claimed:
            report(f"colorit: {job.source}: output {job.target} is also the output of {claimed[target]}; use --format or colorize them separately")
        else:
            claimed[target] = job.source
            kept.append(job)
    return kept, failures + len(jobs) - len(kept)


def _check_output_folder(outdir: Path) -> None:
    import tempfile

    try:
        outdir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=outdir):
            pass
    except OSError as exc:
        raise UsageError(f"{outdir}: cannot create or write the output folder ({exc.strerror or exc})") from None


def _read_hints(args) -> str | None:
    if args.hints is None:
        return None
    if len(args.paths) != 1 or Path(args.paths[0]).is_dir():
        raise UsageError("--hints: give exactly one input image (hints are positions in that image)")
    try:
        return Path(args.hints).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{args.hints}: cannot read hints ({getattr(exc, 'strerror', None) or exc})") from None


def _colorize_file(job: Job, settings: Settings) -> str | None:
    """Colorize one file; returns None, or the one-line failure message."""
    from colorit.api import colorize_picture
    from colorit.errors import ColoritError
    from colorit.io import DEFAULT_MAX_PIXELS, read_image, write_image
    from colorit.session import load_model

    try:
        session = load_model(settings.model, threads=settings.threads)
        picture = read_image(job.source, max_pixels=settings.max_pixels or DEFAULT_MAX_PIXELS)
        result = colorize_picture(
            picture,
            session,
            render_size=settings.render_size,
            saturation=settings.saturation,
            hints=settings.hints,
            hints_source=settings.hints_source,
        )
        write_image(job.target, result, overwrite=settings.overwrite, protected=[job.source], threads=session.threads)
    except ColoritError as exc:
        return f"colorit: {job.source}: {_without_prefix(str(exc), job.source)}"
    except MemoryError:
        return f"colorit: {job.source}: out of memory"
    except Exception as exc:  # a bug must not stop the rest of the batch
        return f"colorit: {job.source}: unexpected error: {type(exc).__name__}: {exc}"
    return None


def _without_prefix(message: str, source: Path) -> str:
    """Error messages start with the input's name; the failure line names it once."""
    prefix = f"{source}: "
    return message[len(prefix):] if message.startswith(prefix) else message


def _run_serial(jobs: list[Job], settings: Settings):
    for job in jobs:
        yield _colorize_file(job, settings)


def _run_parallel(jobs: list[Job], settings: Settings, workers: int):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    # spawn, not fork: a forked copy of a process that runs threads (tqdm's monitor, ONNX Runtime
    # pools) can deadlock on a lock some thread held at the fork.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {pool.submit(_colorize_file, job, settings): job for job in jobs}
        try:
            for future in as_completed(futures):
                job = futures[future]
                try:
                    yield future.result()
                except BrokenProcessPool:
                    yield f"colorit: {job.source}: worker process died (out of memory?)"
        finally:
            pool.shutdown(cancel_futures=True)


def run(args) -> int:
    from tqdm import tqdm

    from colorit.errors import ModelNotFound
    from colorit.io import cpu_count
    from colorit.session import resolve_model_path

    def report(line: str) -> None:
        tqdm.write(line, file=sys.stderr)

    outdir = Path(args.output)
    try:
        resolve_model_path(args.model)
        jobs, failures = _plan(args, report)
        hints = _read_hints(args)
        _check_output_folder(outdir)
    except (UsageError, ModelNotFound) as exc:
        print(f"colorit: {exc}", file=sys.stderr)
        return 2
    todo, skipped = [], 0
    for job in jobs:
        if job.target.exists() and not args.overwrite:
            report(f"colorit: {job.source}: skipped, {job.target} exists (use --overwrite to replace it)")
            skipped += 1
        else:
            todo.append(job)
    workers = min(args.workers, max(1, len(todo)))
    settings = Settings(
        model=args.model,
        threads=max(1, cpu_count() // workers) if workers > 1 else None,
        render_size=args.render_size,
        saturation=args.saturation,
        max_pixels=args.max_pixels,
        overwrite=args.overwrite,
        hints=hints,
        hints_source=str(args.hints),
    )
    results = _run_parallel(todo, settings, workers) if workers > 1 else _run_serial(todo, settings)
    done = 0
    with tqdm(total=len(todo), unit="image", file=sys.stderr, disable=len(todo) <= 1) as progress:
        for failure in results:
            if failure:
                report(failure)
                failures += 1
            else:
                done += 1
            progress.update()
    print(f"colorized {done}, skipped {skipped}, failed {failures} -> {outdir}")
    return 1 if failures else 0
