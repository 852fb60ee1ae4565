"""Films through colorit.colorize_video: real PyAV encoding and decoding of clips made from wheel photos,
with a real sound track; and the colour carry (colorit.video.coherence) on real OpenCV optical flow."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from conftest import chroma, mean_dL, photo_rgb
from PIL import Image
from scipy import ndimage
from video_clips import (
    RATE,
    audio_packets,
    film_tags,
    greyed,
    pan_frames,
    read_frames,
    video_stream_facts,
    write_film,
)

import colorit
from colorit.color import rgb_to_lab
from colorit.errors import OutputError, VideoError
from colorit.video.coherence import MAX_CARRIED_WEIGHT, ColourCarry

LOSSLESS = {"codec": "ffv1", "pixel_format": "bgr0"}


def seconds(facts: dict) -> list[float]:
    return [float(pts * facts["time_base"]) for pts in facts["pts"]]


def ab_of(frames: list[np.ndarray]) -> list[np.ndarray]:
    return [rgb_to_lab(frame)[..., 1:] for frame in frames]


def pan_flicker(frames: list[np.ndarray], step: int) -> float:
    """Mean |change of ab| from frame to frame along a pan of `step` pixels a frame (the motion is known)."""
    abs_ = ab_of(frames)
    return float(
        np.mean([np.hypot(*(b[:, :-step] - a[:, step:]).transpose(2, 0, 1)).mean() for a, b in zip(abs_, abs_[1:])])
    )


def test_film_keeps_frames_timing_size_and_sound(tmp_path, default_model):
    source = write_film(tmp_path / "in.mp4", greyed(pan_frames("chelsea", 30)))
    result = colorit.colorize_video(source, tmp_path / "out.mp4", model=default_model)
    assert result.path == tmp_path / "out.mp4" and result.frames == 30
    before, after = video_stream_facts(source), video_stream_facts(result.path)
    for fact in ("frames", "rate", "size", "codec", "pixel_format"):
        assert after[fact] == before[fact], fact
    assert seconds(after) == seconds(before)
    assert audio_packets(result.path) == audio_packets(source)  # copied, not re-encoded
    coloured = read_frames(result.path)
    assert min(float(chroma(frame).mean()) for frame in coloured) > 2.0
    assert max(mean_dL(out, grey) for out, grey in zip(coloured, read_frames(source))) < 1.5  # lossy H.264 both ways


@pytest.mark.parametrize("suffix", ["mp4", "mkv"])
def test_film_says_it_was_colorized_and_keeps_its_tags(tmp_path, default_model, suffix):
    source = write_film(tmp_path / f"in.{suffix}", greyed(pan_frames("coffee", 3)), audio=None, title="Harbour, 1952")
    marked = colorit.colorize_video(source, tmp_path / f"marked.{suffix}", model=default_model).path
    tags = film_tags(marked)
    assert tags["title"] == "Harbour, 1952"
    assert tags["comment"].startswith("Colorized by ColorIt") and "model default" in tags["comment"]
    plain = colorit.colorize_video(source, tmp_path / f"plain.{suffix}", model=default_model, provenance=False).path
    assert "comment" not in film_tags(plain) and film_tags(plain)["title"] == "Harbour, 1952"


def test_lossless_film_keeps_every_frames_luminance(tmp_path, default_model):
    grey = greyed(pan_frames("astronaut", 12))
    source = write_film(tmp_path / "in.mkv", grey, **LOSSLESS, audio=None)
    out = colorit.colorize_video(source, tmp_path / "out.mkv", model=default_model, format="ffv1").path
    coloured = read_frames(out)
    assert len(coloured) == len(grey)
    assert all(mean_dL(frame, original) < 0.5 for frame, original in zip(coloured, grey))


@pytest.mark.parametrize(
    ("suffix", "codec", "audio", "fmt"),
    [
        ("mov", "libx264", "aac", None),
        ("mkv", "libx264", "libopus", "mkv"),
        ("avi", "mjpeg", "pcm_s16le", "mkv"),
        ("avi", "mpeg4", "libmp3lame", None),
        ("webm", "libvpx-vp9", "libopus", "webm"),
    ],
)
def test_each_container_goes_in_with_its_sound(tmp_path, default_model, suffix, codec, audio, fmt):
    pixel_format = "yuvj420p" if codec == "mjpeg" else "yuv420p"
    frames = greyed(pan_frames("coffee", 10))
    source = write_film(tmp_path / f"in.{suffix}", frames, codec=codec, pixel_format=pixel_format, audio=audio)
    target = tmp_path / f"out.{fmt or 'mp4'}"
    colorit.colorize_video(source, target, model=default_model)
    before, after = video_stream_facts(source), video_stream_facts(target)
    assert after["frames"] == before["frames"] == 10 and after["size"] == before["size"]
    assert seconds(after) == pytest.approx(seconds(before), abs=1e-3)
    assert [data for _, data in audio_packets(target)] == [data for _, data in audio_packets(source)]


def test_sound_a_container_cannot_hold_is_refused_not_re_encoded(tmp_path, default_model):
    source = write_film(tmp_path / "in.mp4", greyed(pan_frames("coffee", 4)), audio="aac")
    with pytest.raises(OutputError, match="aac audio cannot be copied into webm.*mkv"):
        colorit.colorize_video(source, tmp_path / "out.webm", model=default_model)
    assert not list(tmp_path.glob("*out*"))


def test_rotation_and_pixel_aspect_are_kept(tmp_path, default_model):
    source = write_film(
        tmp_path / "phone.mp4",
        greyed(pan_frames("grace_hopper", 8)),
        rotation=90,
        sample_aspect_ratio=Fraction(4, 3),
    )
    after = video_stream_facts(colorit.colorize_video(source, tmp_path / "out.mov", model=default_model).path)
    assert after["rotation"] == 90
    assert after["sample_aspect_ratio"] == Fraction(4, 3)
    assert after["frames"] == 8


def test_odd_frame_rate_and_size(tmp_path, default_model):
    frames = [np.ascontiguousarray(frame[:97, :131]) for frame in greyed(pan_frames("china", 9))]
    source = write_film(tmp_path / "ntsc.mkv", frames, rate=Fraction(30000, 1001), **LOSSLESS, audio="aac")
    after = video_stream_facts(colorit.colorize_video(source, tmp_path / "out.mkv", model=default_model).path)
    before = video_stream_facts(source)
    assert after["frames"] == 9 and after["size"] == (131, 97)
    assert seconds(after) == pytest.approx(seconds(before), abs=1e-3)


@pytest.mark.parametrize("coherent", [True, False])
def test_a_tiny_film(tmp_path, default_model, coherent):
    frames = [np.ascontiguousarray(frame[:6, :8]) for frame in greyed(pan_frames("chelsea", 4))]
    source = write_film(tmp_path / "tiny.mkv", frames, **LOSSLESS, audio=None)
    out = colorit.colorize_video(source, tmp_path / "out.mkv", model=default_model, coherent=coherent)
    assert [frame.shape for frame in read_frames(out.path)] == [(6, 8, 3)] * 4


def test_coherent_mode_flickers_less_than_frame_by_frame(tmp_path, default_model):
    step = 2
    source = write_film(tmp_path / "pan.mkv", greyed(pan_frames("chelsea", 20, step=step)), **LOSSLESS, audio=None)
    flicker = {}
    for coherent in (False, True):
        target = tmp_path / f"coherent-{coherent}.mkv"
        colorit.colorize_video(source, target, model=default_model, coherent=coherent, format="ffv1")
        flicker[coherent] = pan_flicker(read_frames(target), step)
    assert flicker[True] < flicker[False], flicker


def test_a_shot_cut_starts_the_colour_afresh(tmp_path, default_model):
    first, second = pan_frames("astronaut", 8), pan_frames("coffee", 8)
    source = write_film(tmp_path / "cut.mkv", greyed(first + second), **LOSSLESS, audio=None)
    coherent = colorit.colorize_video(source, tmp_path / "coherent.mkv", model=default_model, format="ffv1")
    frame_by_frame = colorit.colorize_video(
        source, tmp_path / "frames.mkv", model=default_model, coherent=False, format="ffv1"
    )
    assert coherent.shots == 2 and frame_by_frame.shots is None
    # The first frame of each shot is the network's own guess: nothing carried over the cut.
    carried, alone = read_frames(coherent.path), read_frames(frame_by_frame.path)
    np.testing.assert_array_equal(carried[8], alone[8])
    np.testing.assert_array_equal(carried[0], alone[0])
    assert not np.array_equal(carried[9], alone[9])


def test_hints_apply_to_every_frame(tmp_path, default_model):
    source = write_film(tmp_path / "in.mp4", greyed(pan_frames("chelsea", 10)), audio=None)
    hint = {"x": 80, "y": 60, "color": "#2050d0", "radius": 6}
    out = colorit.colorize_video(source, tmp_path / "out.mkv", model=default_model, hints=[hint], format="ffv1")
    for frame in read_frames(out.path):
        lab = rgb_to_lab(frame[56:65, 76:85])
        assert lab[..., 2].mean() < -15  # blue: b* well below 0 at the hint, in every frame


def test_a_reference_photo_applies_to_every_frame(tmp_path, default_model):
    truth = pan_frames("coffee", 6)
    source = write_film(tmp_path / "in.mkv", greyed(truth), **LOSSLESS, audio=None)
    errors = {}
    for reference in (None, photo_rgb("coffee", 200)):
        target = tmp_path / f"out-{reference is None}.mkv"
        colorit.colorize_video(source, target, model=default_model, reference=reference, format="ffv1")
        errors[reference is None] = np.mean(
            [np.hypot(*(a - b).transpose(2, 0, 1)).mean() for a, b in zip(ab_of(read_frames(target)), ab_of(truth))]
        )
    assert errors[False] < errors[True] - 3, errors  # the photo's own colours, in ab units


def test_output_is_refused_onto_the_input_or_an_existing_file(tmp_path, default_model):
    source = write_film(tmp_path / "in.mp4", greyed(pan_frames("chelsea", 3)), audio=None)
    with pytest.raises(OutputError, match="input"):
        colorit.colorize_video(source, source, model=default_model, overwrite=True)
    (tmp_path / "out.mp4").write_bytes(b"kept")
    with pytest.raises(OutputError, match="already exists"):
        colorit.colorize_video(source, tmp_path / "out.mp4", model=default_model)
    assert (tmp_path / "out.mp4").read_bytes() == b"kept"
    with pytest.raises(OutputError, match="suffix"):
        colorit.colorize_video(source, tmp_path / "out.gif", model=default_model)


def test_a_truncated_film_is_refused_and_nothing_is_written(tmp_path, default_model):
    data = write_film(tmp_path / "whole.mkv", greyed(pan_frames("chelsea", 40)), audio="libopus").read_bytes()
    (tmp_path / "cut.mkv").write_bytes(data[: len(data) * 6 // 10])
    with pytest.raises(VideoError, match="truncated"):
        colorit.colorize_video(tmp_path / "cut.mkv", tmp_path / "out" / "cut.mp4", model=default_model)
    assert not any((tmp_path / "out").iterdir())


# ------------------------------------------------------------------------------ the colour carry


def textured(shape: tuple[int, int], seed: int) -> np.ndarray:
    """A smooth random texture of L (0..100) that optical flow can follow."""
    noise = np.random.default_rng(seed).random(shape)
    smooth = ndimage.gaussian_filter(noise, 2.0)
    return ((smooth - smooth.min()) / np.ptp(smooth) * 80 + 10).astype(np.float32)


def disc_scene(frames: int, size=(160, 120), radius=20, speed=3):
    """L frames of a textured disc moving right over a still textured background, and its centres."""
    width, height = size
    background, skin = textured((height, width), 1), textured((2 * radius, 2 * radius), 2)
    rows, columns = np.mgrid[-radius:radius, -radius:radius]
    inside = (rows + 0.5) ** 2 + (columns + 0.5) ** 2 <= radius**2
    scene, centres = [], []
    for i in range(frames):
        frame = background.copy()
        left, top = 10 + speed * i, height // 2 - radius
        frame[top : top + 2 * radius, left : left + 2 * radius][inside] = skin[inside] * 0.5 + 50
        scene.append(frame)
        centres.append((top + radius, left + radius))
    return scene, centres


def test_colour_stays_on_a_moving_object():
    scene, centres = disc_scene(12)
    first_row, first_column = centres[0]
    ab = np.zeros((2, *scene[0].shape), np.float32)
    ab[0] = -20.0  # the background green
    ab[:, first_row - 20 : first_row + 20, first_column - 20 : first_column + 20] = np.float32(40.0)  # the disc red
    # The network speaks on the first frame only: every later frame's colour is carried.
    carry = ColourCarry(network_every=1000)
    coloured = [carry.step(L, lambda: (ab, None)) for L in scene]
    assert carry.guesses == 1 and carry.shots == 1
    row, column = centres[-1]
    red = coloured[-1][:, row - 4 : row + 4, column - 4 : column + 4].mean(axis=(1, 2))
    green = coloured[-1][:, row + 30 : row + 38, column - 4 : column + 4].mean(axis=(1, 2))  # below the disc
    assert np.allclose(red, 40, atol=3) and np.allclose(green, [-20, 0], atol=3)


def test_colour_follows_the_network_without_drifting():
    L = textured((120, 160), 3)
    guesses = [np.full((2, 120, 160), value, np.float32) for value in (30.0, 10.0)]
    confidence = np.full((120, 160), 0.5, np.float32)
    carry = ColourCarry()
    coloured = [carry.step(L, lambda i=i: (guesses[i % 2], confidence))[0, 0, 0] for i in range(300)]
    # A guess flickering by 20 moves the colour by far less, about the mean of the guesses...
    assert np.ptp(coloured[-50:]) < 20 * 0.5 / (0.5 + MAX_CARRIED_WEIGHT) * 2
    assert abs(np.mean(coloured[-50:]) - 20) < 2
    # ... and a changed guess takes over within a few dozen frames: no colour is kept for ever.
    later = [carry.step(L, lambda: (guesses[0], confidence))[0, 0, 0] for _ in range(60)]
    assert abs(later[-1] - 30) < 0.5


def test_a_jump_in_brightness_is_a_cut():
    carry = ColourCarry()
    ab = np.zeros((2, 120, 160), np.float32)
    night, day = textured((120, 160), 4) * 0.4, textured((120, 160), 5) * 0.4 + 50
    for L in (night, night, day, day):
        carry.step(L, lambda: (ab, None))
    assert carry.shots == 2


def test_bad_network_every_is_refused(tmp_path):
    with pytest.raises(ValueError, match="network_every"):
        ColourCarry(0)
    with pytest.raises(VideoError, match="not a readable video"):
        (tmp_path / "text.mp4").write_text("not a film")
        colorit.colorize_video(tmp_path / "text.mp4", tmp_path / "out.mp4")


def test_frames_per_second_is_reported(tmp_path, default_model):
    source = write_film(tmp_path / "in.mp4", greyed(pan_frames("chelsea", 5)), rate=RATE, audio=None)
    result = colorit.colorize_video(source, tmp_path / "out.mp4", model=default_model, network_every=2)
    assert result.frames == 5 and result.network_frames == 3 and result.frames_per_second > 0
    assert Image.fromarray(read_frames(result.path)[0]).size == (160, 120)
