"""Export and decoding: ONNX against PyTorch, the confidence, the hue-lobe decoding, the class rebalancing
undone at decoding, and checkpoints packed on a GPU machine and unpacked here."""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="needs the training extra")
pytestmark = pytest.mark.train

from conftest import REPO  # noqa: E402
from train_helpers import tiny_config  # noqa: E402

from colorit.session import DEFAULT_RENDER_SIZE, load_model  # noqa: E402
from colorit.train.export import NormalisedOutput, export, load_network, network_input  # noqa: E402
from colorit.train.losses import ab_bins  # noqa: E402
from colorit.train.model_default import ColorUNet, load_pretrained_lite0  # noqa: E402
from colorit.train.train import PARTIAL_FROZEN_BLOCKS, train  # noqa: E402


@pytest.fixture(scope="module")
def tiny_default_checkpoint(photo_folder, tmp_path_factory) -> Path:
    """A `default` network trained two steps on the tiny corpus: enough to export and compare graphs."""
    return train(tiny_config(photo_folder, tmp_path_factory.mktemp("tiny-default"), "default", steps=2))


def test_export_matches_pytorch_and_takes_any_size(photo_folder, tiny_default_checkpoint, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    checkpoint = tiny_default_checkpoint
    card = export(checkpoint, "tiny", tmp_path / "models", photo_folder / "val" / "rocket.jpg", temperature=0.5)
    assert card["onnx"]["max_abs_diff_vs_pytorch"] <= 1e-4
    assert card["input_channels"] == 4 and card["accepts_hints"] and card["temperature"] == 0.5
    assert card["parameters"] > 3_000_000 and 0.5 < card["gflops_256"] < 10
    session = onnxruntime.InferenceSession(str(tmp_path / "models" / "tiny.onnx"), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).uniform(-1, 1, (1, 4, 96, 160)).astype(np.float32)
    x[:, 1:] = 0
    net, _ = load_network(checkpoint, temperature=0.5)
    with torch.no_grad():
        expected_ab, expected_confidence = (out.numpy() for out in NormalisedOutput(net).eval()(torch.from_numpy(x)))
    ab, confidence = session.run(["ab", "confidence"], {"input": x})
    assert np.abs(ab - expected_ab).max() <= 1e-4
    assert np.abs(confidence - expected_confidence).max() <= 1e-4
    assert confidence.shape == (1, 1, 96, 160) and 0 <= confidence.min() and confidence.max() <= 1


def test_a_global_context_added_by_init_starts_as_nothing_then_learns_and_exports(
    photo_folder, tiny_default_checkpoint, tmp_path
):
    """--global-context from --init of a network without one: at learning rate 0 the context adds nothing
    (its last layer starts at zero; the decoder's BatchNorm statistics still follow the batches); trained,
    it moves, and its ONNX graph matches PyTorch at a size other than the training crop's (the picture's
    mean is taken over whatever size comes in)."""
    onnxruntime = pytest.importorskip("onnxruntime")

    def run(name: str, **changes) -> Path:
        config = tiny_config(photo_folder, tmp_path / name, "default", steps=2)
        changes = {"init": str(tiny_default_checkpoint), "global_context": True} | changes
        train(dataclasses.replace(config, **changes))
        return tmp_path / name / "last.pt"

    x = torch.from_numpy(np.random.default_rng(1).uniform(-1, 1, (1, 4, 96, 160)).astype(np.float32))
    x[:, 1:] = 0

    def ab_of(net: torch.nn.Module) -> np.ndarray:
        with torch.no_grad():
            return NormalisedOutput(net).eval()(x)[0].numpy()

    still, _ = load_network(run("still", lr=0.0))
    with_context = ab_of(still)
    still.global_context = None
    assert np.array_equal(with_context, ab_of(still))
    trained = run("trained")
    context = torch.load(trained, weights_only=True)["objective"]["net.global_context.mlp.2.weight"]
    assert context.abs().max() > 0
    card = export(trained, "context", tmp_path / "models", photo_folder / "val" / "rocket.jpg")
    assert card["onnx"]["max_abs_diff_vs_pytorch"] <= 1e-4 and card["training"]["recipe"]["global_context"]
    session = onnxruntime.InferenceSession(
        str(tmp_path / "models" / "context.onnx"), providers=["CPUExecutionProvider"]
    )
    assert np.abs(session.run(["ab"], {"input": x.numpy()})[0] - ab_of(load_network(trained)[0])).max() <= 1e-4


def test_confidence_is_high_for_one_colour_and_zero_for_all():
    net = ColorUNet(ab_bins(), load_pretrained_lite0()).eval()
    with torch.no_grad():
        net.classifier.weight.zero_()
        net.classifier.bias.zero_()
        _, uniform = net.predict(torch.zeros(1, 4, 64, 64))
        net.classifier.bias[17] = 50.0
        _, peaked = net.predict(torch.zeros(1, 4, 64, 64))
        # Torn between two distant colours (the same mass on two bins far apart): well below sure.
        far = int((net.ab_bins - net.ab_bins[17]).norm(dim=1).argmax())
        net.classifier.bias[far] = 50.0
        _, torn = net.predict(torch.zeros(1, 4, 64, 64))
    assert uniform.abs().max() < 1e-5
    assert peaked.min() > 0.99
    assert torn.max() < 0.2


def nearest_bin(bins: torch.Tensor, a: float, b: float) -> int:
    return int((bins - torch.tensor([a, b])).norm(dim=1).argmin())


def test_hue_lobe_decoding_keeps_the_heavier_colour_where_the_mean_is_an_in_between():
    """A sky torn 60/40 between blue and orange: its annealed mean is a dull in-between; the dominant
    lobe's mean is the blue, and where the two weigh the same the soft choice stays in between (no jump)."""
    net = ColorUNet(ab_bins(), load_pretrained_lite0()).eval()
    blue, orange = nearest_bin(net.ab_bins, -10, -50), nearest_bin(net.ab_bins, 30, 60)

    def decoded(blue_share: float, softness: float) -> np.ndarray:
        net.hue_lobe_softness = softness
        logits = torch.full((1, len(net.ab_bins), 2, 2), -1e4)
        logits[:, blue], logits[:, orange] = math.log(blue_share), math.log(1 - blue_share)
        with torch.no_grad():
            ab, _ = net.decode(logits, temperature=1.0)
        return ab[0, :, 0, 0].numpy()

    mean, lobe = decoded(0.6, 0.0), decoded(0.6, 0.02)
    blue_ab = net.ab_bins[blue].numpy()
    assert np.hypot(*mean) < 0.5 * np.hypot(*blue_ab)  # the in-between: much greyer than either colour
    assert np.abs(lobe - blue_ab).max() < 2.0  # the blue itself
    assert np.abs(decoded(0.4, 0.02) - net.ab_bins[orange].numpy()).max() < 2.0  # the orange wins at 40/60
    assert np.abs(decoded(0.5, 0.02) - decoded(0.5, 0.0)).max() < 2.0  # an even split: the mean, no jump


def test_rebalance_undo_divides_the_class_weights_out_of_the_distribution():
    """Training with class rebalancing teaches the network the true distribution times each bin's weight;
    rebalance_undo 1 divides the weights back out: logits equal to log(weight) (what a network with no idea
    but the weights would say) decode to the uniform distribution, fully unsure, and its mean."""
    net = ColorUNet(ab_bins(), load_pretrained_lite0()).eval()
    weights = torch.linspace(0.5, 4.0, len(net.ab_bins))
    net.log_class_weight.copy_(weights.log())
    logits = weights.log().view(1, -1, 1, 1).expand(1, -1, 2, 2)
    with torch.no_grad():
        boosted_ab, boosted_confidence = net.decode(logits, temperature=1.0)
        net.rebalance_undo = 1.0
        undone_ab, undone_confidence = net.decode(logits, temperature=1.0)
    uniform_mean = net.ab_bins.mean(0).view(1, 2, 1, 1)
    assert (undone_ab - uniform_mean).abs().max() < 1e-3
    assert undone_confidence.abs().max() < 1e-4
    assert (boosted_ab - uniform_mean).abs().max() > 1.0 and boosted_confidence.max() > 0.01


@pytest.mark.parametrize(("option", "value"), [("hue_lobe_softness", 0.05), ("rebalance_undo", 0.5)])
def test_decoding_options_are_in_the_onnx_graph_and_the_card(
    option, value, photo_folder, tiny_default_checkpoint, tmp_path
):
    onnxruntime = pytest.importorskip("onnxruntime")
    card = export(tiny_default_checkpoint, "variant", tmp_path / "models", temperature=0.6, **{option: value})
    assert card[option] == value and card["onnx"]["max_abs_diff_vs_pytorch"] <= 1e-4
    x = network_input(photo_folder / "val" / "rocket.jpg", 4, (160, 96)).numpy()
    path = tmp_path / "models" / "variant.onnx"
    variant_ab, _ = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        ["ab", "confidence"], {"input": x}
    )
    plain, _ = load_network(tiny_default_checkpoint, temperature=0.6)
    with torch.no_grad():
        plain_ab = NormalisedOutput(plain)(torch.from_numpy(x))[0].numpy()
    assert np.abs(variant_ab - plain_ab).max() > 1e-3  # the option is in the graph, not the plain annealed mean


