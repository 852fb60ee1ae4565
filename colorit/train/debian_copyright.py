"""The licences a Debian copyright file gives, per installed path (machine-readable DEP-5 format:
https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/), for the corpus manifest."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from colorit.io import IMAGE_SUFFIXES


def _paragraphs(text: str) -> list[dict[str, str]]:
    paragraphs: list[dict[str, str]] = []
    fields: dict[str, str] = {}
    name = ""
    for line in text.splitlines():
        if not line.strip():
            if fields:
                paragraphs.append(fields)
            fields, name = {}, ""
        elif line[0] in " \t":
            if name:
                fields[name] += "\n" + line.strip()
        elif ":" in line:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            fields[name] = value.strip()
    if fields:
        paragraphs.append(fields)
    return paragraphs


def _dep5_regex(patterns: Sequence[str]) -> re.Pattern[str]:
    alternatives = []
    for pattern in patterns:
        pattern = re.sub("/+", "/", pattern.removeprefix("./"))
        alternatives.append("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern))
    return re.compile("|".join(f"(?:{a})" for a in alternatives), re.DOTALL)


def _first_line(value: str) -> str:
    return value.strip().splitlines()[0].strip() if value.strip() else ""


def _path_suffixes(original_path: str) -> list[str]:
    # DEP-5 patterns are relative to the source tree, whose root is somewhere inside the
    # installed path (or inside the rcc resource path): try every tail of the path. Builds
    # convert image formats (gcompris ships its .jpg and .png sources as .webp), so a picture
    # also answers to its name with any other raster extension.
    parts = [part for part in original_path.replace(":/", "/").split("/") if part]
    extension = os.path.splitext(original_path)[1]
    extensions = sorted(IMAGE_SUFFIXES | {extension}) if extension.lower() in IMAGE_SUFFIXES else [extension]
    tails = []
    for start in range(len(parts)):
        tail_stem = os.path.splitext("/".join(parts[start:]))[0]
        tails += [tail_stem + ext for ext in extensions]
    return tails


@dataclass(frozen=True)
class CopyrightFile:
    """The licences a Debian copyright file gives, looked up by installed path."""

    package: str
    machine_readable: bool = False
    header_licence: str = ""
    stanzas: tuple[tuple[re.Pattern[str], str], ...] = ()  # (Files patterns, licence), file order

    @classmethod
    def parse(cls, package: str, text: str) -> CopyrightFile:
        paragraphs = _paragraphs(text)
        stanzas = tuple(
            (_dep5_regex(p["files"].split()), _first_line(p.get("license", ""))) for p in paragraphs if "files" in p
        )
        if not paragraphs or "format" not in paragraphs[0] or not stanzas:
            return cls(package)
        return cls(package, True, _first_line(paragraphs[0].get("license", "")), stanzas)

    @classmethod
    def read(cls, package: str, root: Path) -> CopyrightFile:
        """From the Debian copyright file; for a wheel, from the License field of its metadata."""
        for metadata in sorted(root.glob("*.dist-info/METADATA")):
            licence = re.search(r"^License: *(.+)$", metadata.read_text(encoding="utf-8", errors="replace"), re.M)
            if licence:
                return cls(package, True, licence.group(1).strip())
        try:
            text = (root / "usr/share/doc" / package / "copyright").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return cls(package)
        return cls.parse(package, text)

    def licence_for(self, original_path: str) -> str:
        """The License of the last stanza whose Files match; else the header's; else a pointer."""
        if self.machine_readable:
            suffixes = _path_suffixes(original_path)
            for pattern, licence in reversed(self.stanzas):
                if any(pattern.fullmatch(suffix) for suffix in suffixes):
                    return licence or self.pointer()
            if self.header_licence:
                return self.header_licence
        return self.pointer()

    def pointer(self) -> str:
        return f"see usr/share/doc/{self.package}/copyright"
