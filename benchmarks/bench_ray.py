"""`colorit colorize --ray` against `--workers 2` on this machine: 200 one-megapixel JPEGs.

Each run is the whole command in a fresh process, as a user types it: `--ray` starts a local Ray
instance, its actor and the model; `--ray ADDRESS` joins an instance that is already running (as
on a cluster, where `ray start` runs once for all jobs), started here by this script. From the outputs' modification times each run is
split into a fixed start-up cost (command start to first output) and a steady per-image time
(first to last output); the per-image overhead of Ray is the difference of the steady times.
Runs alternate between the two ways, and medians are reported.

Writes benchmarks/results/ray.json. Usage: python benchmarks/bench_ray.py [--images N] [--repeats N]
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ray  # noqa: E402
from bench_pipeline import cpu_name, grey_photo, wheel_photos  # noqa: E402

from colorit.io import cpu_count  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results" / "ray.json"
ONE_MEGAPIXEL = (1155, 866)
TARGET_RATIO = 1.5  # --ray may take at most this times the time of --workers 2


def timed_run(folder: Path, out: Path, how: list[str], count: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    command = [sys.executable, "-m", "colorit", "colorize", str(folder), "-o", str(out), *how]
    start = time.time()
    subprocess.run(command, env=env, check=True, capture_output=True)
    seconds = time.time() - start
    written = sorted(path.stat().st_mtime for path in out.iterdir() if path.is_file())
    if len(written) != count:
        raise RuntimeError(f"{' '.join(how)}: {len(written)} outputs, expected {count}")
    return {
        "seconds": seconds,
        "images_per_s": count / seconds,
        "startup_s": written[0] - start,
        "steady_ms_per_image": 1000 * (written[-1] - written[0]) / (count - 1),
    }


def median_of(runs: list[dict]) -> dict:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]} | {"runs": len(runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2, help="runs of each way (median reported)")
    args = parser.parse_args()
    # The joined instance is started first and idles while the other two ways run, so that the
    # three alternate in every repeat and share the machine's (noisy) load alike.
    ray.init(num_cpus=cpu_count(), include_dashboard=False, log_to_driver=False)
    ways = {
        "workers_2": ["--workers", "2"],
        "ray_local": ["--ray"],
        "ray_joined": ["--ray", ray.get_runtime_context().gcs_address],
    }
    runs: dict[str, list[dict]] = {name: [] for name in ways}
    try:
        with tempfile.TemporaryDirectory() as scratch:
            folder = Path(scratch) / "in"
            folder.mkdir()
            photos = wheel_photos()
            for i in range(args.images):
                photo = grey_photo(photos[i % len(photos)], ONE_MEGAPIXEL, flip=(i // len(photos)) % 2 == 1)
                photo.save(folder / f"{i:04d}.jpg", quality=92)
            for repeat in range(args.repeats):
                for name, how in ways.items():
                    out = Path(scratch) / f"out-{name}-{repeat}"
                    runs[name].append(timed_run(folder, out, how, args.images))
                    print(name, {key: round(value, 3) for key, value in runs[name][-1].items()}, flush=True)
    finally:
        ray.shutdown()
    workers, on_ray, joined = (median_of(runs[name]) for name in ("workers_2", "ray_local", "ray_joined"))
    results = {
        "machine": {"cpu": cpu_name(), "cpus": cpu_count(), "python": platform.python_version()},
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "images": args.images,
        "image_size": list(ONE_MEGAPIXEL),
        "model": "default",
        "workers_2": workers,
        "ray_local": on_ray,
        "ray_joined": joined,
        "ray_local_time_ratio": on_ray["seconds"] / workers["seconds"],
        "ray_joined_time_ratio": joined["seconds"] / workers["seconds"],
        "ray_local_extra_startup_s": on_ray["startup_s"] - workers["startup_s"],
        "ray_joined_extra_startup_s": joined["startup_s"] - workers["startup_s"],
        "ray_overhead_ms_per_image": {
            "ray_local": on_ray["steady_ms_per_image"] - workers["steady_ms_per_image"],
            "ray_joined": joined["steady_ms_per_image"] - workers["steady_ms_per_image"],
        },
        "target_ratio": TARGET_RATIO,
        "ray_local_within_target": on_ray["seconds"] / workers["seconds"] <= TARGET_RATIO,
        "ray_joined_within_target": joined["seconds"] / workers["seconds"] <= TARGET_RATIO,
    }
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
