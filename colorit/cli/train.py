"""`colorit train`: train a model on a folder of images (needs the `train` extra)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields

from colorit.cli import training_module


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a model on a folder of images (recursively); run under torchrun for DDP",
        description="Train `default` or `seed-ae`. DIR may be a corpus from `colorit corpus build` "
        "(train/ and val/) or any folder of images.",
    )
    p.add_argument("--data", required=True, metavar="DIR", help="folder of colour images (recursive)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for checkpoints (last.pt, best.pt)")
    p.add_argument("--model", choices=["default", "seed-ae"], default="default")
    p.add_argument("--steps", type=int, default=0, help="stop after this many steps")
    p.add_argument("--minutes", type=float, default=0.0, help="stop after this much training time")
    p.add_argument("--crop", type=int, default=128, help="training crop size in pixels (multiple of 32)")
    p.add_argument(
        "--final-crop", type=int, default=0, help="larger crop size for the end of the run (0: --crop throughout)"
    )
    p.add_argument(
        "--final-crop-from",
        type=float,
        default=0.75,
        help="share of the run after which crops are --final-crop (default 0.75)",
    )
    p.add_argument("--batch", type=int, default=16, help="batch size per process")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup-steps", type=int, default=100)
    p.add_argument("--val-every", type=int, default=200, help="validate and checkpoint every N steps")
    p.add_argument("--max-side", type=int, default=512, help="images are decoded once, at most this size")
    p.add_argument("--workers", type=int, default=2, help="processes decoding images at start-up")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--seed", type=int, default=0)
    recipe = p.add_argument_group(
        "recipe (defaults: the one the ablations in the README chose, with which the bundled default was trained)"
    )
    recipe.add_argument(
        "--encoder",
        choices=["frozen", "partial", "finetune"],
        default="partial",
        help="the ImageNet encoder's weights: kept, kept up to stride 16, or trained",
    )
    recipe.add_argument(
        "--bn-stats",
        choices=["frozen", "updated"],
        default="frozen",
        help="the encoder's BatchNorm statistics: kept from ImageNet or updated",
    )
    recipe.add_argument(
        "--encoder-lr-scale", type=float, default=0.3, help="learning-rate factor of trained encoder weights"
    )
    recipe.add_argument("--rebalance", type=float, default=0.5, help="class rebalancing mix: 0 full, 1 none")
    recipe.add_argument(
        "--regression-weight", type=float, default=0.0, help="weight of a smooth-L1 term on the mean colour"
    )
    recipe.add_argument("--hint-weight", type=float, default=4.0, help="extra loss weight at and around hints")
    recipe.add_argument(
        "--cutout-probability",
        type=float,
        default=0.5,
        help="share of crops with a photo cut-out (DATA/cutouts) pasted on",
    )
    recipe.add_argument(
        "--min-scale", type=float, default=0.35, help="smallest crop, as a fraction of the shorter side"
    )
    p.add_argument(
        "--global-context",
        action="store_true",
        help="default model: add the whole picture's gist to its deepest features (a network that starts from "
        "--init without one starts with it doing nothing)",
    )
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument(
        "--init",
        metavar="MODEL",
        default="",
        help="start from this network's weights, with a fresh optimizer and schedule, e.g. to fine-tune on "
        "your own photos or under another recipe: another run's checkpoint (best.pt, last.pt), an exported "
        ".onnx with its card, or a bundled model by name (default); of the same model. --resume, once "
        "OUT/last.pt exists, continues this run instead",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    training = training_module("train", "colorit.train.train")
    if training is None:
        return 2
    if not args.steps and not args.minutes:
        print("colorit train: give --steps or --minutes", file=sys.stderr)
        return 2
    for flag, size in (("--crop", args.crop), ("--final-crop", args.final_crop)):
        if size % 32:
            print(f"colorit train: {flag} {size} is not a multiple of 32", file=sys.stderr)
            return 2
    names = {f.name for f in fields(training.TrainConfig)}
    config = training.TrainConfig(**{k: v for k, v in vars(args).items() if k in names})
    try:
        best = training.train(config)
    except ValueError as exc:
        print(f"colorit train: {exc}", file=sys.stderr)
        return 2
    print(f"colorit train: best checkpoint {best}")
    return 0
