"""`colorit colorize` on films and on folders mixing photos and films, in a real subprocess: layout,
formats, bad films (one line each, the batch goes on), and Ctrl-C (no partial output)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import av
from conftest import REPO, grey_of, photo_rgb, run_colorit
from PIL import Image
from video_clips import _write_tone, audio_packets, greyed, pan_frames, video_stream_facts, write_film


def failure_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("colorit: ")]


def files_below(folder) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


def test_folder_mixing_photos_and_films_keeps_its_layout(tmp_path):
    source = tmp_path / "archive"
    (source / "holiday").mkdir(parents=True)
    Image.fromarray(grey_of(photo_rgb("chelsea"))).save(source / "cat.jpg")
    write_film(source / "holiday" / "beach.mov", greyed(pan_frames("coffee", 6)))
    write_film(source / "holiday" / "garden.mkv", greyed(pan_frames("astronaut", 6)), audio="libopus")
    result = run_colorit("colorize", str(source), "-o", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert files_below(tmp_path / "out") == ["cat.jpg", "holiday/beach.mp4", "holiday/garden.mp4"]
    assert "colorized 3, skipped 0, failed 0" in result.stdout
    beach = tmp_path / "out" / "holiday" / "beach.mp4"
    assert video_stream_facts(beach)["frames"] == 6
    assert audio_packets(beach) == audio_packets(source / "holiday" / "beach.mov")

    again = run_colorit("colorize", str(source), "-o", str(tmp_path / "out"))
    assert again.returncode == 0 and "colorized 0, skipped 3" in again.stdout

    # A film format applies to the films, and the photos keep theirs.
    mkv = run_colorit("colorize", str(source), "-o", str(tmp_path / "mkv"), "--format", "mkv")
    assert mkv.returncode == 0, mkv.stderr
    assert files_below(tmp_path / "mkv") == ["cat.jpg", "holiday/beach.mkv", "holiday/garden.mkv"]


def write_empty_film(path) -> None:
    """A Matroska file with a video stream and a sound track but not one video frame."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 160, 120, "yuv420p"
        _write_tone(container, container.add_stream("aac", rate=48000, layout="mono"), 0.5)


def write_sound_only(path) -> None:
    with av.open(str(path), "w") as container:
        _write_tone(container, container.add_stream("aac", rate=48000, layout="mono"), 0.5)


def test_bad_films_fail_one_line_each_and_the_batch_goes_on(tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    whole = write_film(source / "good.mkv", greyed(pan_frames("chelsea", 30)), audio="libopus")
    (source / "halved.mkv").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    (source / "notes.mp4").write_text("not a film at all\n")
    mp4 = write_film(tmp_path / "whole.mp4", greyed(pan_frames("coffee", 10)))
    (source / "cut.mp4").write_bytes(mp4.read_bytes()[: mp4.stat().st_size * 2 // 3])
    write_sound_only(source / "sound.mp4")
    write_empty_film(source / "empty.mkv")
    Image.fromarray(grey_of(photo_rgb("coffee"))).save(source / "photo.png")
    result = run_colorit("colorize", str(source), "-o", str(tmp_path / "out"))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = failure_lines(result.stderr)
    reasons = {
        "halved.mkv": "truncated",
        "notes.mp4": "not a readable video",
        "cut.mp4": "not a readable video",
        "sound.mp4": "no video stream",
        "empty.mkv": "holds no frames",
    }
    assert len(lines) == len(reasons), lines
    for name, reason in reasons.items():
        assert any(str(source / name) in line and reason in line for line in lines), (name, lines)
    assert "colorized 2, skipped 0, failed 5" in result.stdout
    assert files_below(tmp_path / "out") == ["good.mp4", "photo.png"]  # and no half-written file


def test_ctrl_c_leaves_no_partial_film(tmp_path):
    film = write_film(tmp_path / "long.mp4", greyed(pan_frames("chelsea", 400, size=(320, 240), step=1)))
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    process = subprocess.Popen(
        [sys.executable, "-m", "colorit", "colorize", str(film), "-o", str(out)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not any(path.stat().st_size > 0 for path in out.glob(".*.colorit-tmp")):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the film was never being written"
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert files_below(out) == []


def test_hints_file_applies_to_one_film(tmp_path):
    film = write_film(tmp_path / "film.mp4", greyed(pan_frames("chelsea", 6)), audio=None)
    hints = tmp_path / "hints.json"
    hints.write_text('[{"x": 80, "y": 60, "color": "#2050d0", "radius": 6}]')
    result = run_colorit("colorize", str(film), "-o", str(tmp_path / "out"), "--hints", str(hints), "--format", "ffv1")
    assert result.returncode == 0, result.stderr
    from video_clips import read_frames

    from colorit.color import rgb_to_lab

    frames = read_frames(tmp_path / "out" / "film.mkv")
    assert len(frames) == 6
    assert all(rgb_to_lab(frame[56:65, 76:85])[..., 2].mean() < -15 for frame in frames)
