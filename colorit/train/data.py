"""Training data: images decoded once into memory, random crops made in batches on the training device.

Cropping, scaling, flipping and rotating are one `grid_sample` per batch, and RGB->Lab and hint
simulation run on the batch too, so a GPU is not starved by per-image work on its host's CPU;
the same code runs on the CPU. Decoding at start-up is parallel through DataLoader workers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

GREY_CHROMA = 5.0  # mean ab chroma under which a crop teaches nothing about colour: skipped


@dataclass(frozen=True)
class CorpusDirs:
    """The folders of a corpus built by `colorit corpus build`; any other folder is all training data."""

    train: Path
    val: Path | None = None
    photo_val: Path | None = None  # photos from other sources: picks the checkpoint, never trained on
    cutouts: Path | None = None  # photo objects on transparency, composited onto training crops


def split_dirs(root: Path) -> CorpusDirs:
    if not (root / "train").is_dir():
        return CorpusDirs(root)

    def present(name: str) -> Path | None:
        return root / name if (root / name).is_dir() else None

    return CorpusDirs(root / "train", present("val"), present("photo-val"), present("cutouts"))


class _DecodeDataset(torch.utils.data.Dataset):
    def __init__(self, paths: list[Path], max_side: int, mode: str):
        self.paths, self.max_side, self.mode = paths, max_side, mode

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        try:
            with Image.open(self.paths[i]) as im:
                im = im.convert(self.mode)
                im.thumbnail((self.max_side, self.max_side), Image.LANCZOS)
                return torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1)
        except (OSError, ValueError) as exc:
            print(f"colorit train: {self.paths[i]}: skipped, {exc}")
            return torch.zeros(len(self.mode), 0, 0, dtype=torch.uint8)


def load_images(paths: list[Path], max_side: int, workers: int = 2, mode: str = "RGB") -> list[torch.Tensor]:
    """Decode every image once (uint8 [C, H, W] in Pillow's mode, longer side <= max_side), in parallel."""
    loader = torch.utils.data.DataLoader(
        _DecodeDataset(paths, max_side, mode), batch_size=None, num_workers=workers, shuffle=False
    )
    return [img for img in loader if img.shape[1] >= 32 and img.shape[2] >= 32]


def _padded_stack(images: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Images of different sizes in one zero-padded tensor, and their [H, W] sizes."""
    height = max(img.shape[1] for img in images)
    width = max(img.shape[2] for img in images)
    stack = torch.zeros(len(images), images[0].shape[0], height, width, dtype=torch.uint8)
    for i, img in enumerate(images):
        stack[i, :, : img.shape[1], : img.shape[2]] = img
    sizes = torch.tensor([[img.shape[1], img.shape[2]] for img in images], dtype=torch.float32)
    return stack, sizes


class CropSampler:
    """Random crops at several scales, horizontal flips and small rotations, visiting the images in a
    new random order every epoch. Deterministic under the generator's seed."""

    def __init__(
        self,
        images: list[torch.Tensor],
        device: torch.device,
        seed: int,
        min_scale: float = 0.35,
        max_rotation_deg: float = 10.0,
    ):
        # Each image kept at its own size: padding thousands of landscape and portrait photos to the
        # largest height and width would take five times their memory.
        self.images = [img.to(device) for img in images]
        self.sizes = torch.tensor([[img.shape[1], img.shape[2]] for img in images], dtype=torch.float32)
        self.generator = torch.Generator().manual_seed(seed)
        self.min_scale, self.max_rotation = min_scale, math.radians(max_rotation_deg)
        self.order = torch.empty(0, dtype=torch.long)
        self.epoch = 0

    def _next_indices(self, count: int) -> torch.Tensor:
        while len(self.order) < count:
            self.order = torch.cat([self.order, torch.randperm(len(self.sizes), generator=self.generator)])
            self.epoch += 1
        indices, self.order = self.order[:count], self.order[count:]
        return indices

    def sample(self, count: int, crop: int) -> torch.Tensor:
        """[count, 3, crop, crop] RGB in 0..1 on the sampler's device."""
        idx = self._next_indices(count)
        rand = torch.rand(count, 5, generator=self.generator)
        height, width = self.sizes[idx, 0], self.sizes[idx, 1]
        angle = (rand[:, 0] * 2 - 1) * self.max_rotation
        # A rotated square of side s spans s * (|cos| + |sin|): shrink it so it stays inside the image.
        fit = torch.minimum(height, width) / (angle.cos().abs() + angle.sin().abs())
        side = fit * (self.min_scale + (1 - self.min_scale) * rand[:, 1])
        reach = side * (angle.cos().abs() + angle.sin().abs()) / 2
        cx = reach + (width - 2 * reach) * rand[:, 2]
        cy = reach + (height - 2 * reach) * rand[:, 3]
        flip = torch.where(rand[:, 4] < 0.5, -1.0, 1.0)
        return self._crop(idx, cx, cy, side, angle, flip, crop)

    def center_crops(self, crop: int) -> torch.Tensor:
        """The largest centred square of every image, for validation."""
        idx = torch.arange(len(self.sizes))
        height, width = self.sizes[:, 0], self.sizes[:, 1]
        zeros = torch.zeros(len(idx))
        return self._crop(idx, width / 2, height / 2, torch.minimum(height, width), zeros, zeros + 1, crop)

    def _crop(self, idx, cx, cy, side, angle, flip, crop: int) -> torch.Tensor:
        height, width = self.sizes[idx, 0], self.sizes[idx, 1]
        half = side / 2
        cos, sin = angle.cos(), angle.sin()
        # theta maps output coordinates in [-1, 1] to each image's own normalised coordinates.
        theta = torch.zeros(len(idx), 2, 3)
        theta[:, 0, 0] = flip * cos * half * 2 / width
        theta[:, 0, 1] = -sin * half * 2 / width
        theta[:, 0, 2] = cx * 2 / width - 1
        theta[:, 1, 0] = flip * sin * half * 2 / height
        theta[:, 1, 1] = cos * half * 2 / height
        theta[:, 1, 2] = cy * 2 / height - 1
        device = self.images[0].device
        grid = F.affine_grid(theta.to(device), [len(idx), 3, crop, crop], align_corners=False)
        crops = [
            F.grid_sample(
                self.images[i][None].float() / 255,
                grid[k : k + 1],
                mode="bilinear",
                padding_mode="border",
                align_corners=False,
            )
            for k, i in enumerate(idx.tolist())
        ]
        return torch.cat(crops)


class CutoutCompositor:
    """Pastes photo cut-outs (objects on transparency: fruit, animals, instruments) onto training crops,
    so that objects the photo corpus lacks are seen against photo backgrounds. Each crop gets one with
    the given probability, its longer side spanning a random 30-80 % of the crop, at a random place,
    maybe mirrored; one grid_sample for the batch, as CropSampler does."""

    def __init__(
        self,
        cutouts: list[torch.Tensor],
        device: torch.device,
        probability: float = 0.5,
        scale: tuple[float, float] = (0.3, 0.8),
    ):
        pixels, self.sizes = _padded_stack(cutouts)
        self.pixels = pixels.to(device)  # [K, 4, H, W] RGBA
        self.probability, self.scale = probability, scale

    def __call__(self, rgb: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        count, crop = rgb.shape[0], rgb.shape[-1]
        rand = torch.rand(count, 5, generator=generator)
        chosen = torch.nonzero(rand[:, 0] < self.probability).flatten()
        if not len(chosen):
            return rgb
        idx = torch.randint(len(self.sizes), (len(chosen),), generator=generator)
        height, width = self.sizes[idx, 0], self.sizes[idx, 1]
        span = self.scale[0] + (self.scale[1] - self.scale[0]) * rand[chosen, 1]  # of the crop side
        longer = torch.maximum(height, width)
        # Centre of the cut-out in output coordinates (-1..1), kept inside the crop.
        centre = (rand[chosen, 2:4] * 2 - 1) * (1 - span[:, None])
        flip = torch.where(rand[chosen, 4] < 0.5, -1.0, 1.0)
        full_h, full_w = self.pixels.shape[2], self.pixels.shape[3]
        # Output (xo, yo) -> cut-out pixel (xo - cx) / span * longer / 2 + w / 2 -> padded normalised coords.
        theta = torch.zeros(len(chosen), 2, 3)
        theta[:, 0, 0] = flip * longer / span / full_w
        theta[:, 0, 2] = (-flip * centre[:, 0] * longer / span + width) / full_w - 1
        theta[:, 1, 1] = longer / span / full_h
        theta[:, 1, 2] = (-centre[:, 1] * longer / span + height) / full_h - 1
        device = rgb.device
        grid = F.affine_grid(theta.to(device), [len(chosen), 4, crop, crop], align_corners=False)
        source = self.pixels[idx.to(device)].float() / 255
        pasted = F.grid_sample(source, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        alpha = pasted[:, 3:]
        out = rgb.clone()
        chosen = chosen.to(device)
        out[chosen] = rgb[chosen] * (1 - alpha) + pasted[:, :3] * alpha
        return out


_RGB_TO_XYZ = torch.tensor(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]]
)
_WHITE_D65 = torch.tensor([0.950456, 1.0, 1.088754])


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB [N, 3, H, W] in 0..1 -> CIE Lab (D65), same layout."""
    linear = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = torch.einsum("ij,njhw->nihw", _RGB_TO_XYZ.to(rgb), linear) / _WHITE_D65.to(rgb).view(1, 3, 1, 1)
    f = torch.where(xyz > (6 / 29) ** 3, xyz.clamp_min(1e-12) ** (1 / 3), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return torch.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], 1)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """CIE Lab (D65) [N, 3, H, W] -> sRGB in 0..1 (clipped per channel), the inverse of rgb_to_lab."""
    fy = (lab[:, 0] + 16) / 116
    f = torch.stack([fy + lab[:, 1] / 500, fy, fy - lab[:, 2] / 200], 1)
    xyz = torch.where(f > 6 / 29, f**3, 3 * (6 / 29) ** 2 * (f - 4 / 29)) * _WHITE_D65.to(lab).view(1, 3, 1, 1)
    linear = torch.einsum("ij,njhw->nihw", torch.linalg.inv(_RGB_TO_XYZ).to(lab), xyz).clamp(0, 1)
    return torch.where(linear > 0.0031308, 1.055 * linear.clamp_min(1e-12) ** (1 / 2.4) - 0.055, 12.92 * linear)


def simulate_hints(
    ab: torch.Tensor, generator: torch.Generator, p_none: float = 0.5, p_stop: float = 1 / 8, max_points: int = 32
) -> torch.Tensor:
    """User hints as Zhang et al. 2017 simulate them: per sample, no hints with probability p_none,
    else a geometric number of points, each a square patch of side 1..9 px around a Gaussian-drawn
    location, valued with the mean ground-truth ab inside it. Returns [N, 3, H, W]: a/110, b/110, mask."""
    n, _, height, width = ab.shape
    device = ab.device
    draws = torch.rand(n, max_points + 2, generator=generator)
    active = (draws[:, :max_points] < 1 - p_stop).cumprod(1).bool() & (draws[:, -1:] >= p_none)
    side = torch.randint(1, 10, (n, max_points), generator=generator)
    centre = torch.randn(n, max_points, 2, generator=generator) * torch.tensor([height, width]) / 4
    centre += torch.tensor([height, width]) / 2
    limit = torch.tensor([height, width]).view(1, 1, 2) - side[..., None]
    top_left = (centre - side[..., None] / 2).round().long().clamp(min=0)
    top_left = torch.minimum(top_left, limit).clamp(min=0)
    y0, x0 = top_left[..., 0].to(device), top_left[..., 1].to(device)
    side, active = side.to(device), active.to(device)
    y1, x1 = (y0 + side).clamp(max=height), (x0 + side).clamp(max=width)
    # Patch means from an integral image (float64: sums of ~50k values must not lose the small ones).
    integral = F.pad(ab.double().cumsum(2).cumsum(3), (1, 0, 1, 0))
    batch = torch.arange(n, device=device)[:, None]

    def corner(y, x):
        return integral[batch, :, y, x]  # [N, K, 2]

    area = ((y1 - y0) * (x1 - x0)).clamp(min=1)[..., None]
    means = ((corner(y1, x1) - corner(y0, x1) - corner(y1, x0) + corner(y0, x0)) / area).float()
    rows = torch.arange(height, device=device)
    cols = torch.arange(width, device=device)
    inside = (
        ((rows >= y0[..., None]) & (rows < y1[..., None]))[..., :, None]
        & ((cols >= x0[..., None]) & (cols < x1[..., None]))[..., None, :]
        & active[..., None, None]
    )
    # Where patches overlap the later one wins, as if the user painted over the earlier one.
    order = torch.arange(1, max_points + 1, device=device).view(1, -1, 1, 1)
    winner = (inside * order).amax(1)  # [N, H, W], 0 = no hint
    mask = winner > 0
    chosen = torch.gather(means, 1, (winner.clamp(min=1) - 1).view(n, -1, 1).expand(-1, -1, 2))
    hint_ab = chosen.view(n, height, width, 2).permute(0, 3, 1, 2) * mask[:, None]
    return torch.cat([hint_ab / 110, mask[:, None].float()], 1)


def make_batch(rgb: torch.Tensor, generator: torch.Generator | None, hint_channels: bool, hint_points: int = 0):
    """RGB crops -> (network input, target ab, per-sample weight). Nearly grey crops get weight 0.
    With a generator, hints are simulated as in training, or exactly hint_points per crop when given."""
    lab = rgb_to_lab(rgb)
    L, ab = lab[:, :1], lab[:, 1:]
    net_input = L / 50 - 1
    if hint_channels:
        if generator is None:
            hints = torch.zeros_like(lab)
        elif hint_points:
            hints = simulate_hints(ab, generator, p_none=0.0, p_stop=0.0, max_points=hint_points)
        else:
            hints = simulate_hints(ab, generator)
        net_input = torch.cat([net_input, hints], 1)
    weight = (ab.norm(dim=1).mean((1, 2)) >= GREY_CHROMA).float()
    return net_input, ab, weight
