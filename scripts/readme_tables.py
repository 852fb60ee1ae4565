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

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
RESULTS = REPO / "benchmarks" / "results"

# Rows other than the bundled models, by the name `colorit evaluate` gave them (their card's name).
ROW_LABELS = {
    "grey": "grey (no colour)",
    "default": "**default**",
    "seed-ae": "seed-ae",
    "default-2026-11": "default before the photo library (commit a957912)",
}
# column: (heading, format, which value is best: max, min, or closest to 1)
COLUMNS = {
    "psnr": ("PSNR dB", "{:.2f}", "max"),
    "ciede2000": ("CIEDE2000", "{:.2f}", "min"),
    "auc": ("AuC %", "{:.2f}", "max"),
    "saturated_auc": ("saturated AuC %", "{:.2f}", "max"),
    "hue_recall": ("hue-family recall %", "{:.1f}", "max"),
    "grey_share": ("left grey %", "{:.1f}", None),
    "colourfulness_ratio": ("colourfulness ratio", "{:.2f}", "one"),
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
    for key, (_, _, rule) in COLUMNS.items():
        values = [row[key] for row in rows]
        if rule == "max":
            best[key] = max(values)
        elif rule == "min":
            best[key] = min(values)
        elif rule == "one":
            best[key] = min(values, key=lambda value: abs(value - 1))
    title = f"{title} ({report['images']} photos)"
    lines = [f"| {title} | " + " | ".join(heading for heading, _, _ in COLUMNS.values()) + " |"]
    lines.append("|---" * (len(COLUMNS) + 1) + "|")
    for row in rows:
        cells = []
        for key, (_, pattern, _) in COLUMNS.items():
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


TABLES: dict[str, Callable[[], str]] = {
    "photo-val": lambda: quality_table("eval_photo_val.json", "photo-val"),
    "package-photo-val": lambda: quality_table("eval_package_photo_val.json", "package photo-val"),
    "val": lambda: quality_table("eval_val.json", "val"),
    "hints": hint_table,
    "training-sources": training_sources_table,
    # benchmarks/ablation.py writes its table as markdown itself.
    "ablation-v3": lambda: (RESULTS / "ablation_v3.md").read_text().strip(),
}
MARKED = re.compile(r"(<!-- table: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(\n<!-- /table -->)", re.S)


def rewritten(readme: str) -> str:
    """README text with every marked table replaced by its fresh version."""

    def fresh(match: re.Match) -> str:
        name = match.group("name")
        if name not in TABLES:
            raise SystemExit(f"readme_tables: README.md names a table {name!r}; known: {', '.join(TABLES)}")
        return match.group(1) + TABLES[name]() + match.group(4)

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
