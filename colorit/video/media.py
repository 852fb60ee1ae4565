"""Films in and out through PyAV (FFmpeg's libraries): the frames of the first video stream decoded in
order with the audio packets between them, and an output that keeps the input's timestamps, display
matrix (rotation, flips), pixel aspect and audio streams (packets copied as they are: no re-encoding).

An output is written to a hidden temporary file beside it and renamed into place when whole
(colorit.io.atomic_output), so an interrupted run (Ctrl-C, a crash, a full disk) never leaves a
partial film.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.error
import numpy as np
from av.sidedata.sidedata import SideData

from colorit.errors import ImageTooLarge, OutputError, VideoError
from colorit.video.formats import VideoFormat

# A stream that states no frame rate is written at this one (its timestamps still decide the timing).
FALLBACK_RATE = Fraction(25)
# Output colour matrix where the input names none: what players assume for a frame of that height.
HD_HEIGHT = 720
# 4:2:0 halves the chroma planes, which x264 does only for an even width and height: a film of an odd
# size keeps its size with full chroma instead (H.264 High 4:4:4; fewer players take it).
ODD_SIZE_H264_PIXEL_FORMAT = "yuv444p"
# A film whose frames stop short of the length its video stream declares by more than this many
# frames and this share of the length is truncated (Matroska and WebM declare no frame count; a
# cut-off file decodes without an error up to where it was cut).
TRUNCATED_FRAMES = 2
TRUNCATED_SHARE = 0.02


@dataclass(frozen=True)
class VideoInfo:
    """What the output copies from the input's first video stream, read before any frame is decoded."""

    name: str
    width: int
    height: int
    frames: int  # as the container declares it; 0 where it declares none (Matroska, WebM)
    rate: Fraction
    time_base: Fraction
    duration_s: float | None  # the video stream's declared length, else the container's; None if unknown
    stream_duration_s: float | None  # the video stream's own declared length only
    sample_aspect_ratio: Fraction | None
    colorspace: int
    audio_codecs: tuple[str, ...]

    @property
    def pixels(self) -> int:
        return self.width * self.height


@dataclass
class Frame:
    """One decoded frame: its presentation timestamp (in the stream's time base), RGB pixels, and for
    the first frame the display matrix it carries (9 int32 as FFmpeg stores it; None when upright or
    for any later frame: the output has one matrix, and PyAV keeps ~3 kB of every frame whose side
    data is read, which over a long film grows without bound)."""

    index: int
    pts: int | None
    rgb: np.ndarray
    display_matrix: tuple[int, ...] | None


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return str(reason).splitlines()[0]


def _short(frames: float, declared: float) -> bool:
    """Whether frames fall short of the declared count by more than a container's rounding (AVI
    counts a frame more where the encoder held one back)."""
    return declared - frames > max(TRUNCATED_FRAMES, TRUNCATED_SHARE * declared)


def _stream_duration(video: av.VideoStream) -> Fraction | None:
    """The video stream's own declared length: its duration, or the DURATION tag that Matroska and
    WebM muxers write instead."""
    if video.duration and video.time_base:
        return video.duration * video.time_base
    hours, _, rest = str(video.metadata.get("DURATION", "")).partition(":")
    minutes, _, seconds = rest.partition(":")
    try:
        return Fraction(int(hours) * 3600 + int(minutes) * 60) + Fraction(seconds)
    except ValueError:
        return None


def _display_matrix(frame: av.VideoFrame) -> tuple[int, ...] | None:
    side_data = frame.side_data.get("DISPLAYMATRIX")
    if not isinstance(side_data, SideData):
        return None
    return tuple(int(v) for v in np.frombuffer(bytes(side_data), np.int32))


