"""Command line: `colorit VERB ...`, one module per verb (as rembg does)."""

from __future__ import annotations

import argparse
import importlib
import math
import os
import sys
import unicodedata
import warnings
from typing import NoReturn

from colorit.errors import ColoritWarning
from colorit.limits import MAX_RENDER_SIZE, MAX_SATURATION, WORKERS_PER_CPU
from colorit.version import __version__

# verb -> module; each module defines add_parser(subparsers) and run(args) -> exit status.
VERBS = {
    "colorize": "colorit.cli.colorize",
    "models": "colorit.cli.models",
    "serve": "colorit.cli.serve",
    "evaluate": "colorit.cli.evaluate",
    "corpus": "colorit.cli.corpus",
    "train": "colorit.cli.train",
    "export": "colorit.cli.export",
}


class UsageError(Exception):
    """A problem with the command line as a whole: exit status 2, nothing processed."""


class _Parser(argparse.ArgumentParser):
    """argparse exits with status 2 on usage errors; keep that, but print one line, not the usage block."""

    def error(self, message: str) -> NoReturn:  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message}\n")


def number_parser(kind: type, minimum: float, *, above: bool = False, maximum: float | None = None):
    """An argparse type: a finite number of `kind` at least (or, with above, greater than) minimum,
    and at most maximum when one is given."""
    expected = "a whole number" if kind is int else "a number"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not math.isfinite(value) or value < minimum or (above and value == minimum):
            bound = f"{'>' if above else '>='} {minimum}"
            raise argparse.ArgumentTypeError(f"must be {'finite and ' if kind is float else ''}{bound}, got {text}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be <= {maximum:g}, got {text}")
        return value

    return parse


positive_int = number_parser(int, 1)
non_negative_int = number_parser(int, 0)
positive_float = number_parser(float, 0, above=True)
non_negative_float = number_parser(float, 0)
render_size = number_parser(int, 1, maximum=MAX_RENDER_SIZE)
saturation = number_parser(float, 0, maximum=MAX_SATURATION)
port = number_parser(int, 0, maximum=65535)


def bounded_workers(requested: int, verb: str) -> int:
    """requested, or WORKERS_PER_CPU per CPU when it asks for more (saying so on one line)."""
    from colorit.io import cpu_count

    limit = WORKERS_PER_CPU * cpu_count()
    if requested <= limit:
        return requested
    print(
        f"colorit {verb}: --workers {requested} is more than {WORKERS_PER_CPU} per CPU; using {limit}", file=sys.stderr
    )
    return limit


def one_line(text: str) -> str:
    """text with its line breaks and control characters (a newline in a file name, a terminal escape
    sequence) written as Python writes them in a string, \\n, \\x1b: every message stays one line
    and cannot move the terminal's cursor."""
    return "".join(
        repr(character)[1:-1] if unicodedata.category(character) in ("Cc", "Zl", "Zp") else character
        for character in text
    )


_python_formatwarning = warnings.formatwarning


def _formatwarning(message, category, filename, lineno, line=None) -> str:
    if issubclass(category, ColoritWarning):
        return f"{one_line(f'colorit: {message}')}\n"
    return _python_formatwarning(message, category, filename, lineno, line)


def one_line_warnings() -> None:
    """Print ColoritWarnings as one 'colorit: ...' line, without Python's file and source line."""
    warnings.formatwarning = _formatwarning


def training_module(verb: str, module_name: str):
    """Import a module of colorit.train, which needs the optional training extra; None (after
    saying why on one line) when it is not installed."""
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        print(f"colorit {verb}: needs the training extra (pip install 'colorit[train]'): {exc}", file=sys.stderr)
        return None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="colorit", description="Colorize black-and-white photographs and artworks.")
    parser.add_argument("--version", action="version", version=f"colorit {__version__}")
    sub = parser.add_subparsers(dest="verb", required=True, parser_class=_Parser)
    for module_name in VERBS.values():
        importlib.import_module(module_name).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    one_line_warnings()
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print("colorit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`colorit models | head`): stop quietly, as other Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
