"""The training-recipe ablation: export each trained row's selected checkpoint, add the decoding
variants of the recipe row (annealed-mean temperature, grey-where-unsure strength), evaluate them
all on the corpus's val and photo-val splits at the default working size, and write the table.

Usage: python benchmarks/ablation.py RUNS_DIR --data CORPUS [--models DIR] [--out FILE] [--extra NAME=ONNX ...]
RUNS_DIR holds one folder per row, as scripts/ablation_train.sh writes them (RUNS_DIR/ROW/best.pt).
Needs the training extra (export). Results: benchmarks/results/ablation.json and ablation.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from colorit.evaluate import GREY_BASELINE, evaluate_folder, model_of_file
from colorit.train.export import export
from colorit.train.train import VALIDATION_TEMPERATURE, VALIDATION_UNSURE_GREY, read_checkpoint

RESULTS = Path(__file__).resolve().parent / "results"
# Trained rows: folder name -> what differs from the recipe (scripts/ablation_train.sh).
TRAINED_ROWS = {
    "recipe": "recipe: encoder partly frozen (blocks 0-7 kept, 8-15 trained), BatchNorm statistics frozen, rebalancing 0.5, classification + hint weighting, cut-outs when the corpus has them",
    "frozen": "encoder and its BatchNorm statistics frozen (the recipe before the photo library)",
    "finetune": "encoder fine-tuned (0.3x lr), BatchNorm statistics updated (the previous recipe)",
    "finetune-bn-frozen": "encoder fine-tuned (0.3x lr), BatchNorm statistics frozen",
    "finetune-bn-frozen-slow": "encoder fine-tuned (0.1x lr), BatchNorm statistics frozen",
    "recipe-seed1": "the recipe with another seed (data order, crops, hints, decoder init): the noise between runs",
    "partial": "encoder partly frozen (blocks 0-7 kept, 8-15 trained), BatchNorm statistics frozen",
    "partial-weak-rebalance": "encoder partly frozen, weaker class rebalancing (mix 0.8)",
    "partial-crop-192": "encoder partly frozen, 192 px crops (fewer images in the same time)",
    "regression": "+ smooth-L1 regression term on the distribution's mean (weight 1)",
    "no-rebalance": "no class rebalancing",
    "no-cutouts": "no cut-out compositing, crops of 80-100 % of the shorter side only (less scale augmentation)",
    "no-hint-weight": "no extra loss weight around hints",
    "seed-ae": "seed autoencoder (MSE), same data and budget",
}
# Decoding variants of the recipe row: (temperature, unsure_grey_strength).
DECODING_VARIANTS = [(0.38, 0.0), (0.38, 0.1), (0.38, 0.2), (0.38, 0.5), (1.0, 0.0), (1.0, 0.2)]
# The table's splits and their folders in a corpus: val is the packages' (the photo library has none),
# photo-val the photo library's (repositories never trained on: what the recipe is chosen by).
SPLITS = {"val": "val/package", "photo-val": "photo-val/photo-library"}
METRICS = ("psnr", "ciede2000", "auc", "saturated_auc", "hue_recall", "grey_share", "colourfulness_ratio")


def export_rows(runs: Path, models: Path) -> dict[str, tuple[Path, str]]:
    """name -> (onnx path, description) for every trained row found and every decoding variant."""
    rows = {}
    for row, description in TRAINED_ROWS.items():
        checkpoint = runs / row / "best.pt"
        if not checkpoint.is_file():
            continue
        if row == "recipe":
            for temperature, strength in DECODING_VARIANTS:
                name = f"recipe-T{temperature:g}-g{strength:g}"
                export(checkpoint, name, models, temperature=temperature, unsure_grey_strength=strength)
                rows[name] = (
                    models / f"{name}.onnx",
                    f"{description}; decoding T = {temperature:g}, grey-where-unsure strength {strength:g}",
                )
        else:
            # Exported with the decoding the in-training validation measures, so that the two agree.
            export(
                checkpoint, row, models, temperature=VALIDATION_TEMPERATURE, unsure_grey_strength=VALIDATION_UNSURE_GREY
            )
            rows[row] = (models / f"{row}.onnx", description)
    return rows


def training_summary(runs: Path, row: str) -> dict:
    """The selected step and the run's curve; a run whose last.pt stayed on a GPU machine
    (scripts/pack_checkpoints.py --best-only) has its curve up to the selected step only."""
    state = read_checkpoint(runs / row / "best.pt")
    summary = {"selected_step": state["step"], "last_step": None, "minutes": None, "epochs": None}
    if (runs / row / "last.pt").is_file():
        state = read_checkpoint(runs / row / "last.pt")
        summary |= {"last_step": state["step"], "minutes": round(state["elapsed"] / 60, 1)}
        summary["epochs"] = state["history"][-1]["epoch"]
    return summary | {"history": state["history"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path)
    parser.add_argument("--data", type=Path, required=True, help="corpus from `colorit corpus build --photos ...`")
    parser.add_argument("--models", type=Path, default=Path(".devdata/ablation-models"))
    parser.add_argument("--out", type=Path, default=RESULTS / "ablation.json")
    parser.add_argument(
        "--extra",
        nargs="+",
        default=[],
        metavar="NAME=ONNX",
        help="more models to evaluate beside the rows, e.g. the previously shipped default",
    )
    args = parser.parse_args()
    rows = export_rows(args.runs, args.models)
    for extra in args.extra:
        name, _, path = extra.partition("=")
        rows[name] = (Path(path), f"{name}: {path}")
    paths = [str(path) for path, _ in rows.values()]
    splits = {split: evaluate_folder(args.data / folder, paths, progress=False) for split, folder in SPLITS.items()}
    table = []
    for name in [GREY_BASELINE, *rows]:
        entry = {"row": name, "description": rows[name][1] if name in rows else "grey (no colour)"}
        for split, report in splits.items():
            model = model_of_file(report, rows[name][0]) if name in rows else GREY_BASELINE
            summary = next(r for r in report["table"] if r["model"] == model)
            entry[split] = {key: summary.get(key) for key in METRICS}
        table.append(entry)
    trained = {row: training_summary(args.runs, row) for row in TRAINED_ROWS if (args.runs / row / "best.pt").is_file()}
    result = {
        "rows": table,
        "training": trained,
        "selection_rule": "checkpoint with the highest photo-val hue-family recall among those at or above grey's "
        "PSNR (colorit.train.train.selection_score); rows exported at T = "
        f"{VALIDATION_TEMPERATURE:g}, grey-where-unsure strength {VALIDATION_UNSURE_GREY:g}",
        "evaluation": {"eval_size": splits["val"]["eval_size"], "render_size": 384},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(table, trained))
    print(markdown(table, trained))


def markdown(table: list[dict], trained: dict) -> str:
    header = (
        "| row | val AuC | val sat AuC | photo-val PSNR | CIEDE2000 | AuC | sat AuC | hue recall % | left grey % "
        "| CF ratio | steps (selected / run) |"
    )
    lines = [header, "|" + "---|" * 11]
    for entry in table:
        v, p = entry["val"], entry["photo-val"]
        run = trained.get(entry["row"]) or (trained.get("recipe") if entry["row"].startswith("recipe") else None)
        steps = f"{run['selected_step']} / {run['last_step'] or '?'}" if run else ""

        def fmt(value, pattern="{:.2f}"):
            return "" if value is None else pattern.format(value)

        lines.append(
            f"| {entry['row']} | {fmt(v['auc'])} | {fmt(v['saturated_auc'])} | {fmt(p['psnr'])} "
            f"| {fmt(p['ciede2000'])} | {fmt(p['auc'])} | {fmt(p['saturated_auc'])} "
            f"| {fmt(p['hue_recall'], '{:.1f}')} | {fmt(p['grey_share'], '{:.1f}')} "
            f"| {fmt(p['colourfulness_ratio'])} | {steps} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
