"""The training loop, written out: data, model, AdamW with warm-up and cosine decay, validation,
checkpoints and --resume. Runs alone or under `torchrun` (DistributedDataParallel: NCCL on GPUs,
gloo on CPUs). Stops at --steps or when --minutes of training time are spent, whichever comes first.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from colorit.io import find_images
from colorit.train.data import CropSampler, load_images, make_batch, rgb_to_lab, split_dirs
from colorit.train.losses import ab_bins, classification_loss, rebalance_weights, regression_loss
from colorit.train.model_default import ColorUNet, load_pretrained_lite0
from colorit.train.model_seed_ae import SeedAutoencoder

MODELS = ("default", "seed-ae")


@dataclass
class TrainConfig:
    data: str
    out: str
    model: str = "default"
    crop: int = 128
    batch: int = 16
    lr: float = 1e-3
    encoder_lr_scale: float = 0.3  # the pretrained encoder moves slower than the new decoder
    weight_decay: float = 1e-2
    warmup_steps: int = 100
    steps: int = 0  # 0: no step limit (then --minutes must be set)
    minutes: float = 0.0  # 0: no time limit
    val_every: int = 200
    val_crop: int = 224
    max_side: int = 512
    seed: int = 0
    workers: int = 2
    device: str = "auto"
    resume: bool = False


def build_model(name: str) -> nn.Module:
    if name == "default":
        return ColorUNet(ab_bins(), load_pretrained_lite0())
    if name == "seed-ae":
        return SeedAutoencoder()
    raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")


class Objective(nn.Module):
    """Network plus its loss in one forward, so DistributedDataParallel sees the whole step."""

    def __init__(self, net: nn.Module, class_weight: torch.Tensor | None):
        super().__init__()
        self.net = net
        if class_weight is not None:
            self.register_buffer("class_weight", class_weight)

    def forward(self, net_input, ab, weight):
        if isinstance(self.net, ColorUNet):
            return classification_loss(self.net.logits(net_input), ab, weight, self.net.ab_bins, self.class_weight)
        return regression_loss(self.net(net_input), ab, weight)


def _colour_prior(sampler: CropSampler, crop: int, bins: torch.Tensor) -> torch.Tensor:
    """Class-rebalancing weights from the ab distribution of 256 random training crops."""
    ab = rgb_to_lab(sampler.sample(256, crop))[:, 1:, ::4, ::4]
    return rebalance_weights(ab.permute(0, 2, 3, 1).reshape(-1, 2).cpu().float(), bins)


def _distributed() -> tuple[int, int]:
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _device(choice: str) -> torch.device:
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device(choice)


def lr_factor(step: int, progress: float, warmup_steps: int) -> float:
    """Linear warm-up over the first steps, then cosine decay to zero over the run's progress (0..1)."""
    return min(1.0, (step + 1) / max(1, warmup_steps)) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


@torch.no_grad()
def validate(net: nn.Module, objective: Objective, crops: torch.Tensor, hint_channels: bool) -> dict:
    """Loss and quick colour metrics on fixed validation crops, without hints (the automatic case).
    `colorit evaluate` gives the full numbers on the exported model; these track training."""
    net.eval()
    losses, errors, saturated, pred_chroma, true_chroma = [], [], [], [], []
    for start in range(0, len(crops), 16):
        net_input, ab, weight = make_batch(crops[start:start + 16], None, hint_channels)
        losses.append(objective(net_input, ab, torch.ones_like(weight)).item())
        pred = net(net_input).float()
        err = (pred - ab).norm(dim=1).flatten()
        chroma = ab.norm(dim=1).flatten()
        errors.append(err)
        saturated.append(err[chroma >= 20])
        pred_chroma.append(pred.norm(dim=1).mean().item())
        true_chroma.append(chroma.mean().item())
    net.train()

    def auc(e: torch.Tensor) -> float:
        """Mean over thresholds t = 0..150 of the fraction of errors <= t (e <= t iff ceil(e) <= t)."""
        if not len(e):
            return float("nan")
        counts = torch.bincount(e.ceil().clamp(max=151).long(), minlength=152)
        return 100 * (counts.cumsum(0)[:151].double() / len(e)).mean().item()

    return {"val_loss": sum(losses) / len(losses), "auc": auc(torch.cat(errors)),
            "saturated_auc": auc(torch.cat(saturated)), "chroma_ratio": sum(pred_chroma) / max(sum(true_chroma), 1e-6)}