class VideoSource:
    """An opened input film. Iterate items() for Frame objects and audio packets in file order.

    name: how the file is named in messages; max_pixels: the largest frame size taken (ImageTooLarge).
    """

    def __init__(self, path: str | os.PathLike, name: str, *, max_pixels: int):
        self.name = name
        try:
            self._container = av.open(os.fspath(path), metadata_errors="ignore")
        except av.error.FFmpegError as exc:
            raise VideoError(f"{name}: not a readable video ({_reason(exc)})") from None
        except OSError as exc:
            raise VideoError(f"{name}: cannot read ({_reason(exc)})") from None
        try:
            self.info = self._probe(max_pixels)
        except BaseException:
            self._container.close()
            raise

    def _probe(self, max_pixels: int) -> VideoInfo:
        streams = self._container.streams
        if not streams.video:
            kinds = ", ".join(sorted({stream.type for stream in streams})) or "no streams at all"
            raise VideoError(f"{self.name}: no video stream (it holds {kinds})")
        video = streams.video[0]
        self._video = video
        self._audio = list(streams.audio)
        context = video.codec_context
        if not context.width or not context.height:
            raise VideoError(f"{self.name}: its video stream has no picture size (a damaged header)")
        if context.width * context.height > max_pixels:
            raise ImageTooLarge(
                f"{self.name}: frames of {context.width}x{context.height} pixels exceed the limit of {max_pixels} pixels"
            )
        video.thread_type = "AUTO"
        stream_duration = _stream_duration(video)
        duration = stream_duration
        if duration is None and self._container.duration:
            duration = Fraction(self._container.duration, av.time_base)
        return VideoInfo(
            name=self.name,
            width=context.width,
            height=context.height,
            frames=int(video.frames or 0),
            rate=video.average_rate or video.guessed_rate or video.base_rate or FALLBACK_RATE,
            time_base=video.time_base or Fraction(1, 90000),
            duration_s=float(duration) if duration else None,
            stream_duration_s=float(stream_duration) if stream_duration else None,
            sample_aspect_ratio=video.sample_aspect_ratio or None,
            colorspace=int(context.colorspace),
            audio_codecs=tuple(stream.codec_context.name for stream in self._audio),
        )

    @property
    def audio_streams(self) -> list:
        return self._audio

    @property
    def metadata(self) -> dict[str, str]:
        """The container's tags (title, date, ...)."""
        return dict(self._container.metadata)

    def expected_frames(self) -> int | None:
        """The frame count for progress: declared, else estimated from the duration; None if unknown."""
        if self.info.frames:
            return self.info.frames
        if self.info.duration_s:
            return max(1, round(self.info.duration_s * self.info.rate))
        return None

    def items(self) -> Iterator[Frame | av.Packet]:
        """Frames (in presentation order) and audio packets, as the file interleaves them. Raises
        VideoError for a file that is damaged, truncated or holds no frame."""
        index = 0
        first_pts = last_pts = None
        try:
            for packet in self._container.demux(self._video, *self._audio):
                if packet.stream.type == "audio":
                    if packet.dts is not None:  # the demuxer's empty end-of-stream packets carry nothing
                        yield packet
                    continue
                for frame in packet.decode():
                    matrix = _display_matrix(frame) if index == 0 else None
                    yield Frame(index, frame.pts, frame.to_ndarray(format="rgb24"), matrix)
                    index += 1
                    if frame.pts is not None:
                        first_pts = frame.pts if first_pts is None else first_pts
                        last_pts = frame.pts
        except av.error.FFmpegError as exc:
            raise VideoError(f"{self.name}: damaged after {index} frames ({_reason(exc)})") from None
        if index == 0:
            raise VideoError(f"{self.name}: its video stream holds no frames")
        if _short(index, self.info.frames):
            raise VideoError(f"{self.name}: truncated: {index} of the {self.info.frames} frames its header declares")
        declared = self.info.stream_duration_s
        if declared and first_pts is not None and last_pts is not None:
            shown = float((last_pts - first_pts) * self.info.time_base + 1 / self.info.rate)
            if _short(shown * self.info.rate, declared * self.info.rate):
                raise VideoError(
                    f"{self.name}: truncated: its frames stop at {shown:.2f} s of the {declared:.2f} s its header declares"
                )

    def close(self) -> None:
        self._container.close()


def _colorspace(info: VideoInfo) -> str:
    """The matrix RGB is turned into Y'CbCr with: the input's where swscale has it, else what a player
    assumes for a frame of this height."""
    named = {1: "ITU709", 5: "ITU601", 6: "SMPTE170M", 7: "SMPTE240M", 9: "BT2020"}
    return named.get(info.colorspace, "ITU709" if info.height >= HD_HEIGHT else "ITU601")


