"""Checkpoint -> ONNX (opset 17, dynamic height and width) + model card, checked against PyTorch."""

from __future__ import annotations

import copy
import json
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from colorit.errors import ColoritError
from colorit.io import find_images
from colorit.session import DEFAULT_RENDER_SIZE
from colorit.train.corpus import read_manifest, summarise_sources
from colorit.train.data import rgb_to_lab, split_dirs
from colorit.train.model_default import ColorUNet
from colorit.train.photo_library import library_provenance
from colorit.train.train import SNAPSHOTS, build_model, network_weights, read_checkpoint

ARCHITECTURES = {
    "default": "U-Net on the ImageNet-pretrained EfficientNet-Lite0 encoder, which sees L alone (decoder "
    "128/64/64); the ab hint map and mask reach the decoder through a hint attention at 1/16 (queries and "
    "keys from the decoder's features, a learnt distance penalty, a no-hint slot) and pooled at 1/8 and "
    "1/4; 261-bin ab classification at 1/4 resolution with class rebalancing, annealed-mean or dominant "
    "hue-lobe decoding, per-pixel confidence (1 - the distribution's spread around its mean over the uniform "
    "distribution's)",
    "seed-ae": "ColorIt's original autoencoder: 8 conv encoder (64s2,128,128s2,256,256s2,512,512,256), "
    "5 conv decoder (128,up,64,up,32,16,2 tanh,up), MSE on ab/128",
}
PARITY_TOLERANCE = 1e-4
# The photo the ONNX/PyTorch check runs on unless told otherwise: the first bundled sample.
SAMPLES_DIR = Path(__file__).resolve().parent.parent / "samples"
AB_SCALE = 110.0  # the ONNX output is ab / 110 (docs/ARCHITECTURE.md)


class NormalisedOutput(torch.nn.Module):
    """The network as exported: its ab output divided by AB_SCALE, and for networks that predict a
    distribution, its per-pixel confidence as a second output."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if isinstance(self.net, ColorUNet):
            ab, confidence = self.net.predict(x)
            return ab / AB_SCALE, confidence
        return (self.net(x) / AB_SCALE,)


def output_names(net: torch.nn.Module) -> list[str]:
    return ["ab", "confidence"] if isinstance(net, ColorUNet) else ["ab"]


def load_network(
    checkpoint: Path,
    temperature: float | None = None,
    hue_lobe_softness: float | None = None,
    rebalance_undo: float | None = None,
) -> tuple[torch.nn.Module, dict]:
    """The network of a training checkpoint (weights from the checkpoint, nothing downloaded), decoding at
    the given temperature, hue-lobe softness and share of the class rebalancing undone (default: the
    checkpoint's temperature, the annealed mean, as trained)."""
    state = read_checkpoint(checkpoint)
    config = state["config"]
    net = build_model(config["model"], config.get("global_context", False), pretrained=False)
    net.load_state_dict(network_weights(state), strict=True)
    if isinstance(net, ColorUNet):
        if temperature is not None:
            net.temperature.fill_(temperature)
        net.hue_lobe_softness = hue_lobe_softness or 0.0
        if rebalance_undo:
            if "class_weight" not in state["objective"]:
                raise ValueError(f"{checkpoint}: trained without class rebalancing, nothing to undo")
            net.log_class_weight.copy_(state["objective"]["class_weight"].float().log())
        net.rebalance_undo = rebalance_undo or 0.0
    return net.eval(), state


def input_channels(net: torch.nn.Module) -> int:
    return 4 if isinstance(net, ColorUNet) else 1


def network_input(image_path: Path, channels: int, size: int | tuple[int, int] = 256) -> torch.Tensor:
    """A real photo as the network sees it: L/50-1 (and empty hint channels), resized to size x size
    or to (width, height)."""
    width, height = (size, size) if isinstance(size, int) else size
    with Image.open(image_path) as im:
        rgb = np.asarray(im.convert("RGB").resize((width, height), Image.Resampling.BICUBIC), dtype=np.float32) / 255
    L = rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1)[None])[:, :1]
    x = L / 50 - 1
    return torch.cat([x, torch.zeros(1, channels - 1, height, width)], 1) if channels > 1 else x


def decoding_folded(net: torch.nn.Module) -> torch.nn.Module:
    """The network as the ONNX graph computes it: for the default network, a copy whose classifier gives the
    decoding's logits directly. logits / temperature - undo * log(class weight) is affine in the classifier's
    features, so it folds into the 1x1 convolution's weights and bias; the graph then has no elementwise pass
    over every bin of every pixel for it (ONNX Runtime drops the division by the temperature of 1 left)."""
    if not isinstance(net, ColorUNet):
        return net
    folded = copy.deepcopy(net)
    with torch.no_grad():
        temperature = folded.temperature.item()
        folded.classifier.weight.div_(temperature)
        folded.classifier.bias.copy_(folded.classifier.bias / temperature - net.rebalance_undo * net.log_class_weight)
        folded.temperature.fill_(1.0)
    folded.rebalance_undo = 0.0
    return folded