def train(cfg: TrainConfig) -> Path:
    """Train; returns the path of the best checkpoint (lowest validation loss, or the last one)."""
    if not cfg.steps and not cfg.minutes:
        raise ValueError("give --steps or --minutes (or both)")
    rank, world = _distributed()
    device = _device(cfg.device)
    torch.manual_seed(cfg.seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed crop size: let cuDNN pick its fastest kernels
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    train_dir, val_dir = split_dirs(Path(cfg.data))
    train_paths = find_images(train_dir)
    if not train_paths:
        raise ValueError(f"{train_dir}: no images found")
    sampler = CropSampler(load_images(train_paths, cfg.max_side, cfg.workers), device, seed=cfg.seed * 1000 + rank)
    val_crops = None
    val_paths = find_images(val_dir) if val_dir is not None else []
    if val_paths:
        val_images = load_images(val_paths, cfg.max_side, cfg.workers)
        val_crops = CropSampler(val_images, device, seed=cfg.seed).center_crops(cfg.val_crop)
    hint_generator = torch.Generator().manual_seed(cfg.seed * 1000 + rank + 1)

    net = build_model(cfg.model)
    hint_channels = isinstance(net, ColorUNet)
    class_weight = _colour_prior(sampler, cfg.crop, net.ab_bins) if hint_channels else None
    objective = Objective(net, class_weight).to(device).to(memory_format=torch.channels_last)
    encoder_params = [p for n, p in net.named_parameters() if n.startswith(("blocks.", "stem_bn."))]
    other_params = [p for n, p in net.named_parameters() if not n.startswith(("blocks.", "stem_bn."))]
    groups = [{"params": other_params, "lr_scale": 1.0}]
    if encoder_params:
        groups.append({"params": encoder_params, "lr_scale": cfg.encoder_lr_scale})
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)

    step, elapsed, best_loss, history = 0, 0.0, math.inf, []
    last_path, best_path = out / "last.pt", out / "best.pt"
    if cfg.resume and last_path.exists():
        state = torch.load(last_path, map_location=device, weights_only=False)
        objective.load_state_dict(state["objective"])
        optimizer.load_state_dict(state["optimizer"])
        step, elapsed, best_loss, history = state["step"], state["elapsed"], state["best_loss"], state["history"]
        sampler.generator.set_state(state["sampler_rng"][rank % len(state["sampler_rng"])])
        hint_generator.set_state(state["hint_rng"][rank % len(state["hint_rng"])])
        if rank == 0:
            print(f"colorit train: resumed from {last_path} at step {step} ({elapsed / 60:.1f} min)")
    model = objective
    if world > 1:
        model = nn.parallel.DistributedDataParallel(objective, device_ids=[device.index] if device.type == "cuda" else None)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)

    def progress_of(step_now: int, seconds: float) -> float:
        fractions = [step_now / cfg.steps if cfg.steps else 0.0, seconds / (cfg.minutes * 60) if cfg.minutes else 0.0]
        value = torch.tensor([max(fractions)], device=device)
        if world > 1:  # every rank must take the same learning rate and stop at the same step
            dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return value.item()

    def save_checkpoint(path: Path) -> None:
        rngs = [sampler.generator.get_state(), hint_generator.get_state()]
        if world > 1:
            gathered = [None] * world
            dist.all_gather_object(gathered, rngs)
        else:
            gathered = [rngs]
        if rank != 0:
            return
        state = {"objective": objective.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                 "elapsed": elapsed, "best_loss": best_loss, "history": history, "config": asdict(cfg),
                 "sampler_rng": [g[0] for g in gathered], "hint_rng": [g[1] for g in gathered],
                 "world_size": world, "hardware": hardware_description(device)}
        tmp = path.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, path)

    net.train()
    bar = tqdm(total=cfg.steps or None, initial=step, disable=rank != 0, unit="step", dynamic_ncols=True)
    progress = progress_of(step, elapsed)
    window_start, window_images = time.perf_counter(), 0
    # Training time runs from one step's end to the next, so GPU work still queued when a step's
    # Python returns is counted; validation and checkpoints are left out.
    step_end = time.perf_counter()
    while progress < 1.0:
        for group in optimizer.param_groups:
            group["lr"] = cfg.lr * group["lr_scale"] * lr_factor(step, progress, cfg.warmup_steps)
        rgb = sampler.sample(cfg.batch, cfg.crop).contiguous(memory_format=torch.channels_last)
        net_input, ab, weight = make_batch(rgb, hint_generator, hint_channels)
        with amp:
            loss = model(net_input, ab, weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        window_images += cfg.batch * world
        if step % 10 == 0:
            rate = window_images / (time.perf_counter() - window_start)
            window_start, window_images = time.perf_counter(), 0
            bar.set_postfix(loss=f"{loss.item():.4f}", img_s=f"{rate:.1f}", epoch=sampler.epoch)
        bar.update(1)
        elapsed += time.perf_counter() - step_end
        step_end = time.perf_counter()
        progress = progress_of(step, elapsed)  # its .item() waits for the GPU: counted in the next step
        if step % cfg.val_every == 0 or progress >= 1.0:
            record = {"step": step, "minutes": elapsed / 60, "train_loss": loss.item(), "epoch": sampler.epoch}
            if val_crops is not None:
                record |= validate(net, objective, val_crops, hint_channels)
            history.append(record)
            if rank == 0:
                bar.write(json.dumps(record))
            # Without validation data the last checkpoint is the best one known. Rank 0 decides, so
            # that every rank joins the same checkpoint saves.
            current = torch.tensor([record.get("val_loss", -float(step))], device=device)
            if world > 1:
                dist.broadcast(current, src=0)
            save_checkpoint(last_path)
            if current.item() < best_loss:
                best_loss = current.item()
                save_checkpoint(best_path)
            step_end = time.perf_counter()
    bar.close()
    if world > 1:
        dist.destroy_process_group()
    return best_path


def hardware_description(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"
