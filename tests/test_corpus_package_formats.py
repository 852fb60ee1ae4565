"""Corpus builder: reading what packages hold, Qt rcc resource bundles (compressed or not, damaged) and
DEP-5 copyright files (the licence of each installed path)."""

from __future__ import annotations

import io

import pytest
from corpus_sources import jpeg_bytes, photos, rcc_bundle
from PIL import Image

from colorit.train.packages import CopyrightFile
from colorit.train.qt_rcc import RCC_COMPRESSED_ZLIB, list_rcc_entries, read_rcc_entry


def test_rcc_entries_come_out_compressed_or_not(tmp_path):
    coffee, chelsea = jpeg_bytes(photos()["coffee"]), jpeg_bytes(photos()["chelsea"])
    bundle = tmp_path / "animals.rcc"
    bundle.write_bytes(
        rcc_bundle(
            "images",
            [("coffee.jpg", coffee, RCC_COMPRESSED_ZLIB), ("chelsea.jpg", chelsea, 0), ("readme", b"text", 0)],
        )
    )
    entries = {entry.path: entry for entry in list_rcc_entries(bundle.read_bytes())}
    assert sorted(entries) == ["/images/chelsea.jpg", "/images/coffee.jpg", "/images/readme"]
    assert entries["/images/coffee.jpg"].size < len(coffee) + 4 + 100  # stored zlib stream
    assert read_rcc_entry(bundle, entries["/images/coffee.jpg"]) == coffee
    assert read_rcc_entry(bundle, entries["/images/chelsea.jpg"]) == chelsea
    assert Image.open(io.BytesIO(read_rcc_entry(bundle, entries["/images/coffee.jpg"]))).size == (600, 400)


def test_not_an_rcc_bundle_is_refused():
    with pytest.raises(ValueError, match="qres"):
        list_rcc_entries(jpeg_bytes(photos()["coffee"]))
    with pytest.raises(ValueError, match="damaged"):
        list_rcc_entries(rcc_bundle("images", [("a.jpg", b"x", 0)])[:40])


COPYRIGHT = """\
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: example

Files: *
Copyright: 2020 Someone
License: GPL-3+

Files: images/*
Copyright: 2020 Someone
License: CC-BY-SA-4.0

Files: images/land/beach?.jpg
 ./images/land/sea*
Copyright: 2021 A Photographer
License: public-domain
 The photographer waived all rights.

Files: src/activities/animals/resource/*.jpg
Copyright: 2019 Someone Else
License: CC-BY-2.0
"""


def test_dep5_last_matching_stanza_wins_on_installed_paths():
    licences = CopyrightFile.parse("pkg", COPYRIGHT)
    base = "usr/share/games/pkg/images"
    assert licences.licence_for(f"{base}/land/valley0.jpg") == "CC-BY-SA-4.0"
    assert licences.licence_for(f"{base}/land/beach3.jpg") == "public-domain"
    assert licences.licence_for(f"{base}/land/beach10.jpg") == "CC-BY-SA-4.0"  # ? is one character
    assert licences.licence_for(f"{base}/land/sea/deep/blue.jpg") == "public-domain"  # * crosses folders
    assert licences.licence_for("usr/share/pkg/data/sound.ogg") == "GPL-3+"


def test_dep5_inside_rcc_bundles_and_after_format_conversion():
    licences = CopyrightFile.parse("pkg", COPYRIGHT)
    rcc_path = "usr/share/pkg/rcc/animals.rcc:/pkg/src/activities/animals/resource/cat.webp"
    assert licences.licence_for(rcc_path) == "CC-BY-2.0"


def test_dep5_falls_back_to_the_header_then_to_a_pointer():
    header_only = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nLicense: MIT\n\nFiles: docs/*\nLicense: CC0-1.0\n"
    assert CopyrightFile.parse("pkg", header_only).licence_for("usr/share/pkg/a.png") == "MIT"
    free_text = "This package was debianized by someone.\n\nLicensed under Creative Commons.\n"
    assert CopyrightFile.parse("gnome-backgrounds", free_text).licence_for("usr/share/backgrounds/a.jpg") == (
        "see usr/share/doc/gnome-backgrounds/copyright"
    )
