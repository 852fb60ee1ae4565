"""The network's confidence and greying where it is unsure, through pipeline, API, CLI and server, on real photos."""
# test_browser's real-server fixture is imported, and pytest passes it to `client` by name:
# ruff: noqa: F811

from __future__ import annotations

import io

import httpx
import numpy as np
import pytest
from conftest import PHOTO_NAMES, chroma, grey_of, photo_rgb, run_colorit
from PIL import Image
from test_browser import server_url  # noqa: F401 (the real server, a pytest fixture)

from colorit import colorize, metrics
from colorit.color import rgb_to_lab
from colorit.confidence import CARD_KEY, MAX_STRENGTH
from colorit.errors import ColoritError
from colorit.pipeline import colorize_array
from colorit.session import ModelSession


@pytest.fixture(scope="module")
def grey_chelsea() -> np.ndarray:
    return grey_of(photo_rgb("chelsea", 256))


def with_card(session: ModelSession, **entries) -> ModelSession:
    """Another session of the same network whose card differs in `entries`."""
    return ModelSession(session.path, {**session.card, **entries}, threads=session.threads)


def test_the_default_model_gives_a_confidence_in_0_1_of_the_input_size(default_model, seed_model, grey_chelsea):
    assert default_model.has_confidence and not seed_model.has_confidence
    output, confidence = colorize_array(grey_chelsea, default_model, with_confidence=True)
    assert output.shape == grey_chelsea.shape + (3,) and confidence.shape == grey_chelsea.shape
    assert confidence.dtype == np.float32 and 0.0 <= confidence.min() < confidence.max() <= 1.0
    np.testing.assert_array_equal(output, colorize_array(grey_chelsea, default_model))


def test_the_least_confident_pixels_are_the_ones_the_model_gets_wrong(default_model):
    """Over the wheel photos, the quarter of the pixels with the lowest confidence has clearly larger ab errors
    than the quarter with the highest: the map points at the places where a hint is needed."""
    errors, confidences = [], []
    for name in PHOTO_NAMES:
        truth = photo_rgb(name, 256)
        output, confidence = colorize_array(grey_of(truth), default_model, with_confidence=True)
        errors.append(metrics.ab_error(rgb_to_lab(output), rgb_to_lab(truth)).ravel())
        confidences.append(confidence.ravel())
    error, confidence = np.concatenate(errors), np.concatenate(confidences)
    low, high = np.quantile(confidence, [0.25, 0.75])
    assert error[confidence <= low].mean() > 1.5 * error[confidence >= high].mean()


def test_strength_zero_is_the_plain_network_output(default_model, grey_chelsea, tmp_path):
    """At strength 0 the model colorizes exactly as the same network without a confidence output does."""
    import onnx

    graph = onnx.load(default_model.path)
    kept = [output for output in graph.graph.output if output.name != "confidence"]
    del graph.graph.output[:]
    graph.graph.output.extend(kept)
    onnx.save(graph, tmp_path / "default.onnx")
    without = ModelSession(tmp_path / "default.onnx", default_model.card, threads=default_model.threads)
    assert not without.has_confidence
    unchanged = colorize_array(grey_chelsea, without)
    np.testing.assert_array_equal(colorize_array(grey_chelsea, default_model, unsure_grey=0.0), unchanged)
    plain = with_card(default_model, **{CARD_KEY: None})
    np.testing.assert_array_equal(colorize_array(grey_chelsea, plain), unchanged)
    # The card's strength is the default, and a per-call value overrides it.
    greyed = with_card(default_model, **{CARD_KEY: 1.0})
    np.testing.assert_array_equal(
        colorize_array(grey_chelsea, greyed), colorize_array(grey_chelsea, plain, unsure_grey=1.0)
    )
    np.testing.assert_array_equal(colorize_array(grey_chelsea, greyed, unsure_grey=0.0), unchanged)


def test_a_larger_strength_never_adds_chroma_and_keeps_the_hue(default_model):
    grey = grey_of(photo_rgb("astronaut", 256)).astype(np.float32) / 255  # float in, float out: no rounding
    outputs = [colorize_array(grey, default_model, unsure_grey=s) for s in (0.0, 0.5, 1.0, 2.0, MAX_STRENGTH)]
    chromas = [chroma(output) for output in outputs]
    # Where a colour leaves the RGB gamut it is clipped, which takes more chroma from the more
    # saturated one: compare only pixels that both outputs kept inside (no channel at 0 or 1).
    inside_gamut = [((output > 1e-4) & (output < 1 - 1e-4)).all(-1) for output in outputs]
    for index, (weaker, stronger) in enumerate(zip(chromas, chromas[1:])):
        inside = inside_gamut[index] & inside_gamut[index + 1]
        assert inside.mean() > 0.5
        assert np.all(stronger[inside] <= weaker[inside] + 0.01)
        assert stronger.mean() < weaker.mean()
    assert chromas[-1].mean() < 0.2 * chromas[0].mean()
    hues = [np.angle(lab[..., 1] + 1j * lab[..., 2]) for lab in (rgb_to_lab(outputs[0]), rgb_to_lab(outputs[2]))]
    coloured = chromas[2] > 5
    turn = np.abs(np.angle(np.exp(1j * (hues[1] - hues[0])))[coloured])
    # Greying keeps each working-size pixel's hue exactly; upsampling then mixes neighbours greyed by
    # different amounts, which turns the hue a little where it changes fast (between two hue lobes).
    assert np.quantile(turn, 0.999) < np.radians(3) and turn.max() < np.radians(10)


