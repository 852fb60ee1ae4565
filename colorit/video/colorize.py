"""`colorit.colorize_video(src, dst, ...)`: a film colorized frame by frame at full resolution, its
colour carried along the motion (colorit.video.coherence), its luminance, timing, rotation and sound
kept.

Three threads share the work, so that decoding and encoding overlap the network: one decodes and
computes each frame's luminance, this one runs the network and the carry at the working size, one
recombines full-resolution colour and encodes. The queues between them hold a few frames, so memory
does not grow with the film's length.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from colorit.api import provenance_of
from colorit.color import luminance_L
from colorit.io import atomic_output
from colorit.limits import DEFAULT_MAX_PIXELS
from colorit.pipeline import check_options, colour_at_working_size, recombine, resize_plane, working_size
from colorit.reference import describe_all
from colorit.session import ModelSession, load_features, load_model
from colorit.video.formats import format_of_path, video_format

# The network's working size for films (longer side): a 640x480 frame's chroma at 320x240 is what
# keeps >= 12 frames/s on two cores, and chroma needs little resolution (benchmarks/bench_video.py).
VIDEO_RENDER_SIZE = 320
# The container tag that says the film was colorized (MP4's ©cmt, Matroska's COMMENT).
COMMENT_TAG = "comment"
# Frames (and audio packets) each queue between the threads holds: enough to even out the threads'
# pace, few enough for memory (a 4K frame's luminance alone is 33 MB, and each frame is in two queues).
QUEUE_ITEMS = 8
# How often a thread waiting on a queue looks whether the others have stopped (seconds).
POLL_S = 0.1

Progress = Callable[[int, "int | None"], object]


@dataclass(frozen=True)
class VideoResult:
    """What colorize_video wrote: frames, shots found (None in per-frame mode), frames the network ran on."""

    path: Path
    frames: int
    shots: int | None
    network_frames: int
    seconds: float

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


@dataclass
class _Luminance:
    index: int
    pts: int | None
    L: np.ndarray
    display_matrix: tuple[int, ...] | None


@dataclass
class _Coloured:
    pts: int | None
    L: np.ndarray
    ab: np.ndarray
    display_matrix: tuple[int, ...] | None


_END = object()


class _Stopped(Exception):
    """Another thread failed or the run was interrupted: this one lets go."""


def _put(target: queue.Queue, item, stop: threading.Event) -> None:
    while True:
        if stop.is_set():
            raise _Stopped
        try:
            target.put(item, timeout=POLL_S)
            return
        except queue.Full:
            continue


def _get(source: queue.Queue, stop: threading.Event):
    while True:
        if stop.is_set():
            raise _Stopped
        try:
            return source.get(timeout=POLL_S)
        except queue.Empty:
            continue


def _video_modules():
    """PyAV and OpenCV come with the `video` extra; without them a film is refused in one line."""
    try:
        from colorit.video import coherence, media
    except ImportError as exc:
        from colorit.errors import ColoritError

        raise ColoritError(
            f"films need the video extra: pip install 'colorit[video]' ({exc.name} is missing)"
        ) from None
    return coherence, media


def film_work_side(render_size: int | None, session: ModelSession) -> int:
    """The longer side of the network's working image for a film: render_size, else VIDEO_RENDER_SIZE
    or the model's own when that is smaller."""
    return render_size or min(VIDEO_RENDER_SIZE, session.default_render_size)


