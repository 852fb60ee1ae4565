"""`colorit models`: the bundled models and what their cards say about them."""

from __future__ import annotations

import json
import shutil
import textwrap
from collections import Counter

# The model every command and colorit.colorize() take unless told otherwise.
DEFAULT_MODEL = "default"


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("models", help="list the bundled models with their cards")
    p.add_argument("--json", action="store_true", help="print the model cards as JSON")
    p.set_defaults(run=run)


def _summary(value) -> str:
    """A card field (nested dicts and lists) as one readable line."""
    if isinstance(value, dict):
        return "; ".join(f"{key}: {_summary(item)}" for key, item in value.items()) or "-"
    if isinstance(value, (list, tuple)):
        return ", ".join(_summary(item) for item in value) or "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None or value == "" else str(value)


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def _millions(count) -> str:
    return f"{count / 1e6:.2f} M" if isinstance(count, (int, float)) else _summary(count)


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]


# A card's source kinds, as the training line names them.
SOURCE_KINDS = {"package": "packages", "photo-library": "photo-library repositories"}


def _training_line(training: object) -> str:
    """Data, amount and hardware of the training, in one line."""
    if not isinstance(training, dict) or not ("sources" in training or "images_per_package" in training):
        return f"training: {_summary(training)}"
    if "sources" in training:
        images = {source: entry["images"] for source, entry in training["sources"].items()}
        # the sources trained on: pictures in train/ or cut-outs pasted onto them
        kinds = Counter(
            entry["kind"] for entry in training["sources"].values() if {"train", "cutouts"} & set(entry["images"])
        )
        origin = ", ".join(f"{count} {SOURCE_KINDS.get(kind, kind)}" for kind, count in sorted(kinds.items()))
    else:  # a card exported before corpus v3, when every source was a Debian package
        images = training["images_per_package"]
        origin = f"{len(images)} Debian packages"
    train_images = sum(counts.get("train", 0) for counts in images.values())
    held_out = sum(counts.get("val", 0) + counts.get("photo-val", 0) for counts in images.values())
    return (
        f"training: {train_images} images from {origin} ({held_out} more held out), "
        f"{training.get('steps')} steps of {training.get('batch_per_process')} crops at {training.get('crop')} px, "
        f"{training.get('minutes')} min on {training.get('hardware')}"
    )


def _advice(cards: list[dict]) -> str:
    """Which model to use, in one line: a newcomer should not have to read the tables to choose."""
    others = [str(card.get("name")) for card in cards if card.get("name") != DEFAULT_MODEL]
    default = next((card for card in cards if card.get("name") == DEFAULT_MODEL), {})
    only_hints = default.get("accepts_hints") and not any(
        card.get("accepts_hints") for card in cards if card is not default
    )
    why = "; the only one that takes hints" if only_hints else ""
    rest = f" {', '.join(others)}: kept to compare with (--model NAME)." if others else ""
    return f"Use {DEFAULT_MODEL}: colorize, serve and colorit.colorize() take it unless told otherwise{why}.{rest}"


def _indented(text: str) -> str:
    return textwrap.indent(text, "    ")


def run(args) -> int:
    from colorit.evaluate import HINT_CURVE_COLUMNS, TABLE_COLUMNS
    from colorit.session import MODELS_DIR, bundled_models

    models = bundled_models()
    cards = [card for _, card in models]
    if args.json:
        print(json.dumps(cards, indent=2))
        return 0
    if not cards:
        print(f"no bundled models in {MODELS_DIR}")
        return 0
    print(_advice(cards))
    header = ["MODEL", "FILE", "PARAMETERS", "GFLOPS@256", "HINTS", "RENDER SIZE"]
    rows = [header]
    for path, card in models:
        rows.append(
            [
                str(card.get("name", path.stem)),
                _megabytes(path.stat().st_size),
                _millions(card.get("parameters")),
                _summary(card.get("gflops_256")),
                "yes" if card.get("accepts_hints") else "no",
                _summary(card.get("render_size")),
            ]
        )
    width = shutil.get_terminal_size((100, 20)).columns
    lines = _table(rows)
    print(lines[0])
    for line, card in zip(lines[1:], cards):
        print(line)
        for text in (card.get("architecture", "-"), _training_line(card.get("training"))):
            print(textwrap.fill(text, width=width, initial_indent="    ", subsequent_indent="      "))
        # CARD_KEYS gives each split's (table key, hint curve key).
        for key_index, title, rows_key, columns in (
            (0, "validation", "table", TABLE_COLUMNS),
            (1, "with simulated hints", "rows", HINT_CURVE_COLUMNS),
        ):
            _print_side_by_side(card, key_index, title, rows_key, columns)
    return 0


def _print_side_by_side(card: dict, key_index: int, title: str, rows_key: str, columns: tuple[str, ...]) -> None:
    """One table of what `colorit evaluate --update-cards` wrote into the card for each split (val,
    photo-val): a model's rows of the splits one under the other, with a split column."""
    from colorit.evaluate import CARD_KEYS, format_table

    stored = ((split, card.get(keys[key_index])) for split, keys in CARD_KEYS.items())
    results = [(split, result) for split, result in stored if isinstance(result, dict) and result.get(rows_key)]
    if not results:
        return
    rows = [{**row, "split": split} for split, result in results for row in result[rows_key]]
    order = list(dict.fromkeys((row.get("model"), row.get("hints")) for row in rows))
    rows.sort(key=lambda row: order.index((row.get("model"), row.get("hints"))))  # stable: splits keep their order
    sources = ", ".join(f"{result.get('data_name')} ({result.get('images')} images)" for _, result in results)
    print(_indented(f"{title} on {sources}:"))
    print(_indented(format_table(rows, (columns[0], "split", *columns[1:]))))
