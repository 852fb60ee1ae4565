"""The training loop, written out: data, model, AdamW with warm-up and cosine decay, validation,
checkpoints and --resume. Runs alone or under `torchrun` (DistributedDataParallel: NCCL on GPUs,
gloo on CPUs). Stops at --steps or when --minutes of training time are spent, whichever comes first.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from colorit.errors import ModelNotFound
from colorit.io import find_images
from colorit.session import resolve_model_path
from colorit.train.data import (
    CropSampler,
    CutoutCompositor,
    lab_to_rgb,
    load_images,
    make_batch,
    rgb_to_lab,
    split_dirs,
)
from colorit.train.losses import (
    ab_bins,
    classification_loss,
    expected_ab_loss,
    hint_neighbourhood,
    rebalance_weights,
    regression_loss,
)
from colorit.train.model_default import ColorUNet, load_pretrained_lite0
from colorit.train.model_seed_ae import SeedAutoencoder
from colorit.train.onnx_weights import exported_network_weights, read_exported, recalibrate_batch_norm

MODELS = ("default", "seed-ae")
ENCODER_MODES = ("frozen", "partial", "finetune")
BN_MODES = ("frozen", "updated")
SNAPSHOTS = "snapshots"  # OUT/snapshots/step-NNNNNNN.pt: the weights at every validation
RESUME_ONLY_KEYS = ("optimizer", "sampler_rng", "hint_rng", "sampler_position")
# "partial": the blocks up to stride 16's first stage keep their ImageNet weights; the rest learn.
PARTIAL_FROZEN_BLOCKS = 8
# Crops whose statistics a network started from an exported model gives its BatchNorms (onnx_weights).
RECALIBRATION_CROPS = 64


@dataclass
class TrainConfig:
    data: str
    out: str
    model: str = "default"
    crop: int = 128
    # Small crops first, larger ones late: the same photos seen with more context, once the colours are learnt.
    final_crop: int = 0  # 0: --crop throughout
    final_crop_from: float = 0.75  # share of the run (steps or minutes) after which crops are final_crop
    batch: int = 16
    lr: float = 1e-3
    encoder_lr_scale: float = 0.3  # a fine-tuned encoder moves slower than the new decoder
    # The recipe chosen by the ablations (README): the ImageNet encoder's first blocks and all its BatchNorm
    # statistics kept, so that what it knows about trees and sky survives; its later blocks learn colour.
    encoder: str = "partial"  # frozen | partial | finetune
    bn_stats: str = "frozen"  # frozen | updated: the encoder's BatchNorm running statistics
    rebalance: float = 0.5  # class rebalancing mix: 0 = full inverse prior, 1 = none
    regression_weight: float = 0.0  # extra smooth-L1 term on the distribution's mean
    hint_weight: float = 4.0  # extra loss weight at and around simulated hints
    cutout_probability: float = 0.5  # share of crops that get a photo cut-out pasted on
    min_scale: float = 0.35  # smallest crop side, as a fraction of the image's shorter side
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
    init: str = ""  # a checkpoint, exported model or bundled model whose network the run starts from (not its optimizer or schedule)
    global_context: bool = False  # default model: the whole picture's gist added to its deepest features


def build_model(name: str, global_context: bool = False, pretrained: bool = True) -> nn.Module:
    """The network to train (pretrained: the ImageNet encoder loaded), or, without, one whose weights a
    checkpoint is about to replace."""
    if name == "default":
        encoder = load_pretrained_lite0() if pretrained else None
        return ColorUNet(ab_bins(), encoder, global_context=global_context)
    if name == "seed-ae":
        return SeedAutoencoder()
    raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")


class Objective(nn.Module):
    """Network plus its loss in one forward, so DistributedDataParallel sees the whole step."""

    def __init__(
        self,
        net: nn.Module,
        class_weight: torch.Tensor | None,
        hint_weight: float = 0.0,
        regression_weight: float = 0.0,
    ):
        super().__init__()
        self.net = net
        self.hint_weight, self.regression_weight = hint_weight, regression_weight
        if class_weight is not None:
            self.register_buffer("class_weight", class_weight)

    def forward(self, net_input, ab, weight):
        if not isinstance(self.net, ColorUNet):
            return regression_loss(self.net(net_input), ab, weight)
        return self.classification(self.net.logits(net_input), net_input, ab, weight)

    def classification(self, logits, net_input, ab, weight):
        """The default network's loss from its class scores (validation reuses them for the colour)."""
        pixel_weight = None
        if self.hint_weight:  # hints work through the network only if missing them costs more
            pixel_weight = 1 + self.hint_weight * hint_neighbourhood(net_input[:, 3:4], logits.shape[-2:])
        loss = classification_loss(logits, ab, weight, self.net.ab_bins, self.class_weight, pixel_weight)
        if self.regression_weight:
            loss = loss + self.regression_weight * expected_ab_loss(logits, ab, self.net.ab_bins, weight)
        return loss


