"""`colorit colorize PATH... -o OUTDIR`: files and folders, full resolution, resumable, in parallel.

Photos and films (colorit.video) alike: a folder may mix them, and each file goes to its own kind's
runner (colorit.batch or colorit.video.batch)."""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from colorit.cli import UsageError, bounded_workers, number_parser, one_line, positive_int, render_size, saturation
from colorit.cli.destination import STANDARD_INPUT, STREAM, check_standard_input, output_file, write_standard_output
from colorit.confidence import MAX_STRENGTH
from colorit.encoding import DEFAULT_QUALITY
from colorit.session import DEVICES
from colorit.video.formats import VIDEO_FORMATS

if TYPE_CHECKING:
    from colorit.batch import Settings

OUTPUT_FORMATS = ("png", "jpg", "jpeg", "webp", "tif", "tiff")
unsure_grey = number_parser(float, 0, maximum=MAX_STRENGTH)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "colorize",
        help="colorize images, films and folders of them",
        description="Colorize black-and-white images and films at full resolution. Folders are searched "
        "recursively and their layout is kept under OUTDIR. Existing outputs are skipped unless --overwrite.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="image and film files, and folders")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUTDIR",
        help="folder for the results (created if needed); with one input, a file name with an image suffix "
        "(result.jpg) writes that file, and - writes to standard output (PATH - reads standard input)",
    )
    p.add_argument("--model", default="default", help="bundled model name or path to an .onnx file (default: default)")
    p.add_argument(
        "--render-size",
        type=render_size,
        metavar="N",
        help="longer side of the network's working image (default: from the model card)",
    )
    p.add_argument(
        "--saturation",
        type=saturation,
        default=1.0,
        metavar="F",
        help="scale the colours' chroma (default 1.0; 0 = grey)",
    )
    p.add_argument(
        "--format",
        choices=OUTPUT_FORMATS + tuple(VIDEO_FORMATS),
        help="output format of the inputs of its kind: photos (default: the input's own; PNG for other formats) "
        "or films (default mp4: H.264; mov, mkv: H.264; webm: VP9; ffv1: lossless, in .mkv)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--workers", type=positive_int, default=1, metavar="N", help="parallel processes (default 1)")
    p.add_argument(
        "--hints", metavar="FILE.json", help="colour hints for a single input image (JSON list of {x, y, color})"
    )
    p.add_argument(
        "--max-pixels", type=positive_int, metavar="N", help="refuse larger images before decoding (default 200000000)"
    )
    p.add_argument(
        "--reference",
        metavar="PATH",
        help="a colour photo whose colours carry over to matching things, or a folder of them "
        "(the best matches are chosen for each input)",
    )
    p.add_argument(
        "--reference-report", metavar="FILE.json", help="write which reference photos each input was colorized with"
    )
    p.add_argument(
        "--verbose",
        action="store_true",
        help="name each input skipped because its output exists, and the reference photos chosen for each input",
    )
    p.add_argument(
        "--quality",
        type=number_parser(int, 1, maximum=100),
        metavar="Q",
        help=f"JPEG and WebP quality, 1..100 (default {DEFAULT_QUALITY}); the other formats are lossless",
    )
    p.add_argument(
        "--no-provenance",
        dest="provenance",
        action="store_false",
        help="leave out of each output's metadata (XMP, EXIF, PNG text) that ColorIt colorized it, with "
        "version, model, hints and reference count",
    )
    p.add_argument(
        "--device",
        choices=DEVICES,
        default="auto",
        help="where the model runs: cuda needs onnxruntime-gpu (pip install 'colorit[gpu]'), auto takes it "
        "when installed (default auto; without a GPU: the CPU, said in one line for cuda)",
    )
    p.add_argument(
        "--confidence",
        action="store_true",
        help="also write the model's confidence beside each output, as NAME.confidence.png "
        "(grey: white = sure, dark = unsure, a place for a hint)",
    )
    p.add_argument(
        "--unsure-grey",
        type=unsure_grey,
        metavar="S",
        help="lean colours towards grey where the model is unsure: chroma x confidence^S "
        f"(0..{MAX_STRENGTH:g}; default: the model card's, 0 = off)",
    )
    p.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="run on a Ray cluster (needs colorit[ray]): join the one at ADDRESS, or without it start a local one; "
        "PATH and OUTDIR may then also be object-store URIs (s3://bucket/folder, gs://...)",
    )
    p.set_defaults(run=run)