def test_rebalance_undo_takes_the_checkpoints_class_weights(tiny_default_checkpoint):
    net, state = load_network(tiny_default_checkpoint, rebalance_undo=0.5)
    assert net.rebalance_undo == 0.5
    assert torch.equal(net.log_class_weight, state["objective"]["class_weight"].log())


def test_packed_checkpoints_leave_the_frozen_encoder_behind_and_export_after_unpacking(photo_folder, tmp_path):
    """scripts/pack_checkpoints.py: what comes back from a GPU machine is the trained weights in float16;
    unpacked, the checkpoint is the original within float16 rounding and exports like any other."""
    config = tiny_config(photo_folder, tmp_path / "runs" / "recipe", "default", steps=4)
    config.val_every = 1
    train(config)
    original = torch.load(tmp_path / "runs" / "recipe" / "best.pt", weights_only=True)
    script = [sys.executable, str(Path(__file__).resolve().parent.parent / "scripts" / "pack_checkpoints.py")]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    for name, extra in (("packed", []), ("best-only", ["--best-only", "recipe"])):
        subprocess.run([*script, "pack", str(tmp_path / "runs"), str(tmp_path / name), *extra], check=True, env=env)
    packed = torch.load(tmp_path / "packed" / "recipe.pt", weights_only=True)
    frozen = ("net.stem.", "net.stem_bn.", *(f"net.blocks.{i}." for i in range(PARTIAL_FROZEN_BLOCKS)))
    assert not any(key.startswith(frozen) for key in packed["best"]["changed"])
    assert any(key.startswith("net.blocks.") for key in packed["best"]["changed"])  # the trained later blocks
    assert {value.dtype for value in packed["best"]["changed"].values() if value.is_floating_point()} == {torch.float16}
    assert "optimizer" not in packed["best"]
    assert (tmp_path / "packed" / "recipe.pt").stat().st_size < (
        tmp_path / "runs" / "recipe" / "best.pt"
    ).stat().st_size / 4

    subprocess.run(
        [*script, "unpack", str(tmp_path / "packed" / "recipe.pt"), str(tmp_path / "back")], check=True, env=env
    )
    subprocess.run(
        [*script, "unpack", str(tmp_path / "best-only" / "recipe.pt"), str(tmp_path / "back-best")], check=True, env=env
    )
    restored = torch.load(tmp_path / "back" / "recipe" / "best.pt", weights_only=True)
    assert restored["step"] == original["step"] and restored["history"] == original["history"]
    assert restored["objective"].keys() == original["objective"].keys()
    for key, value in original["objective"].items():
        assert restored["objective"][key].dtype == value.dtype
        torch.testing.assert_close(restored["objective"][key], value, rtol=1e-3, atol=1e-3, msg=key)
    assert (tmp_path / "back" / "recipe" / "last.pt").is_file()
    assert not (tmp_path / "back-best" / "recipe" / "last.pt").exists()  # it stayed behind
    card = export(
        tmp_path / "back" / "recipe" / "best.pt", "back", tmp_path / "models", photo_folder / "val" / "rocket.jpg"
    )
    assert card["onnx"]["max_abs_diff_vs_pytorch"] <= 1e-4 and card["training"]["steps"] == original["step"]


