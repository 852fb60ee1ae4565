"""The `seed-ae` model: ColorIt's original autoencoder, reproduced layer for layer as the baseline.

Encoder of 8 and decoder of 5 3x3 'same' ReLU convolutions on L (Wallner's reproduction of Baldassarre
et al. 2017 without the Inception fusion); ab = 128 * tanh(output), trained with MSE on ab/128.
Input: 1 channel, L/50-1; H and W multiples of 8 (the pipeline pads to 32 for every model).
"""

from __future__ import annotations

import torch
from torch import nn

ENCODER = [(64, 2), (128, 1), (128, 2), (256, 1), (256, 2), (512, 1), (512, 1), (256, 1)]  # (channels, stride)
DECODER = [128, "up", 64, "up", 32, 16]


class SeedAutoencoder(nn.Module):
    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = []
        cin = 1
        for cout, stride in ENCODER:
            layers += [nn.Conv2d(cin, cout, 3, stride, padding=1), nn.ReLU(inplace=True)]
            cin = cout
        for item in DECODER:
            if item == "up":
                layers.append(nn.Upsample(scale_factor=2.0, mode="nearest"))
            else:
                layers += [nn.Conv2d(cin, item, 3, padding=1), nn.ReLU(inplace=True)]
                cin = item
        layers += [nn.Conv2d(cin, 2, 3, padding=1), nn.Tanh(), nn.Upsample(scale_factor=2.0, mode="nearest")]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [N, 1, H, W] = L/50-1 -> ab in Lab units."""
        return 128.0 * self.net(x)