def test_hints_are_never_greyed(default_model, grey_chelsea):
    hint = [{"x": 60, "y": 60, "color": "#1040d0", "radius": 4}]
    free = colorize_array(grey_chelsea, default_model, hints=hint, unsure_grey=0.0)
    greyed = colorize_array(grey_chelsea, default_model, hints=hint, unsure_grey=MAX_STRENGTH)
    at_hint = (slice(57, 64), slice(57, 64))
    blue_free, blue_greyed = (rgb_to_lab(image[at_hint])[..., 2].mean() for image in (free, greyed))
    assert blue_free < -20 and abs(blue_greyed - blue_free) < 2
    # Without the hint, the same strength does take the colour out of that place.
    unhinted = colorize_array(grey_chelsea, default_model, unsure_grey=MAX_STRENGTH)
    assert chroma(unhinted[at_hint]).mean() < 0.3 * chroma(greyed[at_hint]).mean()


def test_models_without_confidence_and_bad_strengths_are_refused(seed_model, default_model, grey_chelsea):
    with pytest.raises(ColoritError, match="seed-ae: gives no confidence"):
        colorize_array(grey_chelsea, seed_model, with_confidence=True)
    with pytest.raises(ColoritError, match="seed-ae: gives no confidence"):
        colorize_array(grey_chelsea, seed_model, unsure_grey=1.0)
    assert colorize_array(grey_chelsea, seed_model, unsure_grey=0.0).shape == grey_chelsea.shape + (3,)
    for strength in (-0.5, float("nan"), MAX_STRENGTH + 1):
        with pytest.raises(ValueError, match="unsure_grey must lie in"):
            colorize_array(grey_chelsea, default_model, unsure_grey=strength)
    with pytest.raises(ValueError, match=f"model default: {CARD_KEY} must lie in"):
        colorize_array(grey_chelsea, with_card(default_model, **{CARD_KEY: "strong"}))


def test_the_api_returns_the_confidence_in_the_input_type(default_model, grey_chelsea):
    image = Image.fromarray(grey_chelsea)
    array_output, array_confidence = colorize(grey_chelsea, model=default_model, with_confidence=True)
    pil_output, pil_confidence = colorize(image, model=default_model, with_confidence=True)
    assert isinstance(pil_output, Image.Image) and pil_confidence.mode == "L" and pil_confidence.size == image.size
    np.testing.assert_array_equal(np.asarray(pil_output), array_output)
    assert np.abs(np.asarray(pil_confidence) / 255.0 - array_confidence).max() <= 0.5 / 255 + 1e-6

    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=95)
    jpeg_output, png_confidence = colorize(buffer.getvalue(), model=default_model, with_confidence=True)
    assert Image.open(io.BytesIO(jpeg_output)).format == "JPEG"
    decoded = Image.open(io.BytesIO(png_confidence))
    assert (decoded.format, decoded.mode, decoded.size) == ("PNG", "L", image.size)


def test_cli_writes_a_confidence_map_beside_each_output(tmp_path, grey_chelsea):
    photos = tmp_path / "photos"
    (photos / "cats").mkdir(parents=True)
    Image.fromarray(grey_chelsea).save(photos / "cats" / "chelsea.jpg", quality=95)
    Image.fromarray(grey_of(photo_rgb("coffee", 200))).save(photos / "coffee.png")
    out = tmp_path / "out"

    first = run_colorit("colorize", str(photos), "-o", str(out), "--confidence")
    assert first.returncode == 0, first.stderr
    written = sorted(path.relative_to(out).as_posix() for path in out.rglob("*") if path.is_file())
    assert written == ["cats/chelsea.confidence.png", "cats/chelsea.jpg", "coffee.confidence.png", "coffee.png"]
    chelsea_map = Image.open(out / "cats" / "chelsea.confidence.png")
    assert (chelsea_map.format, chelsea_map.mode) == ("PNG", "L")
    assert chelsea_map.size == Image.open(photos / "cats" / "chelsea.jpg").size
    levels = np.asarray(chelsea_map)
    assert levels.min() < levels.max()

    (out / "coffee.confidence.png").write_bytes(b"kept")
    (out / "coffee.png").unlink()
    second = run_colorit("colorize", str(photos / "coffee.png"), "-o", str(out), "--confidence")
    # the missing image is written; the map that exists is never replaced without --overwrite
    assert second.returncode == 0, second.stderr
    assert (out / "coffee.confidence.png").read_bytes() == b"kept" and (out / "coffee.png").exists()
    third = run_colorit("colorize", str(photos / "coffee.png"), "-o", str(out), "--confidence", "--overwrite")
    assert third.returncode == 0, third.stderr
    assert Image.open(out / "coffee.confidence.png").format == "PNG"
    assert not [path for path in out.rglob("*") if "tmp" in path.name]