def load_decoding_sweep():
    spec = importlib.util.spec_from_file_location("decoding_sweep", REPO / "benchmarks" / "decoding_sweep.py")
    sweep = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sweep)
    return sweep


def test_the_decoding_sweep_gives_each_variant_its_greying_and_working_size_in_the_card(
    tiny_default_checkpoint, tmp_path
):
    """One export per decoding; per greying strength and working size a card, which the evaluation's
    session then works at (a size other than the export's default named in the variant)."""
    sweep = load_decoding_sweep()
    variants = sweep.export_variants(
        {"tiny": tiny_default_checkpoint}, tmp_path, [0.8], [0.5, 1.0], render_sizes=[DEFAULT_RENDER_SIZE, 192]
    )
    assert sorted(variants) == ["tiny-T0.8-g0.5", "tiny-T0.8-g0.5-ws192", "tiny-T0.8-g1", "tiny-T0.8-g1-ws192"]
    for name, path in variants.items():
        session = load_model(path, device="cpu")
        assert session.name == name
        assert session.default_render_size == (192 if name.endswith("-ws192") else DEFAULT_RENDER_SIZE)
        assert session.card["unsure_grey_strength"] == (0.5 if "-g0.5" in name else 1.0)


def test_the_decoding_sweep_ships_only_a_variant_no_worse_than_the_shipped_model_when_asked():
    """benchmarks/decoding_sweep.py's rule: the most right hue among variants at or above grey's PSNR; with
    --must-beat, only among those no worse than the shipped model on every metric, or the shipped model."""
    sweep = load_decoding_sweep()

    def row(model: str, psnr: float, ciede: float, recall: float, ratio: float) -> dict:
        fixed = {"auc": 88.0, "saturated_auc": 80.0, "grey_share": 20.0}
        return fixed | {
            "model": model,
            "psnr": psnr,
            "ciede2000": ciede,
            "hue_recall": recall,
            "colourfulness_ratio": ratio,
        }

    rows = [
        row("grey", 22.5, 11.6, 0.0, 0.0),
        row("shipped", 22.6, 11.6, 44.0, 0.57),
        row("more-hue-more-error", 22.6, 11.8, 44.6, 0.58),
        row("better-on-all", 22.7, 11.3, 44.5, 0.62),
        row("below-grey", 22.0, 12.5, 49.0, 0.80),
    ]
    variants = {name: Path(name) for name in ("more-hue-more-error", "better-on-all", "below-grey")}
    assert sweep.choose(rows, variants)["model"] == "more-hue-more-error"
    assert sweep.choose(rows, variants, must_beat="shipped")["model"] == "better-on-all"
    del variants["better-on-all"]
    assert sweep.choose(rows, variants, must_beat="shipped")["model"] == "shipped"


