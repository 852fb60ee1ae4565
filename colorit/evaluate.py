"""`colorit evaluate`: colorize grey versions of colour photos and measure the result against them.

Each image is shrunk to the evaluation size (longer side, Lanczos), greyed to its Lab L, and
colorized by every model; the "grey" baseline is the grey image itself (ab = 0). Per-image numbers
(PSNR, SSIM, CIEDE2000, colourfulness) are averaged over images; the two AuCs pool the ab errors of
all pixels of all images into one CDF, and the hue-family recall pools their saturated pixels. With hint counts, each hint-accepting model is also run with
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
from colorit.encoding import to_8bit
from colorit.errors import ColoritError, ImageError
from colorit.hints import Hint
from colorit.io import IMAGE_SUFFIXES, find_images, read_image, write_bytes_atomic
from colorit.pipeline import colorize_array, working_size
from colorit.reference import choose_for, describe, describe_folder
from colorit.session import MODELS_DIR, ModelSession, load_features, load_model

GREY_BASELINE = "grey"
DEFAULT_EVAL_SIZE = 512
# A ground truth with no colour says nothing about colorization (and the grey baseline would match it).
MIN_TRUTH_COLOURFULNESS = 1.0
# Zhang et al. 2017: hint patches of 1..9 px at the network's working size.
HINT_PATCH_SIDES = (1, 9)
HINT_CURVE_METRICS = ("psnr", "ciede2000", "auc", "saturated_auc")
# --reference self: the share of the ground truth's area a reference crop keeps, and its rescaling.
SELF_REFERENCE_AREA = (0.6, 0.9)
SELF_REFERENCE_SCALE = (0.7, 1.3)
SELF_REFERENCE = "self"
SELF_REFERENCE_STREAM = 1  # the self reference's random stream, apart from the hints' of the same image
# Printed columns: key -> (header, format).
COLUMNS = {
    "model": ("model", "{}"),
    "split": ("split", "{}"),
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
    "hue_recall": ("hue rec %", "{:.1f}"),
    "grey_share": ("grey %", "{:.1f}"),
}
TABLE_COLUMNS = tuple(key for key in COLUMNS if key not in ("split", "hints"))
# `--update-cards`: the card keys (table, hint curve) of each evaluation set.
CARD_KEYS = {
    "val": ("validation", "hint_curve"),
    "photo-val": ("photo_validation", "photo_hint_curve"),
    "package-photo-val": ("package_photo_validation", "package_photo_hint_curve"),
}
# Which evaluation set a corpus folder is, by the last parts of its path: a corpus keeps a folder per
# kind of source in each split (`colorit corpus build`). The photo library's photo-val (photos from
# repositories never trained on) is the one models are chosen by; the packages' few photos stay apart.
EVALUATION_SETS = {
    ("val",): "val",
    ("val", "package"): "val",
    ("photo-val", "photo-library"): "photo-val",
    ("photo-val", "package"): "package-photo-val",
}
HINT_CURVE_COLUMNS = ("model", "hints", *HINT_CURVE_METRICS)
AVERAGING_NOTE = (
    "psnr, ssim, ciede2000 and colourfulness are means over images; auc and saturated_auc pool the ab "
    "errors of all pixels of all images (saturated: ground-truth chroma >= 20) into one CDF over "
    "thresholds 0..150; colourfulness_gap = output - ground truth, colourfulness_ratio = output / ground truth; "
    "hue_recall pools all saturated pixels of all images: the % whose output has chroma >= 10 and the "
    "ground truth's Lab hue family (red 0-50, orange/yellow 50-100, green 100-200, blue 200-290, purple "
    "290-360 degrees), per family in hue_recall_per_family; grey_share: the % left at output chroma < 10"
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
    hue_counts: metrics.HueFamilyCounts


@dataclass
class ScoreTotals:
    """Everything measured for one (model, hint count) over the images so far."""

    per_image: list[dict] = field(default_factory=list)
    ab_cdf: metrics.AbErrorCdf = field(default_factory=metrics.AbErrorCdf)
    saturated_ab_cdf: metrics.AbErrorCdf = field(default_factory=metrics.AbErrorCdf)
    hue_counts: metrics.HueFamilyCounts = field(default_factory=metrics.HueFamilyCounts)

    def add(self, measurement: Measurement) -> None:
        self.per_image.append(measurement.scores)
        self.ab_cdf += measurement.ab_cdf
        self.saturated_ab_cdf += measurement.saturated_ab_cdf
        self.hue_counts += measurement.hue_counts

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
            "hue_recall": self.hue_counts.recall(),
            "grey_share": self.hue_counts.grey_share(),
            "hue_recall_per_family": self.hue_counts.recall_per_family(),
        }


def measure(output: np.ndarray, truth: GroundTruth) -> Measurement:
    """Compare an 8-bit RGB output with its ground truth."""
    output_lab = rgb_to_lab(output)
    ab_errors = metrics.ab_error(output_lab, truth.lab)
    ab_cdf = metrics.AbErrorCdf.of(ab_errors)
    saturated_ab_cdf = metrics.AbErrorCdf.of(ab_errors[truth.saturated])
    hue_counts = metrics.hue_family_recall(output_lab, truth.lab)
    scores = {
        "file": truth.file,
        "psnr": metrics.psnr(output, truth.rgb),
        "ssim": metrics.ssim(output, truth.rgb),
        "ciede2000": float(metrics.ciede2000(output_lab, truth.lab).mean()),
        "auc": ab_cdf.auc(),
        "saturated_auc": saturated_ab_cdf.auc(),
        "colourfulness": metrics.colourfulness(output),
        "colourfulness_gt": truth.colourfulness,
        "hue_recall": hue_counts.recall(),
        "grey_share": hue_counts.grey_share(),
    }
    return Measurement(scores=scores, ab_cdf=ab_cdf, saturated_ab_cdf=saturated_ab_cdf, hue_counts=hue_counts)


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


def self_reference(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Another view of the ground truth, as a second photo of the same scene differs from the first:
    a crop of 60-90 % of its area (aspect ratio jittered by up to 25 %) at a random place, mirrored
    half the time, rescaled by 0.7..1.3."""
    height, width = rgb.shape[:2]
    area = rng.uniform(*SELF_REFERENCE_AREA)
    aspect = np.exp(rng.uniform(-np.log(1.25), np.log(1.25)))
    crop_height = int(np.clip(round(height * np.sqrt(area / aspect)), 1, height))
    crop_width = int(np.clip(round(width * area * height / crop_height), 1, width))
    top = int(rng.integers(0, height - crop_height + 1))
    left = int(rng.integers(0, width - crop_width + 1))
    image = Image.fromarray(np.ascontiguousarray(rgb[top : top + crop_height, left : left + crop_width]))
    if rng.random() < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    scale = rng.uniform(*SELF_REFERENCE_SCALE)
    size = (max(1, round(crop_width * scale)), max(1, round(crop_height * scale)))
    return np.asarray(image.resize(size, Image.Resampling.LANCZOS))


