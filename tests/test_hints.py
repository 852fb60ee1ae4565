import json
import math

import numpy as np
import pytest
from conftest import grey_of, photo_rgb

from colorit.color import lab_planes_to_rgb, luminance_L, srgb_to_linear
from colorit.errors import HintError
from colorit.hints import AB_SCALE, Hint, parse_hints, propagate_hints, render_hints


@pytest.fixture(scope="module")
def L():
    """Luminance of the greyed coffee photo (160 x 107)."""
    return luminance_L(grey_of(photo_rgb("coffee")))


def hue_degrees(ab) -> float:
    return math.degrees(math.atan2(ab[1], ab[0]))


def test_pixel_hint_parses_with_its_colour_as_ab(L):
    (hint,) = parse_hints([{"x": 40, "y": 30.5, "color": "#e02020", "radius": 3}], L)
    assert (hint.x, hint.y, hint.radius) == (40.0, 30.5, 3.0)
    assert 0 < hue_degrees(hint.ab) < 60, "red lies between +a and +b"
    assert math.hypot(*hint.ab) > 20


def test_json_text_bytes_and_wrapped_lists_are_the_same_hints(L):
    entries = [{"x": 10, "y": 12, "color": "#2040c0"}, {"x": 100, "y": 50, "color": "#3a3", "radius": 5}]
    as_list = parse_hints(entries, L)
    assert parse_hints(json.dumps(entries), L) == as_list
    assert parse_hints(json.dumps(entries).encode(), L) == as_list
    assert parse_hints({"hints": entries}, L) == as_list
    assert len(as_list) == 2 and as_list[1].radius == 5


def test_relative_coordinates_are_fractions_of_the_image(L):
    height, width = L.shape
    (hint,) = parse_hints([{"x": 0.5, "y": 0.25, "color": "#ffcc00", "relative": True, "radius": 0.05}], L)
    assert hint.x == pytest.approx(width / 2) and hint.y == pytest.approx(height / 4)
    assert hint.radius == pytest.approx(0.05 * max(width, height))


def test_default_radius_is_small_but_positive(L):
    (hint,) = parse_hints([{"x": 1, "y": 1, "color": "#ffcc00"}], L)
    assert 0 < hint.radius < max(L.shape) / 20


def test_ab_can_be_given_directly(L):
    (hint,) = parse_hints([{"x": 1, "y": 1, "ab": [30, -40]}], L)
    assert hint.ab == (30.0, -40.0)


def test_colour_becomes_ab_at_the_luminance_under_the_hint(L):
    """Re-lit to the point's own luminance, the hint keeps the colour's chromaticity."""
    # a dark (not black) point: the colour's own L* is about 48, and darkening stays in gamut
    y, x = np.unravel_index(np.argmin(np.abs(L - 25)), L.shape)
    colour = np.array([0.75, 0.3, 0.2])
    (hint,) = parse_hints([{"x": float(x) + 0.5, "y": float(y) + 0.5, "color": "#bf4d33", "radius": 0.1}], L)
    rendered = lab_planes_to_rgb(np.float32(L[y, x]), np.float32(hint.ab[0]), np.float32(hint.ab[1]))
    linear_out, linear_in = srgb_to_linear(rendered), srgb_to_linear(colour)
    np.testing.assert_allclose(linear_out / linear_out.sum(), linear_in / linear_in.sum(), atol=0.02)


