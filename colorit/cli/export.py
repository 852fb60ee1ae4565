"""`colorit export`: a training checkpoint -> ONNX model + model card (needs the `train` extra)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from colorit.cli import training_module
from colorit.session import DEFAULT_RENDER_SIZE

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "models"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a checkpoint to ONNX with its model card",
        description="Writes OUT/NAME.onnx (opset 17, dynamic height/width) and OUT/NAME.json, "
        "after checking ONNX Runtime against PyTorch on a real image.",
    )
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--name", required=True, help="model name, e.g. default or seed-ae")
    p.add_argument("--out", type=Path, default=BUNDLED_DIR, help=f"folder (default: the bundled models, {BUNDLED_DIR})")
    p.add_argument(
        "--parity-image",
        type=Path,
        default=None,
        help="real photo for the PyTorch/ONNX check (default: the first bundled sample)",
    )
    p.add_argument("--temperature", type=float, default=None, help="annealed-mean temperature (default model)")
    p.add_argument(
        "--hue-lobe-softness",
        type=float,
        default=None,
        help="default model: decode the mean of the dominant 90-degree hue lobe instead of the annealed mean, "
        "choosing among lobes by a softmax over their masses at this temperature (e.g. 0.05; 0: annealed mean)",
    )
    p.add_argument(
        "--rebalance-undo",
        type=float,
        default=None,
        help="default model: divide this power of the training's class rebalancing weights out of the "
        "distribution before decoding (0: as trained, boosted towards rare colours; 1: none of the boost)",
    )
    p.add_argument("--render-size", type=int, default=DEFAULT_RENDER_SIZE, help="working size recorded in the card")
    p.add_argument(
        "--unsure-grey-strength",
        type=float,
        default=None,
        help="card parameter: ab is scaled by confidence ** this, towards grey where the model is unsure",
    )
    p.add_argument(
        "--data",
        type=Path,
        metavar="DIR",
        help="the training data the card describes (default: the checkpoint's --data, where it lies here): a "
        "corpus, whose manifest.csv it reads, or a folder whose images are the photo library's",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    exporting = training_module("export", "colorit.train.export")
    if exporting is None:
        return 2
    if not args.checkpoint.is_file():
        print(f"colorit export: {args.checkpoint}: no such checkpoint", file=sys.stderr)
        return 2
    try:
        card = exporting.export(
            args.checkpoint,
            args.name,
            args.out,
            args.parity_image,
            args.temperature,
            args.render_size,
            args.unsure_grey_strength,
            args.data,
            args.hue_lobe_softness,
            args.rebalance_undo,
        )
    except ValueError as exc:  # a file that is no checkpoint among them (read_checkpoint)
        print(f"colorit export: {exc}", file=sys.stderr)
        return 1
    print(
        f"colorit export: wrote {args.out / (args.name + '.onnx')} ({card['parameters']:,} parameters, "
        f"{card['gflops_256']} GFLOPs at 256 px, max |ONNX - PyTorch| = {card['onnx']['max_abs_diff_vs_pytorch']:.1e})"
    )
    return 0
