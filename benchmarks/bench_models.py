"""Training throughput (images/s at 128 and 256 px, PyTorch on the CPU, with the committed recipe's
encoder setting; for `default` also with the encoder frozen whole and fine-tuned whole, which shows what
running the frozen blocks without autograd saves) and ONNX Runtime inference time (256 and 512 px,
batch 1) for both bundled models on this machine.

    python benchmarks/bench_models.py [--previous OLD.onnx]   # writes benchmarks/results/models.json

The 1 MP time is what a 4:3 one-megapixel photo costs the network at the model's own working size (its
card's, padded to multiples of 32 as the session pads); 384 x 288 times every model at the same size.
--previous times another .onnx file (e.g. the default model before a retraining, with its card beside
it) in the same run.

Medians of several runs: the machine is noisy. Needs the training extra (torch).
"""

from __future__ import annotations

import argparse
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

from colorit.pipeline import working_size
from colorit.session import MODELS_DIR, SIZE_MULTIPLE, cpu_count, load_model
from colorit.train.data import make_batch
from colorit.train.train import (
    ENCODER_MODES,
    Objective,
    TrainConfig,
    build_model,
    frozen_parameter_names,
    set_train_mode,
)

RESULTS = Path(__file__).resolve().parent / "results" / "models.json"
PHOTOS = [skdata.astronaut(), skdata.coffee(), skdata.chelsea(), skdata.rocket()]


def photo_batch(size: int, count: int) -> torch.Tensor:
    """Real photos, resized to size x size and repeated to fill the batch."""
    photos = [np.asarray(Image.fromarray(p).resize((size, size), Image.BICUBIC)) for p in PHOTOS]
    batch = np.stack([photos[i % len(photos)] for i in range(count)])
    return torch.from_numpy(batch).permute(0, 3, 1, 2).float() / 255


def training_images_per_second(name: str, size: int, batch: int, steps: int, encoder: str | None = None) -> float:
    """Images/s of `colorit train`'s step (batch making, forward, backward, AdamW) on real photos, with the
    committed recipe, or with its encoder setting replaced by `encoder`."""
    net = build_model(name)
    recipe = TrainConfig(data="", out="", model=name)
    frozen = frozen_parameter_names(net, encoder or recipe.encoder)
    for parameter_name, parameter in net.named_parameters():
        parameter.requires_grad_(parameter_name not in frozen)
    hint_channels = name == "default"
    objective = Objective(net, torch.ones(len(net.ab_bins)) if hint_channels else None, recipe.hint_weight)
    objective = objective.to(memory_format=torch.channels_last)
    set_train_mode(net, recipe.bn_stats)
    optimizer = torch.optim.AdamW([p for p in objective.parameters() if p.requires_grad], lr=1e-4)
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


INFERENCE_SIZES = {"256": (256, 256), "512": (512, 512), "384x288": (288, 384)}
ONE_MEGAPIXEL = (1155, 866)  # (width, height) of a 4:3 photo of one megapixel


def one_megapixel_input(path: Path) -> tuple[int, int]:
    """(height, width) of the network's input for ONE_MEGAPIXEL at the model's own working size."""
    width, height = working_size(*ONE_MEGAPIXEL, load_model(path, device="cpu").default_render_size)
    return height + -height % SIZE_MULTIPLE, width + -width % SIZE_MULTIPLE


def inference_ms(paths: dict[str, Path], sizes: dict[str, tuple[int, int]], runs: int = 15) -> dict[str, float]:
    """Median ONNX Runtime time of each model at its (height, width) in sizes, the models' runs interleaved
    so that the machine's noise falls on all of them alike (sessions set up as colorit's own: no spinning
    threads)."""
    inputs = {}
    for name, path in paths.items():
        height, width = sizes[name]
        options = ort.SessionOptions()
        options.intra_op_num_threads = cpu_count()
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        x = np.zeros((1, session.get_inputs()[0].shape[1], height, width), np.float32)
        x[0, 0] = np.linspace(-1, 1, height * width, dtype=np.float32).reshape(height, width)
        session.run(None, {"input": x})  # warm-up
        inputs[name] = (session, x)
    timings: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(runs):
        for name, (session, x) in inputs.items():
            started = time.perf_counter()
            session.run(None, {"input": x})
            timings[name].append(time.perf_counter() - started)
    return {name: round(1000 * statistics.median(values), 1) for name, values in timings.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--previous", type=Path, help="another .onnx file to time beside the bundled ones")
    args = parser.parse_args()
    torch.set_num_threads(cpu_count())
    results = {
        "machine": f"{platform.processor() or platform.machine()}, {cpu_count()} CPUs",
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
        "models": {},
    }
    # Inference first: PyTorch's worker threads stay busy for a while after training steps.
    paths = {name: MODELS_DIR / f"{name}.onnx" for name in ("default", "seed-ae")}
    if args.previous:
        paths["previous"] = args.previous
    inference = {label: inference_ms(paths, dict.fromkeys(paths, size)) for label, size in INFERENCE_SIZES.items()}
    own_inputs = {name: one_megapixel_input(path) for name, path in paths.items()}
    inference["1mp"] = inference_ms(paths, own_inputs)
    for name in ("default", "seed-ae"):
        row = {}
        for size, batch, steps in ((128, 16, 4), (256, 8, 3)):
            row[f"train_img_per_s_{size}"] = round(training_images_per_second(name, size, batch, steps), 2)
        if name == "default":
            for encoder in ENCODER_MODES:
                row[f"train_img_per_s_128_encoder_{encoder}"] = round(
                    training_images_per_second(name, 128, 16, 4, encoder), 2
                )
        row |= {f"onnx_ms_{label}": times[name] for label, times in inference.items()}
        row["input_1mp"] = "{1} x {0}".format(*own_inputs[name])
        results["models"][name] = row
        print(name, row, flush=True)
    if args.previous:
        results["previous"] = {
            "file": str(args.previous),
            **{f"onnx_ms_{label}": times["previous"] for label, times in inference.items()},
            "input_1mp": "{1} x {0}".format(*own_inputs["previous"]),
        }
        print("previous", results["previous"], flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