def read_checkpoint(checkpoint: Path) -> dict:
    """A training checkpoint's state, on the CPU; ValueError naming the file when it is none.
    weights_only: torch.load refuses anything but tensors and plain data, so a checkpoint runs no code."""
    try:
        return torch.load(checkpoint, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"{checkpoint}: not a weights-only training checkpoint ({reason})") from exc


def network_weights(state: dict) -> dict[str, torch.Tensor]:
    """The network's weights of a checkpoint's state (its objective's "net." entries), floats as float32."""
    return {
        k.removeprefix("net."): v.float() if v.is_floating_point() else v
        for k, v in state["objective"].items()
        if k.startswith("net.")
    }


def initial_weights(checkpoint: Path, model: str) -> dict[str, torch.Tensor]:
    """Another run's network weights, for --init (read before anything is loaded or written, so that a
    wrong file fails at once). The run's own class rebalancing weights stay: they come from its data and
    --rebalance."""
    state = read_checkpoint(checkpoint)
    if state["config"]["model"] != model:
        raise ValueError(f"{checkpoint}: a {state['config']['model']} checkpoint, not {model}")
    return network_weights(state)


def init_source(init: str) -> Path:
    """--init's file: a training checkpoint (.pt) or an exported model (.onnx) by path, or a bundled
    model by name ("default")."""
    if Path(init).suffix == ".pt":
        return Path(init)
    try:
        return resolve_model_path(init)
    except ModelNotFound as exc:
        raise ValueError(str(exc)) from None


def _colour_prior(sampler: CropSampler, crop: int, bins: torch.Tensor, mix: float) -> torch.Tensor:
    """Class-rebalancing weights from the ab distribution of 256 random training crops."""
    ab = rgb_to_lab(sampler.sample(256, crop))[:, 1:, ::4, ::4]
    return rebalance_weights(ab.permute(0, 2, 3, 1).reshape(-1, 2).cpu().float(), bins, mix=mix)


def frozen_parameter_names(net: nn.Module, encoder: str) -> set[str]:
    """Names of the pretrained encoder's parameters (its stem and leading blocks) that keep their ImageNet
    values, and tells the network to run those blocks without gradients."""
    if not isinstance(net, ColorUNet) or encoder == "finetune":
        return set()
    net.frozen_blocks = len(net.blocks) if encoder == "frozen" else PARTIAL_FROZEN_BLOCKS
    prefixes = ("stem.", "stem_bn.", *(f"blocks.{i}." for i in range(net.frozen_blocks)))
    return {name for name, _ in net.named_parameters() if name.startswith(prefixes)}


def set_train_mode(net: nn.Module, bn_stats: str) -> None:
    """net.train(), but with the encoder's BatchNorm layers kept in eval mode when their ImageNet
    statistics are to stay: a few hundred photos would otherwise pull them towards this corpus."""
    net.train()
    if isinstance(net, ColorUNet) and bn_stats == "frozen":
        for module in [net.stem_bn, *net.blocks.modules()]:
            if isinstance(module, nn.BatchNorm2d):
                module.eval()


def selection_score(record: dict) -> float:
    """The rule, fixed before training, that picks the checkpoint to export: on photo-val (photos from
    sources never trained on), the highest hue-family recall among checkpoints whose PSNR is at least
    grey's: the right hue, and no harm per pixel. A checkpoint below grey ranks under every one that is
    not, by how far below it is. Without photo-val, the lowest validation loss; without validation, the
    latest step."""
    if "photo_hue_recall" in record:
        margin = record["photo_psnr"] - record["photo_grey_psnr"]
        return record["photo_hue_recall"] if margin >= 0 else margin - 1000.0
    if "val_loss" in record:
        return -record["val_loss"]
    return float(record["step"])


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


# The decoding the validation measures: the distribution's plain mean, its chroma scaled by confidence ** 1.5
# where the network is unsure (the bundled default's decoding when this rule was fixed). The decoding sweep
# re-chooses both for the exported model; validation keeps one, so that checkpoints compare.
VALIDATION_TEMPERATURE = 1.0
VALIDATION_UNSURE_GREY = 1.5
SATURATED_CHROMA = 20.0  # as colorit.metrics: ground truth that has a colour to get right
NEARLY_GREY_CHROMA = 10.0
HUE_FAMILY_STARTS = (0.0, 50.0, 100.0, 200.0, 290.0)  # degrees, as colorit.metrics.hue_family


