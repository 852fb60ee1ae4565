"""Where `colorit colorize` writes besides a folder, and what it reads besides files: `-o result.jpg`
with one input writes that file, `-o -` writes the image to standard output, and `-` as PATH reads
one image from standard input."""

from __future__ import annotations

import sys
from pathlib import Path

from colorit.cli import UsageError

STREAM = "-"  # as PATH: standard input; as -o: standard output
STANDARD_INPUT = "standard input"  # how messages name it


def output_suffixes() -> set[str]:
    """The suffixes that make -o name one output file: the photo formats and the films' own."""
    from colorit.encoding import FORMATS
    from colorit.video.formats import VIDEO_FORMATS

    return {f".{name}" for name in FORMATS} | {fmt.suffix for fmt in VIDEO_FORMATS.values()}


def output_file(paths: list[str], output: str, fmt: str | None) -> Path | None:
    """The one file -o names (Path('-') for standard output), or None when it names a folder.

    -o names a file when it is '-', or has an image or film suffix (result.jpg) and is no folder that
    exists. A file takes exactly one input file; standard input needs a file or standard output."""
    from colorit.encoding import FORMATS

    suffix = Path(output).suffix.lower()
    if output != STREAM and (suffix not in output_suffixes() or Path(output).is_dir()):
        if STREAM in paths:
            raise UsageError("-: an image from standard input goes to -o FILE.EXT or to -o - (standard output)")
        return None
    if len(paths) != 1 or (paths[0] != STREAM and Path(paths[0]).is_dir()):
        raise UsageError(f"-o {output}: one output file takes one input file; for several, give -o a folder")
    named = FORMATS.get(suffix.lstrip("."))
    if output != STREAM and fmt in FORMATS and named and FORMATS[fmt] != named:
        raise UsageError(f"--format {fmt} and -o {output} name different formats; give one of them")
    return Path(output)


def check_standard_input() -> None:
    """Standard input must bring an image: refuse a terminal before anything is read."""
    if sys.stdin.isatty():
        raise UsageError("-: standard input is a terminal; pipe an image in (colorit colorize - -o out.png < in.jpg)")


def write_standard_output(_target: str, data: bytes) -> None:
    """A colorize_file `write` that sends the encoded image to standard output."""
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
