"""Choose how far a hint's pull reaches (colorit.hints.SPREAD_FRACTION, the spatial sigma), how alike
in predicted colour a pixel must be to take it (PREDICTED_AB_SIGMA) and the summed hint weight at
which a pixel takes the whole pull (FULL_PULL_WEIGHT), by a rule fixed in advance: among the settings
where a hint stays local (a red hint in the left third of each bundled sample moves the right third by
less than MAX_FAR_CHANGE ab units on average beyond what the network alone does with it), the highest
PSNR of the bundled default with 10 simulated hints per image on the photo library's photo-val, the
split every choice is made on since the photo library. The package photo-val is measured beside it, never to choose.

Simulated hints carry the true colour, so spreading each one over the whole image always scores
better on PSNR; a user's hint says "this thing is red", not "everything is", hence the locality
bound, which tests/test_pipeline.py checks on the chelsea photo too.

The network's output does not depend on these settings, so each image's is computed once (with and
without its hints) and every setting reuses it: the sweep costs the propagation and the scoring.

Usage: python benchmarks/hint_propagation_sweep.py --data CORPUS
Results: benchmarks/results/hint_propagation_sweep.json and .md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

import colorit.hints
from colorit import metrics
from colorit.color import luminance_L, rgb_to_lab
from colorit.errors import ColoritError
from colorit.evaluate import DEFAULT_EVAL_SIZE, hint_rng, load_ground_truth, simulated_hints_for
from colorit.io import find_images
from colorit.pipeline import colorize_array
from colorit.session import load_model

RESULTS = Path(__file__).resolve().parent / "results"
SAMPLES = Path(colorit.__file__).parent / "samples"
SPREAD_FRACTIONS = (0.3, 0.2, 0.15)
PREDICTED_AB_SIGMAS = (10.0, 20.0)
FULL_PULL_WEIGHTS = (1.0, 0.3, 0.1, 0.03)
MAX_FAR_CHANGE = 6.0  # ab units, mean over the right third
HINTS = 10
SPLITS = ("photo-val/photo-library", "photo-val/package")  # chosen by the first
SIDE = 256


class LocalityProbe:
    """One bundled sample, a red hint at a mid-grey point of its left third, and the right third of its
    colour with that hint left to the network alone (which no propagation setting changes, so it is
    computed once). The network's hint attention may carry a hint to far places that look alike, by
    design; what the bound limits is how much further the propagation carries it."""

    def __init__(self, session, grey: np.ndarray):
        L = luminance_L(grey)
        height, width = L.shape
        margin = height // 8
        left = L[margin : height - margin, margin : width // 3]
        y, x = np.unravel_index(np.abs(left - 50).argmin(), left.shape)
        self.session, self.grey, self.far_from = session, grey, 2 * width // 3
        self.hint = {"x": x + margin + 0.5, "y": y + margin + 0.5, "color": "#e01010", "radius": 3}
        network_alone = colorize_array(grey, session, hints=[self.hint], hint_propagation=False)
        self.network_alone = rgb_to_lab(network_alone)[:, self.far_from :, 1:]

    def far_change(self) -> float:
        """Mean ab change the propagation adds in the right third, with the current settings."""
        hinted = rgb_to_lab(colorize_array(self.grey, self.session, hints=[self.hint]))[:, self.far_from :, 1:]
        return float(np.abs(hinted - self.network_alone).sum(axis=-1).mean())


def remember_predictions(session) -> None:
    """Make the session answer a repeated (L, hints) input from memory: the network's output does not
    depend on the propagation settings, so every setting after the first costs no network run. The session
    is load_model's cached one, so every later load_model("default") in this process remembers too."""
    predict, memory = session.predict, {}

    def remembered(L_work: np.ndarray, hint_channels: np.ndarray | None = None):
        key = (L_work.shape, L_work.tobytes(), None if hint_channels is None else hint_channels.tobytes())
        if key not in memory:
            memory[key] = predict(L_work, hint_channels)
        ab, confidence = memory[key]
        return ab.copy(), None if confidence is None else confidence.copy()

    session.predict = remembered


