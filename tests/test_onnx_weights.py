"""`colorit train --init` from an exported model: the bundled ONNX graphs back into networks that train."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="needs the training extra")
pytestmark = pytest.mark.train

from conftest import TRAINING_PHOTOS, wheel_photo  # noqa: E402

from colorit.session import MODELS_DIR  # noqa: E402
from colorit.train.data import CropSampler, make_batch  # noqa: E402
from colorit.train.export import export_onnx, input_channels, network_input  # noqa: E402
from colorit.train.model_default import ColorUNet  # noqa: E402
from colorit.train.onnx_weights import exported_network_weights, read_exported, recalibrate_batch_norm  # noqa: E402
from colorit.train.train import PARTIAL_FROZEN_BLOCKS, build_model, read_checkpoint  # noqa: E402


def photo_crops(size: int) -> torch.Tensor:
    """Centre crops of the wheel photos, RGB in 0..1, as training takes them."""
    photos = [torch.from_numpy(wheel_photo(name)).permute(2, 0, 1) for name in TRAINING_PHOTOS]
    return CropSampler(photos, torch.device("cpu"), seed=0).center_crops(size)


def outputs(onnx_path, x: np.ndarray) -> list[np.ndarray]:
    import onnxruntime

    return onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).run(None, {"input": x})


@pytest.mark.parametrize("name", ["default", "seed-ae"])
def test_a_bundled_model_comes_back_as_the_network_it_was(name, photo_folder, tmp_path):
    """Imported (BatchNorms unfused, the decoding unfolded with made-up class weights), then exported again
    with its card's decoding and those weights: the graph computes what the bundled one does, on a real photo
    at a size other than any used here; and again once its BatchNorms are recalibrated on real crops."""
    bundled = MODELS_DIR / f"{name}.onnx"
    exported = read_exported(bundled, name)
    net = build_model(name, exported.global_context)  # as training builds it: the ImageNet encoder loaded
    channels = input_channels(net)
    class_weight = torch.linspace(0.5, 4.0, 261)
    net.load_state_dict(exported_network_weights(exported, net, class_weight))
    if isinstance(net, ColorUNet):
        net.temperature.fill_(exported.temperature)
        net.rebalance_undo = exported.rebalance_undo
        net.log_class_weight.copy_(class_weight.log())
        net.hue_lobe_softness = 0.05
    photo = network_input(photo_folder / "val" / "rocket.jpg", channels, (288, 224)).numpy()
    expected = outputs(bundled, photo)
    export_onnx(net.eval(), tmp_path / "imported.onnx")
    assert max(float(np.abs(a - b).max()) for a, b in zip(outputs(tmp_path / "imported.onnx", photo), expected)) < 1e-4

    crops = make_batch(photo_crops(96), None, isinstance(net, ColorUNet))[0]
    recalibrate_batch_norm(net, crops)
    export_onnx(net.eval(), tmp_path / "recalibrated.onnx")
    got = outputs(tmp_path / "recalibrated.onnx", photo)
    assert max(float(np.abs(a - b).max()) for a, b in zip(got, expected)) < 1e-4


def test_the_encoder_layers_the_default_never_trained_come_back_as_imagenets():
    """The bundled default kept its stem and first PARTIAL_FROZEN_BLOCKS blocks at their ImageNet weights
    (its card: encoder partial). Unfused, they are those weights again, BatchNorms included, not a rescaled
    equivalent: a fine-tune then moves them at the pace it would have."""
    exported = read_exported(MODELS_DIR / "default.onnx", "default")
    net = build_model("default")
    imagenet = {key: value.clone() for key, value in net.state_dict().items()}
    state = exported_network_weights(exported, net, torch.ones(261))
    never_trained = ("stem.", "stem_bn.", *(f"blocks.{i}." for i in range(PARTIAL_FROZEN_BLOCKS)))
    keys = [key for key in imagenet if key.startswith(never_trained) and imagenet[key].is_floating_point()]
    assert len(keys) > 100
    for key in keys:
        assert torch.allclose(state[key], imagenet[key], rtol=1e-4, atol=1e-5), key
    trained = [key for key in imagenet if key.startswith(f"blocks.{PARTIAL_FROZEN_BLOCKS}.") and "conv" in key]
    assert not all(torch.allclose(state[key], imagenet[key], rtol=1e-4, atol=1e-5) for key in trained)


def test_recalibrated_batch_norms_train_on_batch_statistics_as_the_network_ran():
    """The unfused BatchNorms hold made-up statistics (mean 0, variance 1): a training step, which normalises
    by the batch's own, would see a different network. Recalibrated on the batch, train and eval mode agree."""
    exported = read_exported(MODELS_DIR / "default.onnx", "default")
    net = build_model("default", pretrained=False)
    net.load_state_dict(exported_network_weights(exported, net, torch.ones(261)))
    crops = make_batch(photo_crops(96), None, True)[0]

    def train_against_eval() -> float:
        with torch.no_grad():
            evaluated = net.eval().logits(crops)
            trained = net.train().logits(crops)
        return float((trained - evaluated).abs().mean() / evaluated.abs().mean())

    unfused = train_against_eval()
    net.load_state_dict(exported_network_weights(exported, net, torch.ones(261)))  # undo the momentum update
    recalibrate_batch_norm(net, crops)
    recalibrated = train_against_eval()
    assert recalibrated < 1e-3 and unfused > 0.1


def test_train_init_takes_a_bundled_model_by_name(photo_folder, tmp_path):
    """`colorit train --init default`: the run starts from the bundled weights (at learning rate 0 its
    encoder's convolutions are those the bundled graph unfuses into) and records where it began; a model of
    the other kind, or a name that is none, is one line naming it, and no run folder."""
    command = [sys.executable, "-m", "colorit", "train", "--data", str(photo_folder), "--steps", "1"]
    tiny = ["--crop", "64", "--batch", "4", "--workers", "0", "--lr", "0"]
    run = subprocess.run(
        [*command, *tiny, "--out", str(tmp_path / "run"), "--init", "default"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    state = read_checkpoint(tmp_path / "run" / "last.pt")
    assert state["legs"][0]["config"]["init"] == "default"
    net = build_model("default")
    unfused = exported_network_weights(read_exported(MODELS_DIR / "default.onnx", "default"), net, torch.ones(261))
    encoder_convolutions = [key for key in unfused if key.startswith("blocks.") and key.endswith("conv.weight")]
    assert len(encoder_convolutions) == 47
    assert all(torch.equal(state["objective"][f"net.{key}"], unfused[key]) for key in encoder_convolutions)

    for init, message in [
        ("seed-ae", f"{MODELS_DIR / 'seed-ae.onnx'}: a seed-ae model, not default"),
        ("sepia", "sepia: no such model"),
    ]:
        failed = subprocess.run(
            [*command, *tiny, "--out", str(tmp_path / init), "--init", init],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert failed.returncode == 2 and "Traceback" not in failed.stderr
        assert failed.stderr.strip().splitlines()[-1].startswith(f"colorit train: {message}")
        assert not (tmp_path / init).exists()
