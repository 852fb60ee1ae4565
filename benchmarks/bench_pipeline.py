"""Pipeline speed and memory on this machine, for every bundled model at its default render size.

1. a 1-megapixel greyscale JPEG end to end (decode, colorize, encode PNG): median of N runs;
2. a 24-megapixel greyscale JPEG (decode, colorize, encode and write JPEG) in a child process:
   wall time and the child's peak resident memory (from wait4's rusage);
3. `colorit colorize` over a folder of 100 one-megapixel JPEGs with --workers 2: images per second.

Inputs are made from the photos in the Python wheels in a temporary folder. Writes
benchmarks/results/pipeline.json and prints a table. Usage: python benchmarks/bench_pipeline.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from colorit.api import colorize_picture  # noqa: E402
from colorit.encoding import encode_image, write_image  # noqa: E402
from colorit.io import cpu_count, read_image  # noqa: E402
from colorit.session import list_models, load_model  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "pipeline.json"
TARGETS = {"one_mp_png_ms": 150, "big_jpeg_s": 3.0, "big_jpeg_peak_mb": 2048, "folder_images_per_s": 8}


def wheel_photos() -> list[np.ndarray]:
    from matplotlib import cbook
    from skimage import data
    from sklearn.datasets import load_sample_image

    with cbook.get_sample_data("grace_hopper.jpg") as stream:
        hopper = np.asarray(Image.open(stream).convert("RGB"))
    return [data.astronaut(), data.coffee(), data.chelsea(), load_sample_image("china.jpg"), hopper]


def grey_photo(rgb: np.ndarray, size: tuple[int, int], flip: bool = False) -> Image.Image:
    image = Image.fromarray(rgb).convert("L").resize(size, Image.Resampling.BICUBIC)
    return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if flip else image


def big_photo(photos: list[np.ndarray], size=(6000, 4000)) -> Image.Image:
    """A 24-megapixel grey mosaic: 3 x 2 tiles of upscaled wheel photos."""
    canvas = Image.new("L", size)
    tile = (size[0] // 3, size[1] // 2)
    for i in range(6):
        canvas.paste(
            grey_photo(photos[i % len(photos)], tile, flip=i >= len(photos)), ((i % 3) * tile[0], (i // 3) * tile[1])
        )
    return canvas


def one_megapixel_end_to_end(model: str, path: Path, runs: int) -> list[float]:
    session = load_model(model)
    times = []
    for _ in range(runs + 2):  # two warm-up runs
        start = time.perf_counter()
        encode_image(colorize_picture(read_image(path), session), "png")
        times.append(time.perf_counter() - start)
    return times[2:]


def child_big_jpeg(model: str, source: str, target: str) -> None:
    """In the child process: load the model, then time one 24-megapixel file end to end."""
    session = load_model(model)
    start = time.perf_counter()
    write_image(target, colorize_picture(read_image(source), session), overwrite=True)
    print(json.dumps({"seconds": time.perf_counter() - start}))


def big_jpeg_in_child(model: str, source: Path, target: Path) -> tuple[float, float]:
    command = [sys.executable, __file__, "--child-big-jpeg", model, str(source), str(target)]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"24-megapixel child failed for {model}")
    return json.loads(output)["seconds"], usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def folder_throughput(model: str, folder: Path, out: Path, count: int) -> float:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    command = [
        sys.executable,
        "-m",
        "colorit",
        "colorize",
        str(folder),
        "-o",
        str(out),
        "--workers",
        "2",
        "--model",
        model,
    ]
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    return count / (time.perf_counter() - start)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="runs of the 1-megapixel case (median reported)")
    parser.add_argument("--folder-images", type=int, default=100)
    args = parser.parse_args()
    photos = wheel_photos()
    results: dict = {
        "machine": {"cpu": cpu_name(), "cpus": cpu_count(), "python": platform.python_version()},
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "targets": TARGETS,
        "models": {},
    }
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        one_mp = scratch / "one-megapixel.jpg"
        grey_photo(photos[0], (1155, 866)).save(one_mp, quality=92)
        big = scratch / "big.jpg"
        big_photo(photos).save(big, quality=92)
        folder = scratch / "folder"
        folder.mkdir()
        for i in range(args.folder_images):
            grey_photo(photos[i % len(photos)], (1155 + i % 7, 866), flip=bool(i % 2)).save(
                folder / f"{i:03d}.jpg", quality=92
            )
        for card in list_models():
            name = card["name"]
            times = one_megapixel_end_to_end(name, one_mp, args.runs)
            big_seconds, big_peak = big_jpeg_in_child(name, big, scratch / f"big-{name}.jpg")
            rate = folder_throughput(name, folder, scratch / f"out-{name}", args.folder_images)
            results["models"][name] = {
                "architecture": card.get("architecture"),
                "render_size": load_model(name).default_render_size,
                "one_mp_png_ms": {
                    "median": 1000 * statistics.median(times),
                    "min": 1000 * min(times),
                    "runs": len(times),
                },
                "big_jpeg_24mp": {"seconds": big_seconds, "peak_rss_mb": big_peak},
                "folder_100_workers_2_images_per_s": rate,
            }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(
        f"{'model':10} {'render':>6} {'1 MP -> PNG (median ms)':>24} {'24 MP JPEG (s)':>15} {'peak (MB)':>10} {'folder (img/s)':>15}"
    )
    for name, row in results["models"].items():
        print(
            f"{name:10} {row['render_size']:>6} {row['one_mp_png_ms']['median']:>24.0f} {row['big_jpeg_24mp']['seconds']:>15.2f}"
            f" {row['big_jpeg_24mp']['peak_rss_mb']:>10.0f} {row['folder_100_workers_2_images_per_s']:>15.1f}"
        )
    print(
        f"targets: <= {TARGETS['one_mp_png_ms']} ms, <= {TARGETS['big_jpeg_s']} s, < {TARGETS['big_jpeg_peak_mb']} MB, >= {TARGETS['folder_images_per_s']} img/s; written to {RESULTS}"
    )


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child-big-jpeg":
        child_big_jpeg(*sys.argv[2:])
    else:
        main()