@pytest.mark.parametrize(
    "entry, words",
    [
        ({"x": 1000, "y": 10, "color": "#ff0000"}, "outside"),
        ({"x": -1, "y": 10, "color": "#ff0000"}, "outside"),
        ({"x": 1.5, "y": 0.5, "color": "#ff0000", "relative": True}, "0..1"),
        ({"x": 10, "y": 10, "color": "#ff00zz"}, "bad colour"),
        ({"x": 10, "y": 10, "color": "red"}, "bad colour"),
        ({"x": 10, "y": 10, "color": 255}, "bad colour"),
        ({"x": 10, "y": 10}, "missing 'color'"),
        ({"x": "10", "y": 10, "color": "#ff0000"}, "'x' must be a finite number"),
        ({"x": 10, "y": float("nan"), "color": "#ff0000"}, "'y' must be a finite number"),
        ({"x": 10, "y": 10, "color": "#ff0000", "radius": 0}, "radius must be positive"),
        ({"x": 10, "y": 10, "ab": [10, 500]}, "'ab'"),
        ([10, 10], "expected an object"),
    ],
)
def test_invalid_hints_name_the_source_and_the_hint(L, entry, words):
    with pytest.raises(HintError) as caught:
        parse_hints([{"x": 5, "y": 5, "color": "#00ff00"}, entry], L, source="my-hints.json")
    message = str(caught.value)
    assert message.startswith("my-hints.json: hint 2: ") and words in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "data, words", [("{not json", "not valid JSON"), ('{"x": 1}', "expected a list"), (b"\xff\xfe", "not valid JSON")]
)
def test_unreadable_hint_documents_are_refused(L, data, words):
    with pytest.raises(HintError, match=words):
        parse_hints(data, L)


def test_too_many_hints_are_refused(L):
    entries = [{"x": i % 100, "y": 5, "color": "#123456"} for i in range(257)]
    with pytest.raises(HintError, match="257 hints, at most 256"):
        parse_hints(entries, L)
    assert len(parse_hints(entries[:10], L, max_hints=10)) == 10
    with pytest.raises(HintError, match="at most 9"):
        parse_hints(entries[:10], L, max_hints=9)


def test_render_places_scaled_squares_with_ab_over_110():
    hints = [Hint(x=100, y=50, ab=(55.0, -22.0), radius=8), Hint(x=0, y=0, ab=(11.0, 11.0), radius=0.1)]
    channels = render_hints(hints, full_size=(400, 200), work_size=(100, 50))
    assert channels.shape == (3, 50, 100) and channels.dtype == np.float32
    mask = channels[2] > 0
    # hint 1: centre (25, 12.5), half-side 2 px at the working scale; hint 2: the top-left pixel only
    ys, xs = np.nonzero(mask)
    assert set(zip(ys.tolist(), xs.tolist())) == {(0, 0)} | {(y, x) for y in range(10, 15) for x in range(23, 28)}
    assert channels[0, 12, 25] == pytest.approx(55 / AB_SCALE) and channels[1, 12, 25] == pytest.approx(-22 / AB_SCALE)
    assert channels[0, 0, 0] == pytest.approx(11 / AB_SCALE)
    assert (channels[:2][:, ~mask] == 0).all()


def test_render_edge_hint_lands_on_the_last_pixel_and_later_hints_win():
    hints = [Hint(x=64, y=32, ab=(10.0, 10.0), radius=0.2), Hint(x=64, y=32, ab=(-30.0, 5.0), radius=0.2)]
    channels = render_hints(hints, full_size=(64, 32), work_size=(64, 32))
    assert np.count_nonzero(channels[2]) == 1 and channels[2, 31, 63] == 1
    assert channels[0, 31, 63] == pytest.approx(-30 / AB_SCALE)


def test_render_without_hints_is_all_zero():
    assert not render_hints([], (30, 20), (15, 10)).any()


def test_a_hint_recolours_its_whole_object_within_reach_and_leaves_other_objects():
    """A tree predicted blue on the left, a red roof on the right: a green hint on the tree turns the
    tree green 20 px away (one spatial sigma), not only a fraction of the way, and leaves the roof."""
    L_work = np.full((50, 100), 40.0, dtype=np.float32)
    L_work[:, 50:] = 70.0
    ab = np.empty((2, 50, 100), dtype=np.float32)
    ab[:, :, :50] = np.array([-5.0, -30.0])[:, None, None]
    ab[:, :, 50:] = np.array([35.0, 25.0])[:, None, None]
    before = ab.copy()
    green = (-40.0, 30.0)
    propagate_hints(ab, L_work, [Hint(x=10, y=25, ab=green, radius=1)], full_size=(100, 50))
    assert ab[:, 25, 10] == pytest.approx(green, abs=0.01)
    assert ab[:, 25, 30] == pytest.approx(green, abs=1.0)
    assert np.abs(ab[:, :, :50] - before[:, :, :50]).sum(axis=0).min() > 20  # the far corner moves too
    assert np.abs(ab[:, :, 50:] - before[:, :, 50:]).max() < 0.5