# FFmpeg's AVColorSpace numbers of swscale's names, to tag the output with the matrix it was made with.
_COLORSPACE_NUMBERS = {"ITU709": 1, "ITU601": 6, "SMPTE170M": 6, "SMPTE240M": 7, "BT2020": 9}


class VideoSink:
    """An output film being written to path (a temporary name: see atomic_output)."""

    def __init__(
        self,
        path: Path,
        fmt: VideoFormat,
        info: VideoInfo,
        audio_streams,
        display_matrix,
        *,
        metadata: dict[str, str],
        threads: int,
    ):
        self._fmt = fmt
        try:
            self._container = av.open(os.fspath(path), "w", format=fmt.container)
        except (av.error.FFmpegError, OSError) as exc:
            raise OutputError(f"{path}: cannot write ({_reason(exc)})") from None
        self._container.metadata.update(metadata)
        try:
            self._open_streams(info, audio_streams, display_matrix, threads)
        except BaseException:
            self._container.close()
            raise
        self._last_pts: int | None = None

    def _open_streams(self, info: VideoInfo, audio_streams, display_matrix, threads: int) -> None:
        fmt = self._fmt
        for codec in info.audio_codecs:
            if codec not in self._container.supported_codecs:
                raise OutputError(
                    f"{info.name}: its {codec} audio cannot be copied into {fmt.suffix.lstrip('.')} as it is; write mkv "
                    "(--format mkv)"
                )
        stream = self._container.add_stream(fmt.codec, rate=info.rate, options=dict(fmt.options))
        assert isinstance(stream, av.VideoStream)  # every codec of VIDEO_FORMATS encodes video
        self._pixel_format = fmt.pixel_format
        if fmt.pixel_format == "yuv420p" and fmt.codec == "libx264" and (info.width % 2 or info.height % 2):
            self._pixel_format = ODD_SIZE_H264_PIXEL_FORMAT
        stream.width, stream.height, stream.pix_fmt = info.width, info.height, self._pixel_format
        stream.time_base = info.time_base
        stream.codec_context.time_base = info.time_base
        stream.codec_context.thread_count = threads
        if info.sample_aspect_ratio:
            stream.codec_context.sample_aspect_ratio = info.sample_aspect_ratio
        self._matrix = _colorspace(info)
        if self._pixel_format.startswith("yuv"):
            stream.codec_context.colorspace = _COLORSPACE_NUMBERS[self._matrix]
            stream.codec_context.color_range = 1  # limited ("tv") range, as players expect of H.264 and VP9
        if display_matrix is not None:
            stream.set_display_matrix(list(display_matrix))
        self._video = stream
        self._time_base = info.time_base
        self._step = max(1, round(1 / (info.rate * info.time_base)))
        self._audio = {source.index: self._container.add_stream_from_template(source) for source in audio_streams}

    def write_frame(self, rgb: np.ndarray, pts: int | None) -> None:
        # Timestamps are the input's; a missing or repeated one (some AVI files) is the last plus a frame.
        if pts is None or (self._last_pts is not None and pts <= self._last_pts):
            pts = 0 if self._last_pts is None else self._last_pts + self._step
        self._last_pts = pts
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        if self._pixel_format.startswith("yuv"):
            frame = frame.reformat(
                format=self._pixel_format,
                src_colorspace=self._matrix,
                dst_colorspace=self._matrix,
                dst_color_range=1,
            )
        else:
            frame = frame.reformat(format=self._pixel_format)
        frame.pts, frame.time_base = pts, self._time_base
        self._mux(self._video.encode(frame))

    def write_audio(self, packet: av.Packet) -> None:
        packet.stream = self._audio[packet.stream.index]
        self._mux([packet])

    def _mux(self, packets) -> None:
        try:
            self._container.mux(packets)
        except av.error.FFmpegError as exc:
            raise OutputError(f"cannot write the film ({_reason(exc)})") from None

    def finish(self) -> None:
        """Flush the encoder and write the container's index (call once, after the last frame)."""
        self._mux(self._video.encode(None))
        self._container.close()

    def close(self) -> None:
        self._container.close()
