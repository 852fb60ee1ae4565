"""Issue 21: archives must be able to tell a colorized copy from a colour photograph. Every image file
ColorIt writes (command line, REST API, Python on bytes) says in its metadata that ColorIt colorized
it, with version, model, hints and reference count, unless told not to."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from conftest import grey_of, photo_rgb, provenance_in, run_colorit
from fastapi.testclient import TestClient
from PIL import Image

import colorit
from colorit.encoding import SOFTWARE_TAG
from colorit.server.app import create_app

SOFTWARE = f"ColorIt {colorit.__version__}"


def expected(model: str = "default", hints: int = 0, references: int = 0) -> dict[str, str]:
    return {
        "Colorized": "True",
        "Version": colorit.__version__,
        "Model": model,
        "Hints": str(hints),
        "References": str(references),
        "xmp:CreatorTool": SOFTWARE,
    }


@pytest.fixture(scope="module")
def grey_cat(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    grey = grey_of(photo_rgb("chelsea", 96))
    Image.fromarray(grey).save(folder / "cat.png")
    Image.fromarray(grey.astype(np.uint16) * 257).save(folder / "cat16.png")
    Image.fromarray(photo_rgb("coffee", 96)).save(folder / "colour.jpg")  # a reference photo
    (folder / "hints.json").write_text(
        json.dumps([{"x": 10, "y": 10, "color": "#c03020"}, {"x": 50, "y": 40, "color": "#2050c0"}])
    )
    return folder


@pytest.mark.parametrize(
    ("source", "fmt"),
    [
        ("cat.png", "png"),
        ("cat.png", "jpg"),
        ("cat.png", "webp"),
        ("cat.png", "tiff"),
        ("cat16.png", "png"),
        ("cat16.png", "tiff"),
    ],
)
def test_every_output_format_says_it_was_colorized(grey_cat, tmp_path, source, fmt):
    options = ["--hints", str(grey_cat / "hints.json"), "--reference", str(grey_cat / "colour.jpg")]
    result = run_colorit("colorize", str(grey_cat / source), "-o", str(tmp_path), "--format", fmt, *options)
    assert result.returncode == 0, result.stderr
    (written,) = [path for path in tmp_path.iterdir() if path.is_file()]
    with Image.open(written) as image:
        assert provenance_in(image) == expected(hints=2, references=1)
        if fmt == "png":
            assert image.info["Software"] == SOFTWARE
            assert image.info["Comment"].startswith(
                f"Colorized by {SOFTWARE} (model default, 2 hints, 1 reference photo)"
            )
        assert image.getexif().get(SOFTWARE_TAG) == SOFTWARE


def test_no_provenance_leaves_it_out(grey_cat, tmp_path):
    result = run_colorit(
        "colorize", str(grey_cat / "cat.png"), "-o", str(tmp_path), "--format", "jpg", "--no-provenance"
    )
    assert result.returncode == 0, result.stderr
    with Image.open(tmp_path / "cat.jpg") as image:
        assert provenance_in(image) == {} and SOFTWARE_TAG not in image.getexif()


def test_the_servers_answer_says_it_was_colorized(grey_cat):
    with TestClient(create_app(), base_url="http://localhost") as client:
        files = [
            ("file", ("cat.png", (grey_cat / "cat.png").read_bytes())),
            ("reference", ("colour.jpg", (grey_cat / "colour.jpg").read_bytes())),
        ]
        answer = client.post(
            "/api/colorize", files=files, data={"hints": (grey_cat / "hints.json").read_text(), "format": "webp"}
        )
    assert answer.status_code == 200, answer.text
    assert provenance_in(Image.open(io.BytesIO(answer.content))) == expected(hints=2, references=1)
    with TestClient(create_app(provenance=False), base_url="http://localhost") as client:
        plain = client.post("/api/colorize", files={"file": ("cat.png", (grey_cat / "cat.png").read_bytes())})
    assert plain.status_code == 200 and provenance_in(Image.open(io.BytesIO(plain.content))) == {}


def test_python_bytes_say_it_was_colorized(grey_cat, default_model):
    data = (grey_cat / "cat.png").read_bytes()
    marked = colorit.colorize(data, model=default_model, hints=[{"x": 3, "y": 3, "color": "#ffcc00"}])
    assert provenance_in(Image.open(io.BytesIO(marked))) == expected(hints=1)
    plain = colorit.colorize(data, model=default_model, provenance=False)
    assert provenance_in(Image.open(io.BytesIO(plain))) == {}
