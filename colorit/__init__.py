"""ColorIt: colorize black-and-white photographs and artworks at full resolution, on the CPU."""

from colorit.api import colorize
from colorit.session import list_models, load_model
from colorit.version import __version__
from colorit.video import colorize_video

__all__ = ["__version__", "colorize", "colorize_video", "list_models", "load_model"]
