"""Films: colorit.colorize_video(src, dst, ...), and the suffixes and formats it reads and writes.

Importing this package needs neither PyAV nor OpenCV (the `video` extra); colorizing a film does.
"""

from colorit.video.colorize import VideoResult, colorize_video
from colorit.video.formats import VIDEO_FORMATS, VIDEO_SUFFIXES, is_video, video_output_name

__all__ = ["VIDEO_FORMATS", "VIDEO_SUFFIXES", "VideoResult", "colorize_video", "is_video", "video_output_name"]
