"""Regressions of issue 12: what a careless user and an attacker broke, through the real command line,
the Python API and the readers; and 16-bit colour scans that must stay 16-bit."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import warnings

import imagecodecs
import numpy as np
import psutil
import pytest
import tifffile
from conftest import REPO, grey_of, photo_rgb, run_colorit
from PIL import Image

import colorit
from colorit.color import luminance_L
from colorit.encoding import encode_image
from colorit.errors import ColoritWarning, ImageError
from colorit.io import Picture, read_image


def srgb_profile() -> bytes:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def failure_lines(result: subprocess.CompletedProcess) -> list[str]:
    """stderr's lines, less tqdm's progress bar."""
    return [line for line in result.stderr.splitlines() if line.strip() and not re.match(r"\s*\d+%\|", line)]


def save_grey_photo(path, size: int = 96) -> None:
    Image.fromarray(grey_of(photo_rgb("astronaut", size))).save(path)


# ---------------------------------------------------------------------------- 16-bit colour scans


def sixteen_bit_scan() -> np.ndarray:
    """A 48-bit 'scan' of a grey photo: values that 8 bits cannot hold (not multiples of 257)."""
    grey = grey_of(photo_rgb("chelsea", 120), np.uint16).astype(np.int32)
    rgb = np.stack([grey, grey + 3, grey - 5], axis=-1)
    return np.clip(rgb, 0, 65535).astype(np.uint16)


def assert_sixteen_bit_result(pixels: np.ndarray, scan: np.ndarray) -> None:
    assert pixels.dtype == np.uint16 and pixels.shape == scan.shape
    assert np.count_nonzero(pixels % 257) > pixels.size // 2  # real 16-bit values, not 8-bit ones scaled
    # the luminance is kept at 16-bit precision (rounded to 8 bits it would be off by ~0.1 L* on average)
    assert np.abs(luminance_L(pixels) - luminance_L(scan)).mean() < 0.01


def test_sixteen_bit_rgb_tiff_scan_stays_sixteen_bit_with_its_profile(tmp_path):
    scan, profile = sixteen_bit_scan(), srgb_profile()
    tifffile.imwrite(tmp_path / "scan.tif", scan, photometric="rgb", iccprofile=profile, resolution=(600, 600))
    result = run_colorit("colorize", str(tmp_path / "scan.tif"), "-o", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    with tifffile.TiffFile(tmp_path / "out" / "scan.tif") as tiff:
        assert_sixteen_bit_result(tiff.pages[0].asarray(), scan)
        assert tiff.pages[0].tags["InterColorProfile"].value == profile


def test_sixteen_bit_rgb_png_scan_stays_sixteen_bit_with_its_profile(tmp_path):
    scan, profile = sixteen_bit_scan(), srgb_profile()
    (tmp_path / "scan.png").write_bytes(encode_image(Picture(scan, icc_profile=profile, dpi=(600, 600)), "png"))
    result = run_colorit("colorize", str(tmp_path / "scan.png"), "-o", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    data = (tmp_path / "out" / "scan.png").read_bytes()
    assert_sixteen_bit_result(imagecodecs.png_decode(data), scan)  # an independent decoder
    with Image.open(io.BytesIO(data)) as decoded:
        assert decoded.info["icc_profile"] == profile


def test_sixteen_bit_tiff_orientation_is_applied(tmp_path):
    scan = sixteen_bit_scan()
    path = tmp_path / "turned.tif"
    # orientation 6: the picture is to be turned 90 degrees clockwise to view
    tifffile.imwrite(path, scan, photometric="rgb", extratags=[(274, "H", 1, 6, True)])
    picture = read_image(path)
    np.testing.assert_array_equal(picture.pixels, np.rot90(scan, -1))


# ------------------------------------------------------------------------------------ decoding


def test_eps_and_other_formats_outside_the_allow_list_are_not_decoded(tmp_path):
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\nshowpage\n"
    with pytest.raises(ImageError, match="not one of the formats colorit reads"):
        read_image(eps, name="drawing.eps")
    ico = io.BytesIO()
    Image.new("L", (16, 16)).save(ico, "ICO")
    with pytest.raises(ImageError, match="not one of the formats"):
        read_image(ico.getvalue())


def test_max_pixels_leaves_pillows_own_limit_alone():
    before = Image.MAX_IMAGE_PIXELS
    png = io.BytesIO()
    Image.fromarray(grey_of(photo_rgb("coffee", 64))).save(png, "PNG")
    colorit.colorize(png.getvalue(), max_pixels=10**12)
    assert Image.MAX_IMAGE_PIXELS == before


def test_multi_frame_input_says_it_colorizes_the_first_frame(tmp_path):
    frames = [Image.fromarray(np.full((20, 30), value, np.uint8)) for value in (40, 120, 200)]
    frames[0].save(tmp_path / "animated.gif", save_all=True, append_images=frames[1:])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        read_image(tmp_path / "animated.gif")
    assert [str(w.message) for w in caught if w.category is ColoritWarning] == [
        f"{tmp_path / 'animated.gif'}: 3 frames (animated or multi-page); colorized the first only"
    ]
    result = run_colorit("colorize", str(tmp_path / "animated.gif"), "-o", str(tmp_path / "out"))
    assert result.returncode == 0 and failure_lines(result) == [
        f"colorit: {tmp_path / 'animated.gif'}: 3 frames (animated or multi-page); colorized the first only"
    ]


def test_exif_too_long_for_jpeg_is_left_out_with_one_line(tmp_path):
    exif = Image.Exif()
    exif[0x010E] = "x" * 70_000  # ImageDescription: 70 kB, more than a JPEG segment holds
    Image.fromarray(grey_of(photo_rgb("astronaut", 80))).save(tmp_path / "big-exif.png", exif=exif)
    result = run_colorit("colorize", str(tmp_path / "big-exif.png"), "-o", str(tmp_path / "out"), "--format", "jpg")
    assert result.returncode == 0, result.stderr
    assert len(failure_lines(result)) == 1 and "EXIF" in result.stderr and "written without it" in result.stderr
    with Image.open(tmp_path / "out" / "big-exif.jpg") as written:
        assert written.size == (80, 80) and written.mode == "RGB"


# ------------------------------------------------------------------------------------- the batch


def test_fifo_and_unreadable_folder_fail_in_one_line_and_the_rest_is_written(tmp_path):
    photos = tmp_path / "photos"
    (photos / "locked").mkdir(parents=True)
    save_grey_photo(photos / "good.png")
    save_grey_photo(photos / "locked" / "hidden.png")
    os.mkfifo(photos / "pipe.png")
    os.chmod(photos / "locked", 0)
    out = tmp_path / "out"
    # root reads any folder: drop the capabilities that let it (util-linux's setpriv, as on every Debian)
    as_user = (
        []
        if os.geteuid()
        else ["setpriv", *[f"--{kind}=-dac_override,-dac_read_search" for kind in ("inh-caps", "bounding-set")]]
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    result = subprocess.run(
        [*as_user, sys.executable, "-m", "colorit", "colorize", str(photos), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    os.chmod(photos / "locked", 0o755)
    assert result.returncode == 1
    assert sorted(failure_lines(result)) == [
        f"colorit: {photos / 'locked'}: cannot read folder (Permission denied)",
        f"colorit: {photos / 'pipe.png'}: not a regular file",
    ]
    assert (out / "good.png").is_file() and "colorized 1, skipped 0, failed 2" in result.stdout


def test_bad_numbers_and_deep_hints_on_the_command_line_give_one_line(tmp_path):
    save_grey_photo(tmp_path / "photo.png")
    for options in (["--saturation", "1e308"], ["--render-size", "100000"]):
        result = run_colorit("colorize", str(tmp_path / "photo.png"), "-o", str(tmp_path / "out"), *options)
        assert result.returncode == 2 and len(failure_lines(result)) == 1, result.stderr
    for options in (["--port", "99999"], ["--max-upload-mb", "1e308"]):
        result = run_colorit("serve", *options)
        assert result.returncode == 2 and len(failure_lines(result)) == 1, result.stderr
    (tmp_path / "deep.json").write_text("[" * 100_000)
    result = run_colorit(
        "colorize", str(tmp_path / "photo.png"), "-o", str(tmp_path / "out"), "--hints", str(tmp_path / "deep.json")
    )
    assert result.returncode == 1 and failure_lines(result) == [
        f"colorit: {tmp_path / 'photo.png'}: {tmp_path / 'deep.json'}: JSON nested too deeply"
    ]
    (tmp_path / "huge.json").write_text(json.dumps([{"x": 10, "y": 10, "color": "#2050c0", "radius": 1e200}]))
    result = run_colorit(
        "colorize", str(tmp_path / "photo.png"), "-o", str(tmp_path / "out"), "--hints", str(tmp_path / "huge.json")
    )
    assert result.returncode == 0, result.stderr


def test_killing_the_parent_of_a_parallel_batch_leaves_no_process(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(12):
        save_grey_photo(photos / f"photo{i}.png", 480)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    parent = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "colorit",
            "colorize",
            str(photos),
            "-o",
            str(tmp_path / "out"),
            "--workers",
            "2",
            "--render-size",
            "1024",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    family: list[psutil.Process] = []
    while len(family) < 3:  # both workers and the resource tracker
        assert parent.poll() is None and time.monotonic() < deadline, "the workers did not start"
        family = psutil.Process(parent.pid).children(recursive=True)
        time.sleep(0.1)  # polling: the pool starts its processes in its own time
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    _, alive = psutil.wait_procs(family, timeout=30)
    for straggler in alive:
        straggler.kill()
    assert alive == []


def test_workers_beyond_the_cap_are_reduced_with_one_line(tmp_path):
    save_grey_photo(tmp_path / "photo.png")
    result = run_colorit("colorize", str(tmp_path / "photo.png"), "-o", str(tmp_path / "out"), "--workers", "1000")
    assert result.returncode == 0 and len(failure_lines(result)) == 1 and "per CPU" in result.stderr


# ---------------------------------------------------------------------------------- checkpoints


class PlantedCommand:
    """A pickle that runs a command when it is loaded."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.train
