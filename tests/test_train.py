"""Training stack: pretrained encoder, both networks, data sampler, hint simulation, the loop, DDP."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="needs the training extra")
pytestmark = pytest.mark.train

from conftest import TRAINING_PHOTOS, wheel_photo  # noqa: E402
from PIL import Image  # noqa: E402
from skimage import color as skcolor  # noqa: E402
from skimage import data as skdata  # noqa: E402
from train_helpers import tiny_config  # noqa: E402

from colorit.train import data as train_data  # noqa: E402
from colorit.train.export import export, load_network  # noqa: E402
from colorit.train.losses import (  # noqa: E402
    ab_bins,
    classification_loss,
    hint_neighbourhood,
    rebalance_weights,
    regression_loss,
)
from colorit.train.model_default import ColorUNet, HintAttention, load_pretrained_lite0, pooled_hints  # noqa: E402
from colorit.train.model_seed_ae import SeedAutoencoder  # noqa: E402
from colorit.train.train import (  # noqa: E402
    Objective,
    frozen_parameter_names,
    selection_score,
    train,
    validate,
)


def rgb_batch(size: int = 64) -> torch.Tensor:
    images = [
        np.asarray(Image.fromarray(wheel_photo(name)).resize((size, size), Image.BICUBIC)) for name in TRAINING_PHOTOS
    ]
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255


def test_pretrained_encoder_loads_strictly_and_knows_an_espresso():
    net = load_pretrained_lite0().eval()  # load_state_dict(strict=True) inside
    rgb = np.asarray(Image.fromarray(skdata.coffee()).resize((224, 224), Image.BICUBIC), dtype=np.float32) / 255
    with torch.no_grad():
        probs = net(torch.from_numpy(rgb).permute(2, 0, 1)[None] * 2 - 1).softmax(1)[0]
    assert probs.argmax().item() == 967  # ImageNet "espresso"
    assert probs[967] > 0.5


def test_default_model_shape_range_and_hint_channels():
    bins = ab_bins()
    net = ColorUNet(bins, load_pretrained_lite0()).eval()
    x = torch.cat([rgb_batch()[:2].mean(1, keepdim=True) * 2 - 1, torch.zeros(2, 3, 64, 64)], 1)
    x = torch.nn.functional.interpolate(x, size=(64, 96))
    with torch.no_grad():
        ab = net(x)
    assert ab.shape == (2, 2, 64, 96)
    # The annealed mean is a convex combination of bin centres, so it stays inside their range.
    assert ab.min() >= bins.min() - 1e-3 and ab.max() <= bins.max() + 1e-3
    assert 200 < len(bins) < 330  # the sRGB gamut on a grid of 10 (Zhang et al. have 313 on theirs)


def test_seed_autoencoder_is_the_original_architecture():
    net = SeedAutoencoder()
    assert sum(p.numel() for p in net.parameters()) == 6_219_410
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 13 and [c.out_channels for c in convs[:8]] == [64, 128, 128, 256, 256, 512, 512, 256]
    with torch.no_grad():
        ab = net(torch.rand(1, 1, 64, 96) * 2 - 1)
    assert ab.shape == (1, 2, 64, 96) and ab.abs().max() <= 128


def test_rgb_to_lab_matches_scikit_image():
    rgb = rgb_batch(32)
    ours = train_data.rgb_to_lab(rgb).permute(0, 2, 3, 1).numpy()
    theirs = skcolor.rgb2lab(rgb.permute(0, 2, 3, 1).numpy())
    assert np.abs(ours - theirs).max() < 0.05


def test_crop_sampler_is_deterministic_and_stays_inside_the_image():
    images = [torch.from_numpy(wheel_photo(name)).permute(2, 0, 1) for name in TRAINING_PHOTOS]
    first = train_data.CropSampler(images, torch.device("cpu"), seed=3).sample(6, 64)
    second = train_data.CropSampler(images, torch.device("cpu"), seed=3).sample(6, 64)
    other = train_data.CropSampler(images, torch.device("cpu"), seed=4).sample(6, 64)
    assert first.shape == (6, 3, 64, 64)
    assert torch.equal(first, second) and not torch.equal(first, other)
    # The border is repeated outside an image, so a crop that left it would show constant rows.
    assert (first.amax(dim=(1, 3)) > 0.02).all()
    # Images keep their own sizes (a portrait and a landscape side by side are not padded to one).
    sampler = train_data.CropSampler(images, torch.device("cpu"), seed=3)
    assert [tuple(img.shape) for img in sampler.images] == [tuple(img.shape) for img in images]


def test_simulated_hints_carry_the_mean_ground_truth_colour():
    ab = train_data.rgb_to_lab(rgb_batch(96))[:, 1:]
    hints = train_data.simulate_hints(ab, torch.Generator().manual_seed(0), p_none=0.0)
    mask = hints[:, 2] > 0
    assert mask.any(dim=(1, 2)).all()  # p_none=0: every sample has at least one hint
    assert mask.float().mean() < 0.1  # hints are sparse
    hinted = hints[:, :2].permute(0, 2, 3, 1)[mask] * 110
    # A patch's value is the mean ab inside it, so hinted values stay near the true ab there.
    assert (hinted - ab.permute(0, 2, 3, 1)[mask]).norm(dim=-1).median() < 15
    none = train_data.simulate_hints(ab, torch.Generator().manual_seed(0), p_none=1.0)
    assert none.abs().sum() == 0


def test_rebalancing_favours_rare_colours():
    bins = ab_bins()
    samples = torch.cat([torch.zeros(9000, 2), torch.tensor([[60.0, 60.0]]).repeat(1000, 1)])  # mostly grey
    weights = rebalance_weights(samples, bins)
    grey = ((bins - torch.tensor([0.0, 0.0])) ** 2).sum(1).argmin()
    orange = ((bins - torch.tensor([60.0, 60.0])) ** 2).sum(1).argmin()
    assert weights[orange] > weights[grey]


@pytest.mark.parametrize("model_name", ["default", "seed-ae"])
def test_a_few_training_steps_lower_the_loss(model_name):
    torch.manual_seed(0)
    net = ColorUNet(ab_bins(), load_pretrained_lite0()) if model_name == "default" else SeedAutoencoder()
    hint_channels = model_name == "default"
    net_input, ab, weight = train_data.make_batch(rgb_batch(64), None, hint_channels)
    class_weight = torch.ones(len(net.ab_bins)) if hint_channels else None
    objective = Objective(net, class_weight).train()
    optimizer = torch.optim.AdamW(objective.parameters(), lr=1e-3)
    losses = []
    for _ in range(12):
        loss = objective(net_input, ab, weight)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses


def test_losses_ignore_grey_crops():
    rgb = rgb_batch(64)
    _, ab, _ = train_data.make_batch(rgb, None, False)
    prediction = torch.zeros_like(ab)
    assert regression_loss(prediction, ab, torch.zeros(4)) == 0
    logits = torch.randn(4, len(ab_bins()), 16, 16)
    assert classification_loss(logits, ab, torch.zeros(4), ab_bins(), torch.ones(len(ab_bins()))) == 0


def test_training_checkpoints_and_resumes(photo_folder, tmp_path):
    best = train(tiny_config(photo_folder, tmp_path, "seed-ae", steps=2))
    assert best.exists() and (tmp_path / "last.pt").exists()
    # Resumed with larger crops, as a run moves to its final crop size in a later session.
    train(dataclasses.replace(tiny_config(photo_folder, tmp_path, "seed-ae", steps=4, resume=True), crop=96))
    state = torch.load(tmp_path / "last.pt", weights_only=False)
    assert state["step"] == 4
    assert [(leg["from_step"], leg["config"]["crop"]) for leg in state["legs"]] == [(0, 64), (2, 96)]
    # 3 training photos, batch 4: four steps (two, then two resumed) drew 16, 6 epochs begun, 2 left of the last
    epoch, order = state["sampler_position"][0]
    assert epoch == 6 and len(order) == 2
    assert [h["step"] for h in state["history"]] == [2, 4]
    assert {"val_loss", "auc", "saturated_auc", "psnr", "grey_psnr", "hue_recall", "chroma_ratio"} <= set(
        state["history"][-1]
    )
    # A weights-only snapshot at every validation, for evaluating the run's curve later.
    snapshots = sorted((tmp_path / "snapshots").glob("step-*.pt"))
    assert [p.name for p in snapshots] == ["step-0000002.pt", "step-0000004.pt"]
    snapshot = torch.load(snapshots[-1], weights_only=True)
    assert "optimizer" not in snapshot and snapshot["step"] == 4
    assert snapshot["objective"].keys() == state["objective"].keys()
    # An earlier step's weights, exported, still tell the whole run's budget and length (from last.pt).
    training = export(snapshots[0], "early", tmp_path / "models", photo_folder / "val" / "rocket.jpg")["training"]
    assert training["steps"] == 2 and training["run"]["steps"] == 4 and training["budget"]["steps"] == 4
    # The card tells each leg's share of the run and its settings.
    assert [(leg["steps"], leg["crop"]) for leg in training["legs"]] == [([0, 2], 64), ([2, 4], 96)]
    assert training["legs"][0]["minutes"][1] == training["legs"][1]["minutes"][0]
    assert [leg["budget"]["steps"] for leg in training["legs"]] == [2, 4]
    # A checkpoint saved before runs kept their legs: its settings are known, not where they began.
    del state["legs"]
    torch.save(state, tmp_path / "last.pt")
    train(tiny_config(photo_folder, tmp_path, "seed-ae", steps=6, resume=True))
    legs = torch.load(tmp_path / "last.pt", weights_only=True)["legs"]
    assert [(leg["from_step"], leg["config"]["crop"]) for leg in legs] == [(None, 96), (4, 64)]


def test_a_run_can_start_from_another_runs_network(photo_folder, tmp_path):
    """--init: a new run (its own optimizer and schedule) starts from another run's weights; its legs say
    from which. At learning rate 0 the weights it saves are the ones it started from."""
    train(tiny_config(photo_folder, tmp_path / "first", "seed-ae", steps=2))
    init = str(tmp_path / "first" / "last.pt")
    train(dataclasses.replace(tiny_config(photo_folder, tmp_path / "second", "seed-ae", steps=1), init=init, lr=0.0))
    first = torch.load(init, weights_only=True)["objective"]
    second = torch.load(tmp_path / "second" / "last.pt", weights_only=True)
    assert second["step"] == 1 and first.keys() == second["objective"].keys()
    assert all(torch.equal(first[key], second["objective"][key]) for key in first)
    assert second["legs"][0]["config"]["init"] == init
    with pytest.raises(ValueError, match="a seed-ae checkpoint, not default"):
        train(dataclasses.replace(tiny_config(photo_folder, tmp_path / "third", "default", steps=1), init=init))


def test_a_run_from_init_keeps_the_network_it_started_from(photo_folder, tmp_path):
    """A run started from --init saves its start as snapshots/step-0000000.pt, the network its training
    moved away from (scripts/average_checkpoints.py can average back towards it); a run from scratch,
    whose start is only ImageNet's encoder and a random decoder, does not."""
    train(tiny_config(photo_folder, tmp_path / "first", "seed-ae", steps=2))
    init = tmp_path / "first" / "last.pt"
    train(dataclasses.replace(tiny_config(photo_folder, tmp_path / "second", "seed-ae", steps=2), init=str(init)))
    first = torch.load(init, weights_only=True)["objective"]
    start = torch.load(tmp_path / "second" / "snapshots" / "step-0000000.pt", weights_only=True)
    trained = torch.load(tmp_path / "second" / "last.pt", weights_only=True)["objective"]
    assert start["step"] == 0 and "optimizer" not in start and start["objective"].keys() == first.keys()
    assert all(torch.equal(first[key], start["objective"][key]) for key in first)
    assert not all(torch.equal(first[key], trained[key]) for key in first)
    assert not (tmp_path / "first" / "snapshots" / "step-0000000.pt").exists()
    # From the command line, a file that is no checkpoint: one line naming it, no traceback, no run folder.
    (tmp_path / "notes.pt").write_text("not a checkpoint")
    command = [sys.executable, "-m", "colorit", "train", "--data", str(photo_folder), "--out", str(tmp_path / "fourth")]
    failed = subprocess.run(
        [*command, "--steps", "1", "--model", "seed-ae", "--init", str(tmp_path / "notes.pt")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert failed.returncode != 0 and "Traceback" not in failed.stderr
    assert f"{tmp_path / 'notes.pt'}: not a weights-only training checkpoint" in failed.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "fourth").exists()


def test_validation_measures_grey_as_grey_and_the_truth_as_perfect(photo_folder):
    """validate()'s PSNR and hue recall on a network that returns the true colour, and on one that returns none."""
    crops = train_data.CropSampler(
        [torch.from_numpy(wheel_photo(name)).permute(2, 0, 1) for name in TRAINING_PHOTOS], torch.device("cpu"), seed=0
    ).center_crops(64)

    class Oracle(torch.nn.Module):
        def __init__(self, ab: torch.Tensor | None):
            super().__init__()
            self.ab = ab

        def forward(self, x):
            return self.ab if self.ab is not None else torch.zeros(len(x), 2, *x.shape[-2:])

    truth_ab = train_data.rgb_to_lab(crops)[:, 1:]
    for ab in (truth_ab, None):
        net = Oracle(ab)
        result = validate(Objective(net, None), crops, hint_channels=False)
        if ab is None:
            assert result["psnr"] == pytest.approx(result["grey_psnr"]) and result["hue_recall"] == 0
        else:
            assert result["psnr"] > result["grey_psnr"] + 10 and result["hue_recall"] == 100
            assert result["chroma_ratio"] == pytest.approx(1.0)


def test_validation_hints_are_the_same_every_time_and_reach_the_network():
    crops = train_data.CropSampler(
        [torch.from_numpy(wheel_photo(name)).permute(2, 0, 1) for name in TRAINING_PHOTOS], torch.device("cpu"), seed=0
    ).center_crops(64)

    class HintCopier(torch.nn.Module):
        """Colours exactly the hinted pixels with their hint: what following hints means, and nothing more."""

        def forward(self, x):
            return x[:, 1:3] * 110 * x[:, 3:4]

    objective = Objective(HintCopier(), None)
    without = validate(objective, crops, hint_channels=True)
    first, second = (validate(objective, crops, hint_channels=True, hints=10) for _ in range(2))
    assert first == second
    assert without["psnr"] == pytest.approx(without["grey_psnr"])
    assert first["psnr"] > without["psnr"] and first["hue_recall"] > 0


def test_lab_to_rgb_inverts_rgb_to_lab():
    rgb = rgb_batch(32)
    back = train_data.lab_to_rgb(train_data.rgb_to_lab(rgb))
    assert (back - rgb).abs().max() < 1e-4


def test_final_crop_takes_over_late_in_the_run(photo_folder, tmp_path, monkeypatch):
    config = tiny_config(photo_folder, tmp_path, "seed-ae", steps=4)
    config.final_crop, config.final_crop_from = 96, 0.5
    seen = []
    original = train_data.CropSampler.sample

    def recording_sample(self, count, crop):
        seen.append(crop)
        return original(self, count, crop)

    monkeypatch.setattr(train_data.CropSampler, "sample", recording_sample)  # records, then samples as ever
    train(config)
    assert seen[-4:] == [64, 64, 96, 96]


def test_distributed_training_smoke(photo_folder, tmp_path):
    """Two processes on gloo (as `torchrun` runs them) train, checkpoint and resume together."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "colorit",
        "train",
        "--data",
        str(photo_folder),
        "--out",
        str(tmp_path),
        "--model",
        "seed-ae",
        "--crop",
        "64",
        "--batch",
        "2",
        "--val-every",
        "2",
        "--workers",
        "0",
        "--warmup-steps",
        "1",
    ]
    # Both processes talk over the loopback: gloo otherwise binds to whatever the host name resolves to.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    first = subprocess.run(command + ["--steps", "2"], capture_output=True, text=True, env=env, timeout=300)
    assert first.returncode == 0, first.stderr[-6000:]  # the failing rank's own error comes before torchrun's summary
    second = subprocess.run(
        command + ["--steps", "4", "--resume"], capture_output=True, text=True, env=env, timeout=300
    )
    assert second.returncode == 0, second.stderr[-6000:]
    assert "resumed from" in second.stdout
    state = torch.load(tmp_path / "last.pt", weights_only=False)
    assert state["world_size"] == 2 and state["step"] == 4 and len(state["sampler_rng"]) == 2


def encoder_state(net: ColorUNet) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in net.state_dict().items() if k.startswith(("blocks.", "stem.", "stem_bn."))}


@pytest.mark.parametrize(("encoder", "bn_stats"), [("frozen", "frozen"), ("finetune", "updated")])
def test_encoder_and_its_statistics_stay_frozen_only_when_asked(photo_folder, tmp_path, encoder, bn_stats):
    config = tiny_config(photo_folder, tmp_path, "default", steps=2)
    config.encoder, config.bn_stats = encoder, bn_stats
    before = encoder_state(ColorUNet(ab_bins(), load_pretrained_lite0()))
    train(config)
    after, _ = load_network(tmp_path / "last.pt")
    changed = {k for k, v in encoder_state(after).items() if not torch.equal(v.float(), before[k].float())}
    if encoder == "frozen":
        assert changed == set()  # weights and BatchNorm running statistics alike
    else:
        assert any(k.endswith("running_mean") for k in changed) and any(k.endswith(".weight") for k in changed)


def test_frozen_encoder_blocks_keep_no_graph_and_get_no_gradient():
    """--encoder partial: the stem and the first blocks run without autograd (no backward through what does
    not learn); the blocks after them and the decoder learn."""
    net = ColorUNet(ab_bins(), load_pretrained_lite0())
    frozen = frozen_parameter_names(net, "partial")
    assert "stem.weight" in frozen and "blocks.0._depthwise_conv.weight" in frozen
    assert not any(name.startswith(("blocks.8.", "up16.", "hint_attention.")) for name in frozen)
    net_input, ab, weight = train_data.make_batch(rgb_batch(64), torch.Generator().manual_seed(0), True)
    s4, s8, s16, s32 = net.encode(net_input[:, :1])
    assert not s4.requires_grad and not s8.requires_grad  # strides 4 and 8 end before block 8
    assert s16.requires_grad and s32.requires_grad
    Objective(net, torch.ones(len(net.ab_bins)))(net_input, ab, weight).backward()
    grads = {name: p.grad for name, p in net.named_parameters()}
    assert all(grads[name] is None for name in frozen)
    assert grads["blocks.8._expand_conv.weight"] is not None and grads["hint_attention.query.weight"] is not None


def test_the_encoder_sees_luminance_alone():
    net = ColorUNet(ab_bins(), load_pretrained_lite0()).eval()
    grey = train_data.make_batch(rgb_batch(64), None, True)[0]
    hinted = train_data.make_batch(rgb_batch(64), torch.Generator().manual_seed(0), True, hint_points=10)[0]
    with torch.no_grad():
        for plain, with_hints in zip(net.encode(grey[:, :1]), net.encode(hinted[:, :1])):
            assert torch.equal(plain, with_hints)
        # ... while the hints still reach the output, through the decoder.
        assert not torch.equal(net.logits(grey), net.logits(hinted))


def test_pooled_hints_are_the_mean_hinted_colour_of_each_cell():
    hints = torch.zeros(1, 3, 32, 32)
    hints[0, :, 2:4, 2:4] = torch.tensor([0.5, -0.2, 1.0]).view(3, 1, 1)  # one 2x2 patch in the first cell
    hints[0, :, 20, 20] = torch.tensor([-0.3, 0.4, 1.0])
    colour, present = pooled_hints(hints, 16)
    assert present[0, 0].tolist() == [[1.0, 0.0], [0.0, 1.0]]
    torch.testing.assert_close(colour[0, :, 0, 0], torch.tensor([0.5, -0.2]))
    torch.testing.assert_close(colour[0, :, 1, 1], torch.tensor([-0.3, 0.4]))
    assert colour[0, :, 0, 1].abs().max() == 0


def test_hint_attention_carries_a_hint_to_what_looks_like_the_hinted_place():
    """Keys and queries that compare features as they are: a hint on one of two far-apart patches of the same
    stuff reaches the other one, and not a patch of different stuff next to it."""
    attention = HintAttention(4, key_channels=4)
    with torch.no_grad():
        for conv in (attention.query, attention.key):
            conv.weight.copy_(torch.eye(4).view(4, 4, 1, 1) * 3)
            conv.bias.zero_()
        attention.distance_penalty.fill_(-20.0)  # softplus ~ 0: distance does not count here
    stuff = torch.tensor([1.0, 0.0, 1.0, 0.0]).view(4, 1, 1)
    features = torch.zeros(1, 4, 8, 8)
    features[0, :, 0:2, 0:2] = stuff  # hinted
    features[0, :, 6:8, 6:8] = stuff  # the same stuff, far away
    features[0, :, 0:2, 3:5] = -stuff  # other stuff, near the hint
    hint_ab, present = torch.zeros(1, 2, 8, 8), torch.zeros(1, 1, 8, 8)
    hint_ab[0, :, 0, 0] = torch.tensor([0.4, 0.3])
    present[0, 0, 0, 0] = 1
    with torch.no_grad():
        gathered = attention(features, hint_ab, present)
    weight = gathered[0, 2]
    assert weight[7, 7] > 0.9 and weight[1, 4] < 0.05
    torch.testing.assert_close(gathered[0, :2, 7, 7] / weight[7, 7], torch.tensor([0.4, 0.3]))
    without = attention(features, hint_ab, torch.zeros_like(present))
    assert without.abs().max() < 1e-3  # no hints: nothing gathered


def test_cutouts_are_pasted_with_their_alpha():
    cutout = torch.zeros(4, 40, 40, dtype=torch.uint8)
    cutout[0, 10:30, 10:30] = 255  # a red square on transparency
    cutout[3, 10:30, 10:30] = 255
    compositor = train_data.CutoutCompositor([cutout], torch.device("cpu"), probability=1.0, scale=(0.5, 0.5))
    background = torch.full((3, 3, 64, 64), 0.5)
    out = compositor(background, torch.Generator().manual_seed(0))
    red = (out[:, 0] > 0.9) & (out[:, 1] < 0.1)
    untouched = (out - 0.5).abs().amax(1) < 1e-6
    for i in range(3):
        # the square spans half the crop's side x its half of the cut-out: about 16 x 16 px
        assert 150 < red[i].sum() < 400
        assert (red[i] | untouched[i]).float().mean() > 0.97  # only blends at the square's edge


def test_hint_neighbourhood_covers_hints_and_their_surroundings():
    mask = torch.zeros(1, 1, 64, 64)
    mask[0, 0, 30:32, 30:32] = 1
    near = hint_neighbourhood(mask, (16, 16), reach=2)
    assert near.shape == (1, 16, 16)
    assert near[0, 7, 7] == 1 and near[0, 5, 5] == 1 and near[0, 7, 11] == 0
    assert near.sum() == 25


def test_checkpoint_selection_rule_rewards_right_hue_without_harm():
    def record(psnr: float, recall: float) -> dict:
        return {"step": 9, "val_loss": 1.0, "photo_psnr": psnr, "photo_grey_psnr": 22.0, "photo_hue_recall": recall}

    # Among checkpoints at or above grey's PSNR, the most right hue wins ...
    assert selection_score(record(22.5, 40.0)) > selection_score(record(23.5, 30.0))
    # ... and every one of them beats any checkpoint below grey, however colourful.
    assert selection_score(record(22.0, 5.0)) > selection_score(record(21.9, 90.0))
    # Below grey, the one closer to it ranks higher.
    assert selection_score(record(21.9, 10.0)) > selection_score(record(21.0, 60.0))
    assert selection_score({"step": 9, "val_loss": 2.0}) > selection_score({"step": 9, "val_loss": 3.0})
    assert selection_score({"step": 9}) > selection_score({"step": 3})
