"""Property tests of what careless users and attackers send: any array, any PIL mode, any hints JSON,
any number on the command line. Each either works (right shape, type and range) or is refused
with a one-line ColoritError / ValueError / usage error; nothing else escapes."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

import colorit
from colorit.cli import build_parser
from colorit.errors import ColoritError, HintError, ImageError
from colorit.hints import parse_hints
from colorit.limits import MAX_RENDER_SIZE, MAX_SATURATION, WORKERS_PER_CPU
from colorit.pipeline import colorize_array
from colorit.session import cpu_count

RENDER_SIZE = 32  # small: these tests are about what goes in and out, not about quality
PROPERTY_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_one_line(error: BaseException) -> None:
    message = str(error)
    assert message and "\n" not in message, message


# ------------------------------------------------------------------------------------------ arrays

shapes = st.tuples(st.integers(0, 9), st.integers(0, 9), st.sampled_from([None, 1, 2, 3, 4])).map(
    lambda t: t[:2] if t[2] is None else t
)
pixel_arrays = st.one_of(
    arrays(np.uint8, shapes),
    arrays(np.uint16, shapes),
    arrays(np.float32, shapes, elements=st.floats(-2, 2, width=32) | st.sampled_from([math.nan, math.inf, -math.inf])),
    arrays(np.float64, shapes, elements=st.floats(0, 1)),
)


@PROPERTY_SETTINGS
@given(pixels=pixel_arrays, saturation=st.floats(0, MAX_SATURATION))
def test_any_array_is_colorized_or_refused_in_one_line(default_model, pixels, saturation):
    height, width = pixels.shape[:2]
    empty = height == 0 or width == 0
    non_finite = pixels.dtype.kind == "f" and not np.isfinite(pixels).all()
    out_of_range = pixels.dtype.kind == "f" and pixels.size and not 0 <= pixels.min() <= pixels.max() <= 1
    if empty or non_finite or out_of_range:
        with pytest.raises(ImageError) as refused:
            colorize_array(pixels, default_model, render_size=RENDER_SIZE, saturation=saturation)
        assert_one_line(refused.value)
        reason = "empty" if empty else "NaN or infinite" if non_finite else "float pixels must lie in 0..1"
        assert reason in str(refused.value)
        return
    out = colorize_array(pixels, default_model, render_size=RENDER_SIZE, saturation=saturation)
    channels = 4 if pixels.ndim == 3 and pixels.shape[2] in (2, 4) else 3
    assert out.shape == (height, width, channels) and out.dtype == pixels.dtype
    if out.dtype.kind == "f":  # the colour; alpha passes through as it came
        assert np.isfinite(out).all() and out[..., :3].min() >= 0 and out[..., :3].max() <= 1
    if channels == 4:
        np.testing.assert_array_equal(out[..., 3], pixels[..., -1])


@PROPERTY_SETTINGS
@given(saturation=st.floats(allow_nan=True, allow_infinity=True), render_size=st.integers(-10, 10**9))
def test_saturation_and_render_size_outside_their_bounds_are_refused(default_model, saturation, render_size):
    assume(not (0 <= saturation <= MAX_SATURATION and 1 <= render_size <= MAX_RENDER_SIZE))
    with pytest.raises(ValueError) as refused:
        colorize_array(np.full((8, 8), 128, np.uint8), default_model, render_size=render_size, saturation=saturation)
    assert_one_line(refused.value)


# ---------------------------------------------------------------------------------------- PIL modes

MODES = [
    "1",
    "L",
    "LA",
    "La",
    "P",
    "PA",
    "RGB",
    "RGBA",
    "RGBa",
    "RGBX",
    "CMYK",
    "YCbCr",
    "LAB",
    "HSV",
    "I",
    "I;16",
    "I;16B",
    "F",
]


def image_in_mode(grey: Image.Image, mode: str) -> Image.Image:
    """grey converted to mode, through LA or RGBA where Pillow has no direct conversion."""
    for start in ("L", "LA", "RGBA"):
        try:
            return grey.convert(start).convert(mode)
        except ValueError:
            continue
    raise AssertionError(f"Pillow cannot make a {mode} image")


@PROPERTY_SETTINGS
@given(mode=st.sampled_from(MODES), size=st.tuples(st.integers(0, 12), st.integers(0, 12)), seed=st.integers(0, 2**16))
def test_any_pil_mode_gives_a_colour_image_or_one_line(default_model, mode, size, seed):
    grey = np.random.default_rng(seed).integers(0, 256, size[::-1], dtype=np.uint8)
    image = image_in_mode(Image.fromarray(grey), mode)
    try:
        out = colorit.colorize(image, model=default_model, render_size=RENDER_SIZE)
    except ColoritError as error:
        assert_one_line(error)
        assert 0 in size or mode == "F"  # only empty images and float images are refused
        return
    assert out.size == image.size and out.mode in ("RGB", "RGBA")


def test_mode_i_is_read_on_its_own_scale(tmp_path):
    """An 8-bit picture saved as 32-bit integers (mode I) keeps its brightness."""
    grey = np.random.default_rng(3).integers(0, 256, (17, 23), dtype=np.uint8)
    path = tmp_path / "int32.tif"
    Image.fromarray(grey).convert("I").save(path)
    np.testing.assert_array_equal(colorit.io.read_image(path).pixels, grey)


# -------------------------------------------------------------------------------------- image files


def small_files() -> list[bytes]:
    """Small valid files of every decoded format, 8 and 16 bits, to damage."""
    import imagecodecs
    import tifffile

    grey = np.random.default_rng(1).integers(0, 256, (6, 7), dtype=np.uint8)
    files = []
    for fmt in ("PNG", "JPEG", "WEBP", "TIFF", "BMP", "GIF", "PPM"):
        buffer = io.BytesIO()
        Image.fromarray(grey).convert("RGB").save(buffer, fmt)
        files.append(buffer.getvalue())
    deep = (np.dstack([grey, grey, grey]).astype(np.uint16) * 257 + 3).astype(np.uint16)
    files.append(imagecodecs.png_encode(deep))
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, deep, photometric="rgb")
    files.append(buffer.getvalue())
    return files


SMALL_FILES = small_files()


@PROPERTY_SETTINGS
@given(
    original=st.sampled_from(SMALL_FILES),
    damage=st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), max_size=6),
    cut=st.integers(0, 2000) | st.none(),
)
def test_a_damaged_file_is_read_or_refused_in_one_line(original, damage, cut):
    data = bytearray(original)
    for position, value in damage:
        data[position % len(data)] = value
    if cut is not None:
        data = data[:cut]
    try:
        picture = colorit.io.read_image(bytes(data), max_pixels=10_000)
    except ColoritError as error:
        assert_one_line(error)
        return
    assert picture.pixels.dtype in (np.uint8, np.uint16) and 0 not in picture.pixels.shape


# ------------------------------------------------------------------------------------------- hints

json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
hint_like = st.fixed_dictionaries(
    {"x": st.floats(), "y": st.floats()},
    optional={
        "color": st.sampled_from(["#c03020", "#fff", "red", "", 7]),
        "radius": st.floats() | st.integers(-5, 10**400),
        "relative": st.booleans(),
        "ab": st.lists(st.floats(), max_size=3),
    },
)
L_IMAGE = np.linspace(0, 100, 20 * 30, dtype=np.float32).reshape(20, 30)


@PROPERTY_SETTINGS
@given(data=st.lists(hint_like, max_size=5) | json_values | st.text(max_size=40))
def test_any_hints_json_parses_to_valid_hints_or_one_line(data):
    for document in (data, json.dumps(data, allow_nan=True) if not isinstance(data, str) else data):
        try:
            hints = parse_hints(document, L_IMAGE)
        except HintError as error:
            assert_one_line(error)
            continue
        for hint in hints:
            assert 0 <= hint.x <= 30 and 0 <= hint.y <= 20
            assert 0 < hint.radius <= 30 and all(math.isfinite(v) and abs(v) <= 128 for v in hint.ab)


@pytest.mark.parametrize("document", ["[" * 100_000, '{"hints": ' * 50_000, " " * 300_000 + "[]"])
def test_deep_or_huge_hints_json_is_refused_in_one_line(document):
    with pytest.raises(HintError) as refused:
        parse_hints(document, L_IMAGE)
    assert_one_line(refused.value)


@pytest.mark.parametrize("radius", [1e200, 1e308, 10**300])
def test_huge_hint_radius_colours_the_whole_image(default_model, radius):
    grey = np.full((24, 32), 120, np.uint8)
    out = colorize_array(
        grey, default_model, render_size=RENDER_SIZE, hints=[{"x": 5, "y": 5, "color": "#2050c0", "radius": radius}]
    )
    blue = out[..., 2].astype(int) - out[..., 0]
    assert (blue > 20).all()  # the patch covers everything, far corner included


# ------------------------------------------------------------------------------------ CLI numbers

NUMBER_OPTIONS = {
    ("colorize", "--saturation"): (0, MAX_SATURATION),
    ("colorize", "--render-size"): (1, MAX_RENDER_SIZE),
    ("colorize", "--workers"): (1, math.inf),
    ("colorize", "--max-pixels"): (1, math.inf),
    ("serve", "--port"): (0, 65535),
    ("serve", "--max-upload-mb"): (0, 1024),
    ("serve", "--workers"): (1, math.inf),
}
number_texts = st.one_of(
    st.floats().map(repr),
    st.integers(-(10**30), 10**30).map(str),
    st.text(max_size=6),
    st.sampled_from(["1e308", "-0", "nan", "inf", "99999", "0x10", "1_000"]),
)


# capsys is read (and so emptied) at each example
@settings(PROPERTY_SETTINGS, max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(option=st.sampled_from(sorted(NUMBER_OPTIONS)), text=number_texts)
def test_cli_numbers_are_in_bounds_or_a_one_line_usage_error(capsys, option, text):
    verb, flag = option
    base = ["colorize", "in.png", "-o", "out"] if verb == "colorize" else ["serve"]
    try:
        args = build_parser().parse_args([*base, f"{flag}={text}"])
    except SystemExit as exit:
        assert exit.code == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and flag in lines[0], lines
        return
    value = getattr(args, flag.lstrip("-").replace("-", "_"))
    low, high = NUMBER_OPTIONS[option]
    assert math.isfinite(value) and low <= value <= high


def test_workers_beyond_the_cap_are_bounded_with_one_line(capsys):
    from colorit.cli import bounded_workers

    limit = WORKERS_PER_CPU * cpu_count()
    assert bounded_workers(limit, "colorize") == limit and capsys.readouterr().err == ""
    assert bounded_workers(limit + 30, "colorize") == limit
    assert capsys.readouterr().err.count("\n") == 1