def _hue_family(ab: torch.Tensor) -> torch.Tensor:
    hue = torch.rad2deg(torch.atan2(ab[:, 1], ab[:, 0])) % 360
    return torch.bucketize(hue, torch.tensor(HUE_FAMILY_STARTS, device=ab.device), right=True) - 1


def _auc(errors: torch.Tensor) -> float:
    """Mean over thresholds t = 0..150 of the fraction of errors <= t (e <= t iff ceil(e) <= t)."""
    if not len(errors):
        return float("nan")
    counts = torch.bincount(errors.ceil().clamp(max=151).long(), minlength=152)
    return 100 * (counts.cumsum(0)[:151].double() / len(errors)).mean().item()


def _psnr(rgb: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Per image, on 8-bit values as colorit.metrics.psnr."""
    mse = ((rgb - truth) * 255).round().pow(2).mean((1, 2, 3)).clamp_min(1e-10)
    return 10 * torch.log10(255**2 / mse)


def loss_and_validation_colour(
    objective: Objective, net_input: torch.Tensor, ab: torch.Tensor, weight: torch.Tensor
) -> tuple[float, torch.Tensor]:
    """The loss and the network's ab as the validation measures it (VALIDATION_TEMPERATURE and
    VALIDATION_UNSURE_GREY), from one forward pass."""
    net = objective.net
    if not isinstance(net, ColorUNet):
        pred = net(net_input).float()
        return regression_loss(pred, ab, weight).item(), pred
    logits = net.logits(net_input)
    pred, confidence = net.decode(logits, temperature=VALIDATION_TEMPERATURE)
    loss = objective.classification(logits, net_input, ab, weight).item()
    return loss, pred.float() * confidence.float().pow(VALIDATION_UNSURE_GREY)


VALIDATION_HINTS = 10  # simulated hints per photo-val crop for the network-alone hint check


@torch.no_grad()
def validate(objective: Objective, crops: torch.Tensor, hint_channels: bool, hints: int = 0) -> dict:
    """Loss and colour metrics on fixed validation crops, without hints (the automatic case): AuC and
    saturated AuC of the ab error, PSNR of the colorized crop and of the grey one, hue-family recall
    and the ratio of predicted to true chroma, pooled or averaged as `colorit evaluate` does.
    `colorit evaluate` gives the full numbers on the exported model; these track training and pick the
    checkpoint. With hints > 0 every crop gets that many simulated hints (the same under every call),
    which the network alone must follow. Leaves the network in eval mode: the caller restores its
    training mode."""
    objective.net.eval()
    hint_generator = torch.Generator().manual_seed(0) if hints else None
    losses, errors, saturated, psnrs, grey_psnrs = [], [], [], [], []
    matched = truth_saturated = 0
    pred_chroma = true_chroma = 0.0
    for start in range(0, len(crops), 16):
        rgb = crops[start : start + 16]
        net_input, ab, weight = make_batch(rgb, hint_generator, hint_channels, hints)
        loss, pred = loss_and_validation_colour(objective, net_input, ab, torch.ones_like(weight))
        losses.append(loss)
        lab = rgb_to_lab(rgb)
        psnrs.append(_psnr(lab_to_rgb(torch.cat([lab[:, :1], pred], 1)), rgb))
        grey_psnrs.append(_psnr(lab_to_rgb(torch.cat([lab[:, :1], torch.zeros_like(pred)], 1)), rgb))
        err = (pred - ab).norm(dim=1).flatten()
        chroma = ab.norm(dim=1)
        errors.append(err)
        saturated.append(err[chroma.flatten() >= SATURATED_CHROMA])
        is_saturated = chroma >= SATURATED_CHROMA
        right_hue = (_hue_family(pred) == _hue_family(ab)) & (pred.norm(dim=1) >= NEARLY_GREY_CHROMA)
        matched += (right_hue & is_saturated).sum().item()
        truth_saturated += is_saturated.sum().item()
        pred_chroma += pred.norm(dim=1).sum().item()
        true_chroma += chroma.sum().item()
    return {
        "val_loss": sum(losses) / len(losses),
        "auc": _auc(torch.cat(errors)),
        "saturated_auc": _auc(torch.cat(saturated)),
        "psnr": torch.cat(psnrs).mean().item(),
        "grey_psnr": torch.cat(grey_psnrs).mean().item(),
        "hue_recall": 100 * matched / max(truth_saturated, 1),
        "chroma_ratio": pred_chroma / max(true_chroma, 1e-6),
    }


def train(cfg: TrainConfig) -> Path:
    """Train; returns the path of the best checkpoint by selection_score."""
    if not cfg.steps and not cfg.minutes:
        raise ValueError("give --steps or --minutes (or both)")
    rank, world = _distributed()
    device = _device(cfg.device)
    torch.manual_seed(cfg.seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed crop size: let cuDNN pick its fastest kernels
    out = Path(cfg.out)
    last_path, best_path = out / "last.pt", out / "best.pt"
    resuming = cfg.resume and last_path.exists()
    init_weights, exported = None, None
    if cfg.init and not resuming:
        source = init_source(cfg.init)
        if source.suffix == ".onnx":
            exported = read_exported(source, cfg.model)  # its weights once the class weights are known
        else:
            init_weights = initial_weights(source, cfg.model)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.encoder not in ENCODER_MODES or cfg.bn_stats not in BN_MODES:
        raise ValueError(f"encoder must be one of {ENCODER_MODES} and bn_stats one of {BN_MODES}")
    dirs = split_dirs(Path(cfg.data))
    train_paths = find_images(dirs.train)
    if not train_paths:
        raise ValueError(f"{dirs.train}: no images found")
    sampler = CropSampler(
        load_images(train_paths, cfg.max_side, cfg.workers),
        device,
        seed=cfg.seed * 1000 + rank,
        min_scale=cfg.min_scale,
    )
    cutout_paths = find_images(dirs.cutouts) if dirs.cutouts is not None and cfg.cutout_probability else []
    compositor = None
    if cutout_paths:
        cutouts = load_images(cutout_paths, cfg.crop * 2, cfg.workers, mode="RGBA")
        compositor = CutoutCompositor(cutouts, device, cfg.cutout_probability)

    def fixed_crops(folder: Path | None) -> torch.Tensor | None:
        paths = find_images(folder) if folder is not None else []
        if not paths:
            return None
        return CropSampler(load_images(paths, cfg.max_side, cfg.workers), device, seed=cfg.seed).center_crops(
            cfg.val_crop
        )

    val_crops, photo_crops = fixed_crops(dirs.val), fixed_crops(dirs.photo_val)
    hint_generator = torch.Generator().manual_seed(cfg.seed * 1000 + rank + 1)

    net = build_model(cfg.model, cfg.global_context)
    hint_channels = isinstance(net, ColorUNet)
    class_weight = _colour_prior(sampler, cfg.crop, net.ab_bins, cfg.rebalance) if hint_channels else None
    if exported is not None:
        init_weights = exported_network_weights(exported, net, class_weight)
    objective = Objective(net, class_weight, cfg.hint_weight if hint_channels else 0.0, cfg.regression_weight)
    objective = objective.to(device).to(memory_format=torch.channels_last)
    frozen = frozen_parameter_names(net, cfg.encoder)
    encoder_prefixes = ("blocks.", "stem.", "stem_bn.")
    groups = [{"params": [], "lr_scale": 1.0}, {"params": [], "lr_scale": cfg.encoder_lr_scale}]
    for name, parameter in net.named_parameters():
        if name in frozen:
            parameter.requires_grad_(False)
        else:
            groups[name.startswith(encoder_prefixes)]["params"].append(parameter)
    optimizer = torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.lr, weight_decay=cfg.weight_decay)

    step, elapsed, best_score, history, legs = 0, 0.0, -math.inf, [], []
    if init_weights is not None:
        # A global context the --init network lacks starts as built, doing nothing; any other difference
        # between the two networks is an error.
        own = net.state_dict()
        added = {key: own[key] for key in own.keys() - init_weights.keys() if key.startswith("global_context.")}
        net.load_state_dict(init_weights | added, strict=True)
    if exported is not None:
        crops = sampler.sample(RECALIBRATION_CROPS, cfg.crop).contiguous(memory_format=torch.channels_last)
        recalibrate_batch_norm(net, make_batch(crops, None, hint_channels)[0])
    if resuming:
        # Read on the CPU: load_state_dict moves the weights and the optimizer state to the device.
        state = read_checkpoint(last_path)
        objective.load_state_dict(state["objective"])
        optimizer.load_state_dict(state["optimizer"])
        step, elapsed, best_score, history = state["step"], state["elapsed"], state["best_score"], state["history"]
        # A checkpoint from before legs were kept knows only the settings it was last saved under, not
        # the step at which they began.
        legacy = {"from_step": None, "from_minutes": None, "config": state["config"], "hardware": state["hardware"]}
        legs = state.get("legs") or [legacy]
        sampler.generator.set_state(state["sampler_rng"][rank % len(state["sampler_rng"])])
        hint_generator.set_state(state["hint_rng"][rank % len(state["hint_rng"])])
        if "sampler_position" in state:  # where this rank was in its epoch, so that no photo is skipped or repeated
            sampler.epoch, sampler.order = state["sampler_position"][rank % len(state["sampler_position"])]
        if rank == 0:
            print(f"colorit train: resumed from {last_path} at step {step} ({elapsed / 60:.1f} min)")
    # Each `colorit train` of a run is a leg: a run resumed with other settings (larger crops, a longer
    # --minutes, another machine) keeps what each leg trained with.
    legs.append(
        {
            "from_step": step,
            "from_minutes": elapsed / 60,
            "config": asdict(cfg),
            "hardware": hardware_description(device),
        }
    )
    model = objective
    if world > 1:
        model = nn.parallel.DistributedDataParallel(
            objective, device_ids=[device.index] if device.type == "cuda" else None
        )
    amp = (
        torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)
    )

    def progress_of(step_now: int, seconds: float) -> float:
        fractions = [step_now / cfg.steps if cfg.steps else 0.0, seconds / (cfg.minutes * 60) if cfg.minutes else 0.0]
        value = torch.tensor([max(fractions)], device=device)
        if world > 1:  # every rank must take the same learning rate and stop at the same step
            dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return value.item()

    def save_checkpoint(path: Path, resumable: bool = True) -> None:
        """Save the run's state; resumable=False leaves out the optimizer and random streams (a snapshot of
        the weights for later evaluation: `colorit export` reads it as any checkpoint)."""
        rngs = [sampler.generator.get_state(), hint_generator.get_state(), (sampler.epoch, sampler.order)]
        if world > 1:
            gathered = [None] * world
            dist.all_gather_object(gathered, rngs)
        else:
            gathered = [rngs]
        if rank != 0:
            return
        state = {
            "objective": objective.state_dict(),
            "optimizer": optimizer.state_dict(),
            "step": step,
            "elapsed": elapsed,
            "best_score": best_score,
            "history": history,
            "config": asdict(cfg),
            "legs": legs,
            "sampler_rng": [g[0] for g in gathered],
            "hint_rng": [g[1] for g in gathered],
            "sampler_position": [g[2] for g in gathered],
            "world_size": world,
            "hardware": hardware_description(device),
        }
        if not resumable:
            state = {key: value for key, value in state.items() if key not in RESUME_ONLY_KEYS}
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, path)

    if init_weights is not None:
        # The network a run from --init starts as (after its BatchNorm recalibration): what a fine-tune's
        # weights can be averaged back towards (scripts/average_checkpoints.py).
        save_checkpoint(out / SNAPSHOTS / f"step-{step:07d}.pt", resumable=False)
    set_train_mode(net, cfg.bn_stats)
    bar = tqdm(total=cfg.steps or None, initial=step, disable=rank != 0, unit="step", dynamic_ncols=True)
    progress = progress_of(step, elapsed)
    window_start, window_images = time.perf_counter(), 0
    # Training time runs from one step's end to the next, so GPU work still queued when a step's
    # Python returns is counted; validation and checkpoints are left out.
    step_end = time.perf_counter()
    while progress < 1.0:
        for group in optimizer.param_groups:
            group["lr"] = cfg.lr * group["lr_scale"] * lr_factor(step, progress, cfg.warmup_steps)
        crop = cfg.final_crop if cfg.final_crop and progress >= cfg.final_crop_from else cfg.crop
        rgb = sampler.sample(cfg.batch, crop)
        if compositor is not None:
            rgb = compositor(rgb, sampler.generator)
        rgb = rgb.contiguous(memory_format=torch.channels_last)
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
                record |= validate(objective, val_crops, hint_channels)
            if photo_crops is not None:
                photo = validate(objective, photo_crops, hint_channels)
                record |= {f"photo_{key}": value for key, value in photo.items()}
                if hint_channels:
                    hinted = validate(objective, photo_crops, hint_channels, VALIDATION_HINTS)
                    record |= {f"photo_hints{VALIDATION_HINTS}_{k}": hinted[k] for k in ("psnr", "hue_recall")}
            set_train_mode(net, cfg.bn_stats)
            history.append(record)
            if rank == 0:
                bar.write(json.dumps(record))
            # Rank 0 decides, so that every rank joins the same checkpoint saves.
            current = torch.tensor([selection_score(record)], device=device)
            if world > 1:
                dist.broadcast(current, src=0)
            save_checkpoint(last_path)
            save_checkpoint(out / SNAPSHOTS / f"step-{step:07d}.pt", resumable=False)
            if current.item() > best_score:
                best_score = current.item()
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
