"""Reference photos: how much they help, whether an unrelated one harms, and what they cost.

1. `colorit evaluate --reference self` on DATA (another crop of each ground truth as its reference);
2. `--reference POOL` (for each image the best matches among the pool's images);
3. an unrelated reference, the same photo for every image of DATA (scikit-image's coffee cup and
   cat: still lifes and a pet, unlike the street scenes, landscapes and people of photo-val);
4. a 1-megapixel grey JPEG end to end (decode, colorize, encode PNG) without and with one 1-megapixel
   colour JPEG as reference (read, described and matched on every call, as a one-off call does):
   medians of N runs, the two alternating.

All at the default working size. Writes benchmarks/results/reference.json (the tables, the targets of
issue 9 and whether each is met) and prints them.
Usage: python benchmarks/bench_reference.py DATA POOL [--runs N], e.g.
       python benchmarks/bench_reference.py .devdata/corpus/photo-val .devdata/corpus/val
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from colorit.api import colorize_picture  # noqa: E402
from colorit.encoding import encode_image  # noqa: E402
from colorit.evaluate import evaluate_folder, format_table  # noqa: E402
from colorit.io import cpu_count, read_image  # noqa: E402
from colorit.session import load_model  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "reference.json"
MODEL = "default"
ROWS = ("grey", MODEL, f"{MODEL} + reference")
ONE_MEGAPIXEL = (1155, 866)


def evaluate(data: Path, reference: str | Path) -> list[dict]:
    report = evaluate_folder(data, [MODEL], reference=reference, progress=False)
    return [row for row in report["table"] if row["model"] in ROWS]


def unrelated_photos(folder: Path) -> dict[str, Path]:
    from skimage import data

    paths = {}
    for name in ("coffee", "chelsea"):
        paths[name] = folder / f"{name}.png"
        Image.fromarray(getattr(data, name)()).save(paths[name])
    return paths


def one_megapixel_times(folder: Path, runs: int) -> dict:
    from skimage import data

    grey, reference = folder / "grey.jpg", folder / "reference.jpg"
    Image.fromarray(data.astronaut()).convert("L").resize(ONE_MEGAPIXEL, Image.Resampling.BICUBIC).save(
        grey, quality=92
    )
    Image.fromarray(data.astronaut()).transpose(Image.Transpose.FLIP_LEFT_RIGHT).resize(
        ONE_MEGAPIXEL, Image.Resampling.BICUBIC
    ).save(reference, quality=92)
    session = load_model(MODEL)
    times: dict[str, list[float]] = {"automatic": [], "reference": []}
    for run in range(runs + 2):  # two warm-up rounds
        for kind, options in (("automatic", {}), ("reference", {"reference": reference})):
            start = time.perf_counter()
            encode_image(colorize_picture(read_image(grey), session, **options), "png")
            if run >= 2:
                times[kind].append(time.perf_counter() - start)
    medians = {kind: statistics.median(values) * 1000 for kind, values in times.items()}
    return {
        "automatic_ms": medians["automatic"],
        "reference_ms": medians["reference"],
        "ratio": medians["reference"] / medians["automatic"],
        "runs": runs,
    }


def row(rows: list[dict], model: str) -> dict:
    return next(r for r in rows if r["model"] == model)


def targets(tables: dict, speed: dict) -> list[dict]:
    """Issue 9's targets, each with the measured value and whether it is met."""
    auto, ref = MODEL, f"{MODEL} + reference"
    self_rows, pool_rows = tables["self"], tables["pool"]
    checks = [
        ("self: PSNR >= automatic + 4 dB", row(self_rows, ref)["psnr"] - row(self_rows, auto)["psnr"], 4.0),
        ("self: hue-family recall >= 80 %", row(self_rows, ref)["hue_recall"], 80.0),
        (
            "pool: saturated AuC >= automatic + 2",
            row(pool_rows, ref)["saturated_auc"] - row(pool_rows, auto)["saturated_auc"],
            2.0,
        ),
        ("pool: AuC >= automatic", row(pool_rows, ref)["auc"] - row(pool_rows, auto)["auc"], 0.0),
    ]
    for name, rows in tables["unrelated"].items():
        checks.append(
            (f"unrelated ({name}): AuC >= automatic - 0.5", row(rows, ref)["auc"] - row(rows, auto)["auc"], -0.5)
        )
    checks.append(("1 MP with one reference <= 2 x automatic time", -speed["ratio"], -2.0))
    return [
        {"target": name, "measured": abs(value) if name.startswith("1 MP") else value, "met": bool(value >= bound)}
        for name, value, bound in checks
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="folder of colour photos to evaluate on (photo-val)")
    parser.add_argument("pool", type=Path, help="folder of reference photos to choose from (val)")
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        tables = {
            "self": evaluate(args.data, "self"),
            "pool": evaluate(args.data, args.pool),
            "unrelated": {name: evaluate(args.data, path) for name, path in unrelated_photos(folder).items()},
        }
        speed = one_megapixel_times(folder, args.runs)
    report = {
        "data": "/".join(args.data.resolve().parts[-2:]),
        "pool": "/".join(args.pool.resolve().parts[-2:]),
        "model": MODEL,
        "render_size": load_model(MODEL).default_render_size,
        "machine": f"{platform.machine()}, {cpu_count()} CPUs",
        "tables": tables,
        "one_megapixel": speed,
        "targets": targets(tables, speed),
    }
    RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    for name in ("self", "pool"):
        print(f"\n--reference {name}\n{format_table(tables[name])}")
    for name, rows in tables["unrelated"].items():
        print(f"\nunrelated reference: {name}\n{format_table(rows)}")
    print(
        f"\n1 MP end to end: {speed['automatic_ms']:.0f} ms automatic, {speed['reference_ms']:.0f} ms with a reference "
        f"(x{speed['ratio']:.2f})"
    )
    for check in report["targets"]:
        print(f"{'met    ' if check['met'] else 'NOT met'}  {check['target']}: {check['measured']:.2f}")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
