"""The training tests' run config: small enough for a test (import after pytest.importorskip("torch"))."""

from __future__ import annotations

from pathlib import Path

from colorit.train.train import TrainConfig


def tiny_config(photo_folder: Path, out: Path, model: str, steps: int, resume: bool = False) -> TrainConfig:
    return TrainConfig(
        data=str(photo_folder),
        out=str(out),
        model=model,
        crop=64,
        batch=4,
        steps=steps,
        val_every=2,
        val_crop=64,
        warmup_steps=2,
        workers=0,
        resume=resume,
    )