def bundled_model_names() -> list[str]:
    return sorted(path.stem for path in MODELS_DIR.glob("*.onnx"))


def model_of_file(report: dict, path: str | os.PathLike) -> str:
    """The name a report's rows give the model loaded from `path` (rows are named by the model card)."""
    wanted = Path(path).resolve()
    return next(name for name, file in report["model_files"].items() if Path(file).resolve() == wanted)


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
    reference: str | os.PathLike | None = None,
    hint_propagation: bool = True,
) -> dict:
    """Evaluate models (default: all bundled) on the colour images under data_dir.

    reference: also run every model with a reference photo (rows "NAME + reference"): "self" (another
    view of the ground truth, see self_reference; deterministic under the seed), a folder (for each
    image the best matches among the folder's images, the image itself left out; named per image in
    the report's "reference_choices") or one image file (the same reference for every image).

    Returns the report that `--json` writes: "table" (one summary row per model, grey first,
    without hints), "hint_curve" (when hint_counts is given: a row per hint count for each
    hint-accepting model, N = 0 only for grey and the others), "per_image", "skipped" and
    "model_files" (name -> .onnx path). Raises ColoritError when a model cannot be loaded or no
    image could be evaluated.
    hint_propagation=False leaves the hints to the network alone (no bilateral propagation).
    """
    from tqdm import tqdm

    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise ColoritError(f"{data_dir}: not a folder")
    files = find_images(data_dir)[:limit]
    if not files:
        raise ColoritError(f"{data_dir}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    # A report keys models by their card's name: a model named twice is measured once, but two files under
    # one name would overwrite each other's rows.
    by_name: dict[str, ModelSession] = {}
    for session in map(load_model, model_names or bundled_model_names()):
        earlier = by_name.setdefault(session.name, session)
        if Path(earlier.path).resolve() != Path(session.path).resolve():
            raise ColoritError(
                f"{session.path}: its card names it {session.name!r}, as {earlier.path}'s does; rename one card"
            )
    sessions = list(by_name.values())
    counts = sorted(set(hint_counts or ()) | {0})
    counts_of = {session.name: counts if session.accepts_hints else [0] for session in sessions}
    # Hint patches are sized for one working size, so that every model gets the same points.
    hint_render_size = render_size or next((s.default_render_size for s in sessions if s.accepts_hints), None)
    totals = {(GREY_BASELINE, 0): ScoreTotals()}
    totals.update({(name, count): ScoreTotals() for name, model_counts in counts_of.items() for count in model_counts})
    references = ReferenceRuns(reference, render_size or sessions[0].default_render_size, seed) if reference else None
    if references:
        totals.update({(references.run_name(session.name), 0): ScoreTotals() for session in sessions})
    skipped = []
    for index, path in enumerate(tqdm(files, desc="evaluate", unit="img", file=sys.stderr, disable=not progress)):
        try:
            truth = load_ground_truth(path, data_dir, eval_size)
            hints = simulated_hints_for(truth, max(counts), hint_rng(seed, index), hint_render_size)
            measured = _measure_image(truth, sessions, counts_of, hints, render_size, hint_propagation)
            if references:
                measured.update(references.measure(truth, path, index, sessions, render_size))
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
    if references:
        report["reference"] = {"kind": references.kind, "source": str(reference)}
        if references.choices:
            report["reference_choices"] = references.choices
    return report


class ReferenceRuns:
    """The runs with a reference photo: where each image's reference comes from, and what was chosen."""

    def __init__(self, reference: str | os.PathLike, work_side: int, seed: int):
        self.work_side, self.seed = work_side, seed
        self.choices: list[dict] = []
        features = load_features()
        if str(reference) == SELF_REFERENCE:
            self.kind, self.pool = SELF_REFERENCE, []
        elif Path(reference).is_dir():
            self.kind = "pool"
            self.pool = describe_folder(
                reference, features, work_side, report=lambda line: print(f"colorit evaluate: {line}", file=sys.stderr)
            )
        else:
            self.kind, self.pool = "image", [describe(reference, features, work_side)]

    @staticmethod
    def run_name(model: str) -> str:
        return f"{model} + reference"

    def reference_for(self, truth: GroundTruth, path: Path, index: int):
        if self.kind == SELF_REFERENCE:
            return self_reference(truth.rgb, np.random.default_rng((self.seed, index, SELF_REFERENCE_STREAM)))
        if self.kind == "image":
            return self.pool
        others = [reference for reference in self.pool if Path(reference.source).resolve() != path.resolve()]
        chosen = choose_for(truth.rgb, others, threads=None, work_side=self.work_side)
        self.choices.append({"file": truth.file, "references": [reference.source for reference in chosen]})
        return chosen

    def measure(
        self, truth: GroundTruth, path: Path, index: int, sessions: list[ModelSession], render_size: int | None
    ) -> dict[tuple[str, int], Measurement]:
        reference = self.reference_for(truth, path, index)
        return {
            (self.run_name(session.name), 0): measure(
                colorize_array(truth.rgb, session, render_size=render_size, reference=reference), truth
            )
            for session in sessions
        }


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
    hint_propagation: bool = True,
) -> dict[tuple[str, int], Measurement]:
    """All runs on one image; an error in any leaves the image out of every run alike."""
    measured = {(GREY_BASELINE, 0): measure(truth.grey(), truth)}
    for session in sessions:
        for count in counts_of[session.name]:
            output = colorize_array(
                truth.rgb,
                session,
                render_size=render_size,
                hints=hints[:count] or None,
                hint_propagation=hint_propagation,
            )
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


def card_keys_for(data_dir: str | os.PathLike) -> tuple[str, str]:
    """The card keys (table, hint curve) that a report on this corpus folder is stored under."""
    # Not resolve(): a folder that links to a library's val/ is still the corpus's photo-val.
    path = Path(os.path.abspath(data_dir))
    for parts in ((path.parent.name, path.name), (path.name,)):
        if parts in EVALUATION_SETS:
            return CARD_KEYS[EVALUATION_SETS[parts]]
    folders = ", ".join("/".join(parts) for parts in EVALUATION_SETS)
    raise ColoritError(f"{data_dir}: model cards record only a corpus's {folders}, not this folder")


def card_entries(report: dict) -> dict:
    """What a model card records of a report: the whole table (all models and grey) and the hint curve,
    under the keys of the evaluated split (card_keys_for)."""
    table_key, hint_curve_key = card_keys_for(report["data"])
    provenance = {key: report[key] for key in ("data_name", "images", "eval_size", "render_size")}
    entries = {table_key: {**provenance, "averaging": report["averaging"], "table": report["table"]}}
    if "hint_curve" in report:
        entries[hint_curve_key] = {**provenance, "seed": report["seed"], "rows": report["hint_curve"]}
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
