"""Reference photos: carry the colours of matching things in a colour photo over to a grey one.

A non-learned exemplar transfer in the manner of He et al. 2018 ("Deep Exemplar-based
Colorization"), without their learned colorization stage (docs/REFERENCE.md says why and what was
measured). Both images are greyed and described at stride 8 by the ImageNet-pretrained
EfficientNet-Lite0 (session.FeatureSession); every position of the input attends to the positions
of the reference(s) by cosine similarity, less a penalty for a difference in brightness (softmax
at a low temperature), and takes their mean ab.
The confidence of a position is how well its best match matches; the pipeline blends the carried
colour with the network's own by it, so that where nothing matches the network's colour stays.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from colorit.color import luminance_L, rgb_to_lab
from colorit.encoding import to_8bit
from colorit.errors import ColoritError, ImageError
from colorit.io import DEFAULT_MAX_PIXELS, find_images, picture_from_pil, read_image
from colorit.session import FeatureSession, load_features

# Softmax temperature over reference positions (cosine similarities lie in about 0.2..1).
TEMPERATURE = 0.02
# Similarity lost per unit of L (0..100) between the brightness of two cells, each relative to its
# photo's mean: 20 L apart costs 0.2.
LUMINANCE_PENALTY = 0.01
# A position whose best similarity is at or below LOW keeps the network's colour; at or above HIGH it
# takes the reference's. Chosen by measurement on val and photo-val (docs/REFERENCE.md).
CONFIDENCE_LOW, CONFIDENCE_HIGH = 0.4, 0.7
# Both photos are matched at most this many pixels on the longer side (the working size when smaller):
# the matching's cost grows with the square of the positions, and the colour is carried at stride 8.
MATCH_SIDE = 256
# Of several references (a folder), the input is matched against this many, the most similar first.
MAX_MATCHED = 3
# A reference whose 99th-percentile chroma is below this has no colour to give (a grey or nearly
# grey photo): it is left out, so that it changes nothing rather than greying the input.
MIN_REFERENCE_CHROMA = 4.0


@dataclass
class Reference:
    """A reference photo described at stride 8 of its working size.

    features: [positions, C] float16 (unit length per position; float16 halves a folder's memory);
    ab: [positions, 2] float32, the mean ab of each stride-8 cell; L: [positions] float32, the mean L
    of each cell less the photo's mean (see _relative_luminance); descriptor: [C] unit-length mean
    of the features, for choosing references from a folder.
    """

    source: str
    features: np.ndarray
    ab: np.ndarray
    L: np.ndarray
    descriptor: np.ndarray
    colourful: bool


@dataclass
class Transfer:
    """Colour carried over at the working size: ab [2, H, W] and its confidence [H, W] in 0..1."""

    ab: np.ndarray
    confidence: np.ndarray


def _rgb8(pixels: np.ndarray) -> np.ndarray | None:
    """HxWx3 uint8 of colour pixels in any dtype colorit takes; None for grey pixels (no colour)."""
    pixels = np.asarray(pixels)
    if pixels.ndim == 2 or pixels.shape[-1] <= 2:
        return None
    rgb = pixels[..., :3]
    if rgb.dtype.kind == "f":
        return (np.clip(np.nan_to_num(rgb), 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
    return to_8bit(rgb)


def _pixels_of(image, max_pixels: int, source: str | None) -> tuple[np.ndarray, str]:
    if isinstance(image, np.ndarray):
        return image, source or "reference"
    if isinstance(image, Image.Image):
        return picture_from_pil(image, source=source or "reference").pixels, source or "reference"
    if isinstance(image, (str, os.PathLike)):
        return read_image(image, max_pixels=max_pixels).pixels, str(image)
    if isinstance(image, (bytes, bytearray, memoryview)) or hasattr(image, "read"):
        picture = read_image(image, max_pixels=max_pixels, name=source or "reference")
        return picture.pixels, picture.source
    raise TypeError(f"a reference is a PIL image, numpy array, bytes, path or file, not {type(image).__name__}")


def describe(
    image, features: FeatureSession, work_side: int, *, max_pixels: int = DEFAULT_MAX_PIXELS, source: str | None = None
) -> Reference:
    """Read (if needed) and describe one reference, matched at match_size(..., work_side)."""
    pixels, source = _pixels_of(image, max_pixels, source)
    if pixels.size == 0:
        raise ImageError(f"{source}: empty image")
    rgb = _rgb8(pixels)
    if rgb is None:  # a grey photo: nothing to carry over, nothing to describe
        nothing = np.zeros((0,), np.float32)
        return Reference(source, nothing.reshape(0, 0), nothing.reshape(0, 2), nothing, nothing, colourful=False)
    size = match_size(rgb.shape[1], rgb.shape[0], work_side)
    lab = rgb_to_lab(np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR, reducing_gap=3.0)))
    maps = features.features(lab[..., 0])
    grid = maps.shape[:2]
    cell_ab = np.stack([_to_grid(lab[..., channel], grid, features.stride) for channel in (1, 2)], axis=-1)
    flat = maps.reshape(-1, maps.shape[-1])
    chroma = np.hypot(lab[..., 1], lab[..., 2])
    return Reference(
        source=source,
        features=flat.astype(np.float16),
        ab=cell_ab.reshape(-1, 2),
        L=_relative_luminance(lab[..., 0], grid, features.stride),
        descriptor=_unit(flat.mean(axis=0)),
        colourful=float(np.percentile(chroma, 99)) >= MIN_REFERENCE_CHROMA,
    )


def match_size(width: int, height: int, work_side: int) -> tuple[int, int]:
    """The size a photo is matched at: longer side work_side but at most MATCH_SIDE, never enlarged."""
    scale = min(1.0, min(work_side, MATCH_SIDE) / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _grey_at(L: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if L.shape[::-1] == size:
        return L
    return np.asarray(Image.fromarray(L, "F").resize(size, Image.Resampling.BILINEAR, reducing_gap=3.0))


def _to_grid(plane: np.ndarray, grid: tuple[int, int], stride: int) -> np.ndarray:
    """Mean of each stride x stride cell (the last row and column of cells may be partial)."""
    height, width = plane.shape
    image = Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32), "F")
    box = (0, 0, grid[1] * stride, grid[0] * stride)
    padded = image.crop(box)  # cells beyond the edge read zeros: rescale by the covered fraction
    cells = np.asarray(padded.resize(grid[::-1], Image.Resampling.BOX))
    covered = np.asarray(
        Image.fromarray(np.ones((height, width), np.float32), "F").crop(box).resize(grid[::-1], Image.Resampling.BOX)
    )
    return cells / np.maximum(covered, 1e-6)


def _relative_luminance(L: np.ndarray, grid: tuple[int, int], stride: int) -> np.ndarray:
    """Each cell's mean L less the photo's mean L: brightness as the scene has it, whatever the exposure."""
    cells = _to_grid(L, grid, stride).reshape(-1)
    return cells - cells.mean()


def _from_grid(cells: np.ndarray, matched: tuple[int, int], work_size: tuple[int, int], stride: int) -> np.ndarray:
    """A stride-8 grid [h, w] of an image matched at size `matched`, brought up to the working size,
    cell centres at their pixels' centres."""
    image = Image.fromarray(np.ascontiguousarray(cells, dtype=np.float32), "F")
    box = (0, 0, matched[0] / stride, matched[1] / stride)
    return np.asarray(image.resize(work_size, Image.Resampling.BILINEAR, box=box))


def describe_all(
    references,
    features: FeatureSession,
    work_side: int,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> list[Reference]:
    """References as given to colorize(): one image or a list of them (Reference objects kept as they are)."""
    items = references if isinstance(references, (list, tuple)) else [references]
    return [
        item if isinstance(item, Reference) else describe(item, features, work_side, max_pixels=max_pixels)
        for item in items
    ]


def describe_folder(
    folder: str | os.PathLike,
    features: FeatureSession,
    work_side: int,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    report=None,
) -> list[Reference]:
    """Every image under folder (recursively) described once. An unreadable image is reported
    through report(message) and left out; raises ImageError when none is usable."""
    folder = Path(folder)
    found = []
    for path in find_images(folder):
        try:
            found.append(describe(path, features, work_side, max_pixels=max_pixels))
        except ColoritError as error:
            if report is not None:
                report(f"reference {error}")
    if not found:
        raise ImageError(f"{folder}: no readable reference images in this folder")
    return found


@functools.lru_cache(maxsize=1)
def reference_pool(
    path: str, work_side: int, threads: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS
) -> tuple[tuple[Reference, ...], tuple[str, ...]]:
    """(the references, the messages about unreadable files) of path: one image, or every image of a
    folder. Cached per process, so a batch describes them once and reuses them for every input."""
    features = load_features(threads)
    problems: list[str] = []
    if Path(path).is_dir():
        found = describe_folder(path, features, work_side, max_pixels=max_pixels, report=problems.append)
        return tuple(found), tuple(problems)
    return (describe(path, features, work_side, max_pixels=max_pixels),), ()


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / max(float(np.linalg.norm(vector)), 1e-12)


def most_similar(queries: np.ndarray, references: list[Reference], count: int = MAX_MATCHED) -> list[Reference]:
    """The colourful references whose global descriptors are closest to that of the input's
    features queries [positions, C], best first."""
    colourful = [reference for reference in references if reference.colourful]
    descriptor = _unit(queries.mean(axis=0))
    scores = [float(reference.descriptor @ descriptor) for reference in colourful]
    return [colourful[i] for i in np.argsort(scores, kind="stable")[::-1][:count]]


def choose_for(
    pixels: np.ndarray, references: list[Reference], *, threads: int | None, work_side: int
) -> list[Reference]:
    """The references transfer() would use for these pixels (of the image to colorize), best first:
    for choosing from a folder once and naming the choice."""
    colour = np.asarray(pixels)
    if colour.ndim == 3 and colour.shape[-1] in (2, 4):  # alpha says nothing about the scene
        colour = colour[..., 0] if colour.shape[-1] == 2 else colour[..., :3]
    L = luminance_L(colour)
    maps = load_features(threads).features(_grey_at(L, match_size(L.shape[1], L.shape[0], work_side)))
    return most_similar(maps.reshape(-1, maps.shape[-1]), references)


def transfer(L_work: np.ndarray, references: list[Reference], features: FeatureSession) -> Transfer | None:
    """The references' colour carried over to the grey working image L_work, or None when no
    reference has colour to give."""
    work_size = L_work.shape[::-1]
    matched = match_size(work_size[0], work_size[1], max(work_size))
    L_match = _grey_at(L_work, matched)
    maps = features.features(L_match)
    grid = maps.shape[:2]
    queries = maps.reshape(-1, maps.shape[-1])
    used = most_similar(queries, references)
    if not used:
        return None
    keys = np.concatenate([reference.features for reference in used]).astype(np.float32)
    values = np.concatenate([reference.ab for reference in used])
    similarity = queries @ keys.T
    # Grey features see a blue sky and a white wall alike; a difference in brightness tells them apart.
    query_L = _relative_luminance(L_match, grid, features.stride)
    key_L = np.concatenate([reference.L for reference in used])
    similarity -= np.abs(query_L[:, None] - key_L[None, :]) * np.float32(LUMINANCE_PENALTY)
    best = similarity.max(axis=1, keepdims=True)
    weights = np.exp((similarity - best) / TEMPERATURE, out=similarity)
    carried = (weights @ values) / weights.sum(axis=1, keepdims=True)
    confidence = np.clip((best[:, 0] - CONFIDENCE_LOW) / (CONFIDENCE_HIGH - CONFIDENCE_LOW), 0.0, 1.0)
    planes = [
        _from_grid(plane.reshape(grid), matched, work_size, features.stride) for plane in (*carried.T, confidence)
    ]
    return Transfer(ab=np.stack(planes[:2]), confidence=np.clip(planes[2], 0.0, 1.0))


def blend_references(
    ab: np.ndarray,
    L_work: np.ndarray,
    references,
    *,
    threads: int | None,
    work_side: int,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> None:
    """Blend the references' carried colour into the network's ab [2, H, W] in place, each position
    by its confidence (nothing changes when no reference has colour to give)."""
    features = load_features(threads)
    carried = transfer(L_work, describe_all(references, features, work_side, max_pixels=max_pixels), features)
    if carried is not None:
        ab += carried.confidence * (carried.ab - ab)
