"""Issue 21: `--device auto|cpu|cuda` on the command line, in Python and in the server. ONNX Runtime's
CUDA provider runs the model when onnxruntime-gpu is installed; without it (as in CI), cuda falls back
to the CPU with one line. The last test runs only where the CUDA provider is at hand."""

from __future__ import annotations

import warnings

import numpy as np
import onnxruntime
import pytest
from conftest import grey_of, photo_rgb, run_colorit
from fastapi.testclient import TestClient
from PIL import Image
from video_clips import greyed, pan_frames, read_frames, write_film

import colorit
from colorit.errors import ColoritWarning
from colorit.server.app import create_app
from colorit.session import CUDA_PROVIDER

HAS_CUDA_PROVIDER = CUDA_PROVIDER in onnxruntime.get_available_providers()
cpu_only = pytest.mark.skipif(HAS_CUDA_PROVIDER, reason="this ONNX Runtime has the CUDA provider")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    for name in ("coffee", "chelsea"):
        Image.fromarray(grey_of(photo_rgb(name, 64))).save(folder / f"{name}.png")
    return folder


@cpu_only
def test_cuda_without_the_gpu_runtime_falls_back_to_the_cpu_in_one_line(photos, tmp_path):
    result = run_colorit("colorize", str(photos), "-o", str(tmp_path / "cuda"), "--device", "cuda", "--workers", "2")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("colorit: ")]
    assert lines == [
        "colorit: device cuda: this ONNX Runtime has no CUDA provider (pip install 'colorit[gpu]' installs "
        "onnxruntime-gpu); running on the CPU"
    ]
    assert sorted(path.name for path in (tmp_path / "cuda").iterdir()) == ["chelsea.png", "coffee.png"]
    for device in ("cpu", "auto"):
        quiet = run_colorit("colorize", str(photos), "-o", str(tmp_path / device), "--device", device)
        assert quiet.returncode == 0 and "colorit: " not in quiet.stderr, quiet.stderr
        for name in ("chelsea.png", "coffee.png"):  # the same model on the same CPU: the same bytes
            assert (tmp_path / device / name).read_bytes() == (tmp_path / "cuda" / name).read_bytes()
    refused = run_colorit("colorize", str(photos), "-o", str(tmp_path / "x"), "--device", "gpu")
    assert refused.returncode == 2 and "--device" in refused.stderr


@cpu_only
def test_python_films_and_the_server_take_a_device(tmp_path):
    with pytest.warns(ColoritWarning, match="no CUDA provider"):
        session = colorit.load_model("default", device="cuda")
    assert session.device == "cpu"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # cpu and auto say nothing here
        assert colorit.load_model("default", device="cpu") is session
        grey = grey_of(photo_rgb("coffee", 48))
        assert colorit.colorize(grey, device="auto").shape == (*grey.shape, 3)
    frames = greyed(pan_frames("chelsea", 3, (64, 48)))
    film = write_film(tmp_path / "film.mkv", frames, codec="ffv1", pixel_format="bgr0", audio=None)
    with pytest.raises(ValueError, match="auto, cpu, cuda"):
        colorit.colorize(grey, device="gpu")
    with pytest.raises(ValueError, match="auto, cpu, cuda"):
        colorit.colorize_video(film, tmp_path / "refused.mkv", device="gpu")
    assert not (tmp_path / "refused.mkv").exists()
    with pytest.warns(ColoritWarning, match="no CUDA provider"):
        cuda_film = colorit.colorize_video(film, tmp_path / "cuda.mkv", device="cuda")
    cpu_film = colorit.colorize_video(film, tmp_path / "cpu.mkv", device="cpu")
    assert read_frames(cuda_film.path)[0].shape == (48, 64, 3)
    assert [frame.tobytes() for frame in read_frames(cuda_film.path)] == [
        frame.tobytes() for frame in read_frames(cpu_film.path)
    ]  # the fallback is the CPU session itself
    with pytest.warns(ColoritWarning, match="no CUDA provider"), TestClient(create_app(device="cuda")) as client:
        assert client.get("/healthz", headers={"Host": "localhost"}).json()["device"] == "cpu"
    assert "--device" in run_colorit("serve", "--help").stdout


@pytest.mark.skipif(not HAS_CUDA_PROVIDER, reason="needs onnxruntime-gpu (the gpu extra) and a GPU")
def test_cuda_runs_the_model_on_the_gpu_with_the_cpus_result():
    session = colorit.load_model("default", device="cuda")
    assert session.device == "cuda"
    grey = grey_of(photo_rgb("chelsea", 256))
    on_gpu = colorit.colorize(grey, model=session).astype(int)
    on_cpu = colorit.colorize(grey, model=colorit.load_model("default", device="cpu")).astype(int)
    assert np.abs(on_gpu - on_cpu).mean() < 1.0  # float arithmetic differs a little between the two
