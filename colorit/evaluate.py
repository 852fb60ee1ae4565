"""`colorit evaluate`: colorize grey versions of colour photos and measure the result against them.

Each image is shrunk to the evaluation size (longer side, Lanczos), greyed to its Lab L, and
colorized by every model; the "grey" baseline is the grey image itself (ab = 0). Per-image numbers
(PSNR, SSIM, CIEDE2000, colourfulness) are averaged over images; the two AuCs pool the ab errors of
all pixels of all images into one CDF. With hint counts, each hint-accepting model is also run with
N simulated hints per image (Zhang et al. 2017): the same points for every model, deterministic
under the seed, and the N hints of a smaller count are the first N of a larger one.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
from PIL import Image

from colorit import metrics
from colorit.color import lab_planes_to_rgb, luminance_L, rgb_to_lab
from colorit.errors import ColoritError, ImageError
from colorit.hints import Hint
from colorit.io import IMAGE_SUFFIXES, find_images, read_image, to_8bit, write_bytes_atomic
from colorit.pipeline import colorize_array, working_size
from colorit.session import MODELS_DIR, ModelSession, load_model

GREY_BASELINE = "grey"
DEFAULT_EVAL_SIZE = 512
# A ground truth with no colour says nothing about colorization (and the grey baseline would match it).
MIN_TRUTH_COLOURFULNESS = 1.0
# Zhang et al. 2017: hint patches of 1..9 px at the network's working size.
HINT_PATCH_SIDES = (1, 9)
HINT_CURVE_METRICS = ("psnr", "ciede2000", "auc", "saturated_auc")
# Printed columns: key -> (header, format).
COLUMNS = {
    "model": ("model", "{}"),
    "hints": ("hints", "{}"),
    "psnr": ("PSNR dB", "{:.2f}"),
    "ssim": ("SSIM", "{:.4f}"),
    "ciede2000": ("CIEDE2000", "{:.2f}"),
    "auc": ("AuC %", "{:.2f}"),
    "saturated_auc": ("sat AuC %", "{:.2f}"),
    "colourfulness": ("CF", "{:.1f}"),
    "colourfulness_gt": ("CF gt", "{:.1f}"),
    "colourfulness_gap": ("CF gap", "{:+.1f}"),
    "colourfulness_ratio": ("CF ratio", "{:.2f}"),
}
TABLE_COLUMNS = tuple(key for key in COLUMNS if key != "hints")
HINT_CURVE_COLUMNS = ("model", "hints", *HINT_CURVE_METRICS)
AVERAGING_NOTE = (
    "psnr, ssim, ciede2000 and colourfulness are means over images; auc and saturated_auc pool the ab "
    "errors of all pixels of all images (saturated: ground-truth chroma >= 20) into one CDF over "
    "thresholds 0..150; colourfulness_gap = output - ground truth, colourfulness_ratio = output / ground truth"
)


@dataclass
class GroundTruth:
    """One evaluation image: 8-bit RGB at the evaluation size and its Lab."""

    file: str
    rgb: np.ndarray

    @cached_property
    def lab(self) -> np.ndarray:
        return rgb_to_lab(self.rgb)

    @cached_property
    def saturated(self) -> np.ndarray:
        return metrics.saturated_mask(self.lab)

    @cached_property
    def colourfulness(self) -> float:
        return metrics.colourfulness(self.rgb)

    def grey(self) -> np.ndarray:
        """The baseline output: the L the models are given, with a = b = 0, made 8-bit as the pipeline does."""
        L = luminance_L(self.rgb)
        no_chroma = np.zeros_like(L)
        return lab_planes_to_rgb(L, no_chroma, no_chroma, np.uint8)


@dataclass
class Measurement:
    """The numbers for one output image against its ground truth."""

    scores: dict
    ab_cdf: metrics.AbErrorCdf
    saturated_ab_cdf: metrics.AbErrorCdf


@dataclass
class ScoreTotals:
    """Everything measured for one (model, hint count) over the images so far."""

    per_image: list[dict] = field(default_factory=list)
    ab_cdf: metrics.AbErrorCdf = field(default_factory=metrics.AbErrorCdf)
    saturated_ab_cdf: metrics.AbErrorCdf = field(default_factory=metrics.AbErrorCdf)

    def add(self, measurement: Measurement) -> None:
        self.per_image.append(measurement.scores)
        self.ab_cdf += measurement.ab_cdf
        self.saturated_ab_cdf += measurement.saturated_ab_cdf

    def summary(self) -> dict:
        def mean_of(key: str) -> float:
            return float(np.mean([scores[key] for scores in self.per_image]))

        colourfulness, colourfulness_truth = mean_of("colourfulness"), mean_of("colourfulness_gt")
        return {
            "psnr": mean_of("psnr"),
            "ssim": mean_of("ssim"),
            "ciede2000": mean_of("ciede2000"),
            "auc": self.ab_cdf.auc(),
            "saturated_auc": self.saturated_ab_cdf.auc(),
            "colourfulness": colourfulness,
            "colourfulness_gt": colourfulness_truth,
            "colourfulness_gap": colourfulness - colourfulness_truth,
            "colourfulness_ratio": colourfulness / colourfulness_truth,
        }


def measure(output: np.ndarray, truth: GroundTruth) -> Measurement:
    """Compare an 8-bit RGB output with its ground truth."""
    output_lab = rgb_to_lab(output)
    ab_errors = metrics.ab_error(output_lab, truth.lab)
    ab_cdf = metrics.AbErrorCdf.of(ab_errors)
    saturated_ab_cdf = metrics.AbErrorCdf.of(ab_errors[truth.saturated])
    scores = {
        "file": truth.file,
        "psnr": metrics.psnr(output, truth.rgb),
        "ssim": metrics.ssim(output, truth.rgb),
        "ciede2000": float(metrics.ciede2000(output_lab, truth.lab).mean()),
        "auc": ab_cdf.auc(),
        "saturated_auc": saturated_ab_cdf.auc(),
        "colourfulness": metrics.colourfulness(output),
        "colourfulness_gt": truth.colourfulness,
    }
    return Measurement(scores=scores, ab_cdf=ab_cdf, saturated_ab_cdf=saturated_ab_cdf)


def load_ground_truth(path: Path, data_dir: Path, eval_size: int) -> GroundTruth:
    """Read an image as 8-bit RGB, shrunk (never enlarged) so its longer side is at most eval_size."""
    pixels = to_8bit(read_image(path).pixels)
    if pixels.ndim == 2 or pixels.shape[2] < 3:
        raise ImageError(f"{path}: greyscale image, nothing to evaluate")
    image = Image.fromarray(np.ascontiguousarray(pixels[..., :3]))  # alpha dropped: the colours are what is scored
    scale = eval_size / max(image.size)
    if scale < 1:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS)
    truth = GroundTruth(file=path.relative_to(data_dir).as_posix(), rgb=np.asarray(image))
    if min(truth.rgb.shape[:2]) < 2 * metrics.SSIM_RADIUS + 1:
        raise ImageError(f"{path}: {image.width}x{image.height} is too small to evaluate")
    if truth.colourfulness < MIN_TRUTH_COLOURFULNESS:
        raise ImageError(f"{path}: greyscale image, nothing to evaluate")
    return truth


def simulate_hints(lab: np.ndarray, count: int, rng: np.random.Generator, work_scale: float) -> list[Hint]:
    """`count` hints from the ground truth, as Zhang et al. 2017 simulate them.

    Each is a square patch whose side is drawn from 1..9 px at the working size (work_scale =
    working size / original size) and whose centre is drawn from a Gaussian around the image centre
    (sigma a quarter of the height and width), moved inside the image; its value is the patch's
    mean ground-truth ab. The Hint's radius is the half-side that hints.render_hints fills exactly.
    """
    height, width = lab.shape[:2]
    hints = []
    for _ in range(count):
        side_at_work_size = rng.integers(HINT_PATCH_SIDES[0], HINT_PATCH_SIDES[1] + 1)
        side = int(min(max(round(side_at_work_size / work_scale), 1), height, width))
        centre_y, centre_x = rng.normal((height / 2, width / 2), (height / 4, width / 4))
        top = int(np.clip(round(centre_y - side / 2), 0, height - side))
        left = int(np.clip(round(centre_x - side / 2), 0, width - side))
        a, b = lab[top : top + side, left : left + side, 1:3].reshape(-1, 2).mean(axis=0)
        hints.append(Hint(x=left + side / 2, y=top + side / 2, ab=(float(a), float(b)), radius=(side - 1) / 2))
    return hints


def hint_rng(seed: int, image_index: int) -> np.random.Generator:
    """One stream per image, so an image's hints do not depend on which other images were read."""
    return np.random.default_rng((seed, image_index))


