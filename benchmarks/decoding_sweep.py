"""Choose how a trained model decodes, and which of several trained runs ships, by a rule fixed in advance
(before the photo-library runs were evaluated): export each checkpoint at every annealed-mean
temperature, hue-lobe softness (0: the annealed mean itself; see colorit/train/model_default.py) and
share of the class rebalancing undone at decoding (0: the distribution as trained), give each export a
card per grey-where-unsure strength and working size, evaluate all of them on photo-val, each at its
card's working size, and keep the variant with the highest hue-family recall among those that clearly do
no harm per pixel (PSNR at least grey's + 1 dB and CIEDE2000 at least 1 below grey's: issue 19's
targets); without one, the highest recall among those whose PSNR is at least grey's (the rule that picks
checkpoints, colorit.train.train.selection_score); without one either, the highest PSNR. With --must-beat
NAME (a --compare row, the shipped model), only the variants at least as good as that row on every metric
of the table with a better side (colorit.metrics.BETTER_WHEN) count, as a retrained model ships only
where its card improves; without one, that row stays the choice.

Usage: python benchmarks/decoding_sweep.py NAME=CHECKPOINT [NAME=CHECKPOINT ...] --data CORPUS
       [--compare NAME=ONNX ...]   (rows shown beside the variants but never chosen, e.g. the shipped model)
       [--must-beat NAME]
Variants are named NAME-T<temperature>[-lobe<softness>][-undo<share>]-g<strength>[-ws<size>] (no -ws:
the export's default working size). Needs the training extra (export).
Results: benchmarks/results/decoding_sweep.json and .md (--out); the chosen variant's files are in
--models (NAME-T..-g...onnx/.json), ready to copy into colorit/models.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from colorit.evaluate import GREY_BASELINE, evaluate_folder, model_of_file
from colorit.metrics import BETTER_WHEN, at_least_as_good
from colorit.session import DEFAULT_RENDER_SIZE
from colorit.train.export import export

RESULTS = Path(__file__).resolve().parent / "results"
TEMPERATURES = (0.38, 0.6, 1.0)
STRENGTHS = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0)
LOBE_SOFTNESSES = (0.0,)
REBALANCE_UNDOS = (0.0,)
RENDER_SIZES = (DEFAULT_RENDER_SIZE,)
METRICS = ("psnr", "ciede2000", "auc", "saturated_auc", "hue_recall", "grey_share", "colourfulness_ratio")


def export_variants(
    runs: dict[str, Path],
    models: Path,
    temperatures: Sequence[float],
    strengths: Sequence[float],
    lobe_softnesses: Sequence[float] = LOBE_SOFTNESSES,
    rebalance_undos: Sequence[float] = REBALANCE_UNDOS,
    render_sizes: Sequence[int] = RENDER_SIZES,
) -> dict[str, Path]:
    """variant name -> .onnx path: one ONNX export per (run, temperature, lobe softness, rebalance undo); the
    strength and the working size live in the card."""
    variants = {}
    for run, checkpoint in runs.items():
        for temperature, softness, undo in itertools.product(temperatures, lobe_softnesses, rebalance_undos):
            base = (
                f"{run}-T{temperature:g}"
                + (f"-lobe{softness:g}" if softness else "")
                + (f"-undo{undo:g}" if undo else "")
            )
            export(
                checkpoint,
                base,
                models,
                temperature=temperature,
                unsure_grey_strength=0.0,
                hue_lobe_softness=softness,
                rebalance_undo=undo,
            )
            card = json.loads((models / f"{base}.json").read_text())
            for strength, size in itertools.product(strengths, render_sizes):
                name = f"{base}-g{strength:g}" + (f"-ws{size}" if size != DEFAULT_RENDER_SIZE else "")
                shutil.copyfile(models / f"{base}.onnx", models / f"{name}.onnx")
                (models / f"{name}.json").write_text(
                    json.dumps(card | {"name": name, "unsure_grey_strength": strength, "render_size": size}, indent=2)
                    + "\n"
                )
                variants[name] = models / f"{name}.onnx"
    return variants


# "Clearly no harm" (the rule above): how far past grey a variant must be on PSNR (dB) and CIEDE2000.
NO_HARM_PSNR_MARGIN = 1.0
NO_HARM_CIEDE2000_MARGIN = 1.0


def choose(rows: list[dict], variants: dict[str, Path], must_beat: str | None = None) -> dict:
    """The rule in the module docstring, over the exported variants."""
    grey = next(row for row in rows if row["model"] == GREY_BASELINE)
    candidates = [row for row in rows if row["model"] in variants]
    if must_beat:
        reference = next(row for row in rows if row["model"] == must_beat)
        candidates = [
            row for row in candidates if all(at_least_as_good(key, row[key], reference[key]) for key in BETTER_WHEN)
        ]
        if not candidates:
            return reference
    clear = [
        row
        for row in candidates
        if row["psnr"] >= grey["psnr"] + NO_HARM_PSNR_MARGIN
        and row["ciede2000"] <= grey["ciede2000"] - NO_HARM_CIEDE2000_MARGIN
    ]
    safe = clear or [row for row in candidates if row["psnr"] >= grey["psnr"]]
    if safe:
        return max(safe, key=lambda row: row["hue_recall"])
    return max(candidates, key=lambda row: row["psnr"])


def evaluate_on_cpu(job: tuple[int, Path, list[str]]) -> dict:
    """evaluate_folder in a process held to one CPU (so ONNX Runtime and the metrics take one thread)."""
    cpu, data, models = job
    os.sched_setaffinity(0, {cpu})
    return evaluate_folder(data, models, progress=False)


def evaluate_sharded(data: Path, models: list[str], workers: int) -> dict:
    """evaluate_folder over the models, split among worker processes, one per CPU: on a 2-core machine two
    single-threaded evaluations finish sooner than one with two threads. The reports' tables are joined,
    grey once."""
    if workers <= 1:
        return evaluate_folder(data, models, progress=False)
    cpus = sorted(os.sched_getaffinity(0))
    jobs = [(cpus[i % len(cpus)], data, models[i::workers]) for i in range(workers)]
    with ProcessPoolExecutor(workers) as pool:
        reports = list(pool.map(evaluate_on_cpu, jobs))
    joined = reports[0]
    for report in reports[1:]:
        joined["table"] += [row for row in report["table"] if row["model"] != GREY_BASELINE]
        joined["model_files"] |= report["model_files"]
    return joined


def markdown(rows: list[dict], chosen: str) -> str:
    lines = [
        "| variant | PSNR | CIEDE2000 | AuC | sat AuC | hue recall % | left grey % | CF ratio |",
        "|" + "---|" * 8,
    ]
    for row in rows:
        mark = " (chosen)" if row["model"] == chosen else ""
        lines.append(
            f"| {row['model']}{mark} | {row['psnr']:.2f} | {row['ciede2000']:.2f} | {row['auc']:.2f} "
            f"| {row['saturated_auc']:.2f} | {row['hue_recall']:.1f} | {row['grey_share']:.1f} "
            f"| {row['colourfulness_ratio']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", metavar="NAME=CHECKPOINT")
    parser.add_argument("--data", type=Path, required=True, help="photo validation folder (e.g. CORPUS/photo-val)")
    parser.add_argument("--compare", nargs="*", default=[], metavar="NAME=ONNX", help="rows to show, not to choose")
    parser.add_argument("--must-beat", metavar="NAME", help="a --compare row every candidate must match or beat")
    parser.add_argument("--models", type=Path, default=Path(".devdata/decoding-models"))
    # Fewer values make a sweep over hundreds of photos affordable on a 2-core machine.
    parser.add_argument("--temperatures", type=float, nargs="+", default=TEMPERATURES)
    parser.add_argument("--strengths", type=float, nargs="+", default=STRENGTHS)
    parser.add_argument("--lobe-softnesses", type=float, nargs="+", default=LOBE_SOFTNESSES)
    parser.add_argument("--rebalance-undos", type=float, nargs="+", default=REBALANCE_UNDOS)
    parser.add_argument("--render-sizes", type=int, nargs="+", default=RENDER_SIZES, help="working sizes (px)")
    parser.add_argument("--workers", type=int, default=1, help="evaluating processes")
    parser.add_argument("--out", type=Path, default=RESULTS / "decoding_sweep.json")
    args = parser.parse_args()
    runs = {name: Path(path) for name, _, path in (run.partition("=") for run in args.runs)}
    variants = export_variants(
        runs,
        args.models,
        args.temperatures,
        args.strengths,
        args.lobe_softnesses,
        args.rebalance_undos,
        args.render_sizes,
    )
    compared = [path for _, _, path in (entry.partition("=") for entry in args.compare)]
    models = [str(path) for path in variants.values()] + compared
    report = evaluate_sharded(args.data, models, args.workers)
    rows = [{key: row[key] for key in ("model", *METRICS)} for row in report["table"]]
    for entry in args.compare:  # rows are named by their card: name them as given
        name, _, path = entry.partition("=")
        card_name = model_of_file(report, path)
        next(row for row in rows if row["model"] == card_name)["model"] = name
    chosen = choose(rows, variants, args.must_beat)
    result = {
        "checkpoints": {name: str(path) for name, path in runs.items()},
        "rule": __doc__.split("\n\n")[0].replace("\n", " "),
        "chosen": chosen["model"],
        "temperatures": args.temperatures,
        "strengths": args.strengths,
        "lobe_softnesses": args.lobe_softnesses,
        "rebalance_undos": args.rebalance_undos,
        "render_sizes": args.render_sizes,
        "must_beat": args.must_beat,
        "rows": rows,
        # each variant at its card's working size; a --compare row at its own card's
        "evaluation": {"data": str(args.data), "eval_size": report["eval_size"], "render_size": "each card's"},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(rows, chosen["model"]))
    print(markdown(rows, chosen["model"]))
    if chosen["model"] in variants:
        print(f"chosen: {chosen['model']} ({args.models / chosen['model']}.onnx)")
    else:
        print(f"chosen: {chosen['model']} (no variant is at least as good on every metric: keep it)")


if __name__ == "__main__":
    main()
