"""`colorit colorize --ray` on a real local Ray instance (2 CPUs, a pool of one actor) and a real S3
endpoint (moto's server on 127.0.0.1), compared byte for byte with `colorit colorize` without --ray."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, grey_of, photo_rgb, run_colorit
from PIL import Image

from colorit.io import ORIENTATION_TAG

ray = pytest.importorskip("ray", reason="needs the ray extra")
moto_server = pytest.importorskip("moto.server", reason="needs moto[server] (the test extra)")
boto3 = pytest.importorskip("boto3")

pytestmark = pytest.mark.ray

SAMPLES = REPO / "colorit" / "samples"


@pytest.fixture(scope="module")
def cluster():
    """One S3 endpoint and one Ray instance for the module. The AWS variables are set before Ray
    starts, so that its workers find the endpoint and credentials in their environment, as the
    nodes of a real cluster would."""
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    saved = dict(os.environ)
    os.environ.update(
        AWS_ENDPOINT_URL=f"http://{host}:{port}",
        AWS_ACCESS_KEY_ID="colorit-test",
        AWS_SECRET_ACCESS_KEY="colorit-test",
        AWS_DEFAULT_REGION="us-east-1",
    )
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
        server.stop()
        os.environ.clear()
        os.environ.update(saved)


def _save_rotated_jpeg(grey: np.ndarray, path: Path) -> None:
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = 6  # stored sideways: to be turned upright by both paths alike
    Image.fromarray(grey).save(path, quality=92, exif=exif.tobytes())


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    """The bundled samples, a 16-bit PNG, an RGBA PNG and an EXIF-rotated JPEG in nested folders,
    plus one damaged file and one hidden file (left out)."""
    root = tmp_path_factory.mktemp("archive")
    shutil.copytree(SAMPLES, root / "samples", ignore=shutil.ignore_patterns("*.md"))
    scans = root / "scans" / "1923"
    scans.mkdir(parents=True)
    hopper = grey_of(photo_rgb("grace_hopper", 420))
    Image.fromarray(hopper.astype(np.uint16) * 257).save(scans / "deep16.png")
    chelsea = grey_of(photo_rgb("chelsea", 400))
    alpha = np.tile(np.linspace(0, 255, chelsea.shape[1]).astype(np.uint8), (chelsea.shape[0], 1))
    Image.fromarray(np.dstack([chelsea, chelsea, chelsea, alpha]), "RGBA").save(scans / "alpha.png")
    _save_rotated_jpeg(grey_of(photo_rgb("coffee", 300)), root / "scans" / "rotated.jpg")
    good = (root / "samples" / "china.jpg").read_bytes()
    (scans / "broken.jpg").write_bytes(good[: len(good) // 3])
    Image.fromarray(hopper).save(root / "scans" / ".hidden.png")
    return root


@pytest.fixture(scope="module")
def reference(archive, tmp_path_factory) -> Path:
    """What plain `colorit colorize` writes without --ray (one process, all threads)."""
    out = tmp_path_factory.mktemp("reference")
    result = run_colorit("colorize", str(archive), "-o", str(out))
    assert result.returncode == 1, result.stderr  # the damaged file
    return out


def files_below(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


EXPECTED = [
    "samples/astronaut.jpg",
    "samples/chelsea.jpg",
    "samples/china.jpg",
    "samples/coffee.jpg",
    "samples/grace_hopper.jpg",
    "scans/1923/alpha.png",
    "scans/1923/deep16.png",
    "scans/rotated.jpg",
]


def test_ray_writes_the_same_bytes_as_the_local_path_and_reports_a_bad_file(cluster, archive, reference, tmp_path):
    out = tmp_path / "out"
    result = run_colorit("colorize", str(archive), "-o", str(out), "--ray", cluster)
    assert result.returncode == 1, result.stderr
    failures = [line for line in result.stderr.splitlines() if line.startswith("colorit: ")]
    assert len(failures) == 1, result.stderr
    assert failures[0].startswith(f"colorit: {archive / 'scans' / '1923' / 'broken.jpg'}: truncated image file")
    assert "Traceback" not in result.stderr
    assert result.stdout.strip().splitlines()[-1] == f"colorized 8, skipped 0, failed 1 -> {out}"
    written = files_below(out)
    assert sorted(written) == EXPECTED
    assert written == files_below(reference)  # byte for byte: metadata, 16 bits, alpha, orientation
    assert written["scans/1923/deep16.png"][24] == 16  # the PNG header's bit depth
    with (
        Image.open(out / "scans" / "1923" / "alpha.png") as alpha,
        Image.open(out / "scans" / "rotated.jpg") as rotated,
    ):
        assert alpha.mode == "RGBA"
        assert rotated.size == (200, 300)  # turned upright: the stored image is 300 wide


def test_a_killed_job_rerun_does_every_file_once_and_leaves_none_partial(cluster, tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    for i in range(16):
        name = ("astronaut", "coffee", "chelsea", "china")[i % 4]
        Image.fromarray(grey_of(photo_rgb(name, 600 + 8 * i))).save(source / f"{i:02d}-{name}.png")
    reference = tmp_path / "reference"
    assert run_colorit("colorize", str(source), "-o", str(reference), "--workers", "2").returncode == 0
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    job = subprocess.Popen(
        [sys.executable, "-m", "colorit", "colorize", str(source), "-o", str(out), "--ray", cluster],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while len(list(out.glob("*.png"))) < 3 and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    job.send_signal(signal.SIGKILL)
    job.wait()
    done_before = {path.name: path.stat().st_mtime_ns for path in out.glob("*.png")}
    assert 3 <= len(done_before) < 16, "the job was not killed midway"
    # The killed driver's actor goes with it; wait until Ray has ended it (its CPU is free again).
    while ray.available_resources().get("CPU", 0) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)

    existing = len(list(out.glob("*.png")))
    rerun = run_colorit("colorize", str(source), "-o", str(out), "--ray", cluster)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.strip().splitlines()[-1] == f"colorized {16 - existing}, skipped {existing}, failed 0 -> {out}"
    assert {name: out.joinpath(name).stat().st_mtime_ns for name in done_before} == done_before  # not redone
    written = files_below(out)
    # A write cut by the kill can leave only its hidden temporary, never a partial output.
    leftovers = [name for name in written if name.startswith(".")]
    assert all(name.endswith(".colorit-tmp") for name in leftovers), leftovers
    assert {name: data for name, data in written.items() if name not in leftovers} == files_below(reference)


def test_s3_to_s3_round_trip_through_the_environment_credentials(cluster, archive, reference):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="archive")
    inputs = [path for path in archive.rglob("*") if path.is_file() and not path.name.startswith(".")]
    for path in inputs:
        s3.put_object(Bucket="archive", Key=f"scans-1950/{path.relative_to(archive)}", Body=path.read_bytes())

    result = run_colorit("colorize", "s3://archive/scans-1950", "-o", "s3://archive/colour", "--ray", cluster)
    assert result.returncode == 1, result.stderr
    assert "s3://archive/scans-1950/scans/1923/broken.jpg: " in result.stderr
    assert result.stdout.strip().splitlines()[-1] == "colorized 8, skipped 0, failed 1 -> s3://archive/colour"
    # keys ending in "/" are the empty folder markers that S3 tools (pyarrow's too) leave for folders
    listed = [
        item
        for item in s3.list_objects_v2(Bucket="archive", Prefix="colour/")["Contents"]
        if not item["Key"].endswith("/")
    ]
    written = {
        item["Key"].removeprefix("colour/"): s3.get_object(Bucket="archive", Key=item["Key"])["Body"].read()
        for item in listed
    }
    assert written == files_below(reference)

    again = run_colorit("colorize", "s3://archive/scans-1950", "-o", "s3://archive/colour", "--ray", cluster)
    assert again.stdout.strip().splitlines()[-1] == "colorized 0, skipped 8, failed 1 -> s3://archive/colour"


def test_fifos_and_link_loops_are_reported_as_without_ray(cluster, tmp_path):
    """Issue 21: with --ray, FIFOs and link loops were skipped without a word (and a link to a parent
    folder repeated the whole tree below it, once for every level Linux resolves)."""
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    Image.fromarray(grey_of(photo_rgb("coffee", 64))).save(photos / "good.png")
    Image.fromarray(grey_of(photo_rgb("chelsea", 64))).save(photos / "sub" / "cat.png")
    os.mkfifo(photos / "pipe.png")
    os.symlink("loop.jpg", photos / "loop.jpg")
    os.symlink("..", photos / "sub" / "up")
    local = run_colorit("colorize", str(photos), "-o", str(tmp_path / "local"))
    on_ray = run_colorit("colorize", str(photos), "-o", str(tmp_path / "ray"), "--ray", cluster)
    assert (local.returncode, on_ray.returncode) == (1, 1), on_ray.stderr

    def failures(result) -> list[str]:
        return sorted(line.strip() for line in result.stderr.splitlines() if line.strip().startswith("colorit: "))

    assert (
        failures(on_ray)
        == failures(local)
        == [
            f"colorit: {photos / 'loop.jpg'}: cannot open (Too many levels of symbolic links)",
            f"colorit: {photos / 'pipe.png'}: not a regular file",
        ]
    )
    assert on_ray.stdout.strip().splitlines()[-1] == f"colorized 2, skipped 0, failed 2 -> {tmp_path / 'ray'}"
    assert files_below(tmp_path / "ray") == files_below(tmp_path / "local")
    assert sorted(files_below(tmp_path / "ray")) == ["good.png", "sub/cat.png"]


def test_killing_a_driver_that_started_ray_leaves_no_ray_process(tmp_path):
    """Issue 21: after kill -9 of a `--ray` driver (one that started its own Ray), two Ray agents
    lingered for over a minute; now every process it started ends with it."""
    psutil = pytest.importorskip("psutil")
    source = tmp_path / "in"
    source.mkdir()
    for i in range(24):
        Image.fromarray(grey_of(photo_rgb(("coffee", "chelsea")[i % 2], 400 + 8 * i))).save(source / f"{i:02d}.png")
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    driver = subprocess.Popen(
        [sys.executable, "-m", "colorit", "colorize", str(source), "-o", str(out), "--ray"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300  # Ray's start on a busy 2-CPU machine takes up to a minute
    while not list(out.glob("*.png")) and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    family = psutil.Process(driver.pid).children(recursive=True)
    names = {process.pid: process.name() for process in family}  # while the driver holds them all
    assert "raylet" in names.values() and driver.poll() is None, "the job did not get going"
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    _, alive = psutil.wait_procs(family, timeout=30)
    for straggler in alive:
        straggler.kill()
    assert [names[process.pid] for process in alive] == []
