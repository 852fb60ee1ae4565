"""How colourful the bundled models make photos whose subjects are grey in life: scikit-image's moon,
clock, text (chalk on a slate), coins and camera (a cameraman on a lawn). Hasler and Suesstrunk's
colourfulness: below 20 is "slightly colourful"; a colorizer that paints the moon red has learnt that
everything is colourful. The README's targets table reads the result.

    python benchmarks/grey_subjects.py   # writes benchmarks/results/grey_subjects.json
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from skimage import data

from colorit import colorize
from colorit.evaluate import bundled_model_names
from colorit.metrics import colourfulness

RESULTS = Path(__file__).resolve().parent / "results"
SUBJECTS = ("moon", "clock", "text", "coins", "camera")
QUIET = 20.0  # the target: at most "slightly colourful"


def main() -> None:
    report = {
        "target": QUIET,
        "colourfulness": {
            model: {
                name: round(colourfulness(np.asarray(colorize(getattr(data, name)(), model=model))), 2)
                for name in SUBJECTS
            }
            for model in bundled_model_names()
        },
    }
    (RESULTS / "grey_subjects.json").write_text(json.dumps(report, indent=2) + "\n")
    for model, values in report["colourfulness"].items():
        print(model, values)


if __name__ == "__main__":
    main()
