"""`colorit evaluate` end to end on real photos, the hint simulation, and model-card updates."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, grey_of, photo_rgb, run_colorit
from PIL import Image
from skimage import color as skcolor
from skimage import metrics as skmetrics

from colorit import evaluate
from colorit.hints import render_hints
from colorit.pipeline import working_size
from colorit.session import MODELS_DIR

PHOTOS = ("astronaut", "coffee", "chelsea")


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory) -> Path:
    """Three small real photos (one in a subfolder), a greyscale photo and a file that is no image."""
    folder = tmp_path_factory.mktemp("photos")
    (folder / "nested").mkdir()
    for name, relative in zip(PHOTOS, ("astronaut.png", "nested/coffee.png", "chelsea.png")):
        Image.fromarray(photo_rgb(name)).save(folder / relative)
    Image.fromarray(grey_of(photo_rgb("china"))).save(folder / "grey.png")
    (folder / "notes.jpg").write_bytes(b"this is not a JPEG")
    return folder


@pytest.fixture(scope="module")
def cli_run(photo_folder, tmp_path_factory):
    """One `colorit evaluate --json` in a fresh process, which also reports whether torch got imported."""
    json_path = tmp_path_factory.mktemp("report") / "report.json"
    script = (
        "import sys\n"
        "from colorit.cli import main\n"
        "status = main(sys.argv[1:])\n"
        "print('torch imported:', 'torch' in sys.modules)\n"
        "sys.exit(status)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    command = [sys.executable, "-c", script, "evaluate", "--data", str(photo_folder), "--json", str(json_path)]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    return completed, json_path


@pytest.fixture(scope="module")
def hint_report(photo_folder) -> dict:
    return evaluate.evaluate_folder(photo_folder, ["default"], hint_counts=[0, 2], seed=3, progress=False)


def rows_by_model(rows: list[dict]) -> dict[str, dict]:
    return {row["model"]: row for row in rows}


def test_cli_prints_a_row_per_model_plus_grey_and_writes_json(cli_run):
    completed, json_path = cli_run
    assert completed.returncode == 0, completed.stderr
    table_lines = completed.stdout.splitlines()
    header = next(line for line in table_lines if line.startswith("model"))
    columns = (
        "PSNR dB",
        "SSIM",
        "CIEDE2000",
        "AuC %",
        "sat AuC %",
        "CF",
        "CF gt",
        "CF gap",
        "CF ratio",
        "hue rec %",
        "grey %",
    )
    for column in columns:
        assert column in header
    for model in ("grey", "default", "seed-ae"):
        assert any(line.split()[0] == model and len(line.split()) == 12 for line in table_lines), model
    report = json.loads(json_path.read_text())
    assert report["images"] == 3 and report["eval_size"] == evaluate.DEFAULT_EVAL_SIZE
    assert [row["model"] for row in report["table"]] == ["grey", "default", "seed-ae"]
    files = {record["file"] for record in report["per_image"]}
    assert files == {"astronaut.png", "nested/coffee.png", "chelsea.png"}
    assert len(report["per_image"]) == 3 * 3


def test_unreadable_and_greyscale_images_are_reported_in_one_line_and_skipped(cli_run):
    completed, json_path = cli_run
    report = json.loads(json_path.read_text())
    assert {entry["file"] for entry in report["skipped"]} == {"grey.png", "notes.jpg"}
    messages = [line for line in completed.stderr.splitlines() if "skipped" in line]
    assert len(messages) == 2 and any("notes.jpg" in line for line in messages)
    assert "Traceback" not in completed.stderr


def test_evaluate_does_not_import_torch(cli_run):
    completed, _ = cli_run
    assert "torch imported: False" in completed.stdout


def test_grey_row_matches_a_direct_computation(cli_run, photo_folder):
    """The photos are smaller than the evaluation size, so they are scored as they are on disk."""
    _, json_path = cli_run
    report = json.loads(json_path.read_text())
    grey_row = rows_by_model(report["table"])["grey"]
    truths = [
        np.asarray(Image.open(photo_folder / name)) for name in ("astronaut.png", "nested/coffee.png", "chelsea.png")
    ]
    # The grey output has a = b = 0, so each pixel's ab error is its ground-truth chroma.
    chroma = [np.hypot(*np.moveaxis(skcolor.rgb2lab(truth)[..., 1:], -1, 0)).ravel() for truth in truths]
    pooled = np.concatenate(chroma)
    direct_auc = 100 * np.mean([np.mean(pooled <= threshold) for threshold in range(151)])
    saturated = pooled[pooled >= 20]
    direct_saturated_auc = 100 * np.mean([np.mean(saturated <= threshold) for threshold in range(151)])
    assert grey_row["auc"] == pytest.approx(direct_auc, abs=0.05)
    assert grey_row["saturated_auc"] == pytest.approx(direct_saturated_auc, abs=0.05)
    direct_psnr = np.mean(
        [skmetrics.peak_signal_noise_ratio(t, np.dstack([grey_of(t)] * 3), data_range=255) for t in truths]
    )
    assert grey_row["psnr"] == pytest.approx(direct_psnr, abs=1e-6)
    assert grey_row["colourfulness"] == pytest.approx(0.0, abs=1e-6)
    assert grey_row["colourfulness_ratio"] == pytest.approx(0.0, abs=1e-6)
    assert grey_row["colourfulness_gt"] > 20
    # Nothing of the grey output has a hue: every saturated pixel is left grey, in every family present.
    assert grey_row["hue_recall"] == 0.0 and grey_row["grey_share"] == 100.0
    present = {family for family, recall in grey_row["hue_recall_per_family"].items() if recall is not None}
    assert {"red", "orange/yellow"} <= present and all(grey_row["hue_recall_per_family"][f] == 0.0 for f in present)


def test_model_rows_are_consistent_with_their_per_image_numbers(cli_run):
    _, json_path = cli_run
    report = json.loads(json_path.read_text())
    for row in report["table"]:
        records = [record for record in report["per_image"] if record["model"] == row["model"]]
        for key in ("psnr", "ssim", "ciede2000", "colourfulness", "colourfulness_gt"):
            assert row[key] == pytest.approx(np.mean([record[key] for record in records]))
        assert row["colourfulness_gap"] == pytest.approx(row["colourfulness"] - row["colourfulness_gt"])
        assert row["colourfulness_ratio"] == pytest.approx(row["colourfulness"] / row["colourfulness_gt"])
        assert 0 < row["ssim"] <= 1 and 10 < row["psnr"] < 50 and 0 < row["auc"] <= 100
        # Pooled over the saturated pixels of all images: between the best and the worst image.
        for key in ("hue_recall", "grey_share"):
            per_image = [record[key] for record in records]
            assert min(per_image) - 1e-9 <= row[key] <= max(per_image) + 1e-9
        assert set(row["hue_recall_per_family"]) == {"red", "orange/yellow", "green", "blue", "purple"}
    models = rows_by_model(report["table"])
    assert models["default"]["colourfulness"] > 0, "a colorizer adds some colour"
    assert models["default"]["hue_recall"] > 0 and models["default"]["grey_share"] < 100


def test_hints_evaluate_each_count_for_hint_models_and_grey_only_without(hint_report):
    runs = [(row["model"], row["hints"]) for row in hint_report["hint_curve"]]
    assert runs == [("grey", 0), ("default", 0), ("default", 2)]
    assert set(hint_report["hint_curve"][0]) == {"model", "hints", "psnr", "ciede2000", "auc", "saturated_auc"}
    assert rows_by_model(hint_report["table"]).keys() == {"grey", "default"}


def test_two_hints_do_not_make_the_default_model_worse(hint_report):
    without, with_two = (row for row in hint_report["hint_curve"] if row["model"] == "default")
    assert with_two["psnr"] > without["psnr"] - 0.25
    assert with_two["ciede2000"] < without["ciede2000"] + 0.25
    assert hint_report["table"][1]["psnr"] == without["psnr"]


def test_cli_runs_with_hints_and_prints_the_hint_table(photo_folder):
    completed = run_colorit(
        "evaluate",
        "--data",
        str(photo_folder),
        "--model",
        "seed-ae",
        "default",
        "--hints",
        "0,2",
        "--limit",
        "2",
        "--quiet",
    )
    assert completed.returncode == 0, completed.stderr
    hint_lines = completed.stdout.split("simulated hints")[1].splitlines()
    rows = [line.split()[:2] for line in hint_lines if line and line.split()[0] in ("grey", "default", "seed-ae")]
    assert rows == [["grey", "0"], ["seed-ae", "0"], ["default", "0"], ["default", "2"]]


def test_hint_simulation_is_deterministic_and_uses_the_mean_ground_truth_ab():
    rgb = photo_rgb("astronaut", longer_side=400)
    lab = skcolor.rgb2lab(rgb)
    work_scale = 0.75
    hints = evaluate.simulate_hints(lab, 50, evaluate.hint_rng(7, 0), work_scale)
    assert hints == evaluate.simulate_hints(lab, 50, evaluate.hint_rng(7, 0), work_scale)
    assert hints != evaluate.simulate_hints(lab, 50, evaluate.hint_rng(8, 0), work_scale)
    assert hints[:5] == evaluate.simulate_hints(lab, 5, evaluate.hint_rng(7, 0), work_scale)
    height, width = lab.shape[:2]
    for hint in hints:
        side = round(2 * hint.radius + 1)
        left, top = round(hint.x - side / 2), round(hint.y - side / 2)
        assert 0 <= left and left + side <= width and 0 <= top and top + side <= height
        assert 1 <= side <= round(9 / work_scale)
        patch = lab[top : top + side, left : left + side, 1:]
        np.testing.assert_allclose(hint.ab, patch.reshape(-1, 2).mean(axis=0), atol=1e-9)


def test_simulated_hints_cluster_around_the_centre_and_render_as_1_to_9_pixel_patches():
    rgb = photo_rgb("chelsea", longer_side=512)
    lab = skcolor.rgb2lab(rgb)
    height, width = lab.shape[:2]
    work_size = working_size(width, height, 384)
    hints = evaluate.simulate_hints(lab, 400, evaluate.hint_rng(0, 0), work_size[0] / width)
    xs, ys = np.array([hint.x for hint in hints]), np.array([hint.y for hint in hints])
    # Within one sigma (a quarter of the size) of the centre on both axes: 0.68^2 = 0.47 of a Gaussian.
    central = (np.abs(xs - width / 2) < width / 4) & (np.abs(ys - height / 2) < height / 4)
    assert 0.35 < central.mean() < 0.6
    sides = [render_hints([hint], (width, height), work_size)[2].sum() ** 0.5 for hint in hints]
    assert min(sides) == 1 and 8 <= max(sides) <= 10


def test_update_cards_store_val_and_photo_val_apart_and_models_shows_them_side_by_side(
    hint_report, cli_run, tmp_path, monkeypatch, capsys
):
    from colorit import session
    from colorit.cli import main

    models_dir = tmp_path / "models"
    models_dir.mkdir()
    shutil.copy(MODELS_DIR / "default.json", models_dir / "default.json")
    (models_dir / "default.onnx").write_bytes(b"")
    original = json.loads((models_dir / "default.json").read_text())
    monkeypatch.setattr(evaluate, "MODELS_DIR", models_dir)
    monkeypatch.setattr(session, "MODELS_DIR", models_dir)
    outside = tmp_path / "elsewhere" / "mine.onnx"
    model_files = {"default": str(models_dir / "default.onnx"), "mine": str(outside)}
    val_report = dict(hint_report, data=str(tmp_path / "corpus" / "val"), model_files=model_files)
    photo_report = json.loads(cli_run[1].read_text())  # another table, without a hint curve
    photo_report.update(data=str(tmp_path / "corpus" / "photo-val" / "photo-library") + "/", model_files=model_files)
    package_report = dict(photo_report, data=str(tmp_path / "corpus" / "photo-val" / "package"))

    for report in (val_report, photo_report, package_report):
        assert evaluate.update_model_cards(report) == [models_dir / "default.json"]

    card = json.loads((models_dir / "default.json").read_text())
    written = ("validation", "hint_curve", "photo_validation", "package_photo_validation")
    assert {key: value for key, value in card.items() if key not in written} == {
        key: value for key, value in original.items() if key not in written
    }
    assert card["validation"]["table"] == hint_report["table"]
    assert card["validation"]["images"] == 3 and card["validation"]["eval_size"] == evaluate.DEFAULT_EVAL_SIZE
    assert card["hint_curve"]["rows"] == hint_report["hint_curve"]
    assert card["photo_validation"]["table"] == photo_report["table"] and "photo_hint_curve" not in card
    assert card["package_photo_validation"]["table"] == photo_report["table"]
    assert sorted(path.name for path in models_dir.iterdir()) == ["default.json", "default.onnx"]

    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(line for line in lines if line.split()[:3] == ["model", "split", "PSNR"])
    assert "hue rec %" in header and "grey %" in header
    table = lines[lines.index(header) + 1 :][:8]
    # Each model's val row, then its photo-val and package photo-val rows; seed-ae was not evaluated on val.
    assert [line.split()[:2] for line in table] == [
        ["grey", "val"],
        ["grey", "photo-val"],
        ["grey", "package-photo-val"],
        ["default", "val"],
        ["default", "photo-val"],
        ["default", "package-photo-val"],
        ["seed-ae", "photo-val"],
        ["seed-ae", "package-photo-val"],
    ]


def test_update_cards_refuse_a_folder_that_is_no_split(hint_report, photo_folder):
    with pytest.raises(evaluate.ColoritError, match="val, val/package, photo-val/photo-library"):
        evaluate.card_entries(hint_report)
    completed = run_colorit("evaluate", "--data", str(photo_folder), "--update-cards", "--quiet")
    assert completed.returncode == 1 and photo_folder.name in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1 and not completed.stdout


def test_format_table_aligns_columns_and_prints_missing_numbers_as_a_dash():
    rows = [{"model": "grey", "hints": 0, "psnr": 22.123, "ciede2000": 9.5, "auc": 88.0, "saturated_auc": None}]
    lines = evaluate.format_table(rows, evaluate.HINT_CURVE_COLUMNS).splitlines()
    assert len(lines) == 2 and len(lines[0]) == len(lines[1])
    assert lines[1].split() == ["grey", "0", "22.12", "9.50", "88.00", "-"]


@pytest.mark.parametrize(
    ("arguments", "status", "message"),
    [
        (["--data", "/nonexistent/photos"], 1, "not a folder"),
        (["--hints", "1,x"], 2, "whole numbers"),
        (["--model", "no-such-model"], 1, "no such model"),
    ],
)
def test_cli_errors_are_one_line_without_traceback(photo_folder, arguments, status, message):
    if "--data" not in arguments:
        arguments = ["--data", str(photo_folder), *arguments]
    completed = run_colorit("evaluate", *arguments, "--quiet")
    assert completed.returncode == status
    assert message in completed.stderr and len(completed.stderr.strip().splitlines()) == 1


def test_two_model_files_under_one_card_name_are_refused_not_merged(photo_folder, tmp_path):
    """A report keys models by card name: an older copy of the default whose card still says "default",
    evaluated beside the bundled one, would silently replace it. It is one line naming both files; the same
    model named twice is measured once."""
    shutil.copy(MODELS_DIR / "seed-ae.onnx", tmp_path / "seed-ae-old.onnx")
    shutil.copy(MODELS_DIR / "seed-ae.json", tmp_path / "seed-ae-old.json")  # its card's name: "seed-ae"
    completed = run_colorit(
        "evaluate", "--data", str(photo_folder), "--model", "seed-ae", str(tmp_path / "seed-ae-old.onnx"), "--quiet"
    )
    assert completed.returncode == 1 and "Traceback" not in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1
    assert "seed-ae-old.onnx" in completed.stderr and str(MODELS_DIR / "seed-ae.onnx") in completed.stderr
    twice = run_colorit("evaluate", "--data", str(photo_folder), "--model", "seed-ae", "seed-ae", "--quiet")
    assert twice.returncode == 0, twice.stderr
    assert [line.split()[0] for line in twice.stdout.splitlines()[2:] if line.strip()] == ["grey", "seed-ae"]
