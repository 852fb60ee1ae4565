"""Average the weights of checkpoints of one run (as SWA and model soups do): two ends of a run that
started from one network and were each annealed lie in one basin, and their mean is often a better
network than either, at no cost at inference.

usage: python scripts/average_checkpoints.py OUT CHECKPOINT CHECKPOINT [...]

Every floating tensor of the objective (the network's weights, BatchNorm running statistics, the
class weights) is the plain mean of the checkpoints'; integer tensors (BatchNorm's batch counts) and the
run's record (config, step, legs, history) are the latest checkpoint's, and the checkpoints averaged are
recorded under "averaged_from", which `colorit export` writes into the model card. OUT holds no
optimizer state: it can be exported and evaluated, not resumed.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from colorit.train.train import RESUME_ONLY_KEYS, read_checkpoint


def average(checkpoints: list[Path]) -> dict:
    """The averaged state; ValueError naming the file when a checkpoint is of another model or shape."""
    states = {path: read_checkpoint(path) for path in checkpoints}
    latest_path = max(states, key=lambda path: states[path]["step"])
    latest = states[latest_path]
    for path, state in states.items():
        if state["config"]["model"] != latest["config"]["model"]:
            raise ValueError(
                f"{path}: a {state['config']['model']} checkpoint, {latest_path} is {latest['config']['model']}"
            )
        shapes = {key: value.shape for key, value in state["objective"].items()}
        if shapes != {key: value.shape for key, value in latest["objective"].items()}:
            raise ValueError(f"{path}: its weights are not shaped as {latest_path}'s")
    objective = {
        key: torch.stack([state["objective"][key].float() for state in states.values()]).mean(0).to(value.dtype)
        if value.is_floating_point()
        else value
        for key, value in latest["objective"].items()
    }
    record = {key: value for key, value in latest.items() if key not in RESUME_ONLY_KEYS}
    averaged_from = [
        {"checkpoint": str(path), "step": state["step"], "minutes": round(state["elapsed"] / 60, 2)}
        for path, state in states.items()
    ]
    return {**record, "objective": objective, "averaged_from": averaged_from}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("checkpoints", type=Path, nargs="+")
    args = parser.parse_args()
    if len(set(args.checkpoints)) < 2:
        parser.error("give at least two different checkpoints")
    if args.out in args.checkpoints:
        parser.error(f"{args.out}: would overwrite a checkpoint being averaged")
    try:
        state = average(args.checkpoints)
    except ValueError as exc:
        parser.exit(1, f"average_checkpoints: {exc}\n")
    tmp = args.out.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, args.out)
    print(f"{args.out}: the mean of {', '.join(str(path) for path in args.checkpoints)}")


if __name__ == "__main__":
    main()