def test_averaged_checkpoints_hold_the_mean_weights_and_export_with_their_origins(photo_folder, tmp_path):
    """scripts/average_checkpoints.py: the averaged network is the mean of the snapshots' weights, keeps the
    latest's record, and its card names what it averaged; a checkpoint of another model is refused by name."""
    config = tiny_config(photo_folder, tmp_path / "run", "default", steps=4)
    config.val_every = 2
    train(config)
    snapshots = sorted((tmp_path / "run" / "snapshots").glob("step-*.pt"))
    assert len(snapshots) == 2
    script = [sys.executable, str(REPO / "scripts" / "average_checkpoints.py")]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    averaged_path = tmp_path / "run" / "averaged.pt"
    subprocess.run([*script, str(averaged_path), *map(str, snapshots)], check=True, env=env)
    first, second = (torch.load(path, weights_only=True) for path in snapshots)
    averaged = torch.load(averaged_path, weights_only=True)
    assert averaged["step"] == second["step"] == 4 and "optimizer" not in averaged
    moved = 0
    for key, value in averaged["objective"].items():
        if value.is_floating_point():
            torch.testing.assert_close(value, (first["objective"][key] + second["objective"][key]) / 2, msg=key)
            moved += not torch.equal(first["objective"][key], second["objective"][key])
        else:
            assert torch.equal(value, second["objective"][key])
    assert moved > 10  # the two snapshots differ, so the mean is neither
    card = export(averaged_path, "averaged", tmp_path / "models", photo_folder / "val" / "rocket.jpg")
    assert card["onnx"]["max_abs_diff_vs_pytorch"] <= 1e-4
    assert [origin["step"] for origin in card["training"]["averaged_from"]] == [2, 4]

    seed_run = train(tiny_config(photo_folder, tmp_path / "seed", "seed-ae", steps=1))
    refused = subprocess.run(
        [*script, str(tmp_path / "mixed.pt"), str(snapshots[0]), str(seed_run)], capture_output=True, text=True, env=env
    )
    assert refused.returncode == 1 and str(seed_run) in refused.stderr and "Traceback" not in refused.stderr
    assert not (tmp_path / "mixed.pt").exists()
