"""One image file of a batch, done the same way by every runner (one process, `--workers`
processes, Ray actors): decode -> colorize -> encode -> atomic write, a failure turned into one line.

Runners differ only in where the bytes come from and go to: the source is a path or the file's
bytes, and `write(target, data)` stores the encoded result (atomically: never a partial output).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import PurePath
from typing import TypeVar

from colorit.api import colorize_picture, colorize_picture_with_confidence, output_format_of, provenance_of
from colorit.confidence import confidence_png
from colorit.encoding import EXTENSIONS, FORMATS, encode_image, output_format
from colorit.errors import ColoritError
from colorit.io import DEFAULT_MAX_PIXELS, read_image
from colorit.reference import Reference, choose_for, reference_pool
from colorit.session import ModelSession, load_model
from colorit.video.formats import VIDEO_FORMATS, is_video, video_output_name

Write = Callable[[str, bytes], object]
AnyPath = TypeVar("AnyPath", bound=PurePath)


@dataclass(frozen=True)
class Settings:
    """What every image of a batch is colorized with (pickled for worker processes and Ray actors)."""

    model: str
    threads: int | None
    render_size: int | None
    saturation: float
    max_pixels: int | None
    overwrite: bool
    hints: str | None
    hints_source: str
    reference: str | None = None  # a reference photo or a folder of them (colorit.reference)
    unsure_grey: float | None = None  # None: the model card's unsure_grey_strength
    confidence: bool = False  # also write the network's confidence map, NAME.confidence.png (confidence_target)
    quality: int | None = None  # of JPEG and WebP outputs; None: colorit.encoding.DEFAULT_QUALITY
    provenance: bool = True  # mark each output as colorized in its metadata (colorit.provenance)
    device: str = "auto"  # where the model runs (colorit.session.DEVICES)


def output_name(relative: PurePath, fmt: str | None) -> PurePath:
    """The output's path relative to the output folder: the input's, with the suffix of `fmt`, of the
    input's own format when colorit writes it, else PNG. `fmt` applies to the inputs of its kind: a
    film format to films (which are otherwise written as MP4), a photo format to photos."""
    if is_video(relative):
        return video_output_name(relative, fmt if fmt in VIDEO_FORMATS else None)
    if fmt in FORMATS:
        return relative.with_suffix(EXTENSIONS[FORMATS[fmt]])
    if relative.suffix.lower().lstrip(".") in FORMATS:
        return relative
    return relative.with_suffix(".png")


def confidence_target(target: AnyPath) -> AnyPath:
    """Where --confidence writes an output's confidence map: NAME.confidence.png beside NAME.EXT."""
    return target.with_name(f"{target.stem}.confidence.png")


def references_for(pixels, settings: Settings, session: ModelSession) -> list[Reference]:
    """The reference photos an image is colorized with: none without settings.reference, else the
    best matches of the reference folder (or the one reference photo), described once per process."""
    if not settings.reference:
        return []
    work_side = settings.render_size or session.default_render_size
    pool, _ = reference_pool(settings.reference, work_side, settings.threads, settings.max_pixels or DEFAULT_MAX_PIXELS)
    return choose_for(pixels, list(pool), threads=session.threads, work_side=work_side)


def colorize_file(
    source,
    name: str,
    target,
    settings: Settings,
    write: Write,
    session: ModelSession | None = None,
    keep: Collection[str] = (),
) -> str | None:
    """Colorize one file into `target` (with settings.confidence, also its map beside it); returns
    None, or the one-line failure message.

    source: a path or the file's bytes; name: how the input is named in messages; session: the
    runner's loaded model (default: loaded from settings, cached per process); keep: those of the
    outputs (as str) that exist already and stay as they are: an image and its map are one unit, and
    a rerun completes whichever of them an earlier run left unwritten. A target without a suffix
    (standard output) gets the input's own format.
    """
    try:
        session = session or load_model(settings.model, threads=settings.threads, device=settings.device)
        picture = read_image(source, max_pixels=settings.max_pixels or DEFAULT_MAX_PIXELS, name=name)
        references = references_for(picture.pixels, settings, session)
        options = dict(
            render_size=settings.render_size,
            saturation=settings.saturation,
            hints=settings.hints,
            hints_source=settings.hints_source,
            reference=references or None,
            unsure_grey=settings.unsure_grey,
        )
        map_target = str(confidence_target(PurePath(target)))
        if settings.confidence and map_target not in keep:
            result, confidence = colorize_picture_with_confidence(picture, session, **options)
        else:
            result, confidence = colorize_picture(picture, session, **options), None
        if str(target) not in keep:
            suffix = PurePath(target).suffix
            fmt = output_format(suffix) if suffix else output_format_of(picture)
            provenance = provenance_of(session, settings.hints, references) if settings.provenance else None
            write(
                target,
                encode_image(result, fmt, threads=session.threads, quality=settings.quality, provenance=provenance),
            )
        if confidence is not None:
            write(map_target, confidence_png(confidence))
    except Exception as exc:  # a bug must not stop the rest of the batch either
        return failure_line(name, exc)
    return None


def failure_line(name: str, exc: Exception) -> str:
    """The one line that reports an input's failure: colorit's own message, or what went wrong."""
    if isinstance(exc, ColoritError):
        return f"colorit: {name}: {_without_prefix(str(exc), name)}"
    if isinstance(exc, MemoryError):
        return f"colorit: {name}: out of memory"
    return f"colorit: {name}: unexpected error: {type(exc).__name__}: {exc}"


def _without_prefix(message: str, name: str) -> str:
    """Error messages start with the input's name; the failure line names it once."""
    prefix = f"{name}: "
    return message[len(prefix) :] if message.startswith(prefix) else message