def test_cli_never_writes_a_confidence_map_onto_an_input(tmp_path, grey_chelsea):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(grey_chelsea).save(photos / "cat.png")
    Image.fromarray(grey_chelsea[::2, ::2]).save(photos / "cat.confidence.png")  # an input of that name
    before = (photos / "cat.confidence.png").read_bytes()
    result = run_colorit("colorize", str(photos), "-o", str(photos), "--format", "jpg", "--confidence", "--overwrite")
    assert result.returncode == 1
    assert f"output {photos / 'cat.confidence.png'} would replace an input" in result.stderr
    assert (photos / "cat.confidence.png").read_bytes() == before and not (photos / "cat.jpg").exists()
    assert (photos / "cat.confidence.jpg").exists()  # the other input is still done


def test_cli_unsure_grey_mutes_the_colours(tmp_path, grey_chelsea):
    Image.fromarray(grey_chelsea).save(tmp_path / "chelsea.png")
    chromas = []
    for strength in ("0", "3"):
        result = run_colorit(
            "colorize", str(tmp_path / "chelsea.png"), "-o", str(tmp_path / strength), "--unsure-grey", strength
        )
        assert result.returncode == 0, result.stderr
        chromas.append(chroma(np.asarray(Image.open(tmp_path / strength / "chelsea.png"))).mean())
    assert chromas[1] < 0.7 * chromas[0]
    refused = run_colorit("colorize", str(tmp_path / "chelsea.png"), "-o", str(tmp_path / "x"), "--unsure-grey", "11")
    assert refused.returncode == 2 and "--unsure-grey: must be <= 10" in refused.stderr


@pytest.mark.parametrize("option", [["--confidence"], ["--unsure-grey", "1"]])
def test_cli_refuses_confidence_from_a_model_without_one(tmp_path, grey_chelsea, option):
    Image.fromarray(grey_chelsea).save(tmp_path / "chelsea.png")
    result = run_colorit(
        "colorize", str(tmp_path / "chelsea.png"), "-o", str(tmp_path / "out"), *option, "--model", "seed-ae"
    )
    assert result.returncode == 2 and "seed-ae: gives no confidence" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "out" / "chelsea.png").exists()


@pytest.fixture(scope="module")
def client(server_url):
    """HTTP to the real server (uvicorn on a local port)."""
    with httpx.Client(base_url=server_url, timeout=120) as http:
        yield http


def post(client, content: bytes, **fields: str):
    return client.post("/api/colorize", files={"file": ("cat photo.png", content, "image/png")}, data=fields)


def png_of(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def test_server_answers_with_the_confidence_map_on_request(client, default_model, grey_chelsea):
    response = post(client, png_of(grey_chelsea), confidence="true", format="jpg")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert "cat%20photo-confidence.png" in response.headers["content-disposition"]
    served = Image.open(io.BytesIO(response.content))
    assert (served.mode, served.size) == ("L", grey_chelsea.shape[::-1])
    _, expected = colorize_array(grey_chelsea, default_model, with_confidence=True)
    assert np.abs(np.asarray(served) / 255.0 - expected).max() <= 0.5 / 255 + 1e-6


def test_server_greys_unsure_places_on_request_and_refuses_what_it_cannot(client, grey_chelsea):
    content = png_of(grey_chelsea)
    plain, greyed = (post(client, content, unsure_grey=value) for value in ("0", "2"))
    assert plain.status_code == greyed.status_code == 200
    plain_chroma, greyed_chroma = (
        chroma(np.asarray(Image.open(io.BytesIO(r.content)))).mean() for r in (plain, greyed)
    )
    assert greyed_chroma < 0.8 * plain_chroma
    refused = post(client, content, confidence="true", model="seed-ae")
    assert refused.status_code == 400 and "gives no confidence" in refused.json()["detail"]
    too_strong = post(client, content, unsure_grey=str(MAX_STRENGTH + 1))
    assert too_strong.status_code == 400 and "unsure_grey" in too_strong.json()["detail"]


def test_openapi_documents_the_confidence_fields(client):
    form = client.get("/openapi.json").json()["components"]["schemas"]["ColorizeForm"]["properties"]
    assert form["confidence"]["type"] == "boolean" and "greyscale PNG" in form["confidence"]["description"]
    assert "unsure" in form["unsure_grey"]["description"]
