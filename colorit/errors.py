"""Errors a user can cause. Each carries a one-line message fit to print as it is."""


class ColoritError(Exception):
    """Base class: the message is one line, names the input where there is one, and says why."""


class ImageError(ColoritError):
    """The input is not a readable image (not an image at all, truncated, empty, unsupported)."""


class VideoError(ImageError):
    """The input is not a readable video (not a video at all, truncated, no video stream, no frames)."""


class ImageTooLarge(ColoritError):
    """The input exceeds a configured limit in bytes or pixels (refused before decoding)."""


class HintError(ColoritError):
    """A user hint is invalid: outside the image, a bad colour, too many, or the model takes none."""


class ModelNotFound(ColoritError):
    """No bundled model has that name and no ONNX file exists at that path."""


class OutputError(ColoritError):
    """The output cannot be written (exists without --overwrite, would replace an input, not writable)."""


class ColoritWarning(UserWarning):
    """Something the user should know about a result that is still written: one line, naming the input."""
