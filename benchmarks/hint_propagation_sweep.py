"""Choose how far a hint's pull reaches (colorit.hints.SPREAD_FRACTION, the spatial sigma) and the
summed hint weight at which a pixel takes the whole pull (FULL_PULL_WEIGHT), by a rule fixed in
advance: among the settings where a hint stays local (a red hint in the left third of each bundled
sample moves the right third by less than MAX_FAR_CHANGE ab units on average), the highest PSNR of
the bundled default with 10 simulated hints per image on the val split. photo-val is measured beside
it, to show whether the choice carries over to photos, never to choose.

Simulated hints carry the true colour, so spreading each one over the whole image always scores
better on PSNR; a user's hint says "this thing is red", not "everything is", hence the locality
bound, which tests/test_pipeline.py checks on the chelsea photo too.

Usage: python benchmarks/hint_propagation_sweep.py --data CORPUS
Results: benchmarks/results/hint_propagation_sweep.json and .md.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np
from PIL import Image

import colorit.hints
from colorit.color import luminance_L, rgb_to_lab
from colorit.evaluate import evaluate_folder
from colorit.pipeline import colorize_array
from colorit.session import load_model

RESULTS = Path(__file__).resolve().parent / "results"
SAMPLES = Path(colorit.__file__).parent / "samples"
SPREAD_FRACTIONS = (0.3, 0.2, 0.15, 0.1)  # 0.3 and 1: the propagation before this sweep
FULL_PULL_WEIGHTS = (1.0, 0.3, 0.1, 0.03)
MAX_FAR_CHANGE = 6.0  # ab units, mean over the right third
HINTS = 10
SPLITS = ("val", "photo-val")
SIDE = 256


class LocalityProbe:
    """One bundled sample, a red hint at a mid-grey point of its left third, and the right third of
    its colour without hints (which no propagation setting changes, so it is computed once)."""

    def __init__(self, session, grey: np.ndarray):
        L = luminance_L(grey)
        height, width = L.shape
        margin = height // 8
        left = L[margin : height - margin, margin : width // 3]
        y, x = np.unravel_index(np.abs(left - 50).argmin(), left.shape)
        self.session, self.grey, self.far_from = session, grey, 2 * width // 3
        self.hint = {"x": x + margin + 0.5, "y": y + margin + 0.5, "color": "#e01010", "radius": 3}
        self.plain = rgb_to_lab(colorize_array(grey, session))[:, self.far_from :, 1:]

    def far_change(self) -> float:
        """Mean ab change in the right third from the hint, with the current propagation settings."""
        hinted = rgb_to_lab(colorize_array(self.grey, self.session, hints=[self.hint]))[:, self.far_from :, 1:]
        return float(np.abs(hinted - self.plain).sum(axis=-1).mean())


def psnr_with_hints(data: Path) -> tuple[float, float]:
    """PSNR of the default model with no hints and with HINTS hints (network + propagation)."""
    report = evaluate_folder(data, ["default"], hint_counts=[HINTS], progress=False)
    by_count = {row["hints"]: row["psnr"] for row in report["hint_curve"] if row["model"] == "default"}
    return by_count[0], by_count[HINTS]


def measure(spread: float, full_pull_weight: float, probes: list[LocalityProbe], data: Path) -> dict:
    colorit.hints.SPREAD_FRACTION, colorit.hints.FULL_PULL_WEIGHT = spread, full_pull_weight
    row: dict = {
        "spread_fraction": spread,
        "full_pull_weight": full_pull_weight,
        "far_change": max(probe.far_change() for probe in probes),
    }
    if row["far_change"] < MAX_FAR_CHANGE:  # the others cannot be chosen: spare the evaluation
        row |= {split: psnr_with_hints(data / split) for split in SPLITS}
    return row


def markdown(rows: list[dict], chosen: dict) -> str:
    lines = [
        f"| spread | full-pull weight | far change (ab) | val PSNR, {HINTS} hints | val gain dB "
        f"| photo-val PSNR, {HINTS} hints | photo-val gain dB |",
        "|" + "---|" * 7,
    ]
    for row in rows:
        mark = " (chosen)" if row is chosen else ""
        scores = " | ".join(
            f"{row[split][1]:.2f} | {row[split][1] - row[split][0]:+.2f}" if split in row else "- | -"
            for split in SPLITS
        )
        lines.append(
            f"| {row['spread_fraction']:g} | {row['full_pull_weight']:g}{mark} | {row['far_change']:.2f} | {scores} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="corpus with val/ and photo-val/")
    parser.add_argument("--out", type=Path, default=RESULTS / "hint_propagation_sweep.json")
    args = parser.parse_args()
    session = load_model("default")
    probes = []
    for path in sorted(SAMPLES.glob("*.jpg")):
        with Image.open(path) as image:
            image.thumbnail((SIDE, SIDE))
            probes.append(LocalityProbe(session, np.asarray(image.convert("L"))))
    rows = [
        measure(spread, weight, probes, args.data)
        for spread, weight in itertools.product(SPREAD_FRACTIONS, FULL_PULL_WEIGHTS)
    ]
    chosen = max((row for row in rows if "val" in row), key=lambda row: row["val"][1])
    result = {
        "rule": " ".join(__doc__.split("\n\n")[0].split()),
        "hints": HINTS,
        "chosen": {key: chosen[key] for key in ("spread_fraction", "full_pull_weight")},
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(rows, chosen))
    print(markdown(rows, chosen))
    print(f"chosen: SPREAD_FRACTION = {chosen['spread_fraction']:g}, FULL_PULL_WEIGHT = {chosen['full_pull_weight']:g}")


if __name__ == "__main__":
    main()
