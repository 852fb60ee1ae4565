"""Shrink training checkpoints to what must travel back from a GPU machine, and restore them here.

pack RUNS OUT [--best-only ROW ...]: for every RUNS/ROW/best.pt (and last.pt), write OUT/ROW.pt holding
the checkpoint's record (config, step, history, ...) and only the weights that differ from the
model's ImageNet starting point, in float16: a frozen encoder is not sent back, and the optimizer
state is dropped (such a checkpoint can be exported and evaluated, not resumed).
unpack PACKED... RUNS: rebuild RUNS/ROW/best.pt and last.pt (where it came back) from the packed files, the unchanged
weights taken from the same pretrained file, so that `colorit export` and benchmarks/ablation.py
read them as they read any checkpoint.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from colorit.train.train import build_model, read_checkpoint

SAME_AS_BEST = "same as best"


def reference_weights(config: dict) -> dict[str, torch.Tensor]:
    """The objective's state as it was before training (pretrained encoder, seeded new layers)."""
    torch.manual_seed(config["seed"])
    return {
        f"net.{k}": v for k, v in build_model(config["model"], config.get("global_context", False)).state_dict().items()
    }


def shrink(state: dict) -> dict:
    reference = reference_weights(state["config"])
    changed = {}
    for key, value in state["objective"].items():
        base = reference.get(key)
        if base is None or base.shape != value.shape or not torch.equal(base, value):
            changed[key] = value.half() if value.is_floating_point() else value
    kept = {k: v for k, v in state.items() if k not in ("objective", "optimizer", "sampler_rng", "hint_rng")}
    return kept | {"changed": changed}


def restore(packed: dict) -> dict:
    objective = reference_weights(packed["config"])
    for key, value in packed["changed"].items():
        base = objective.get(key)
        objective[key] = value.to(base.dtype) if base is not None else value.float()
    return {k: v for k, v in packed.items() if k != "changed"} | {"objective": objective}


def pack(runs: Path, out: Path, best_only: set[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for best_path in sorted(runs.glob("*/best.pt")):
        row = best_path.parent.name
        best = read_checkpoint(best_path)
        last_path = best_path.with_name("last.pt")
        last: dict | str | None = None  # None: left behind
        if row not in best_only and last_path.is_file():
            last = read_checkpoint(last_path)
            last = SAME_AS_BEST if last["step"] == best["step"] else shrink(last)
        torch.save({"best": shrink(best), "last": last}, out / f"{row}.pt")
        print(f"{row}: best step {best['step']}, {(out / f'{row}.pt').stat().st_size / 2**20:.1f} MiB")


def unpack(files: list[Path], runs: Path) -> None:
    for file in files:
        packed = torch.load(file, map_location="cpu", weights_only=True)
        folder = runs / file.stem
        folder.mkdir(parents=True, exist_ok=True)
        best = restore(packed["best"])
        torch.save(best, folder / "best.pt")
        if packed["last"] == SAME_AS_BEST:
            torch.save(best, folder / "last.pt")
        elif packed["last"] is not None:
            torch.save(restore(packed["last"]), folder / "last.pt")
        print(f"{folder}: best step {best['step']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    verbs = parser.add_subparsers(dest="verb", required=True)
    p = verbs.add_parser("pack")
    p.add_argument("runs", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--best-only", nargs="*", default=[], metavar="ROW", help="rows whose last.pt stays behind")
    u = verbs.add_parser("unpack")
    u.add_argument("files", nargs="+", type=Path)
    u.add_argument("runs", type=Path)
    args = parser.parse_args()
    if args.verb == "pack":
        pack(args.runs, args.out, set(args.best_only))
    else:
        unpack(args.files, args.runs)


if __name__ == "__main__":
    main()
