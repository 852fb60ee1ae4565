"""Reference photos: the colours of matching things in a colour photo carry over to a grey one.

The photos are real: scikit-image's Middlebury stereo pair of a red motorcycle in a garage. The
right view is the reference for the greyed left view: a second photo of the same scene, taken from
another place, as a restorer's reference would be.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from conftest import grey_of, photo_rgb, run_colorit
from PIL import Image

import colorit
from colorit.color import lab_to_rgb, rgb_to_lab
from colorit.errors import ImageError
from colorit.evaluate import evaluate_folder, self_reference
from colorit.reference import describe, describe_folder
from colorit.session import FEATURES_MODEL, bundled_models, load_features

WIDTH = 384  # wider than the default working size: shrunk for the network, as a user's photo is


@pytest.fixture(scope="module")
def motorcycle():
    """(left view RGB, right view RGB), 384 px wide."""
    from skimage import data

    left, right, _ = data.stereo_motorcycle()
    size = (WIDTH, round(left.shape[0] * WIDTH / left.shape[1]))
    return tuple(np.asarray(Image.fromarray(view).resize(size, Image.Resampling.LANCZOS)) for view in (left, right))


def red_paint(rgb: np.ndarray) -> np.ndarray:
    """Where the photo shows strongly red paint (the motorcycle's tank, side cover and mudguards)."""
    lab = rgb_to_lab(rgb)
    return (lab[..., 1] > 30) & (np.hypot(lab[..., 1], lab[..., 2]) > 40)


def share_with_hue(rgb: np.ndarray, where: np.ndarray, low: float, high: float) -> float:
    """The share of pixels `where` whose Lab hue angle lies in low..high degrees with chroma >= 15."""
    lab = rgb_to_lab(rgb)[where]
    hue = np.degrees(np.arctan2(lab[:, 2], lab[:, 1])) % 360
    return float(np.mean((hue >= low) & (hue < high) & (np.hypot(lab[:, 1], lab[:, 2]) >= 15)))


def test_the_other_view_of_a_red_motorcycle_makes_the_grey_one_red(motorcycle, default_model):
    left, right = motorcycle
    paint = red_paint(left)
    assert paint.sum() > 2000  # the test is about a sizeable red object
    grey = grey_of(left)
    automatic = colorit.colorize(grey, model=default_model)
    guided = colorit.colorize(grey, model=default_model, reference=right)
    # The network alone guesses red for half of it at best; the reference makes nearly all of it red.
    assert share_with_hue(guided, paint, 0, 50) > 0.7
    assert share_with_hue(guided, paint, 0, 50) > share_with_hue(automatic, paint, 0, 50) + 0.15


def test_the_colour_follows_the_reference_not_the_networks_habits(motorcycle, default_model):
    left, right = motorcycle
    lab = rgb_to_lab(right)
    repainted = red_paint(right)
    lab[..., 1][repainted] *= -1  # the same motorcycle painted green (a* mirrored)
    green_reference = (np.clip(lab_to_rgb(lab), 0, 1) * 255 + 0.5).astype(np.uint8)
    guided = colorit.colorize(grey_of(left), model=default_model, reference=Image.fromarray(green_reference))
    assert share_with_hue(guided, red_paint(left), 100, 200) > 0.6


def test_a_grey_reference_changes_nothing(motorcycle, default_model):
    left, right = motorcycle
    grey = grey_of(left)
    automatic = colorit.colorize(grey, model=default_model)
    for reference in (grey_of(right), Image.fromarray(grey_of(right)).convert("RGB")):
        np.testing.assert_array_equal(colorit.colorize(grey, model=default_model, reference=reference), automatic)


def test_an_unrelated_reference_leaves_most_of_the_photo_alone(motorcycle, default_model):
    grey = grey_of(motorcycle[0])
    automatic = colorit.colorize(grey, model=default_model).astype(int)
    with_coffee = colorit.colorize(grey, model=default_model, reference=photo_rgb("coffee", 384)).astype(int)
    changed = np.abs(with_coffee - automatic).max(axis=-1) > 8
    assert changed.mean() < 0.25


def test_a_hint_wins_where_both_speak(motorcycle, default_model):
    left, right = motorcycle
    ys, xs = np.nonzero(red_paint(left))
    x, y = int(np.median(xs)), int(np.median(ys))
    hint = [{"x": x, "y": y, "color": "#1d4fb8", "radius": 3}]
    guided = colorit.colorize(grey_of(left), model=default_model, reference=right, hints=hint)
    a, b = rgb_to_lab(guided[y, x])[1:]
    assert b < -20 and abs(a) < 40  # blue, not the reference's red


def test_references_in_every_form_give_the_same_colour(motorcycle, default_model, tmp_path):
    left, right = motorcycle
    grey = grey_of(left)
    path = tmp_path / "reference.png"
    Image.fromarray(right).save(path)
    from_array = colorit.colorize(grey, model=default_model, reference=right)
    for reference in (Image.fromarray(right), path, str(path), path.read_bytes(), [path]):
        np.testing.assert_array_equal(colorit.colorize(grey, model=default_model, reference=reference), from_array)


def test_a_bad_reference_file_is_a_one_line_error(motorcycle, default_model, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(ImageError) as error:
        colorit.colorize(grey_of(motorcycle[0]), model=default_model, reference=bad)
    message = str(error.value)
    assert message.startswith(str(bad)) and "\n" not in message


def test_the_feature_extractor_is_not_a_colorization_model():
    assert FEATURES_MODEL.is_file()
    assert FEATURES_MODEL not in [path for path, _ in bundled_models()]
    card = json.loads(FEATURES_MODEL.with_suffix(".json").read_text())
    assert card["kind"] == "features"


def test_features_are_unit_length_at_stride_8(motorcycle):
    features = load_features().features(rgb_to_lab(motorcycle[0])[..., 0])
    height, width = motorcycle[0].shape[:2]
    assert features.shape[:2] == (-(-height // 8), -(-width // 8))
    np.testing.assert_allclose(np.linalg.norm(features, axis=-1), 1.0, atol=1e-3)


def test_a_folder_is_described_once_and_bad_files_are_named(motorcycle, tmp_path):
    Image.fromarray(motorcycle[1]).save(tmp_path / "motorcycle.png")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    reported = []
    references = describe_folder(tmp_path, load_features(), 384, report=reported.append)
    assert [reference.source for reference in references] == [str(tmp_path / "motorcycle.png")]
    assert len(reported) == 1 and "broken.png" in reported[0]
    grey_reference = describe(grey_of(motorcycle[1]), load_features(), 384)
    assert references[0].colourful and not grey_reference.colourful


def test_self_reference_is_another_crop_of_the_same_photo_and_repeatable():
    rgb = photo_rgb("astronaut", 512)
    crops = [self_reference(rgb, np.random.default_rng((0, index))) for index in range(20)]
    again = self_reference(rgb, np.random.default_rng((0, 3)))
    np.testing.assert_array_equal(again, crops[3])
    sizes = {crop.shape for crop in crops}
    assert len(sizes) > 10  # crops differ in size and aspect
    for crop in crops:
        assert crop.dtype == np.uint8 and crop.shape[2] == 3
        assert 0.6 * 0.49 <= crop.shape[0] * crop.shape[1] / 512**2 <= 0.9 * 1.69  # area times scale**2


def test_evaluate_with_self_reference_beats_the_automatic_colours(tmp_path):
    for name in ("astronaut", "coffee", "chelsea"):
        Image.fromarray(photo_rgb(name, 256)).save(tmp_path / f"{name}.png")
    report = evaluate_folder(tmp_path, ["default"], eval_size=256, reference="self", progress=False)
    rows = {row["model"]: row for row in report["table"]}
    assert rows["default + reference"]["psnr"] > rows["default"]["psnr"] + 2
    assert report["reference"]["kind"] == "self"


def test_cli_reference_folder_chooses_the_matching_photo(motorcycle, tmp_path):
    grey_path = tmp_path / "in" / "motorcycle.png"
    grey_path.parent.mkdir()
    Image.fromarray(grey_of(motorcycle[0])).save(grey_path)
    pool = tmp_path / "pool"
    pool.mkdir()
    Image.fromarray(motorcycle[1]).save(pool / "same-garage.png")
    for name in ("astronaut", "coffee", "chelsea", "china"):
        Image.fromarray(photo_rgb(name, 384)).save(pool / f"{name}.png")
    report_path = tmp_path / "report.json"
    result = run_colorit(
        "colorize",
        str(grey_path),
        "-o",
        str(tmp_path / "out"),
        "--reference",
        str(pool),
        "--reference-report",
        str(report_path),
        "--verbose",
    )
    assert result.returncode == 0, result.stderr
    assert "same-garage.png" in result.stdout + result.stderr
    report = json.loads(report_path.read_text())
    (entry,) = report["inputs"]
    assert entry["references"][0].endswith("same-garage.png")
    output = np.asarray(Image.open(tmp_path / "out" / "motorcycle.png").convert("RGB"))
    assert share_with_hue(output, red_paint(motorcycle[0]), 0, 50) > 0.7


def test_cli_bad_reference_file_is_one_line_and_nothing_is_written(motorcycle, tmp_path):
    grey_path = tmp_path / "motorcycle.png"
    Image.fromarray(grey_of(motorcycle[0])).save(grey_path)
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"GIF89a nonsense")
    result = run_colorit("colorize", str(grey_path), "-o", str(tmp_path / "out"), "--reference", str(bad))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "motorcycle.png").exists()


@pytest.fixture(scope="module")
def client():
    from fastapi.testclient import TestClient

    from colorit.server.app import create_app

    with TestClient(create_app(), base_url="http://localhost") as test_client:
        yield test_client


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_api_reference_field_gives_its_colours(motorcycle, client):
    left, right = motorcycle
    files = [
        ("file", ("motorcycle.png", png_bytes(grey_of(left)), "image/png")),
        ("reference", ("garage.png", png_bytes(right), "image/png")),
    ]
    response = client.post("/api/colorize", files=files)
    assert response.status_code == 200, response.text
    output = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB"))
    assert share_with_hue(output, red_paint(left), 0, 50) > 0.7


def test_api_bad_reference_is_a_one_line_error_naming_it(motorcycle, client):
    files = [
        ("file", ("motorcycle.png", png_bytes(grey_of(motorcycle[0])), "image/png")),
        ("reference", ("garage.jpg", b"\xff\xd8 not a jpeg", "image/jpeg")),
    ]
    response = client.post("/api/colorize", files=files)
    assert response.status_code in (400, 415)
    detail = response.json()["detail"]
    assert detail.startswith("garage.jpg") and "\n" not in detail


def test_openapi_documents_the_reference_field(client):
    form = client.get("/openapi.json").json()["components"]["schemas"]["ColorizeForm"]
    assert "reference" in form["properties"]
    assert "colour" in form["properties"]["reference"]["description"]
