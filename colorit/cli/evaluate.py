"""`colorit evaluate`: measure models on a folder of colour images (and how much simulated hints help)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from colorit.cli import non_negative_int, positive_int


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="measure models on a folder of colour images",
        description="Grey each colour image under DIR (recursively), colorize it with each model and compare "
        "with the original: PSNR, SSIM, CIEDE2000, AuC and saturated AuC of the ab error, colourfulness, "
        "hue-family recall of the saturated pixels and the share of them left grey; "
        "one row per model plus the grey baseline.",
    )
    p.add_argument("--data", required=True, metavar="DIR", help="folder of colour images (recursive)")
    p.add_argument(
        "--model",
        action="extend",
        nargs="+",
        metavar="NAME",
        help="bundled model name or .onnx path (default: all bundled)",
    )
    p.add_argument("--json", metavar="FILE", help="write the per-image numbers and the summary tables here")
    p.add_argument("--render-size", type=positive_int, help="working size of the network (default: each model's)")
    p.add_argument(
        "--eval-size",
        type=positive_int,
        default=512,
        help="longer side images are shrunk to first (default: %(default)s)",
    )
    p.add_argument("--limit", type=positive_int, help="evaluate only the first N images")
    p.add_argument(
        "--hints", type=hint_counts, metavar="N,N,...", help="also simulate N hints per image, e.g. 0,1,2,5,10,20,50"
    )
    p.add_argument(
        "--no-hint-propagation",
        dest="hint_propagation",
        action="store_false",
        help="with --hints: leave the hints to the network alone, without the bilateral propagation",
    )
    p.add_argument(
        "--seed", type=non_negative_int, default=0, help="seed of the hint simulation (default: %(default)s)"
    )
    p.add_argument(
        "--reference",
        metavar="self|DIR|FILE",
        help="also colorize with a reference photo: 'self' (another crop of the ground truth: 60-90 %% of its "
        "area, shifted, maybe mirrored and rescaled), a folder (the best matches among its images) or one image",
    )
    p.add_argument(
        "--update-cards",
        action="store_true",
        help="write the results into the cards of the evaluated bundled models, as their validation "
        "(--data CORPUS/val), photo_validation (CORPUS/photo-val/photo-library) or package_photo_validation "
        "(CORPUS/photo-val/package) table",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def hint_counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas, not {text!r}") from None
    if not counts or min(counts) < 0:
        raise argparse.ArgumentTypeError(f"expected numbers of hints >= 0, not {text!r}")
    return counts


def run(args: argparse.Namespace) -> int:
    from colorit.errors import ColoritError
    from colorit.evaluate import (
        HINT_CURVE_COLUMNS,
        card_keys_for,
        evaluate_folder,
        format_table,
        update_model_cards,
        write_json,
    )
    from colorit.io import find_images

    if args.json and Path(args.json).is_dir():
        print(f"colorit evaluate: {args.json}: is a folder, not a file for --json", file=sys.stderr)
        return 2
    try:
        if args.update_cards:
            card_keys_for(args.data)  # refuse a folder the cards have no place for before the long run
        report = evaluate_folder(
            args.data,
            args.model,
            eval_size=args.eval_size,
            render_size=args.render_size,
            limit=args.limit,
            hint_counts=args.hints,
            seed=args.seed,
            progress=not args.quiet,
            hint_propagation=args.hint_propagation,
            reference=args.reference,
        )
        images = report["images"]
        print(f"{images} image{'s' * (images != 1)} from {args.data}, at most {args.eval_size} px on the longer side")
        print(format_table(report["table"]))
        if "hint_curve" in report:
            print(f"\nwith N simulated hints per image (seed {args.seed})")
            print(format_table(report["hint_curve"], HINT_CURVE_COLUMNS))
        if args.json:
            write_json(args.json, report, protected=find_images(Path(args.data)))
            print(f"wrote {args.json}")
        if args.update_cards:
            for card_path in update_model_cards(report):
                print(f"updated {card_path}")
    except ColoritError as error:
        print(f"colorit evaluate: {error}", file=sys.stderr)
        return 1
    return 0
