"""Training throughput (images/s at 128 and 256 px, PyTorch on the CPU) and ONNX Runtime inference
time (256 and 512 px, batch 1) for both bundled models on this machine.

    python benchmarks/bench_models.py            # writes benchmarks/results/models.json

Medians of several runs: the machine is noisy. Needs the training extra (torch).
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from PIL import Image
from skimage import data as skdata

from colorit.session import MODELS_DIR, cpu_count
from colorit.train.data import make_batch
from colorit.train.train import Objective, build_model

RESULTS = Path(__file__).resolve().parent / "results" / "models.json"
PHOTOS = [skdata.astronaut(), skdata.coffee(), skdata.chelsea(), skdata.rocket()]


def photo_batch(size: int, count: int) -> torch.Tensor:
    """Real photos, resized to size x size and repeated to fill the batch."""
    photos = [np.asarray(Image.fromarray(p).resize((size, size), Image.BICUBIC)) for p in PHOTOS]
    batch = np.stack([photos[i % len(photos)] for i in range(count)])
    return torch.from_numpy(batch).permute(0, 3, 1, 2).float() / 255


def training_images_per_second(name: str, size: int, batch: int, steps: int) -> float:
    net = build_model(name)
    hint_channels = name == "default"
    objective = Objective(net, torch.ones(len(net.ab_bins)) if hint_channels else None)
    objective = objective.to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.AdamW(objective.parameters(), lr=1e-4)
    generator = torch.Generator().manual_seed(0)
    rgb = photo_batch(size, batch).contiguous(memory_format=torch.channels_last)
    timings = []
    for step in range(steps + 1):  # the first step warms up allocators and kernels
        started = time.perf_counter()
        net_input, ab, weight = make_batch(rgb, generator, hint_channels)
        loss = objective(net_input, ab, weight)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step:
            timings.append(time.perf_counter() - started)
    return batch / statistics.median(timings)


def inference_ms(name: str, size: int, runs: int = 7) -> float:
    options = ort.SessionOptions()
    options.intra_op_num_threads = cpu_count()
    session = ort.InferenceSession(str(MODELS_DIR / f"{name}.onnx"), options, providers=["CPUExecutionProvider"])
    channels = session.get_inputs()[0].shape[1]
    x = np.zeros((1, channels, size, size), np.float32)
    x[0, 0] = np.linspace(-1, 1, size * size, dtype=np.float32).reshape(size, size)
    session.run(None, {"input": x})
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        session.run(None, {"input": x})
        timings.append(time.perf_counter() - started)
    return 1000 * statistics.median(timings)


def main() -> None:
    torch.set_num_threads(cpu_count())
    results = {"machine": f"{platform.processor() or platform.machine()}, {cpu_count()} CPUs",
               "torch": torch.__version__, "onnxruntime": ort.__version__, "models": {}}
    for name in ("default", "seed-ae"):
        row = {}
        for size, batch, steps in ((128, 16, 4), (256, 8, 3)):
            row[f"train_img_per_s_{size}"] = round(training_images_per_second(name, size, batch, steps), 2)
        for size in (256, 512):
            row[f"onnx_ms_{size}"] = round(inference_ms(name, size), 1)
        results["models"][name] = row
        print(name, row, flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
