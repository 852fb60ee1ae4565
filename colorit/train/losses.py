"""Losses. `default`: classification over quantised ab with class rebalancing (Zhang et al. 2016),
which keeps rare saturated colours from being averaged into brown. `seed-ae`: MSE on ab/128."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from colorit.train.data import rgb_to_lab

GRID = 10.0  # ab bin spacing


def ab_bins() -> torch.Tensor:
    """Centres [Q, 2] of the ab grid cells that some sRGB colour falls into (the sRGB gamut)."""
    levels = torch.linspace(0, 1, 48)
    cube = torch.stack(torch.meshgrid(levels, levels, levels, indexing="ij")).reshape(1, 3, -1, 1)
    ab = rgb_to_lab(cube.double())[0, 1:, :, 0].T
    cells = torch.unique(torch.round(ab / GRID), dim=0)
    return (cells * GRID).float()


def _soft_targets(ab: torch.Tensor, bins: torch.Tensor, neighbours: int = 5, sigma: float = 5.0):
    """Each pixel's ab as weights on its nearest bins (Gaussian in distance): [N, K, h, w] indices and weights."""
    dist2 = ((ab[:, None] - bins.view(1, -1, 2, 1, 1)) ** 2).sum(2)  # [N, Q, h, w]
    nearest_d2, nearest = dist2.topk(neighbours, dim=1, largest=False)
    weights = torch.softmax(-nearest_d2 / (2 * sigma**2), dim=1)
    return nearest, weights


def rebalance_weights(ab_samples: torch.Tensor, bins: torch.Tensor, mix: float = 0.5, sigma: float = 5.0):
    """Per-bin loss weights ~ 1 / ((1-mix) * smoothed prior + mix / Q), with expectation 1 under the prior."""
    nearest = ((ab_samples[:, None, :] - bins[None]) ** 2).sum(-1).argmin(1)
    prior = torch.bincount(nearest, minlength=len(bins)).double()
    prior /= prior.sum()
    kernel = torch.exp(-((bins[:, None] - bins[None]) ** 2).sum(-1).double() / (2 * sigma**2))
    smooth = kernel @ prior
    smooth /= smooth.sum()
    weights = 1 / ((1 - mix) * smooth + mix / len(bins))
    return (weights / (smooth * weights).sum()).float()


def hint_neighbourhood(hint_mask: torch.Tensor, size: tuple[int, int], reach: int = 2) -> torch.Tensor:
    """[N, h, w]: 1 at and around (within `reach` cells of) a hinted pixel at the logits' size, else 0."""
    hinted = F.adaptive_max_pool2d(hint_mask, size)
    return F.max_pool2d(hinted, 2 * reach + 1, stride=1, padding=reach)[:, 0]


def classification_loss(
    logits: torch.Tensor,
    ab: torch.Tensor,
    sample_weight: torch.Tensor,
    bins: torch.Tensor,
    class_weight: torch.Tensor,
    pixel_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Rebalanced cross-entropy against soft-encoded targets; logits may be smaller than ab (pooled to fit).
    pixel_weight [N, h, w] (at the logits' size) multiplies the weights, e.g. to stress hinted regions."""
    target = F.adaptive_avg_pool2d(ab, logits.shape[-2:])
    nearest, soft = _soft_targets(target, bins)
    log_probs = torch.log_softmax(logits.float(), dim=1)
    nll = -(torch.gather(log_probs, 1, nearest) * soft).sum(1)  # [N, h, w]
    weight = class_weight[nearest[:, 0]] * sample_weight.view(-1, 1, 1)
    if pixel_weight is not None:
        weight = weight * pixel_weight
    return (nll * weight).sum() / weight.sum().clamp(min=1e-6)


def expected_ab_loss(
    logits: torch.Tensor, ab: torch.Tensor, bins: torch.Tensor, sample_weight: torch.Tensor
) -> torch.Tensor:
    """Smooth L1 (in ab/110 units) between the distribution's mean and the pooled target: a regression
    term that pulls probability mass off colours far from the truth, which cross-entropy alone does not."""
    target = F.adaptive_avg_pool2d(ab, logits.shape[-2:])
    mean = torch.einsum("nqhw,qc->nchw", torch.softmax(logits.float(), dim=1), bins)
    per_sample = F.smooth_l1_loss(mean / 110, target / 110, beta=0.1, reduction="none").mean((1, 2, 3))
    return (per_sample * sample_weight).sum() / sample_weight.sum().clamp(min=1.0)


def regression_loss(pred_ab: torch.Tensor, ab: torch.Tensor, sample_weight: torch.Tensor) -> torch.Tensor:
    """The seed's MSE on ab/128, over the crops that carry colour."""
    per_sample = ((pred_ab.float() - ab) / 128).pow(2).mean((1, 2, 3))
    return (per_sample * sample_weight).sum() / sample_weight.sum().clamp(min=1.0)