class HintedPhotos:
    """A folder's photos at the evaluation size with HINTS simulated hints each, the same images, hints and
    PSNR as `colorit evaluate --hints` gives (seed 0), scored by PSNR alone: what the rule chooses by."""

    def __init__(self, folder: Path, session):
        self.session, self.truths, self.hints = session, [], []
        # Hints are drawn by each file's index among all found, as colorit evaluate does, so a file that
        # cannot be evaluated (skipped there too) leaves the others' hints unchanged.
        for index, path in enumerate(find_images(folder)):
            try:
                truth = load_ground_truth(path, folder, DEFAULT_EVAL_SIZE)
            except ColoritError as error:
                print(f"hint_propagation_sweep: skipped {error}", file=sys.stderr)
                continue
            self.truths.append(truth)
            self.hints.append(simulated_hints_for(truth, HINTS, hint_rng(0, index), session.default_render_size))
        self.unhinted = self.mean_psnr(hinted=False)

    def mean_psnr(self, hinted: bool = True) -> float:
        return float(
            np.mean(
                [
                    metrics.psnr(colorize_array(truth.rgb, self.session, hints=hints if hinted else None), truth.rgb)
                    for truth, hints in zip(self.truths, self.hints)
                ]
            )
        )


SETTINGS = ("spread_fraction", "predicted_ab_sigma", "full_pull_weight")


def measure(setting: dict, probes: list[LocalityProbe], splits: dict[str, HintedPhotos]) -> dict:
    colorit.hints.SPREAD_FRACTION = setting["spread_fraction"]
    colorit.hints.PREDICTED_AB_SIGMA = setting["predicted_ab_sigma"]
    colorit.hints.FULL_PULL_WEIGHT = setting["full_pull_weight"]
    row = setting | {"far_change": max(probe.far_change() for probe in probes)}
    if row["far_change"] < MAX_FAR_CHANGE:  # the others cannot be chosen: spare the evaluation
        row |= {split: (photos.unhinted, photos.mean_psnr()) for split, photos in splits.items()}
    print(json.dumps(row), flush=True)
    return row


def markdown(rows: list[dict], chosen: dict) -> str:
    header = " | ".join(f"{split} PSNR, {HINTS} hints | gain dB" for split in SPLITS)
    lines = [
        f"| spread | predicted-ab sigma | full-pull weight | far change (ab) | {header} |",
        "|" + "---|" * (4 + 2 * len(SPLITS)),
    ]
    for row in rows:
        mark = " (chosen)" if row is chosen else ""
        scores = " | ".join(
            f"{row[split][1]:.2f} | {row[split][1] - row[split][0]:+.2f}" if split in row else "- | -"
            for split in SPLITS
        )
        lines.append(
            f"| {row['spread_fraction']:g} | {row['predicted_ab_sigma']:g} | {row['full_pull_weight']:g}{mark} "
            f"| {row['far_change']:.2f} | {scores} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="corpus with photo-val/photo-library and package")
    parser.add_argument("--out", type=Path, default=RESULTS / "hint_propagation_sweep.json")
    args = parser.parse_args()
    session = load_model("default")
    remember_predictions(session)
    probes = []
    for path in sorted(SAMPLES.glob("*.jpg")):
        with Image.open(path) as image:
            image.thumbnail((SIDE, SIDE))
            probes.append(LocalityProbe(session, np.asarray(image.convert("L"))))
    splits = {split: HintedPhotos(args.data / split, session) for split in SPLITS}
    grid = itertools.product(SPREAD_FRACTIONS, PREDICTED_AB_SIGMAS, FULL_PULL_WEIGHTS)
    rows = [measure(dict(zip(SETTINGS, values)), probes, splits) for values in grid]
    chosen = max((row for row in rows if SPLITS[0] in row), key=lambda row: row[SPLITS[0]][1])
    result = {
        "rule": " ".join(__doc__.split("\n\n")[0].split()),
        "hints": HINTS,
        "chosen": {key: chosen[key] for key in SETTINGS},
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(rows, chosen))
    print(markdown(rows, chosen))
    print(", ".join(f"{key.upper()} = {chosen[key]:g}" for key in SETTINGS))


if __name__ == "__main__":
    main()
