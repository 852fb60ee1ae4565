"""An exported model (a bundled one, or any `colorit export` wrote) back into a network that trains:
`colorit train --init default` fine-tunes the shipped weights, on a machine that has no training checkpoint.

The export changes the weights in two ways, both undone here:
- every BatchNorm is fused into the convolution before it. Each pair is split again (`unfused`): the
  convolution's weights at ImageNet's scale in the encoder and at the trained weights' in the decoder,
  its BatchNorm's scale and shift the rest;
- the decoding is folded into the classifier (its scores divided by the temperature, part of the class
  rebalancing subtracted, `export.decoding_folded`). It is unfolded with the card's temperature and share
  undone and the new run's class weights, which come from the same kind of data as the old run's.
A BatchNorm that learns normalises by its batch's statistics, not by the stored ones: recalibrate_batch_norm
then gives every BatchNorm the statistics of real crops, with a scale and shift that keep what it computes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch
from google.protobuf.message import DecodeError
from onnx import numpy_helper
from torch import nn

# What each model's exported graph puts out (export.output_names).
OUTPUTS = {("ab", "confidence"): "default", ("ab",): "seed-ae"}


@dataclass(frozen=True)
class ExportedModel:
    path: Path
    model: str  # "default" or "seed-ae"
    input_channels: int  # L alone, or L and the three hint channels
    global_context: bool
    temperature: float  # folded into the classifier (default model)
    rebalance_undo: float  # the share of class rebalancing folded in (default model)
    weights: dict[str, torch.Tensor]  # the graph's initializers by name
    convolutions: list[tuple[str, str | None]]  # each Conv node's weight and bias initializer, in graph order


def read_exported(path: Path, model: str) -> ExportedModel:
    """The exported model at path (its card beside it: NAME.json), checked to be one of `model`; ValueError
    naming the file when it is not an ONNX model of that kind or its card is missing."""
    try:
        graph = onnx.load(str(path)).graph
    except (OSError, DecodeError) as exc:
        raise ValueError(f"{path}: not an ONNX model ({str(exc).splitlines()[0] or type(exc).__name__})") from None
    kind = OUTPUTS.get(tuple(output.name for output in graph.output))
    if kind != model:
        raise ValueError(f"{path}: {'a ' + kind if kind else 'not a ColorIt'} model, not {model}")
    card_path = path.with_suffix(".json")
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: its model card {card_path.name} is unreadable ({exc})") from None
    convolutions = [
        (node.input[1], node.input[2] if len(node.input) > 2 else None) for node in graph.node if node.op_type == "Conv"
    ]
    return ExportedModel(
        path=path,
        model=kind,
        input_channels=graph.input[0].type.tensor_type.shape.dim[1].dim_value,
        global_context=any(node.name.startswith("/global_context/") for node in graph.node),
        temperature=float(card.get("temperature") or 1.0),
        rebalance_undo=float(card.get("rebalance_undo") or 0.0),
        weights={init.name: torch.from_numpy(numpy_helper.to_array(init).copy()) for init in graph.initializer},
        convolutions=convolutions,
    )


@torch.no_grad()
def forward_in_eval_mode(net: nn.Module, x: torch.Tensor, hooks: list[torch.utils.hooks.RemovableHandle]) -> None:
    """One forward pass of net in eval mode, for what its hooks record; then the hooks are removed and net
    is left in the mode it was in."""
    was_training = net.training
    try:
        net.eval()(x)
    finally:
        for hook in hooks:
            hook.remove()
        net.train(was_training)


def convolutions_in_order(net: nn.Module, input_channels: int) -> list[tuple[str, str | None]]:
    """(name of each convolution, name of the BatchNorm right after it or None), in the order a forward
    pass runs them: the order in which the export traced them into the graph."""
    called: list[tuple[str, nn.Module]] = []
    hooks = [
        module.register_forward_hook(lambda module, inputs, output, name=name: called.append((name, module)))
        for name, module in net.named_modules()
        if isinstance(module, (nn.Conv2d, nn.BatchNorm2d))
    ]
    forward_in_eval_mode(net, torch.zeros(1, input_channels, 64, 64), hooks)
    pairs: list[tuple[str, str | None]] = []
    for (name, module), following in zip(called, [*called[1:], None]):
        if isinstance(module, nn.Conv2d):
            pairs.append((name, following[0] if following and isinstance(following[1], nn.BatchNorm2d) else None))
    return pairs


def exported_network_weights(
    exported: ExportedModel, net: nn.Module, class_weight: torch.Tensor | None
) -> dict[str, torch.Tensor]:
    """The state dict of `net` (built as training builds it, the ImageNet encoder loaded) that computes what the
    exported graph computes, before decoding: BatchNorms unfused, the classifier unfolded (class_weight: the
    new run's rebalancing weights, for the share of them the export subtracted)."""
    state = {key: value.clone() for key, value in net.state_dict().items()}
    if exported.global_context and not any(key.startswith("global_context.") for key in state):
        raise ValueError(f"{exported.path}: has a global context; train with --global-context")
    modules = convolutions_in_order(net, exported.input_channels)
    if len(modules) != len(exported.convolutions):
        raise ValueError(
            f"{exported.path}: {len(exported.convolutions)} convolutions, the {exported.model} network has {len(modules)}"
        )
    taken = set()
    pairs = []
    for (conv, batch_norm), (weight_name, bias_name) in zip(modules, exported.convolutions):
        weight = exported.weights[weight_name]
        bias = exported.weights[bias_name] if bias_name else torch.zeros(len(weight))
        if weight.shape != state[f"{conv}.weight"].shape:
            raise ValueError(
                f"{exported.path}: {conv} is {tuple(weight.shape)}, not {tuple(state[f'{conv}.weight'].shape)}"
            )
        taken |= {weight_name, bias_name}
        if batch_norm is not None:
            pairs.append((conv, batch_norm, weight, bias))
            continue
        state[f"{conv}.weight"] = weight
        if f"{conv}.bias" in state:
            state[f"{conv}.bias"] = bias
        elif bias.any():
            raise ValueError(f"{exported.path}: {conv} has a bias the {exported.model} network has no place for")
    # Parameters outside convolutions (the hint attention's, the global context's) keep their names.
    prefix = "net."
    for name, value in exported.weights.items():
        key = name.removeprefix(prefix)
        if name in taken or not name.startswith(prefix) or key not in state or key == "temperature":
            continue
        if value.shape != state[key].shape:
            raise ValueError(f"{exported.path}: {key} is {tuple(value.shape)}, not {tuple(state[key].shape)}")
        state[key] = value
    if "classifier.weight" in state:
        # export.decoding_folded: weight / T, bias / T - undo * log(class weight)
        bias = state["classifier.bias"]
        if exported.rebalance_undo:
            if class_weight is None:
                raise ValueError(f"{exported.path}: decoded with class rebalancing undone; train with --rebalance < 1")
            bias = bias + exported.rebalance_undo * class_weight.float().log()
        state["classifier.weight"] = state["classifier.weight"] * exported.temperature
        state["classifier.bias"] = bias * exported.temperature
    # The scale of the trained weights the export keeps as they are (the convolutions without a BatchNorm):
    # the decoder's convolutions get it, which their BatchNorms make invisible in the graph (see `unfused`).
    kept = [state[f"{conv}.weight"] for conv, batch_norm in modules if batch_norm is None]
    trained_rms = float(torch.tensor([rms(weight) for weight in kept]).median()) if kept else None
    layers = dict(net.named_modules())
    for conv, batch_norm, weight, bias in pairs:
        target = trained_rms if is_fresh(layers[batch_norm]) else None
        state |= unfused(state, conv, batch_norm, layers[batch_norm].eps, weight, bias, target)
    return state


def rms(tensor: torch.Tensor) -> float:
    return float(tensor.float().pow(2).mean().sqrt())


def is_fresh(batch_norm: nn.BatchNorm2d) -> bool:
    """Whether a BatchNorm is as PyTorch initialises it (not one of the pretrained encoder's)."""
    return bool(
        (batch_norm.weight == 1).all()
        and (batch_norm.bias == 0).all()
        and (batch_norm.running_mean == 0).all()
        and (batch_norm.running_var == 1).all()
    )


def unfused(
    state: dict[str, torch.Tensor],
    conv: str,
    batch_norm: str,
    eps: float,
    weight: torch.Tensor,
    bias: torch.Tensor,
    target_rms: float | None,
) -> dict[str, torch.Tensor]:
    """The convolution's and BatchNorm's entries that compute weight * x + bias (a fused pair) in eval mode.
    The split is free (a BatchNorm undoes any scale of the weights before it) but sets how fast they
    train: an optimizer like Adam moves every weight by about the same amount per step, whatever its size.
    Each output channel's weights get the norm they had as built or, with target_rms, the norm of weights
    of that root-mean-square; the BatchNorm its statistics as built, and its scale and shift the rest. The
    pretrained encoder's then come back at ImageNet's scale (the layers the default never trained exactly
    as ImageNet's) and the decoder's at the scale of the network's other trained weights, which a
    fine-tune moves at the pace it moves those. Fused weights taken as they are (multiplied by their
    BatchNorm's scale over its deviation, 0.05 in some of ImageNet's layers) move many times faster."""
    built = state[f"{conv}.weight"]
    mean, std = state[f"{batch_norm}.running_mean"], (state[f"{batch_norm}.running_var"] + eps).sqrt()
    fused_norm, built_norm = weight.flatten(1).norm(dim=1), built.flatten(1).norm(dim=1)
    if target_rms is not None:
        built_norm = torch.full_like(built_norm, target_rms * built[0].numel() ** 0.5)
    # The sign follows the built weights', so that a layer that was not trained comes back as it was built.
    # A channel without weights (ImageNet's encoder has a few) puts out its shift alone, whatever its scale:
    # it keeps the built one.
    sign = torch.where((weight * built).flatten(1).sum(1) < 0, -1.0, 1.0)
    built_scale = state[f"{batch_norm}.weight"]
    scale = torch.where(
        (fused_norm > 0) & (built_norm > 0),
        std * fused_norm / built_norm.clamp_min(1e-12) * sign,
        torch.where(built_scale != 0, built_scale, std),
    )
    # eval: scale * (w x - mean) / std + shift = weight x + bias
    return {
        f"{conv}.weight": weight * (std / scale).view(-1, *[1] * (weight.dim() - 1)),
        f"{batch_norm}.weight": scale,
        f"{batch_norm}.bias": bias + scale * mean / std,
    }


@torch.no_grad()
def recalibrate_batch_norm(net: nn.Module, net_input: torch.Tensor) -> None:
    """Give every BatchNorm of net the mean and variance of its input over net_input (a batch of real crops
    as the network sees them) as its running statistics, and the scale and shift that keep its output in
    eval mode what it was: a BatchNorm that then normalises by its batch's statistics computes nearly what
    the network did."""
    layers = [module for module in net.modules() if isinstance(module, nn.BatchNorm2d)]
    statistics: dict[nn.BatchNorm2d, tuple[torch.Tensor, torch.Tensor]] = {}

    def record(module: nn.BatchNorm2d, inputs: tuple[torch.Tensor, ...]) -> None:
        x = inputs[0].float()
        statistics[module] = (x.mean((0, 2, 3)), x.var((0, 2, 3), unbiased=False))

    forward_in_eval_mode(net, net_input, [layer.register_forward_pre_hook(record) for layer in layers])
    for layer, (mean, var) in statistics.items():
        # Eval mode computes x * scale + shift; keep both while the statistics change.
        scale = layer.weight / (layer.running_var + layer.eps).sqrt()
        shift = layer.bias - layer.running_mean * scale
        layer.running_mean.copy_(mean)
        layer.running_var.copy_(var)
        layer.weight.copy_(scale * (var + layer.eps).sqrt())
        layer.bias.copy_(shift + mean * scale)
