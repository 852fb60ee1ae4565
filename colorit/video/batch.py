"""One film of a `colorit colorize` batch, done the same way by every runner (one process,
`--workers` processes, Ray tasks), as colorit.batch does one photo: colorized into its target
(written whole or not at all), a failure turned into one line."""

from __future__ import annotations

from pathlib import Path

from colorit.batch import Settings, failure_line
from colorit.limits import DEFAULT_MAX_PIXELS
from colorit.reference import reference_pool
from colorit.session import ModelSession, load_model
from colorit.video.colorize import colorize_video, film_work_side


def colorize_film_file(
    source: Path,
    name: str,
    target: Path,
    settings: Settings,
    *,
    session: ModelSession | None = None,
    progress_bar: bool = False,
) -> str | None:
    """Colorize the film at source into target; returns None, or the one-line failure message.

    name: how the input is named in messages; session: the runner's loaded model (default: loaded
    from settings, cached per process). A reference folder's photos are all offered to every frame,
    which takes its best matches. --confidence maps are for photos: a film gets none.
    """
    try:
        session = session or load_model(settings.model, threads=settings.threads, device=settings.device)
        max_pixels = settings.max_pixels or DEFAULT_MAX_PIXELS
        references = None
        if settings.reference:
            side = film_work_side(settings.render_size, session)
            references = list(reference_pool(settings.reference, side, settings.threads, max_pixels)[0]) or None
        colorize_video(
            source,
            target,
            model=session,
            name=name,
            render_size=settings.render_size,
            saturation=settings.saturation,
            hints=settings.hints,
            reference=references,
            unsure_grey=settings.unsure_grey,
            overwrite=settings.overwrite,
            max_pixels=max_pixels,
            progress_bar=progress_bar,
            provenance=settings.provenance,
        )
    except Exception as exc:  # a bug must not stop the rest of the batch either
        return failure_line(name, exc)
    return None
