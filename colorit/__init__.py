"""ColorIt: colorize black-and-white photographs and artworks at full resolution, on the CPU."""

from colorit.api import colorize
from colorit.session import list_models, load_model

__all__ = ["colorize", "list_models", "load_model"]
__version__ = "0.1.0"
