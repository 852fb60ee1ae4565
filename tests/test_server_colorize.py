"""The colorize API through FastAPI's test client, on real photos made grey: output formats, saturation,
models, hints; and the health check, the OpenAPI document and the offline pages."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image
from server_helpers import decode, grey_photo, post_image
from skimage import color, data
from sklearn.datasets import load_sample_image

import colorit
from colorit.session import list_models

# Mean Lab chroma of a grey photo is ~0; any colorization worth the name is well above this.
MIN_COLOUR_CHROMA = 2.0


def mean_chroma(rgb: np.ndarray) -> float:
    lab = color.rgb2lab(rgb)
    return float(np.hypot(lab[..., 1], lab[..., 2]).mean())


@pytest.mark.parametrize(
    ("name", "pixels", "fmt", "mime", "extension"),
    [
        ("astronaut.png", data.astronaut(), "PNG", "image/png", "png"),
        ("coffee.jpg", data.coffee(), "JPEG", "image/jpeg", "jpg"),
        ("china.webp", load_sample_image("china.jpg"), "WEBP", "image/webp", "webp"),
        ("chelsea.tif", data.chelsea(), "TIFF", "image/tiff", "tiff"),
    ],
)
def test_colorize_returns_a_coloured_image_of_the_same_size_and_format(client, name, pixels, fmt, mime, extension):
    upload = grey_photo(pixels, fmt)
    response = post_image(client, upload, name)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == mime
    stem = name.rsplit(".", 1)[0]
    assert f'filename="{stem}-colorized.{extension}"' in response.headers["content-disposition"]
    result = decode(response.content)
    assert result.format == fmt
    assert result.size == decode(upload).size
    assert mean_chroma(np.asarray(result.convert("RGB"))) > MIN_COLOUR_CHROMA


@pytest.mark.parametrize(
    ("fmt", "mime", "pillow_format"), [("jpg", "image/jpeg", "JPEG"), ("webp", "image/webp", "WEBP")]
)
def test_format_field_chooses_the_output_format(client, grey_png, fmt, mime, pillow_format):
    response = post_image(client, grey_png, "astronaut.png", format=fmt, saturation="1.5", render_size="256")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == mime
    assert f"astronaut-colorized.{fmt}" in response.headers["content-disposition"]
    result = decode(response.content)
    assert (result.format, result.size) == (pillow_format, (512, 512))


@pytest.mark.parametrize(
    ("fmt", "pillow_format"),
    [("jpeg", "JPEG"), ("JPG", "JPEG"), ("tif", "TIFF"), ("TIFF", "TIFF"), ("Png", "PNG"), ("WebP", "WEBP")],
)
def test_format_takes_what_the_command_line_takes_in_any_case(client, fmt, pillow_format):
    """Issue 21: 'jpeg', 'tif' and upper case were refused, though --format takes them."""
    upload = grey_photo(data.camera(), "PNG", size=(96, 64))
    response = post_image(client, upload, "camera.png", format=fmt, render_size="64")
    assert response.status_code == 200, response.text
    assert decode(response.content).format == pillow_format


def test_the_answer_says_whether_the_upload_was_in_colour(client):
    """Issue 21: a colour photo is recoloured from its brightness; the page warns from this header."""
    colour = io.BytesIO()
    Image.fromarray(data.astronaut()).save(colour, "JPEG")
    sepia_pixels = (np.asarray(Image.fromarray(data.camera()).convert("RGB")) * [1.0, 0.85, 0.65]).astype(np.uint8)
    sepia = io.BytesIO()
    Image.fromarray(sepia_pixels).save(sepia, "PNG")
    grey_as_rgb = io.BytesIO()
    Image.fromarray(data.astronaut()).convert("L").convert("RGB").save(grey_as_rgb, "JPEG")
    answers = {
        name: post_image(client, content, name, render_size="64").headers["x-colorit-input"]
        for name, content in [
            ("colour.jpg", colour.getvalue()),
            ("sepia.png", sepia.getvalue()),
            ("grey-rgb.jpg", grey_as_rgb.getvalue()),
            ("grey.png", grey_photo(data.astronaut(), "PNG")),
        ]
    }
    assert answers == {"colour.jpg": "colour", "sepia.png": "colour", "grey-rgb.jpg": "grey", "grey.png": "grey"}


def test_saturation_zero_gives_back_grey(client, grey_png):
    response = post_image(client, grey_png, saturation="0")
    assert response.status_code == 200, response.text
    assert mean_chroma(np.asarray(decode(response.content).convert("RGB"))) < 0.5


def test_hints_pull_the_region_towards_their_colour(client):
    upload = grey_photo(data.coffee(), "PNG")  # 600 x 400
    x, y = 280, 160  # a mid-grey patch: dark ones leave little room for chroma
    red_hint = json.dumps([{"x": x, "y": y, "color": "#d01010", "radius": 12}])
    plain, hinted = (post_image(client, upload, "coffee.png", **fields) for fields in ({}, {"hints": red_hint}))
    assert plain.status_code == hinted.status_code == 200, hinted.text

    def redness_around_hint(response) -> float:  # Lab a: positive is red
        rgb = np.asarray(decode(response.content).convert("RGB"))[y - 8 : y + 8, x - 8 : x + 8]
        return float(color.rgb2lab(rgb)[..., 1].mean())

    assert redness_around_hint(hinted) > redness_around_hint(plain) + 10


def test_models_lists_the_bundled_cards(client):
    response = client.get("/api/models")
    assert response.status_code == 200
    body = response.json()
    names = [card["name"] for card in body["models"]]
    assert names == [card["name"] for card in list_models()]
    assert body["default"] == "default" and "default" in names
    assert all(isinstance(card["accepts_hints"], bool) for card in body["models"])


def test_a_named_model_is_used(client, grey_png):
    other = next((card["name"] for card in list_models() if card["name"] != "default"), None)
    if other is None:
        pytest.skip("only one bundled model")
    response = post_image(client, grey_png, model=other)
    assert response.status_code == 200, response.text
    assert decode(response.content).size == (512, 512)


def test_healthz_reports_the_pool(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "model": "default",
        "device": colorit.load_model("default").device,  # cpu, or cuda where onnxruntime-gpu has a GPU
        "workers": 2,
        "queue": 4,
        "busy": 0,
        "uploads": 0,
    }


def test_openapi_document_and_offline_pages(client):
    spec = client.get("/openapi.json").json()
    form = spec["paths"]["/api/colorize"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    form_name = form["$ref"].rsplit("/", 1)[1]
    fields = spec["components"]["schemas"][form_name]["properties"]
    assert {"file", "model", "render_size", "saturation", "format", "hints"} <= set(fields)
    assert "Hint" in spec["components"]["schemas"]
    assert set(spec["paths"]["/api/colorize"]["post"]["responses"]) >= {"200", "400", "413", "415", "503"}
    for page, script in [("/", "/static/app.js"), ("/docs", "/static/docs.js")]:
        html = client.get(page)
        assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
        assert script in html.text
        # Everything comes from the app itself: no CDN, no external fonts.
        assert "http://" not in html.text and "https://" not in html.text
        asset = client.get(script)
        assert asset.status_code == 200 and "https://" not in asset.text
    assert client.get("/static/style.css").status_code == 200
