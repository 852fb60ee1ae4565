"""Short films made with PyAV for the video tests: a camera pan over a wheel photo, greyed, with a
real AAC (or other) sound track, a rotation and a pixel aspect where asked."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from conftest import grey_of, photo_rgb

RATE = 25
SAMPLE_RATE = 48000


def pan_frames(name: str, frames: int, size: tuple[int, int] = (160, 120), step: int = 2) -> list[np.ndarray]:
    """frames RGB frames of size (w, h): a window sliding `step` pixels right per frame across the photo."""
    width, height = size
    # Every wheel photo is at least 1.2 times as wide as high and 2/3 as high as wide at this size.
    rgb = photo_rgb(name, longer_side=max(400, width + step * frames, round(height * 1.5)) + 8)
    top = (rgb.shape[0] - height) // 2
    return [np.ascontiguousarray(rgb[top : top + height, i * step : i * step + width]) for i in range(frames)]


def greyed(frames: list[np.ndarray]) -> list[np.ndarray]:
    """The frames in black and white (their own L*), as RGB."""
    return [np.repeat(grey_of(frame)[..., None], 3, axis=2) for frame in frames]


def write_film(
    path: Path,
    frames: list[np.ndarray],
    *,
    codec: str = "libx264",
    pixel_format: str = "yuv420p",
    rate: int | Fraction = RATE,
    audio: str | None = "aac",
    rotation: int | None = None,
    sample_aspect_ratio: Fraction | None = None,
    options: dict[str, str] | None = None,
    title: str | None = None,
) -> Path:
    """Writes frames as a film, with a sound track of `audio` (a 440 Hz tone as long as the film; None:
    silent), a display rotation in degrees and a pixel aspect ratio where given."""
    with av.open(str(path), "w") as container:
        if title is not None:
            container.metadata["title"] = title
        video = container.add_stream(codec, rate=rate, options=options or {})
        video.width, video.height, video.pix_fmt = frames[0].shape[1], frames[0].shape[0], pixel_format
        if sample_aspect_ratio is not None:
            video.codec_context.sample_aspect_ratio = sample_aspect_ratio
        if rotation is not None:
            video.set_display_rotation(rotation)
        sound = container.add_stream(audio, rate=SAMPLE_RATE, layout="mono") if audio else None
        for index, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = index
            frame.time_base = Fraction(1, 1) / Fraction(rate)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if sound is not None:
            _write_tone(container, sound, len(frames) / float(rate))
    return path


def _write_tone(container, sound, seconds: float) -> None:
    samples = np.sin(2 * math.pi * 440 * np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE).astype(np.float32)
    chunk = sound.codec_context.frame_size or 1024
    for start in range(0, len(samples), chunk):
        piece = samples[start : start + chunk]
        frame = av.AudioFrame.from_ndarray(piece[None, :], format="flt", layout="mono")
        frame.sample_rate, frame.pts = SAMPLE_RATE, start
        frame = _as_codec_format(frame, sound)
        container.mux(sound.encode(frame))
    container.mux(sound.encode(None))


def _as_codec_format(frame: av.AudioFrame, sound) -> av.AudioFrame:
    wanted = sound.codec_context.format.name
    if frame.format.name == wanted:
        return frame
    resampled = av.AudioResampler(format=wanted, layout="mono", rate=SAMPLE_RATE).resample(frame)
    out = resampled[0]
    out.pts = frame.pts
    return out


def read_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def audio_packets(path: Path) -> list[tuple[int | None, bytes]]:
    """(pts, bytes) of every packet of the first audio stream, in order."""
    with av.open(str(path)) as container:
        return [(packet.pts, bytes(packet)) for packet in container.demux(audio=0) if packet.size]


def film_tags(path: Path) -> dict[str, str]:
    """A film's container tags, by lower-case name (Matroska's are in capitals)."""
    with av.open(str(path)) as container:
        return {key.lower(): value for key, value in container.metadata.items()}


def video_stream_facts(path: Path) -> dict:
    """What a film's first video stream says of itself: frames, rate, size, aspect, rotation, codec."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(video=0))
        return {
            "frames": len(frames),
            "rate": stream.average_rate,
            "size": (stream.codec_context.width, stream.codec_context.height),
            "sample_aspect_ratio": stream.sample_aspect_ratio,
            "rotation": frames[0].rotation,
            "codec": stream.codec_context.name,
            "pixel_format": stream.codec_context.pix_fmt,
            "pts": [frame.pts for frame in frames],
            "time_base": stream.time_base,
        }
