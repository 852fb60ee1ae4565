"""Shared fixtures: real sample photos from the Python wheels, greyed with their exact luminance."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from colorit.color import lab_planes_to_rgb, luminance_L

REPO = Path(__file__).resolve().parent.parent


@functools.cache
def wheel_photo(name: str) -> np.ndarray:
    if name == "china":
        from sklearn.datasets import load_sample_image

        return load_sample_image("china.jpg")
    if name == "grace_hopper":
        from matplotlib import cbook

        with cbook.get_sample_data("grace_hopper.jpg") as stream:
            return np.asarray(Image.open(stream).convert("RGB"))
    from skimage import data

    return getattr(data, name)()


PHOTO_NAMES = ("astronaut", "coffee", "chelsea", "china", "grace_hopper")
TRAINING_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")  # the last is the tiny corpus's val


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory) -> Path:
    """A tiny corpus of real photos in the layout `colorit corpus build` writes (train/ and val/)."""
    root = tmp_path_factory.mktemp("corpus")
    (root / "train").mkdir()
    (root / "val").mkdir()
    for name in TRAINING_PHOTOS:
        split = "val" if name == TRAINING_PHOTOS[-1] else "train"
        Image.fromarray(wheel_photo(name)).save(root / split / f"{name}.jpg", quality=92)
    return root


def photo_rgb(name: str, longer_side: int = 160) -> np.ndarray:
    """A colour wheel photo (uint8 RGB), downscaled so that its longer side is `longer_side`."""
    rgb = wheel_photo(name)
    height, width = rgb.shape[:2]
    scale = longer_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS))


def grey_of(rgb: np.ndarray, dtype=np.uint8) -> np.ndarray:
    """The black-and-white version of an RGB photo: a grey with the photo's own L*, as uint8/uint16."""
    L = luminance_L(rgb)
    zeros = np.zeros_like(L)
    return lab_planes_to_rgb(L, zeros, zeros, dtype)[..., 0]


def mean_dL(a: np.ndarray, b: np.ndarray) -> float:
    """Mean |L*(a) - L*(b)| of two images (grey or RGB, any supported dtype)."""
    return float(np.abs(luminance_L(a) - luminance_L(b)).mean())


def chroma(rgb: np.ndarray) -> np.ndarray:
    from colorit.color import rgb_to_lab

    lab = rgb_to_lab(rgb)
    return np.hypot(lab[..., 1], lab[..., 2])


def run_colorit(*args: str, cwd: Path | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    """`python -m colorit ARGS` in a fresh process, with this checkout importable."""
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(
        [sys.executable, "-m", "colorit", *args],
        cwd=cwd or REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def default_model():
    from colorit import load_model

    return load_model("default")


@pytest.fixture(scope="session")
def seed_model():
    from colorit import load_model

    return load_model("seed-ae")


@pytest.fixture(scope="session", params=PHOTO_NAMES)
def grey_photo(request) -> np.ndarray:
    """Each wheel photo, small and greyed (uint8 HxW)."""
    return grey_of(photo_rgb(request.param))


def provenance_in(image: Image.Image) -> dict[str, str]:
    """The colorit: properties (and xmp:CreatorTool) of an image file's XMP packet, as Pillow found it
    (JPEG, WebP, PNG, TIFF); {} when there is none."""
    import xml.etree.ElementTree as ElementTree

    from colorit.provenance import XMP_NAMESPACE

    packet = image.info.get("xmp")
    if packet is None:
        return {}
    description = ElementTree.fromstring(packet).find(".//{http://www.w3.org/1999/02/22-rdf-syntax-ns#}Description")
    assert description is not None, packet
    names = {f"{{{XMP_NAMESPACE}}}": "", "{http://ns.adobe.com/xap/1.0/}": "xmp:"}
    found = {}
    for key, value in description.attrib.items():
        for namespace, prefix in names.items():
            if key.startswith(namespace):
                found[prefix + key[len(namespace) :]] = value
    return found


@pytest.fixture(scope="module")
def client():
    """The app in FastAPI's test client (two workers, a queue of four), one for each test module."""
    from fastapi.testclient import TestClient

    from colorit.server.app import create_app

    with TestClient(create_app(workers=2, queue_size=4), base_url="http://localhost") as test_client:
        yield test_client


@pytest.fixture(scope="module")
def grey_png() -> bytes:
    """The astronaut made grey, as PNG bytes to upload."""
    from server_helpers import grey_photo
    from skimage import data

    return grey_photo(data.astronaut(), "PNG")