def export_onnx(net: torch.nn.Module, path: Path) -> None:
    """Write the network's ONNX graph (decoding_folded), with dynamic batch, height and width."""
    net = decoding_folded(net)
    channels = input_channels(net)
    dummy = torch.zeros(1, channels, 256, 256)
    tmp = path.with_suffix(".onnx.tmp")
    axes = {0: "batch", 2: "height", 3: "width"}
    names = output_names(net)
    torch.onnx.export(
        NormalisedOutput(net).eval(),
        (dummy,),
        str(tmp),
        input_names=["input"],
        output_names=names,
        dynamic_axes={name: axes for name in ["input", *names]},
        opset_version=17,
        dynamo=False,
    )
    os.replace(tmp, path)


def parity(net: torch.nn.Module, onnx_path: Path, image_path: Path) -> float:
    """Max abs difference of the exported outputs (ab / 110, confidence) between PyTorch and ONNX Runtime
    on a real image, at two sizes to exercise the dynamic axes."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    worst = 0.0
    for size in (256, 320):
        x = network_input(image_path, input_channels(net), size)
        with torch.no_grad():
            expected = [output.numpy() for output in NormalisedOutput(net).eval()(x)]
        got = session.run(output_names(net), {"input": x.numpy()})
        worst = max(worst, *(float(np.abs(g - e).max()) for g, e in zip(got, expected)))
    return worst


def gflops_at_256(net: torch.nn.Module) -> float:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        net(torch.zeros(1, input_channels(net), 256, 256))
    return counter.get_total_flops() / 1e9


# How the card counts images that neither a corpus manifest nor a photo library records.
UNRECORDED = {"source_kind": "unknown", "source": "(no provenance record)", "licence": "unknown"}


def training_sources(data_dir: Path) -> dict:
    """The card's account of the training data: per package or repository, its kind, licences and
    images per split. From data_dir/manifest.csv when data_dir is a corpus (or a compact copy of one);
    otherwise image by image from the folders training reads (train/, val/, photo-val/, cutouts/, or
    the folder itself), by the photo library's manifest for those that are its images (reached through
    links, say), the rest counted as without a provenance record."""
    try:
        return summarise_sources(read_manifest(data_dir / "manifest.csv"))
    except ColoritError:  # no corpus manifest: the photo library's own, or none
        pass
    dirs = split_dirs(data_dir)
    folders = {"train": dirs.train, "val": dirs.val, "photo-val": dirs.photo_val, "cutouts": dirs.cutouts}
    rows = []
    for split, folder in folders.items():
        files = find_images(folder) if folder is not None else []
        recorded = library_provenance(files)
        rows += [{"split": split, **(asdict(recorded[f]) if f in recorded else UNRECORDED)} for f in files]
    return summarise_sources(rows)


RECIPE_KEYS = (
    "encoder",
    "bn_stats",
    "encoder_lr_scale",
    "rebalance",
    "regression_weight",
    "hint_weight",
    "cutout_probability",
    "min_scale",
    "lr",
    "seed",
    "global_context",  # from when the option came; a run from before has none
)


def run_extent(checkpoint: Path, state: dict) -> dict:
    """The budget of the checkpoint's whole run and how far it went, from the last.pt beside it when there is
    one: a run resumed with a longer --minutes after best.pt was saved ran under the later budget, not
    the one best.pt recorded. A snapshot (RUN/snapshots/step-N.pt) finds its run's last.pt a folder up."""
    run_folder = checkpoint.parent.parent if checkpoint.parent.name == SNAPSHOTS else checkpoint.parent
    last = run_folder / "last.pt"
    if last.exists() and not last.samefile(checkpoint):
        state = read_checkpoint(last)
    return {
        "budget": budget_of(state["config"]),
        "run": {"steps": state["step"], "minutes": round(state["elapsed"] / 60, 2)},
        "legs": run_legs(state),
    }


def budget_of(cfg: dict) -> dict:
    """A run's --minutes and --steps (None: no limit)."""
    return {"minutes": cfg.get("minutes") or None, "steps": cfg.get("steps") or None}


LEG_KEYS = ("crop", "final_crop", "final_crop_from", "batch", "lr", "init")