def colorize_video(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    name: str | None = None,
    model: str | os.PathLike | ModelSession = "default",
    render_size: int | None = None,
    saturation: float = 1.0,
    hints=None,
    reference=None,
    unsure_grey: float | None = None,
    coherent: bool = True,
    network_every: int = 1,
    format: str | None = None,
    overwrite: bool = False,
    threads: int | None = None,
    device: str = "auto",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: Progress | None = None,
    progress_bar: bool = False,
    provenance: bool = True,
) -> VideoResult:
    """Colorize the film src (mp4, mov, mkv, avi, webm, ...) into dst; returns what was written.

    Same frame count, timestamps (so frame rate), size, rotation and pixel aspect as src, its audio
    streams copied as they are, the luminance of every frame its own (only chroma is added).
    name: how src is named in messages (default: its path). Options as for colorit.colorize; hints
    and reference apply to every frame (each frame takes the best matches of a list of references).
    render_size: the network's working size (default VIDEO_RENDER_SIZE, at most the model's own).
    coherent: carry colour along the motion from frame to frame (False: every frame on its own, as
    photos are); network_every: in coherent mode, run the network on every n-th frame of a shot only.
    format: a key of colorit.video.formats.VIDEO_FORMATS (default: from dst's suffix).
    device: where the network runs, as for colorit.colorize; ignored when model is a session.
    progress(frames done, frames expected or None) is called from a worker thread after each frame
    (it may raise to cancel); progress_bar shows a tqdm bar (frames/s, ETA) on stderr. provenance:
    say in the film's comment tag that its colours are ColorIt's (colorit.provenance), as photos
    do, before the input's own comment; the input's other tags are kept.
    Raises ColoritError subclasses with one-line messages (VideoError for a bad input); dst is
    written whole or not at all.
    """
    coherence, media = _video_modules()
    check_options(render_size, saturation)
    if network_every < 1:
        raise ValueError(f"network_every must be at least 1, got {network_every}")
    dst = Path(dst)
    fmt = video_format(format or format_of_path(dst))
    session = model if isinstance(model, ModelSession) else load_model(model, threads=threads, device=device)
    side = film_work_side(render_size, session)
    references = describe_all(reference, load_features(session.threads), side) if reference is not None else None
    name = name or os.fspath(src)
    started = time.perf_counter()
    source = media.VideoSource(src, name, max_pixels=max_pixels)
    try:
        info = source.info
        work_size = working_size(info.width, info.height, side)
        metadata = source.metadata
        if provenance:
            # Matroska names its tags in capitals: one comment, the input's kept after ours.
            earlier = [metadata.pop(key) for key in list(metadata) if key.lower() == COMMENT_TAG]
            metadata[COMMENT_TAG] = " ".join([provenance_of(session, hints, references).description(), *earlier])
        carry = coherence.ColourCarry(network_every) if coherent else None
        stop = threading.Event()
        luminance: queue.Queue = queue.Queue(QUEUE_ITEMS)
        coloured: queue.Queue = queue.Queue(QUEUE_ITEMS)
        errors: list[BaseException] = []
        written = [0]

        def guess(L: np.ndarray):
            _, ab, confidence = colour_at_working_size(
                L,
                session,
                render_size=side,
                saturation=saturation,
                hints=hints,
                hints_source=f"{name}: hints",
                reference=references,
                unsure_grey=unsure_grey,
            )
            return ab, confidence

        def read() -> None:
            try:
                for item in source.items():
                    if isinstance(item, media.Frame):
                        item = _Luminance(item.index, item.pts, luminance_L(item.rgb), item.display_matrix)
                    _put(luminance, item, stop)
                _put(luminance, _END, stop)
            except _Stopped:
                pass
            except BaseException as exc:
                errors.append(exc)
                stop.set()

        def write(temporary: Path) -> None:
            sink = None
            early_audio = []  # audio demuxed before the first frame is decoded, while the output is not open
            expected = source.expected_frames()
            bar = tqdm(total=expected, unit="frame", desc=Path(name).name, disable=not progress_bar, leave=False)
            try:
                while (item := _get(coloured, stop)) is not _END:
                    if not isinstance(item, _Coloured):
                        if sink is None:
                            early_audio.append(item)
                        else:
                            sink.write_audio(item)
                        continue
                    if sink is None:
                        sink = media.VideoSink(
                            temporary,
                            fmt,
                            info,
                            source.audio_streams,
                            item.display_matrix,
                            metadata=metadata,
                            threads=1,
                        )
                        for packet in early_audio:
                            sink.write_audio(packet)
                        early_audio.clear()
                    rgb = np.empty(item.L.shape + (3,), np.uint8)
                    recombine(item.L, item.ab, rgb, 1)
                    sink.write_frame(rgb, item.pts)
                    written[0] += 1
                    bar.update(1)
                    if progress is not None:
                        progress(written[0], expected)
                if sink is not None:
                    sink.finish()
                    sink = None
            except _Stopped:
                pass
            except BaseException as exc:
                errors.append(exc)
                stop.set()
            finally:
                bar.close()
                if sink is not None:
                    sink.close()

        with atomic_output(dst, overwrite=overwrite, protected=[src]) as temporary:
            reader = threading.Thread(target=read, name="colorit-video-read", daemon=True)
            writer = threading.Thread(target=write, args=(temporary,), name="colorit-video-write", daemon=True)
            reader.start()
            writer.start()
            try:
                while (item := _get(luminance, stop)) is not _END:
                    if isinstance(item, _Luminance):
                        L = item.L
                        if carry is None:
                            ab = guess(L)[0]
                        else:
                            ab = carry.step(resize_plane(L, work_size), lambda L=L: guess(L))
                        item = _Coloured(item.pts, L, ab, item.display_matrix)
                    _put(coloured, item, stop)
                _put(coloured, _END, stop)
                writer.join()
            except _Stopped:
                pass
            finally:
                if writer.is_alive() or reader.is_alive():
                    stop.set()
                writer.join()
                reader.join()
            if errors:
                raise errors[0]
    finally:
        source.close()
    shots, network_frames = (carry.shots, carry.guesses) if carry is not None else (None, written[0])
    return VideoResult(dst, written[0], shots, network_frames, time.perf_counter() - started)
