"""`colorit colorize --ray` on folders mixing photos and films: one Ray task per film, on a real local
Ray instance and a real S3 endpoint (moto's server), compared with the local path: photos byte for byte,
films frame by frame (a Ray task gives ONNX Runtime one thread, the local run two; the network's last
float bits then differ, and the coherent mode's motion estimate carries them along the film)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from conftest import grey_of, photo_rgb, run_colorit
from PIL import Image
from test_ray import cluster, files_below  # noqa: F401 - the Ray instance and S3 endpoint fixture
from video_clips import greyed, pan_frames, read_frames, write_film

boto3 = pytest.importorskip("boto3")
pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> Path:
    """A photo, two films (one in a subfolder, with sound) and a film cut off in the middle."""
    root = tmp_path_factory.mktemp("mixed")
    (root / "reels").mkdir()
    Image.fromarray(grey_of(photo_rgb("chelsea", 300))).save(root / "cat.jpg", quality=92)
    write_film(root / "street.mp4", greyed(pan_frames("coffee", 12)))
    whole = write_film(root / "reels" / "garden.mkv", greyed(pan_frames("astronaut", 12)), audio="libopus")
    (root / "reels" / "cut.mkv").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    return root


def assert_same_outputs(written: dict[str, bytes], expected: dict[str, bytes]) -> None:
    """The same files; photos identical, films with the same frames to within a grey level on average."""
    assert sorted(written) == sorted(expected)
    for name, data in written.items():
        if not name.endswith(".mp4"):
            assert data == expected[name], name
            continue
        with tempfile.TemporaryDirectory() as folder:
            ours, theirs = Path(folder) / "ours.mp4", Path(folder) / "theirs.mp4"
            ours.write_bytes(data)
            theirs.write_bytes(expected[name])
            frames, reference = read_frames(ours), read_frames(theirs)
        assert len(frames) == len(reference), name
        difference = np.mean([np.abs(a.astype(float) - b).mean() for a, b in zip(frames, reference)])
        assert difference < 1.0, f"{name}: frames differ by {difference:.2f} on average"


@pytest.fixture(scope="module")
def local(mixed, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("local")
    result = run_colorit("colorize", str(mixed), "-o", str(out))
    assert result.returncode == 1, result.stderr  # the cut film
    return out


def test_films_on_ray_are_the_local_bytes(cluster, mixed, local, tmp_path):  # noqa: F811 - fixture
    out = tmp_path / "out"
    result = run_colorit("colorize", str(mixed), "-o", str(out), "--ray", cluster)
    assert result.returncode == 1, result.stderr
    failures = [line for line in result.stderr.splitlines() if line.startswith("colorit: ")]
    assert len(failures) == 1 and failures[0].startswith(f"colorit: {mixed / 'reels' / 'cut.mkv'}: truncated")
    assert result.stdout.strip().splitlines()[-1] == f"colorized 3, skipped 0, failed 1 -> {out}"
    written = files_below(out)
    assert sorted(written) == ["cat.jpg", "reels/garden.mp4", "street.mp4"]
    assert_same_outputs(written, files_below(local))


def test_films_from_s3_to_s3(cluster, mixed, local):  # noqa: F811 - fixture
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="reels")
    for path in mixed.rglob("*"):
        if path.is_file():
            s3.put_object(Bucket="reels", Key=f"in/{path.relative_to(mixed)}", Body=path.read_bytes())
    result = run_colorit("colorize", "s3://reels/in", "-o", "s3://reels/out", "--ray", cluster)
    assert result.returncode == 1, result.stderr
    assert "s3://reels/in/reels/cut.mkv: truncated" in result.stderr
    listed = [item["Key"] for item in s3.list_objects_v2(Bucket="reels", Prefix="out/")["Contents"]]
    written = {
        key.removeprefix("out/"): s3.get_object(Bucket="reels", Key=key)["Body"].read()
        for key in listed
        if not key.endswith("/")
    }
    assert_same_outputs(written, files_below(local))  # no temporary key left behind either
