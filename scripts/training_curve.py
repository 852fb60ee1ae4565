"""A training run's curve: what the in-training validation measured on photo-val at every checkpoint
(PSNR over grey's, hue-family recall, colourfulness, and the network alone with 10 simulated hints),
against training time, with the step the selection rule chose marked.

    python scripts/training_curve.py runs/v3-default --name default

Reads RUN/last.pt (the history of every validation) and RUN/best.pt (the chosen step; --chosen names
another checkpoint of the run where the decoding sweep shipped that one, and an averaged checkpoint,
scripts/average_checkpoints.py, is marked at each checkpoint it is the mean of); writes
benchmarks/results/training_NAME.json and docs/training_NAME.png. Needs the training extra (torch).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

from colorit.train.train import read_checkpoint  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
KEPT = (
    "step",
    "minutes",
    "epoch",
    "train_loss",
    "photo_psnr",
    "photo_grey_psnr",
    "photo_hue_recall",
    "photo_chroma_ratio",
    "photo_saturated_auc",
    "photo_hints10_psnr",
    "photo_hints10_hue_recall",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a `colorit train --out` folder")
    parser.add_argument("--name", required=True, help="names the outputs: training_NAME.json and .png")
    parser.add_argument("--chosen", type=Path, help="the checkpoint shipped (default: RUN/best.pt)")
    args = parser.parse_args()
    last = read_checkpoint(args.run / "last.pt")
    chosen_state = read_checkpoint(args.chosen or args.run / "best.pt")
    averaged_from = chosen_state.get("averaged_from")
    origins = averaged_from or [{"step": chosen_state["step"], "minutes": chosen_state["elapsed"] / 60}]
    steps = [origin["step"] for origin in origins]
    history = [{key: record[key] for key in KEPT if key in record} for record in last["history"]]
    result = {
        "run": args.run.name,
        "config": last["config"],
        "hardware": last.get("hardware"),
        "chosen_step": chosen_state["step"],
        "averaged_from_steps": steps if averaged_from else None,
        "history": history,
    }
    out = REPO / "benchmarks" / "results" / f"training_{args.name}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")

    hours = [record["minutes"] / 60 for record in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    if "photo_grey_psnr" in history[0]:
        left.plot(hours, [r["photo_psnr"] - r["photo_grey_psnr"] for r in history], label="automatic")
        if "photo_hints10_psnr" in history[0]:
            left.plot(
                hours,
                [r["photo_hints10_psnr"] - r["photo_grey_psnr"] for r in history],
                label="10 hints, network alone",
            )
        left.axhline(0, color="grey", lw=0.8)
        right.plot(hours, [r["photo_hue_recall"] for r in history], label="hue-family recall %")
        right.plot(hours, [100 * r["photo_chroma_ratio"] for r in history], label="chroma, % of the truth's")
    legend = f"{'averaged' if averaged_from else 'chosen'} (step {', '.join(map(str, steps))})"
    for axis, title in ((left, "photo-val PSNR over grey's (dB)"), (right, "photo-val colour")):
        for number, origin in enumerate(origins):  # one legend entry for all the marks
            axis.axvline(origin["minutes"] / 60, color="black", ls=":", lw=0.8, label=None if number else legend)
        axis.set_xlabel("training hours")
        axis.set_title(title, fontsize=10)
        axis.legend(fontsize=8)
    fig.tight_layout()
    picture = REPO / "docs" / f"training_{args.name}.png"
    fig.savefig(picture, dpi=110)
    print(f"wrote {picture}")


if __name__ == "__main__":
    main()
