"""Where `colorit colorize` writes and what it says (issue 21): one output file, standard input and
output, JPEG/WebP quality, --version, a rerun that finishes what was left and says so in one line."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO, grey_of, mean_dL, photo_rgb, run_colorit
from PIL import Image

from colorit import __version__


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.jpg"
    Image.fromarray(grey_of(photo_rgb("chelsea", 120))).save(path, quality=95)
    return path


def run_piped(*args: str, stdin: bytes) -> subprocess.CompletedProcess:
    """`python -m colorit ARGS` with bytes on standard input; stdout comes back as bytes."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "colorit", *args], input=stdin, capture_output=True, env=env, timeout=180
    )


def test_one_input_and_an_output_with_an_image_suffix_writes_that_file(photo, tmp_path):
    """Issue 21: `-o result.jpg` made a folder named result.jpg."""
    result = run_colorit("colorize", str(photo), "-o", str(tmp_path / "result.png"))
    assert result.returncode == 0, result.stderr
    with Image.open(tmp_path / "result.png") as written, Image.open(photo) as source:
        assert (written.format, written.size) == ("PNG", source.size)
        assert mean_dL(np.asarray(written), np.asarray(source)) < 1.0
    again = run_colorit("colorize", str(photo), "-o", str(tmp_path / "result.png"))
    assert again.returncode == 0 and again.stderr == ""
    assert again.stdout.strip() == f"colorized 0, skipped 1, failed 0 -> {tmp_path / 'result.png'}"

    (tmp_path / "several").mkdir()
    several = run_colorit("colorize", str(photo), str(photo), "-o", str(tmp_path / "both.jpg"))
    assert several.returncode == 2 and "give -o a folder" in several.stderr
    disagree = run_colorit("colorize", str(photo), "-o", str(tmp_path / "x.jpg"), "--format", "webp")
    assert disagree.returncode == 2 and "--format webp" in disagree.stderr
    assert not (tmp_path / "both.jpg").exists() and not (tmp_path / "x.jpg").exists()


def test_standard_input_to_standard_output(photo):
    """`-` reads the image from standard input; `-o -` writes it to standard output, in the input's own
    format unless --format, and nothing else goes there."""
    piped = run_piped("colorize", "-", "-o", "-", stdin=photo.read_bytes())
    assert piped.returncode == 0, piped.stderr
    with Image.open(io.BytesIO(piped.stdout)) as written, Image.open(photo) as source:
        assert (written.format, written.size) == ("JPEG", source.size)
    as_png = run_piped("colorize", str(photo), "-o", "-", "--format", "png", stdin=b"")
    assert as_png.returncode == 0 and as_png.stdout.startswith(b"\x89PNG\r\n\x1a\n")
    refused = run_piped("colorize", "-", "-o", "-", stdin=b"not an image")
    assert refused.returncode == 1 and refused.stdout == b""
    lines = refused.stderr.decode().strip().splitlines()
    assert lines[0] == (
        "colorit: standard input: not an image, or not one of the formats colorit reads "
        "(PNG, JPEG, WEBP, TIFF, BMP, GIF, PPM)"
    )


def test_quality_sets_jpeg_and_webp_quality(photo, tmp_path):
    sizes = {}
    for fmt in ("jpg", "webp"):
        for quality in ("20", "95"):
            out = tmp_path / f"q{quality}.{fmt}"
            result = run_colorit("colorize", str(photo), "-o", str(out), "--quality", quality)
            assert result.returncode == 0, result.stderr
            sizes[fmt, quality] = out.stat().st_size
        assert sizes[fmt, "20"] < 0.6 * sizes[fmt, "95"]
    refused = run_colorit("colorize", str(photo), "-o", str(tmp_path / "x.jpg"), "--quality", "101")
    assert refused.returncode == 2 and "--quality" in refused.stderr


def test_version():
    result = run_colorit("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"colorit {__version__}"


def test_a_rerun_of_a_finished_folder_prints_one_summary_line(tmp_path):
    """Issue 21: a rerun printed a 'skipped' line for every file; --verbose still names them."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("coffee", "chelsea", "astronaut"):
        Image.fromarray(grey_of(photo_rgb(name, 64))).save(photos / f"{name}.png")
    out = tmp_path / "out"
    assert run_colorit("colorize", str(photos), "-o", str(out)).returncode == 0
    again = run_colorit("colorize", str(photos), "-o", str(out))
    assert again.returncode == 0 and again.stderr == ""
    assert again.stdout.splitlines() == [f"colorized 0, skipped 3, failed 0 -> {out}"]
    verbose = run_colorit("colorize", str(photos), "-o", str(out), "--verbose")
    assert verbose.stderr.count(" exists (use --overwrite to replace it)") == 3


def test_a_rerun_completes_an_output_whose_image_or_map_is_missing(tmp_path):
    """Issue 21: the map was written first, and a rerun stopped on 'NAME.confidence.png: already
    exists' without writing the image. An image and its map are one unit: a rerun writes whichever is
    missing and leaves the other as it is."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("coffee", "chelsea"):
        Image.fromarray(grey_of(photo_rgb(name, 64))).save(photos / f"{name}.png")
    out = tmp_path / "out"
    assert run_colorit("colorize", str(photos), "-o", str(out), "--confidence").returncode == 0
    (out / "coffee.png").unlink()  # as if its write had failed after the map's
    (out / "chelsea.confidence.png").unlink()  # as if the map's write had failed after the image's
    kept = {name: (out / name).read_bytes() for name in ("coffee.confidence.png", "chelsea.png")}
    rerun = run_colorit("colorize", str(photos), "-o", str(out), "--confidence")
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.strip() == f"colorized 2, skipped 0, failed 0 -> {out}"
    assert sorted(path.name for path in out.iterdir()) == [
        "chelsea.confidence.png",
        "chelsea.png",
        "coffee.confidence.png",
        "coffee.png",
    ]
    assert {name: (out / name).read_bytes() for name in kept} == kept
    with Image.open(out / "coffee.png") as image, Image.open(out / "chelsea.confidence.png") as confidence:
        assert (image.mode, confidence.mode) == ("RGB", "L")
    finished = run_colorit("colorize", str(photos), "-o", str(out), "--confidence")
    assert finished.stdout.strip() == f"colorized 0, skipped 2, failed 0 -> {out}"
