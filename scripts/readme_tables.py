"""The README's colour-quality tables, written from the results files that `scripts/evaluate_models.sh`
makes, so that no number in them is typed by hand.

    python scripts/readme_tables.py           # rewrite the tables in README.md
    python scripts/readme_tables.py --check   # exit 1 if README.md's tables differ from the results

Each table sits in README.md between `<!-- table: NAME -->` and `<!-- /table -->`; NAME is one of TABLES.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

from colorit.metrics import BETTER_WHEN, at_least_as_good
from colorit.session import bundled_models

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
RESULTS = REPO / "benchmarks" / "results"

# The default before the photo library, evaluated beside the bundled models under its card's name.
PREVIOUS_DEFAULT = "default-2026-11"
# Rows other than the bundled models, by the name `colorit evaluate` gave them (their card's name).
ROW_LABELS = {
    "grey": "grey (no colour)",
    "default": "**default**",
    "seed-ae": "seed-ae",
    PREVIOUS_DEFAULT: "default before the photo library (commit a957912)",
}
# column: (heading, format); which value is best: colorit.metrics.BETTER_WHEN
COLUMNS = {
    "psnr": ("PSNR dB", "{:.2f}"),
    "ciede2000": ("CIEDE2000", "{:.2f}"),
    "auc": ("AuC %", "{:.2f}"),
    "saturated_auc": ("saturated AuC %", "{:.2f}"),
    "hue_recall": ("hue-family recall %", "{:.1f}"),
    "grey_share": ("left grey %", "{:.1f}"),
    "colourfulness_ratio": ("colourfulness ratio", "{:.2f}"),
}
HINT_ROWS = (
    ("hints_photo_val.json", "psnr", "PSNR dB, network + propagation", "{:.2f}"),
    ("hints_photo_val.json", "ciede2000", "CIEDE2000, network + propagation", "{:.2f}"),
    ("hints_photo_val_network_only.json", "psnr", "PSNR dB, network alone", "{:.2f}"),
    ("hints_photo_val_network_only.json", "ciede2000", "CIEDE2000, network alone", "{:.2f}"),
)


CARD = REPO / "colorit" / "models" / "default.json"


def load(name: str) -> dict:
    return json.loads((RESULTS / name).read_text())


def models_table() -> str:
    """Size, working size and decoding of each bundled model, from its card."""
    lines = [
        "| model | parameters | GFLOPs @256 | working size | decoding | grey where unsure (strength) |",
        "|---|---|---|---|---|---|",
    ]
    for path, card in bundled_models():
        name = card.get("name", path.stem)
        if card.get("temperature") is None:
            decoding = "direct ab (regression)"
        elif card.get("hue_lobe_softness"):
            decoding = f"dominant hue lobe, T {card['temperature']:g}, softness {card['hue_lobe_softness']:g}"
        else:
            decoding = f"annealed mean, T {card['temperature']:g}"
        if card.get("rebalance_undo"):
            decoding += f", class rebalancing undone to the power {card['rebalance_undo']:g}"
        lines.append(
            f"| `{name}` | {card['parameters'] / 1e6:.2f} M | {card['gflops_256']:.2f} | {card['render_size']} px "
            f"| {decoding} "
            f"| {card.get('unsure_grey_strength') or '-'} |"
        )
    return "\n".join(lines)


def training_sources_table() -> str:
    """What the bundled default was trained on, per repository or package, with the licence as the source
    states it (from its card, which `colorit export` writes from the corpus's manifest)."""
    sources = json.loads(CARD.read_text())["training"]["sources"]
    trained = {name: source for name, source in sources.items() if source["images"].get("train")}
    lines = ["| trained on | kind | images | licence, as the source states it |", "|---|---|---|---|"]
    for name, source in sorted(trained.items(), key=lambda item: -item[1]["images"]["train"]):
        licences = "; ".join(source["licences"])
        lines.append(f"| {name} | {source['kind']} | {source['images']['train']:,} | {licences} |")
    total = sum(source["images"]["train"] for source in trained.values())
    lines.append(f"| all | | {total:,} | |")
    return "\n".join(lines)


def quality_table(results_file: str, title: str) -> str:
    """One row per evaluated model (grey first, then the bundled models, then the others), the best value
    of each column in bold."""
    report = load(results_file)
    order = list(ROW_LABELS)
    rows = sorted(report["table"], key=lambda row: order.index(row["model"]) if row["model"] in order else len(order))
    best = {}
    for key in BETTER_WHEN:
        values = [row[key] for row in rows]
        best[key] = next(value for value in values if all(at_least_as_good(key, value, other) for other in values))
    title = f"{title} ({report['images']} photos)"
    lines = [f"| {title} | " + " | ".join(heading for heading, _ in COLUMNS.values()) + " |"]
    lines.append("|---" * (len(COLUMNS) + 1) + "|")
    for row in rows:
        cells = []
        for key, (_, pattern) in COLUMNS.items():
            text = pattern.format(row[key])
            cells.append(f"**{text}**" if key in best and row[key] == best[key] else text)
        lines.append(f"| {ROW_LABELS.get(row['model'], row['model'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def hint_table() -> str:
    """PSNR and CIEDE2000 of the default model on photo-val with N simulated hints, with and without the
    bilateral propagation."""
    counts = None
    lines = []
    for results_file, key, label, pattern in HINT_ROWS:
        curve = [row for row in load(results_file)["hint_curve"] if row["model"] == "default"]
        counts = counts or [row["hints"] for row in curve]
        assert [row["hints"] for row in curve] == counts, f"{results_file}: other hint counts"
        lines.append(f"| {label} | " + " | ".join(pattern.format(row[key]) for row in curve) + " |")
    header = "| simulated hints per image (photo-val) | " + " | ".join(str(count) for count in counts or []) + " |"
    return "\n".join([header, "|---" * (len(counts or []) + 1) + "|", *lines])


def hint_gain(results_file: str, hints: int) -> float:
    """PSNR the default gains on photo-val with that many simulated hints, against none."""
    psnr = {row["hints"]: row["psnr"] for row in load(results_file)["hint_curve"] if row["model"] == "default"}
    return psnr[hints] - psnr[0]


def verdict(met: bool) -> str:
    """A target table's "met" cell: a miss stands out."""
    return "yes" if met else "**no**"


def targets_table() -> str:
    """The targets set for the retrained default (issue 19), what was measured and whether it is met."""
    photo = {row["model"]: row for row in load("eval_photo_val.json")["table"]}
    package = {row["model"]: row for row in load("eval_package_photo_val.json")["table"]}
    grey, default = photo["grey"], photo["default"]
    lines = ["| target (photo-val unless said) | measured | met |", "|---|---|---|"]

    def add(target: str, measured: str, met: bool) -> None:
        lines.append(f"| {target} | {measured} | {verdict(met)} |")

    add("PSNR >= grey + 1.0 dB", f"{default['psnr'] - grey['psnr']:+.2f} dB", default["psnr"] >= grey["psnr"] + 1)
    add(
        "CIEDE2000 <= grey - 1.0",
        f"{default['ciede2000'] - grey['ciede2000']:+.2f}",
        default["ciede2000"] <= grey["ciede2000"] - 1,
    )
    add("AuC >= grey + 2", f"{default['auc'] - grey['auc']:+.2f}", default["auc"] >= grey["auc"] + 2)
    add("hue-family recall >= 55 %", f"{default['hue_recall']:.1f} %", default["hue_recall"] >= 55)
    ratio = default["colourfulness_ratio"]
    add("colourfulness 0.7 to 1.1 x the truth's", f"{ratio:.2f} x", 0.7 <= ratio <= 1.1)
    compared = ("psnr", "ciede2000", "auc", "hue_recall", "colourfulness_ratio")
    behind = [COLUMNS[key][0] for key in compared if not at_least_as_good(key, default[key], photo["seed-ae"][key])]
    add("better than seed-ae on each of those", "behind on " + ", ".join(behind) if behind else "on all", not behind)
    for results_file, how, target in (
        ("hints_photo_val.json", "with propagation", 4.5),
        ("hints_photo_val_network_only.json", "network alone", 2.5),
    ):
        gain = hint_gain(results_file, 10)
        add(f"10 simulated hints, {how}: >= +{target} dB", f"{gain:+.2f} dB", gain >= target)
    worse = [
        COLUMNS[key][0]
        for key in BETTER_WHEN
        if not at_least_as_good(key, package["default"][key], package[PREVIOUS_DEFAULT][key])
    ]
    add(
        "package photo-val: no metric worse than the previous default's",
        "worse on " + ", ".join(worse) if worse else "none worse",
        not worse,
    )
    quiet = load("grey_subjects.json")
    loud = {name: value for name, value in quiet["colourfulness"]["default"].items() if value > quiet["target"]}
    add(
        f"scikit-image's grey subjects: colourfulness <= {quiet['target']:g} each",
        "over on " + ", ".join(f"{name} {value:.1f}" for name, value in loud.items()) if loud else "all within",
        not loud,
    )
    speed = load("models.json")
    now, before = speed["models"]["default"], speed["previous"]
    add(
        "network time for a 1 MP photo not above the previous",
        f"{now['onnx_ms_1mp']} ms at its working size, input {now['input_1mp']} (previous {before['onnx_ms_1mp']} ms"
        f" at {before['input_1mp']}); both at 384 x 288: {now['onnx_ms_384x288']} ms ({before['onnx_ms_384x288']} ms)",
        now["onnx_ms_1mp"] <= before["onnx_ms_1mp"] and now["onnx_ms_384x288"] <= before["onnx_ms_384x288"],
    )
    return "\n".join(lines)


def reference_table() -> str:
    """What reference photos add to the default, from benchmarks/bench_reference.py (reference.json): the
    photo-val metrics with none, another crop of the same photo, the best matches of a pool and two
    unrelated photos; then its targets and the cost of one reference on a 1-megapixel photo."""
    report = load("reference.json")
    tables = report["tables"]
    keys = ("psnr", "ciede2000", "auc", "saturated_auc", "hue_recall")

    def model_row(rows: list[dict], model: str) -> dict:
        return next(row for row in rows if row["model"] == model)

    guided = f"{report['model']} + reference"
    rows = {
        "no reference": model_row(tables["self"], report["model"]),
        "another crop of the same photo (`--reference self`)": model_row(tables["self"], guided),
        f"best matches among `{report['pool']}` (`--reference DIR`)": model_row(tables["pool"], guided),
        **{
            f"an unrelated photo: scikit-image's {name}": model_row(found, guided)
            for name, found in tables["unrelated"].items()
        },
    }
    lines = [
        f"| `{report['data']}`, model {report['model']} | " + " | ".join(COLUMNS[key][0] for key in keys) + " |",
        "|---" * (len(keys) + 1) + "|",
    ]
    for label, row in rows.items():
        lines.append(f"| {label} | " + " | ".join(COLUMNS[key][1].format(row[key]) for key in keys) + " |")
    lines += ["", "| target | measured | met |", "|---|---|---|"]
    for check in report["targets"]:
        lines.append(f"| {check['target']} | {check['measured']:.2f} | {verdict(check['met'])} |")
    speed = report["one_megapixel"]
    lines += [
        "",
        f"A 1-megapixel photo with one 1-megapixel reference: {speed['reference_ms']:.0f} ms end to end against "
        f"{speed['automatic_ms']:.0f} ms without (x{speed['ratio']:.2f}; medians of {speed['runs']} runs, "
        f"{report['machine']}).",
    ]
    return "\n".join(lines)


def ray_table() -> str:
    """`--ray` against `--workers 2` on this machine, from benchmarks/bench_ray.py (ray.json), and what one
    node's steady rate makes of more nodes."""
    report = load("ray.json")
    modes = {
        "workers_2": "`--workers 2`",
        "ray_local": "`--ray` (starts Ray)",
        "ray_joined": "`--ray ADDRESS` (Ray already running)",
    }
    lines = [
        f"{report['images']} one-megapixel JPEGs on this {report['machine']['cpus']}-core machine "
        f"(`python benchmarks/bench_ray.py`, {report['date']}, medians of {report['workers_2']['runs']}, "
        "in `benchmarks/results/ray.json`):",
        "",
        "| | whole command | start-up to first output | then, per image |",
        "|---|---|---|---|",
    ]
    for key, label in modes.items():
        run = report[key]
        ratio = f", {report[key + '_time_ratio']:.2f}x" if key != "workers_2" else ""
        lines.append(
            f"| {label} | {run['seconds']:.1f} s ({run['images_per_s']:.1f} images/s){ratio} "
            f"| {run['startup_s']:.1f} s | {run['steady_ms_per_image']:.0f} ms |"
        )
    per_node = 1000 / report["ray_joined"]["steady_ms_per_image"]
    per_cpu = per_node / report["machine"]["cpus"]
    lines += [
        "",
        f"Once running, one node like this one colorizes {per_node:.1f} images/s (`--ray ADDRESS`'s steady rate), "
        f"about {per_cpu:.1f} per CPU: 10 such nodes about {10 * per_node:.0f} images/s, an 8-CPU node about "
        f"{8 * per_cpu:.0f}.",
    ]
    return "\n".join(lines)


def speed_table() -> str:
    """The bundled models' speed on this machine, from benchmarks/bench_pipeline.py (pipeline.json) and
    benchmarks/bench_models.py (models.json)."""
    pipeline, networks = load("pipeline.json"), load("models.json")
    names = list(pipeline["models"])
    targets = pipeline["targets"]
    previous = networks["previous"]

    def row(label: str, cell: Callable[[str], str], target: str = "") -> str:
        return f"| {label} | " + " | ".join(cell(name) for name in names) + f" | {target} |"

    def default_then(name: str, key: str) -> str:
        """The model's time under key, and the previous default's beside the default's."""
        text = f"{networks['models'][name][key]} ms"
        return f"{text} (the default before: {previous[key]} ms in the same run)" if name == "default" else text

    lines = [
        "| | " + " | ".join(names) + " | target |",
        "|---" * (len(names) + 2) + "|",
        row(
            "1-megapixel photo, decode + colorize + encode PNG (median)",
            lambda name: f"{pipeline['models'][name]['one_mp_png_ms']['median']:.0f} ms",
            f"<= {targets['one_mp_png_ms']} ms (default)",
        ),
        row(
            "24-megapixel JPEG to JPEG",
            lambda name: "{seconds:.2f} s, {peak_rss_mb:.0f} MB peak".format(
                **pipeline["models"][name]["big_jpeg_24mp"]
            ),
            f"<= {targets['big_jpeg_s']:g} s, < {targets['big_jpeg_peak_mb'] / 1024:g} GB",
        ),
        row(
            "folder of 100 one-megapixel JPEGs, `--workers 2`",
            lambda name: f"{pipeline['models'][name]['folder_100_workers_2_images_per_s']:.1f} images/s",
            f">= {targets['folder_images_per_s']} images/s",
        ),
        row(
            "network alone (ONNX Runtime, 256 / 512 px)",
            lambda name: "{onnx_ms_256} / {onnx_ms_512} ms".format(**networks["models"][name]),
        ),
        row(
            "network alone for a 1-megapixel photo, at the model's working size (input: "
            + ", ".join(f"{name} {networks['models'][name]['input_1mp']}" for name in names)
            + f"; the default before: {previous['input_1mp']})",
            lambda name: default_then(name, "onnx_ms_1mp"),
            "not above the default before",
        ),
        row(
            "network alone at 384 x 288",
            lambda name: default_then(name, "onnx_ms_384x288"),
            "not above the default before",
        ),
        row(
            "training throughput (`colorit train`'s default recipe; 128 / 256 px crops)",
            lambda name: "{train_img_per_s_128} / {train_img_per_s_256} images/s".format(**networks["models"][name]),
        ),
    ]
    return "\n".join(lines)


def web_load_table() -> str:
    """The web server under load, from benchmarks/load_test.py (load.json)."""
    load_report = load("load.json")
    mixed, slow = load_report["mixed"], load_report["single_request_beside_slow_clients"]
    done, hint = load_report["latency_200"], load_report["hint_update"]
    statuses, mixed_statuses = load_report["statuses"], mixed["statuses"]
    megapixels = f"{load_report['upload']['pixels'] / 1e6:.0f} MP"
    return "\n".join(
        [
            "| web server (default model) | measured | target |",
            "|---|---|---|",
            f"| web server, {load_report['requests']} requests from {load_report['clients']} clients ({megapixels}) "
            f"| {statuses.get('200', 0)} done (median {done['median_s']:.2f} s, p95 {done['p95_s']:.2f} s), "
            f"{statuses.get('503', 0)} told 503 at once; `/healthz` answered in ≤ "
            f"{load_report['healthz_during_load']['max_s']:.3f} s; peak {load_report['server_rss_mb']['peak']:.0f} MB "
            "| no failure but 503 |",
            f"| web server, {mixed['clients']} clients x {mixed['requests_per_client']} mixed requests (colorize, "
            f"hints, confidence, models, page, bad requests; {megapixels}; `--queue {mixed['server']['queue']}`) "
            f"| {mixed_statuses.get('200', 0)} x 200, {mixed_statuses.get('400', 0)} x 400 as meant, "
            f"{mixed['server_errors_5xx']} x 5xx; p95 {mixed['latency_all']['p95_s']:.2f} s "
            f"(p50 {mixed['latency_all']['median_s']:.2f} s: one worker, the rest wait) | 0 x 5xx |",
            f"| web server, one colorize beside {slow['slow_clients']} clients uploading at 1 byte/s "
            f"({megapixels}) | {slow['statuses'].get('200', 0)} of {slow['count']} answered (200), max "
            f"{slow['max_s']:.2f} s | 200 within {slow['target_s']:g} s |",
            f"| web page update after a hint change ({megapixels}, {hint['hints']} hints, one user) "
            f"| {hint['median_s']:.2f} s median | < 0.5 s |",
        ]
    )


# Tables that benchmarks/ablation.py, decoding_sweep.py and hint_propagation_sweep.py write as markdown themselves,
# by the results file each is in.
WRITTEN_AS_MARKDOWN = {
    "ablation-v3": "ablation_v3.md",
    "warm-restart": "decoding_sweep_warm_restart.md",
    "decoding-lobe": "decoding_sweep_lobe.md",
    "decoding-undo": "decoding_sweep_undo.md",
    "decoding-finetune": "decoding_sweep_finetune.md",
    "working-size": "decoding_sweep_working_size.md",
    "decoding-finetune-288": "decoding_sweep_finetune_288.md",
    "decoding-init-default": "decoding_sweep_init_default.md",
    "decoding-soups": "decoding_sweep_soups.md",
    "hint-propagation": "hint_propagation_sweep.md",
}


def written_table(results_file: str) -> Callable[[], str]:
    return lambda: (RESULTS / results_file).read_text().strip()


TABLES: dict[str, Callable[[], str]] = {
    "photo-val": lambda: quality_table("eval_photo_val.json", "photo-val"),
    "package-photo-val": lambda: quality_table("eval_package_photo_val.json", "package photo-val"),
    "val": lambda: quality_table("eval_val.json", "val"),
    "hints": hint_table,
    "targets": targets_table,
    "speed": speed_table,
    "ray": ray_table,
    "web-load": web_load_table,
    "training-sources": training_sources_table,
    "models": models_table,
    "reference": reference_table,
    # bench_video.py writes its table as markdown too, under a heading the README leaves out.
    "films": lambda: (RESULTS / "video.md").read_text().split("\n", 1)[1].strip(),
    **{name: written_table(results_file) for name, results_file in WRITTEN_AS_MARKDOWN.items()},
}
# The body may be empty (a table not yet written): it ends at the first closing marker either way.
MARKED = re.compile(r"(<!-- table: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /table -->)", re.S)


def rewritten(readme: str) -> str:
    """README text with every marked table replaced by its fresh version."""

    def fresh(match: re.Match) -> str:
        name = match.group("name")
        if name not in TABLES:
            raise SystemExit(f"readme_tables: README.md names a table {name!r}; known: {', '.join(TABLES)}")
        return match.group(1) + TABLES[name]() + "\n" + match.group(4)

    return MARKED.sub(fresh, readme)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when README.md differs")
    args = parser.parse_args()
    readme = README.read_text(encoding="utf-8")
    fresh = rewritten(readme)
    if args.check:
        if fresh != readme:
            print("readme_tables: README.md's tables differ from benchmarks/results", file=sys.stderr)
            return 1
        return 0
    README.write_text(fresh, encoding="utf-8")
    print(f"wrote {len(MARKED.findall(fresh))} tables into {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
