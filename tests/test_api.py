import io
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO, grey_of, mean_dL, photo_rgb
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import colorit
from colorit.errors import ModelNotFound
from colorit.session import MODELS_DIR, ModelSession


@pytest.fixture(scope="module")
def grey():
    return grey_of(photo_rgb("coffee", 150))


def as_bytes(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def test_pil_in_pil_out(grey):
    out = colorit.colorize(Image.fromarray(grey))
    assert isinstance(out, Image.Image) and out.mode == "RGB" and out.size == (grey.shape[1], grey.shape[0])
    assert mean_dL(np.asarray(out), grey) < 0.5


def test_array_in_array_out(grey):
    out = colorit.colorize(grey, model="seed-ae", render_size=96, saturation=1.5)
    assert isinstance(out, np.ndarray) and out.shape == grey.shape + (3,) and out.dtype == np.uint8


@pytest.mark.parametrize(
    "fmt, magic",
    [("PNG", b"\x89PNG"), ("JPEG", b"\xff\xd8"), ("WEBP", b"RIFF"), ("TIFF", b"II*\x00"), ("BMP", b"\x89PNG")],
)
def test_bytes_in_bytes_out_in_the_same_format(grey, fmt, magic):
    out = colorit.colorize(as_bytes(Image.fromarray(grey), fmt))
    assert isinstance(out, bytes) and out.startswith(magic)
    with Image.open(io.BytesIO(out)) as decoded:
        assert decoded.size == (grey.shape[1], grey.shape[0]) and decoded.mode == "RGB"


def test_sixteen_bit_png_bytes_stay_sixteen_bit(grey):
    out = colorit.colorize(as_bytes(Image.fromarray(grey.astype(np.uint16) * 257), "PNG"))
    width, height, depth, color_type = struct.unpack(">IIBB", out[16:26])
    assert (width, height, depth, color_type) == (grey.shape[1], grey.shape[0], 16, 2)


def test_alpha_survives_the_pil_path(grey):
    alpha = np.where(np.arange(grey.shape[1]) < 50, 0, 255).astype(np.uint8) * np.ones_like(grey)
    out = colorit.colorize(Image.fromarray(np.dstack([grey, alpha]), "LA"))
    assert out.mode == "RGBA"
    np.testing.assert_array_equal(np.asarray(out)[..., 3], alpha)


def test_path_and_file_give_pil_images(grey, tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(grey).save(path)
    from_path = colorit.colorize(path)
    from_string = colorit.colorize(str(path))
    with open(path, "rb") as stream:
        from_file = colorit.colorize(stream)
        assert not stream.closed, "the caller's file is left open"
    for out in (from_path, from_string, from_file):
        assert isinstance(out, Image.Image) and out.size == (grey.shape[1], grey.shape[0])
    assert np.array_equal(np.asarray(from_path), np.asarray(from_file))


def test_hints_through_the_api(grey):
    hints = [{"x": 20, "y": 20, "color": "#2060e0"}]
    assert colorit.colorize(grey, hints=hints).shape == grey.shape + (3,)


def test_unsupported_input_type():
    with pytest.raises(TypeError, match="not int"):
        colorit.colorize(42)


def test_load_model_is_cached_and_reusable(grey):
    session = colorit.load_model("default")
    assert colorit.load_model("default") is session
    assert isinstance(session, ModelSession) and session.accepts_hints and session.default_render_size > 0
    np.testing.assert_array_equal(colorit.colorize(grey, model=session), colorit.colorize(grey))


def test_model_by_path_without_card(grey, tmp_path):
    path = tmp_path / "mine.onnx"
    shutil.copy(MODELS_DIR / "seed-ae.onnx", path)
    session = colorit.load_model(path)
    assert session.name == "mine" and not session.accepts_hints and session.card == {"name": "mine"}
    assert colorit.colorize(grey, model=str(path)).shape == grey.shape + (3,)


def test_unknown_models_are_reported(tmp_path):
    with pytest.raises(ModelNotFound, match="no such model.*default"):
        colorit.load_model("rainbow")
    broken = tmp_path / "broken.onnx"
    broken.write_text("not a model")
    with pytest.raises(ModelNotFound, match="not a loadable ONNX model"):
        colorit.load_model(broken)


def test_bundled_model_cards_follow_the_contract():
    cards = colorit.list_models()
    assert {card["name"] for card in cards} >= {"default", "seed-ae"}
    for card in cards:
        for key in (
            "name",
            "architecture",
            "parameters",
            "gflops_256",
            "input_channels",
            "accepts_hints",
            "render_size",
            "training",
            "validation",
        ):
            assert key in card, f"{card['name']} card lacks {key}"
        assert card["accepts_hints"] == (card["input_channels"] == 4)
        assert colorit.load_model(card["name"]).input_channels == card["input_channels"]


def test_colorizing_never_imports_torch(tmp_path):
    script = (
        "import sys, numpy as np, colorit\n"
        "colorit.colorize(np.full((40, 50), 128, np.uint8))\n"
        "colorit.colorize(np.full((40, 50), 128, np.uint8), model='seed-ae')\n"
        "print('torch' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


@settings(max_examples=20, deadline=None)
@given(
    width=st.integers(1, 300),
    height=st.integers(1, 300),
    mode=st.sampled_from(["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_pil_mode_and_size(width, height, mode, seed):
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).convert(mode)
    out = colorit.colorize(image)
    assert out.size == (width, height)
    assert out.mode == ("RGBA" if mode in ("LA", "RGBA") else "RGB")