@dataclass(frozen=True)
class Job:
    source: Path  # Path("-"): standard input
    target: Path  # "-" with the output's suffix, or "-" alone for the input's own format: standard output
    keep: frozenset[str] = frozenset()  # outputs that exist already and stay (colorit.batch.colorize_file)
    to_standard_output: bool = False

    @property
    def name(self) -> str:
        """The input as messages name it."""
        return STANDARD_INPUT if str(self.source) == STREAM else str(self.source)

    def outputs(self, confidence: bool) -> list[Path]:
        """What the job writes: its output, and with --confidence a photo's map beside it (films get none)."""
        from colorit.batch import confidence_target
        from colorit.video import is_video

        with_map = confidence and not is_video(self.source)
        return [self.target, *([confidence_target(self.target)] if with_map else [])]


def _target(outdir: Path, relative: Path, fmt: str | None) -> Path:
    from colorit.batch import output_name

    return outdir / output_name(relative, fmt)


def _plan(args, single: Path | None, report) -> tuple[list[Job], int]:
    """Jobs for every input image, into the folder -o names or the file `single` (output_file);
    reports inputs that cannot be done. Returns (jobs, failures)."""
    from colorit.io import IMAGE_SUFFIXES, images_below
    from colorit.video.formats import VIDEO_SUFFIXES

    outdir = Path(args.output)
    jobs: list[Job] = []
    failures = 0
    for text in args.paths:
        path = Path(text)
        if single is not None and (text == STREAM or path.exists() or path.is_symlink()):
            if text == STREAM:
                check_standard_input()
            streamed = str(single) == STREAM
            jobs.append(Job(path, _single_target(single, path, args.format), to_standard_output=streamed))
        elif path.is_dir():
            images, unreadable = images_below(path, IMAGE_SUFFIXES | VIDEO_SUFFIXES, leave_out=outdir)
            for error in unreadable:
                report(f"colorit: {error.filename}: cannot read folder ({error.strerror or error})")
            failures += len(unreadable)
            if not images and not unreadable:
                suffixes = ", ".join(sorted(IMAGE_SUFFIXES | VIDEO_SUFFIXES))
                raise UsageError(f"{path}: no images or films in this folder (looked for {suffixes})")
            jobs += [Job(image, _target(outdir, image.relative_to(path), args.format)) for image in images]
        elif path.exists() or path.is_symlink():  # a link loop or a dangling link: reading names the reason
            jobs.append(Job(path, _target(outdir, Path(path.name), args.format)))
        else:
            report(f"colorit: {path}: no such file or folder")
            failures += 1
    # realpath, not Path.resolve, which raises RuntimeError on a link loop before Python 3.13
    sources = {os.path.realpath(job.source) for job in jobs if str(job.source) != STREAM}
    claimed: dict[str, Path] = {}
    kept = []
    for job in jobs:
        outputs = [] if job.to_standard_output else job.outputs(args.confidence)
        targets = [os.path.realpath(output) for output in outputs]
        replacing = next((output for output, target in zip(outputs, targets) if target in sources), None)
        clash = next((output for output, target in zip(outputs, targets) if target in claimed), None)
        if replacing:
            report(f"colorit: {job.source}: output {replacing} would replace an input; choose another -o")
        elif clash:
            report(
                f"colorit: {job.source}: output {clash} is also the output of {claimed[os.path.realpath(clash)]}; "
                "use --format or colorize them separately"
            )
        else:
            claimed.update(dict.fromkeys(targets, job.source))
            kept.append(job)
    return kept, failures + len(jobs) - len(kept)


def _single_target(output: Path, source: Path, fmt: str | None) -> Path:
    """The target of the one input when -o names a file: that file. For standard output, "-" with the
    output's suffix: --format's, or else the input's (none from standard input: its own format,
    known once it is decoded); colorit.batch.colorize_file picks the format by it."""
    from colorit.batch import output_name
    from colorit.video import is_video

    if str(output) != STREAM:
        return output
    if is_video(source):
        raise UsageError(f"{source}: a film is written to a file, not to standard output")
    if str(source) == STREAM and not fmt:
        return output
    return output.with_suffix(output_name(Path(source.name), fmt).suffix)


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