def bundled_model_names() -> list[str]:
    return sorted(path.stem for path in MODELS_DIR.glob("*.onnx"))


def evaluate_folder(
    data_dir: str | os.PathLike,
    model_names: Sequence[str] | None = None,
    *,
    eval_size: int = DEFAULT_EVAL_SIZE,
    render_size: int | None = None,
    limit: int | None = None,
    hint_counts: Sequence[int] | None = None,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Evaluate models (default: all bundled) on the colour images under data_dir.

    Returns the report that `--json` writes: "table" (one summary row per model, grey first,
    without hints), "hint_curve" (when hint_counts is given: a row per hint count for each
    hint-accepting model, N = 0 only for grey and the others), "per_image", "skipped" and
    "model_files" (name -> .onnx path). Raises ColoritError when a model cannot be loaded or no
    image could be evaluated.
    """
    from tqdm import tqdm

    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise ColoritError(f"{data_dir}: not a folder")
    files = find_images(data_dir)[:limit]
    if not files:
        raise ColoritError(f"{data_dir}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    sessions = list({session.name: session for session in map(load_model, model_names or bundled_model_names())}.values())
    counts = sorted(set(hint_counts or ()) | {0})
    counts_of = {session.name: counts if session.accepts_hints else [0] for session in sessions}
    # Hint patches are sized for one working size, so that every model gets the same points.
    hint_render_size = render_size or next((s.default_render_size for s in sessions if s.accepts_hints), None)
    totals = {(GREY_BASELINE, 0): ScoreTotals()}
    totals.update({(name, count): ScoreTotals() for name, model_counts in counts_of.items() for count in model_counts})
    skipped = []
    for index, path in enumerate(tqdm(files, desc="evaluate", unit="img", file=sys.stderr, disable=not progress)):
        try:
            truth = load_ground_truth(path, data_dir, eval_size)
            hints = simulated_hints_for(truth, max(counts), hint_rng(seed, index), hint_render_size)
            measured = _measure_image(truth, sessions, counts_of, hints, render_size)
        except ColoritError as error:
            tqdm.write(f"colorit evaluate: skipped {error}", file=sys.stderr)
            skipped.append({"file": path.relative_to(data_dir).as_posix(), "reason": str(error)})
            continue
        for run, measurement in measured.items():
            totals[run].add(measurement)
    if not totals[(GREY_BASELINE, 0)].per_image:
        raise ColoritError(f"{data_dir}: none of the {len(files)} images could be evaluated")
    report = _report(data_dir, totals, skipped, eval_size, render_size, seed, hint_counts is not None)
    report["model_files"] = {session.name: str(session.path) for session in sessions}
    return report


def simulated_hints_for(
    truth: GroundTruth, count: int, rng: np.random.Generator, render_size: int | None
) -> list[Hint]:
    """simulate_hints for a model working at render_size (None: no model takes hints, so none)."""
    if render_size is None or count == 0:
        return []
    height, width = truth.rgb.shape[:2]
    return simulate_hints(truth.lab, count, rng, working_size(width, height, render_size)[0] / width)


def _measure_image(
    truth: GroundTruth,
    sessions: list[ModelSession],
    counts_of: dict[str, list[int]],
    hints: list[Hint],
    render_size: int | None,
) -> dict[tuple[str, int], Measurement]:
    """All runs on one image; an error in any leaves the image out of every run alike."""
    measured = {(GREY_BASELINE, 0): measure(truth.grey(), truth)}
    for session in sessions:
        for count in counts_of[session.name]:
            output = colorize_array(truth.rgb, session, render_size=render_size, hints=hints[:count] or None)
            measured[(session.name, count)] = measure(output, truth)
    return measured


def _report(
    data_dir: Path,
    totals: dict[tuple[str, int], ScoreTotals],
    skipped: list[dict],
    eval_size: int,
    render_size: int | None,
    seed: int,
    with_hints: bool,
) -> dict:
    summaries = {run: run_totals.summary() for run, run_totals in totals.items()}
    report = {
        "data": str(data_dir),
        "data_name": "/".join(data_dir.resolve().parts[-2:]),  # e.g. corpus/val
        "images": len(totals[(GREY_BASELINE, 0)].per_image),
        "eval_size": eval_size,
        "render_size": render_size,
        "averaging": AVERAGING_NOTE,
        "table": [{"model": model, **summary} for (model, count), summary in summaries.items() if count == 0],
    }
    if with_hints:
        report["seed"] = seed
        report["hint_curve"] = [
            {"model": model, "hints": count, **{key: summary[key] for key in HINT_CURVE_METRICS}}
            for (model, count), summary in summaries.items()
        ]
    report["per_image"] = [
        {"model": model, "hints": count, **scores}
        for (model, count), run_totals in totals.items()
        for scores in run_totals.per_image
    ]
    report["skipped"] = skipped
    return report


def format_table(rows: Sequence[dict], columns: Sequence[str] = TABLE_COLUMNS) -> str:
    """Rows as aligned plain text under a header line: the first column left-aligned, the others
    right-aligned; a missing number prints as '-'."""
    lines = [[COLUMNS[key][0] for key in columns]]
    lines += [["-" if row.get(key) is None else COLUMNS[key][1].format(row[key]) for key in columns] for row in rows]
    widths = [max(len(line[column]) for line in lines) for column in range(len(columns))]
    return "\n".join(
        "  ".join([line[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(line[1:], widths[1:])])
        for line in lines
    )


def write_json(path: str | os.PathLike, data: dict, *, protected: Sequence[Path] = ()) -> Path:
    """Write data as indented JSON through a temporary file and a rename, replacing any earlier file."""
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    return write_bytes_atomic(path, text.encode("utf-8"), overwrite=True, protected=protected)


def update_card(card_path: Path, entries: dict) -> None:
    """Set top-level keys of a model card, keeping the rest; the file is replaced atomically."""
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ColoritError(f"{card_path}: cannot read model card ({exc})") from None
    card.update(entries)
    write_json(card_path, card)


def card_entries(report: dict) -> dict:
    """What a model card records of a report: the whole table (all models and grey) and the hint curve."""
    provenance = {key: report[key] for key in ("data_name", "images", "eval_size", "render_size")}
    entries = {"validation": {**provenance, "averaging": report["averaging"], "table": report["table"]}}
    if "hint_curve" in report:
        entries["hint_curve"] = {**provenance, "seed": report["seed"], "rows": report["hint_curve"]}
    return entries


def update_model_cards(report: dict) -> list[Path]:
    """Write the report into the card of every evaluated bundled model; returns the cards written.

    Models given as paths to other .onnx files are left alone: their cards are not the package's.
    """
    written = []
    for model_file in map(Path, report["model_files"].values()):
        card_path = model_file.with_suffix(".json")
        if model_file.parent == MODELS_DIR and card_path.is_file():
            update_card(card_path, card_entries(report))
            written.append(card_path)
    return written
