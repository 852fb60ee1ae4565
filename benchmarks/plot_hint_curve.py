"""Plot PSNR against the number of simulated hints from a `colorit evaluate --hints ... --json FILE` report.

    colorit evaluate --data corpus/photo-val --hints 0,1,2,5,10,20,50 --json hints.json
    colorit evaluate --data corpus/photo-val --hints 0,1,2,5,10,20,50 --no-hint-propagation --json network.json
    python benchmarks/plot_hint_curve.py hints.json --network-only network.json

Draws each hint-accepting model's curve (with the optional second report: also the network alone,
without the bilateral propagation), the grey baseline and, for reference, the curve Zhang et
al. 2017 published for their own network on ImageNet into docs/hint_curve.png, and writes the
numbers (with each model's gain over no hints) to benchmarks/results/hint_curve.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

from colorit.evaluate import GREY_BASELINE, write_json  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
# Zhang et al. 2017, "Real-Time User-Guided Image Colorization with Learned Deep Priors": PSNR of
# their network on 1000 ImageNet validation images with N simulated points.
ZHANG_2017_IMAGENET = {
    "label": "Zhang et al. 2017: their network, ImageNet (published)",
    "hints": [0, 2, 5, 10, 50],
    "psnr": [24.4, 26.2, 27.4, 28.4, 30.4],
}


NETWORK_ALONE = " (network alone)"


def curves(report: dict, suffix: str = "") -> dict[str, dict]:
    """Per model (its name + suffix): hint counts in rising order with PSNR, CIEDE2000 and AuC at each."""
    by_model: dict[str, dict] = {}
    for row in sorted(report["hint_curve"], key=lambda row: row["hints"]):
        if suffix and row["model"] == GREY_BASELINE:
            continue
        curve = by_model.setdefault(row["model"] + suffix, {"hints": [], "psnr": [], "ciede2000": [], "auc": []})
        for key in curve:
            curve[key].append(row[key])
    return by_model


def gains_over_no_hints(curve: dict) -> dict[str, float]:
    """PSNR gain in dB at each hint count over the same model without hints."""
    without = curve["psnr"][curve["hints"].index(0)]
    return {str(count): psnr - without for count, psnr in zip(curve["hints"], curve["psnr"])}


def plot(by_model: dict[str, dict], report: dict, png_path: Path) -> None:
    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=120)
    for model, curve in by_model.items():
        if model != GREY_BASELINE and len(curve["hints"]) > 1:
            style = "--" if model.endswith(NETWORK_ALONE) else "-"
            axes.plot(curve["hints"], curve["psnr"], marker="o", linestyle=style, label=f"{model} (this project)")
    grey_psnr = by_model[GREY_BASELINE]["psnr"][0]
    axes.axhline(grey_psnr, color="grey", linestyle=":", label=f"grey baseline ({grey_psnr:.1f} dB)")
    axes.plot(
        ZHANG_2017_IMAGENET["hints"],
        ZHANG_2017_IMAGENET["psnr"],
        color="black",
        linestyle="--",
        marker="s",
        alpha=0.6,
        label=ZHANG_2017_IMAGENET["label"],
    )
    # symlog keeps N = 0 on the axis while spreading 1..50.
    axes.set_xscale("symlog", linthresh=1)
    ticks = sorted(
        {count for curve in by_model.values() for count in curve["hints"]} | set(ZHANG_2017_IMAGENET["hints"])
    )
    axes.set_xticks(ticks, [str(tick) for tick in ticks])
    axes.set_xlabel("simulated hint points per image")
    axes.set_ylabel("PSNR (dB, RGB)")
    axes.set_title(f"Hints vs PSNR: {report['data_name']}, {report['images']} images, {report['eval_size']} px")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    png_path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(png_path)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="JSON written by colorit evaluate --hints ... --json FILE")
    parser.add_argument(
        "--network-only",
        type=Path,
        metavar="REPORT",
        help="the same evaluation with --no-hint-propagation: the network's own use of the hints",
    )
    parser.add_argument("--png", type=Path, default=REPO / "docs" / "hint_curve.png")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "hint_curve.json")
    args = parser.parse_args(argv)
    reports = {}
    for path in filter(None, [args.report, args.network_only]):
        try:
            reports[path] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            print(f"plot_hint_curve: {path}: cannot read report ({exc})", file=sys.stderr)
            return 1
        if "hint_curve" not in reports[path]:
            print(f"plot_hint_curve: {path}: no hint curve (run colorit evaluate with --hints)", file=sys.stderr)
            return 1
    report = reports[args.report]
    by_model = curves(report)
    if args.network_only:
        by_model.update(curves(reports[args.network_only], NETWORK_ALONE))
    plot(by_model, report, args.png)
    results = {
        "source": args.report.name,
        **{key: report.get(key) for key in ("data_name", "images", "eval_size", "render_size", "seed")},
        "curves": {
            model: {**curve, "psnr_gain_over_no_hints": gains_over_no_hints(curve)} for model, curve in by_model.items()
        },
        "reference": ZHANG_2017_IMAGENET,
    }
    write_json(args.out, results)
    print(f"wrote {args.png} and {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