def run_legs(state: dict) -> list[dict] | None:
    """Each `colorit train` of the run up to the checkpoint: the steps and minutes it trained, the settings
    that may change on resuming, and the hardware. None for a run that kept no legs; a leg recorded
    before runs kept their legs has no known start (None)."""
    legs = state.get("legs")
    if legs is None:
        return None
    ends = [(leg["from_step"], leg["from_minutes"]) for leg in legs[1:]] + [(state["step"], state["elapsed"] / 60)]
    return [
        {
            "steps": [leg["from_step"], end_step],
            "minutes": [None if leg["from_minutes"] is None else round(leg["from_minutes"], 2), round(end_minutes, 2)],
            "budget": budget_of(leg["config"]),
            **{key: leg["config"].get(key) for key in LEG_KEYS},  # a run from before --init has no "init"
            "hardware": leg["hardware"],
        }
        for leg, (end_step, end_minutes) in zip(legs, ends)
    ]


def write_card(
    net: torch.nn.Module,
    state: dict,
    run: dict,
    name: str,
    path: Path,
    max_diff: float,
    render_size: int,
    unsure_grey_strength: float | None = None,
    data_dir: Path | None = None,
) -> dict:
    """run: run_extent's account of the whole run. data_dir: the training data to describe (default: the
    folder the checkpoint was trained on)."""
    cfg = state["config"]
    data_dir = data_dir or Path(cfg["data"])
    card = {
        "name": name,
        "architecture": ARCHITECTURES[cfg["model"]],
        "parameters": sum(p.numel() for p in net.parameters()),
        "gflops_256": round(gflops_at_256(net), 3),
        "input_channels": input_channels(net),
        "accepts_hints": input_channels(net) == 4,
        "render_size": render_size,
        "temperature": round(float(net.temperature), 4) if isinstance(net, ColorUNet) else None,
        # 0: ab is the annealed mean; > 0: the mean of the distribution's dominant hue lobe (model_default.py).
        "hue_lobe_softness": net.hue_lobe_softness if isinstance(net, ColorUNet) else None,
        # The power of the class rebalancing weights divided out of the distribution before decoding.
        "rebalance_undo": net.rebalance_undo if isinstance(net, ColorUNet) else None,
        # The pipeline scales ab by confidence ** this: 0 leaves the colour as predicted, larger values
        # lean more towards grey where the network is unsure (only for models with a confidence output).
        "unsure_grey_strength": unsure_grey_strength if isinstance(net, ColorUNet) else None,
        "onnx": {"opset": 17, "max_abs_diff_vs_pytorch": max_diff},
        "training": {
            "data": data_dir.name,
            "sources": training_sources(data_dir),
            "crop": cfg["crop"],
            "batch_per_process": cfg["batch"],
            "processes": state.get("world_size", 1),
            "recipe": {key: cfg[key] for key in RECIPE_KEYS if key in cfg},
            **run,  # budget, run and legs: the whole run's
            "steps": state["step"],
            "minutes": round(state["elapsed"] / 60, 2),  # of the exported checkpoint
            "hardware": state.get("hardware", "unknown"),
            "selected_validation": state["history"][-1] if state["history"] else None,
            # scripts/average_checkpoints.py: the checkpoints whose mean the network is (None: one checkpoint's)
            "averaged_from": state.get("averaged_from"),
        },
        "validation": None,  # filled by `colorit evaluate --update-cards`
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(card, indent=2) + "\n")
    os.replace(tmp, path)
    return card


def export(
    checkpoint: Path,
    name: str,
    out_dir: Path,
    parity_image: Path | None = None,
    temperature: float | None = None,
    render_size: int = DEFAULT_RENDER_SIZE,
    unsure_grey_strength: float | None = None,
    data_dir: Path | None = None,
    hue_lobe_softness: float | None = None,
    rebalance_undo: float | None = None,
) -> dict:
    """Write out_dir/NAME.onnx and NAME.json; refuse (ValueError) when ONNX and PyTorch disagree on
    parity_image (default: the first bundled sample). data_dir: see write_card."""
    net, state = load_network(checkpoint, temperature, hue_lobe_softness, rebalance_undo)
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / f"{name}.onnx"
    export_onnx(net, onnx_path)
    max_diff = parity(net, onnx_path, parity_image or min(SAMPLES_DIR.glob("*.[pj][np]g")))
    if max_diff > PARITY_TOLERANCE:
        onnx_path.unlink()
        raise ValueError(f"{onnx_path}: ONNX output differs from PyTorch by {max_diff:.2e} > {PARITY_TOLERANCE}")
    card_path = out_dir / f"{name}.json"
    run = run_extent(checkpoint, state)
    return write_card(net, state, run, name, card_path, max_diff, render_size, unsure_grey_strength, data_dir)