def _colorize_file(job: Job, settings: Settings, progress_bar: bool = False) -> str | None:
    """Colorize one local file; returns None, or the one-line failure message. progress_bar: show a
    film's progress in frames/s (a photo's is the batch's own bar)."""
    from functools import partial

    from colorit.batch import colorize_file
    from colorit.io import write_bytes_atomic
    from colorit.video import is_video

    if is_video(job.source):
        from colorit.video.batch import colorize_film_file

        return colorize_film_file(job.source, str(job.source), job.target, settings, progress_bar=progress_bar)

    source = sys.stdin.buffer.read() if str(job.source) == STREAM else job.source
    if job.to_standard_output:
        return colorize_file(source, job.name, job.target, settings, write_standard_output)
    write = partial(write_bytes_atomic, overwrite=settings.overwrite, protected=[job.source])
    return colorize_file(source, job.name, job.target, settings, write, keep=job.keep)


def _run_serial(jobs: list[Job], settings: Settings):
    for job in jobs:
        yield _colorize_file(job, settings, progress_bar=True)


def _run_parallel(jobs: list[Job], settings: Settings, workers: int):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    from colorit.cli.processes import start_worker

    # spawn, not fork: a forked copy of a process that runs threads (tqdm's monitor, ONNX Runtime
    # pools) can deadlock on a lock some thread held at the fork.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=start_worker) as pool:
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

    from colorit.errors import ColoritError, ModelNotFound
    from colorit.io import cpu_count
    from colorit.session import resolve_device, resolve_model_path

    def report(line: str) -> None:
        tqdm.write(one_line(line), file=sys.stderr)

    if args.ray is not None and args.confidence:
        print("colorit: --confidence: not available with --ray", file=sys.stderr)
        return 2
    if args.ray is not None:
        return _run_on_ray(args, report)
    device, device_note = resolve_device(args.device)
    try:
        resolve_model_path(args.model)
        single = output_file(args.paths, args.output, args.format)
        jobs, failures = _plan(args, single, report)
        hints = _read_hints(args)
        if str(single) != STREAM:
            _check_output_folder(Path(args.output) if single is None else single.parent)
    except (UsageError, ModelNotFound) as exc:
        print(one_line(f"colorit: {exc}"), file=sys.stderr)
        return 2
    if device_note:
        report(f"colorit: {device_note}")
    todo, skipped = _still_to_do(jobs, args, report)
    workers = min(bounded_workers(args.workers, "colorize"), max(1, len(todo)))
    settings = _settings(args, hints, threads=max(1, cpu_count() // workers) if workers > 1 else None, device=device)
    try:
        _check_confidence(settings)
        _check_reference(settings, report)
    except (UsageError, ColoritError) as exc:
        print(one_line(f"colorit: {exc}"), file=sys.stderr)
        return 2
    results = _run_parallel(todo, settings, workers) if workers > 1 else _run_serial(todo, settings)
    # With the image on standard output, the summary goes where the messages go.
    summary = sys.stderr if str(single) == STREAM else sys.stdout
    status = _show_results(results, len(todo), skipped, failures, args.output, report, summary)
    if settings.reference and (args.verbose or args.reference_report):
        _name_references(todo, settings, args, report)
    return status


def _still_to_do(jobs: list[Job], args, report) -> tuple[list[Job], int]:
    """The jobs with an output still missing, each keeping those of its outputs that exist (a rerun
    completes an image and its confidence map), and how many jobs are finished: a rerun of a finished
    folder says so in its summary line alone; --verbose names each."""
    todo, finished = [], 0
    for job in jobs:
        outputs = job.outputs(args.confidence)
        existing = [] if args.overwrite or job.to_standard_output else [str(path) for path in outputs if path.exists()]
        if len(existing) < len(outputs):
            todo.append(dataclasses.replace(job, keep=frozenset(existing)))
            continue
        finished += 1
        if args.verbose:
            report(f"colorit: {job.name}: skipped, {job.target} exists (use --overwrite to replace it)")
    return todo, finished


def _check_confidence(settings: Settings) -> None:
    """--confidence and --unsure-grey need a model with a confidence output: say so before any input."""
    from colorit.confidence import no_confidence_error
    from colorit.session import load_model

    needs_confidence = settings.confidence or settings.unsure_grey
    if (
        needs_confidence
        and not load_model(settings.model, threads=settings.threads, device=settings.device).has_confidence
    ):
        raise no_confidence_error(settings.model)


def _check_reference(settings: Settings, report) -> None:
    """Describe the reference photo(s) before any input is done: a bad reference file stops the run
    with one line (unreadable files of a reference folder are named and left out)."""
    from colorit.io import DEFAULT_MAX_PIXELS
    from colorit.reference import reference_pool
    from colorit.session import load_model

    if not settings.reference:
        return
    if not Path(settings.reference).exists():
        raise UsageError(f"{settings.reference}: no such reference file or folder")
    work_side = (
        settings.render_size
        or load_model(settings.model, threads=settings.threads, device=settings.device).default_render_size
    )
    _, problems = reference_pool(
        settings.reference, work_side, settings.threads, settings.max_pixels or DEFAULT_MAX_PIXELS
    )
    for problem in problems:
        report(f"colorit: {problem}")


def _name_references(jobs: list[Job], settings: Settings, args, report) -> None:
    """Name the reference photos each input was colorized with (the same choice again: it is
    deterministic), in --verbose lines and the --reference-report file."""
    import json

    from colorit.batch import references_for
    from colorit.errors import ColoritError
    from colorit.io import DEFAULT_MAX_PIXELS, read_image, write_bytes_atomic
    from colorit.session import load_model

    session = load_model(settings.model, threads=settings.threads, device=settings.device)
    entries = []
    for job in jobs:
        try:
            picture = read_image(job.source, max_pixels=settings.max_pixels or DEFAULT_MAX_PIXELS)
        except ColoritError:
            continue  # reported with the other failures
        names = [reference.source for reference in references_for(picture.pixels, settings, session)]
        if args.verbose:
            report(f"colorit: {job.source}: reference {', '.join(names) or 'none (no colour in it)'}")
        entries.append({"input": str(job.source), "output": str(job.target), "references": names})
    if args.reference_report:
        text = json.dumps({"reference": settings.reference, "inputs": entries}, indent=2) + "\n"
        write_bytes_atomic(args.reference_report, text.encode("utf-8"), overwrite=True)


def _settings(args, hints: str | None, threads: int | None, device: str) -> Settings:
    """The options every image is colorized with, the same for every runner."""
    from colorit.batch import Settings

    return Settings(
        model=args.model,
        threads=threads,
        render_size=args.render_size,
        saturation=args.saturation,
        max_pixels=args.max_pixels,
        overwrite=args.overwrite,
        hints=hints,
        hints_source=str(args.hints),
        reference=args.reference,
        unsure_grey=args.unsure_grey,
        confidence=args.confidence,
        quality=args.quality,
        provenance=args.provenance,
        device=device,
    )


def _show_results(results, total: int, skipped: int, failures: int, outdir, report, summary=sys.stdout) -> int:
    """Progress in images/s, one line per failure, the summary (to `summary`); the exit status."""
    from tqdm import tqdm

    done = 0
    with tqdm(total=total, unit="image", file=sys.stderr, disable=total <= 1) as progress:
        for failure in results:
            if failure:
                report(failure)
                failures += 1
            else:
                done += 1
            progress.update()
    print(one_line(f"colorized {done}, skipped {skipped}, failed {failures} -> {outdir}"), file=summary)
    return 1 if failures else 0


def _run_on_ray(args, report) -> int:
    """--ray: the same jobs on a Ray cluster (colorit.cluster), SRC and OUTDIR local or in an object store."""
    from colorit.errors import ColoritError
    from colorit.session import resolve_model_path

    try:
        from colorit import cluster
    except ImportError as exc:
        print(f"colorit: --ray needs the ray extra (pip install 'colorit[ray]'): {exc}", file=sys.stderr)
        return 2
    try:
        if args.device == "cuda":
            raise UsageError("--device cuda: not available with --ray, whose actors run on CPUs")
        if output_file(args.paths, args.output, args.format) is not None:
            raise UsageError(f"-o {args.output}: --ray writes into a folder or bucket; give -o one")
        resolve_model_path(args.model)
        hints = _read_hints(args)
        settings = _settings(args, hints, threads=cluster.THREADS_PER_ACTOR, device="cpu")
        _check_confidence(settings)
        _check_reference(settings, report)
        archive = cluster.plan(args.paths, args.output, args.format, args.overwrite, report, verbose=args.verbose)
        results = cluster.colorize_on_ray(archive, settings, args.ray or None)
    except (UsageError, ColoritError) as exc:
        print(one_line(f"colorit: {exc}"), file=sys.stderr)
        return 2
    try:
        return _show_results(results, len(archive.todo), archive.skipped, archive.failures, args.output, report)
    except cluster.ArchiveError as exc:  # the cluster itself failed midway; what was written stays
        print(one_line(f"colorit: {exc}"), file=sys.stderr)
        return 1
