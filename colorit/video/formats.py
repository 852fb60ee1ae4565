"""What colorit reads and writes as films, without importing PyAV: the CLI and the server decide from
these which files are films and what an output is called before anything is decoded."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePath

from colorit.errors import OutputError

# What `colorit colorize FOLDER` will pick up as films (alongside io.IMAGE_SUFFIXES for photos).
VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm"}


@dataclass(frozen=True)
class VideoFormat:
    """An output format: FFmpeg's muxer and encoder, the pixel format encoded and the encoder's options."""

    container: str
    suffix: str
    codec: str
    pixel_format: str
    options: dict[str, str] = field(default_factory=dict)
    description: str = ""


# H.264 at CRF 18 is visually lossless for most footage; "faster" keeps the encoder at ~8 ms a
# 640x480 frame here, a tenth of the frame budget, for files ~10 % larger than "medium".
_H264 = {"crf": "18", "preset": "faster"}
VIDEO_FORMATS = {
    "mp4": VideoFormat("mp4", ".mp4", "libx264", "yuv420p", _H264, "H.264 (yuv420p) in MP4: plays everywhere"),
    "mov": VideoFormat("mov", ".mov", "libx264", "yuv420p", _H264, "H.264 (yuv420p) in QuickTime"),
    "mkv": VideoFormat("matroska", ".mkv", "libx264", "yuv420p", _H264, "H.264 (yuv420p) in Matroska: takes any audio"),
    "webm": VideoFormat(
        "webm",
        ".webm",
        "libvpx-vp9",
        "yuv420p",
        {"crf": "30", "b": "0", "deadline": "realtime", "cpu-used": "8", "row-mt": "1"},
        "VP9 in WebM (audio must be Opus or Vorbis)",
    ),
    "ffv1": VideoFormat(
        "matroska", ".mkv", "ffv1", "bgr0", {"level": "3"}, "FFV1 lossless RGB in Matroska: an archival master"
    ),
}
DEFAULT_VIDEO_FORMAT = "mp4"


def video_format(name: str) -> VideoFormat:
    """The VideoFormat called name (a key of VIDEO_FORMATS, any case); OutputError otherwise."""
    try:
        return VIDEO_FORMATS[name.lower().lstrip(".")]
    except KeyError:
        raise OutputError(f"unknown video format {name!r} (choose from {', '.join(VIDEO_FORMATS)})") from None


def format_of_path(path: PurePath) -> str:
    """The format an output path asks for by its suffix (.mkv: H.264 in Matroska); OutputError otherwise."""
    for name, fmt in VIDEO_FORMATS.items():
        if fmt.suffix == path.suffix.lower():
            return name
    suffixes = ", ".join(sorted({fmt.suffix for fmt in VIDEO_FORMATS.values()}))
    raise OutputError(f"{path}: not a video suffix colorit writes ({suffixes}); or give a format")


def video_output_name(relative: PurePath, fmt: str | None = None) -> PurePath:
    """The output's path relative to the output folder: the input's, with the suffix of fmt (default mp4)."""
    return relative.with_suffix(video_format(fmt or DEFAULT_VIDEO_FORMAT).suffix)


def is_video(path: PurePath) -> bool:
    """Whether colorit takes this file for a film, by its suffix."""
    return path.suffix.lower() in VIDEO_SUFFIXES