def test_export_refuses_a_checkpoint_that_would_run_a_command(tmp_path):
    torch = pytest.importorskip("torch")
    marker = tmp_path / "it-ran"
    torch.save(
        {"config": {"model": "default"}, "objective": {}, "payload": PlantedCommand(marker)}, tmp_path / "bad.pt"
    )
    result = run_colorit("export", str(tmp_path / "bad.pt"), "--name", "planted", "--out", str(tmp_path / "models"))
    assert result.returncode == 1 and len(failure_lines(result)) == 1, result.stderr
    assert not marker.exists()


def test_readme_limits_table_matches_the_constants():
    from colorit import limits, server
    from colorit.cli.serve import MAX_UPLOAD_MB
    from colorit.io import DECODED_FORMATS
    from colorit.server import DEFAULT_MAX_PIXELS, DEFAULT_MAX_UPLOAD_MB
    from colorit.server.uploads import OTHER_FIELD_BYTES

    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("## Limits") : readme.index("## Models")]
    rows = {cells[1].strip(): cells[2] for cells in (line.split("|") for line in table.splitlines()) if len(cells) > 3}
    expected = {
        "pixels per image": [limits.DEFAULT_MAX_PIXELS, DEFAULT_MAX_PIXELS],
        "working size": [limits.MAX_RENDER_SIZE],
        "saturation": [limits.MAX_SATURATION],
        "workers": [limits.WORKERS_PER_CPU],
        "upload size": [DEFAULT_MAX_UPLOAD_MB, MAX_UPLOAD_MB],
        "upload pace": [
            server.UPLOAD_IDLE_TIMEOUT_S,
            server.UPLOAD_TIMEOUT_S,
            server.UPLOAD_RATE_GRACE_S,
            server.UPLOAD_MIN_BYTES_PER_S / 1024,
        ],
        "uploads at once": [server.UPLOADS_PER_CLIENT, server.UPLOADS_PER_SLOT],
        "hints": [limits.MAX_HINTS, limits.MAX_HINTS_JSON_BYTES, OTHER_FIELD_BYTES],
    }
    for row, values in expected.items():
        numbers = [float(number.replace(",", "")) for number in re.findall(r"\d[\d,]*", rows[row])]
        assert all(value in numbers for value in values), (row, values, numbers)
    assert all(fmt.lower() in rows["input formats"].lower() for fmt in DECODED_FORMATS)


def test_sixteen_bit_grey_with_alpha_png_stays_sixteen_bit(default_model):
    scan = np.ascontiguousarray(sixteen_bit_scan()[..., :2])  # grey + alpha
    picture = read_image(imagecodecs.png_encode(scan))
    np.testing.assert_array_equal(picture.pixels, scan)
    out = colorit.colorize(imagecodecs.png_encode(scan), model=default_model, render_size=64)
    coloured = imagecodecs.png_decode(out)
    assert coloured.dtype == np.uint16 and coloured.shape == (*scan.shape[:2], 4)
    np.testing.assert_array_equal(coloured[..., 3], scan[..., 1])
