"""Regressions of issue 21's failures of the command line and the Python API: a symbolic link loop in
an input folder, a newline in a file name, float pixels on the 0..255 scale."""

from __future__ import annotations

import os

import numpy as np
import pytest
from conftest import grey_of, photo_rgb, run_colorit
from PIL import Image
from test_hardening import failure_lines, save_grey_photo

import colorit
from colorit.errors import ImageError


def test_a_symbolic_link_loop_is_one_line_and_the_rest_is_colorized(tmp_path):
    """Issue 21: a link loop in the input folder ended the batch in a RuntimeError traceback."""
    photos = tmp_path / "photos"
    photos.mkdir()
    save_grey_photo(photos / "good.png")
    os.symlink("loop.jpg", photos / "loop.jpg")  # points at itself
    os.symlink(photos, photos / "again")  # a link to the folder itself: not followed, not repeated
    out = tmp_path / "out"
    result = run_colorit("colorize", str(photos), "-o", str(out))
    assert result.returncode == 1
    assert failure_lines(result) == [f"colorit: {photos / 'loop.jpg'}: cannot open (Too many levels of symbolic links)"]
    assert "Traceback" not in result.stderr
    assert result.stdout.strip() == f"colorized 1, skipped 0, failed 1 -> {out}"
    assert [path.name for path in out.rglob("*")] == ["good.png"]

    alone = run_colorit("colorize", str(photos / "loop.jpg"), "-o", str(out))
    assert alone.returncode == 1 and failure_lines(alone) == failure_lines(result)


def test_a_newline_in_a_file_name_stays_on_one_line(tmp_path):
    """Issue 21: a name with a newline split its failure message over two lines."""
    photos = tmp_path / "photos"
    photos.mkdir()
    save_grey_photo(photos / "good.png")
    (photos / "two\nlines.png").write_text("not an image")
    (photos / "bell\x07.png").write_text("not an image")
    result = run_colorit("colorize", str(photos), "-o", str(tmp_path / "out"))
    assert result.returncode == 1
    assert sorted(failure_lines(result)) == [
        f"colorit: {photos}/bell\\x07.png: not an image, or not one of the formats colorit reads "
        "(PNG, JPEG, WEBP, TIFF, BMP, GIF, PPM)",
        f"colorit: {photos}/two\\nlines.png: not an image, or not one of the formats colorit reads "
        "(PNG, JPEG, WEBP, TIFF, BMP, GIF, PPM)",
    ]
    assert (tmp_path / "out" / "good.png").is_file()


@pytest.mark.parametrize(
    ("scale", "advice"),
    [(255, "divide by 255"), (65535, "divide by 65535"), (-1, "scale them into 0..1")],
)
def test_float_pixels_outside_0_1_are_refused_with_what_to_do(default_model, scale, advice):
    """Issue 21: a float array in 0..255 (as `.astype(float)` leaves it) came back all white."""
    grey = grey_of(photo_rgb("coffee", 48)).astype(np.float64) / 255
    with pytest.raises(ImageError) as refused:
        colorit.colorize(grey * scale, model=default_model)
    message = str(refused.value)
    assert "\n" not in message and "float pixels must lie in 0..1" in message and advice in message
    colour = colorit.colorize(grey, model=default_model)  # the same photo on its own scale is colorized
    assert colour.dtype == np.float64 and 0 <= colour.min() and colour.max() <= 1
    assert colour.std(axis=-1).mean() > 0.005  # in colour, not the all-white (or grey) of before


def test_the_output_folder_inside_a_linked_input_is_left_out(tmp_path):
    """The output folder is recognised by where it really is, also through a link."""
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(grey_of(photo_rgb("chelsea", 64))).save(photos / "cat.png")
    os.symlink(photos, tmp_path / "linked")
    out = tmp_path / "linked" / "colour"
    assert run_colorit("colorize", str(tmp_path / "linked"), "-o", str(out)).returncode == 0
    again = run_colorit("colorize", str(tmp_path / "linked"), "-o", str(out))
    assert again.returncode == 0 and again.stdout.strip() == f"colorized 0, skipped 1, failed 0 -> {out}"
