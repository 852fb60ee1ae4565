import json
import os

import numpy as np
import pytest
from conftest import grey_of, mean_dL, photo_rgb, run_colorit
from PIL import Image


def assert_clean_stderr(stderr: str) -> None:
    assert "Traceback" not in stderr and "Error:" not in stderr.replace("error:", "")


@pytest.fixture
def photo_tree(tmp_path):
    """in/a.jpg, in/sub/b.png (grey + alpha), in/sub/deeper/c.tiff (16-bit), plus things to skip."""
    root = tmp_path / "in"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / ".cache").mkdir()
    coffee, chelsea, hopper = (grey_of(photo_rgb(name, 96)) for name in ("coffee", "chelsea", "grace_hopper"))
    Image.fromarray(coffee).save(root / "a.jpg", quality=95)
    Image.fromarray(np.dstack([chelsea, np.full_like(chelsea, 200)]), "LA").save(root / "sub" / "b.png")
    Image.fromarray(hopper.astype(np.uint16) * 257).save(root / "sub" / "deeper" / "c.tiff")
    Image.fromarray(coffee).save(root / ".hidden.png")
    Image.fromarray(coffee).save(root / ".cache" / "d.png")
    (root / "notes.txt").write_text("not an image")
    return root


def outputs(folder) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_folder_is_colorized_keeping_layout_then_rerun_skips(photo_tree, tmp_path):
    out = tmp_path / "out"
    result = run_colorit("colorize", str(photo_tree), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == f"colorized 3, skipped 0, failed 0 -> {out}"
    assert outputs(out) == ["a.jpg", "sub/b.png", "sub/deeper/c.tiff"]
    with Image.open(out / "a.jpg") as a, Image.open(photo_tree / "a.jpg") as source:
        assert a.size == source.size and a.mode == "RGB"
        assert mean_dL(np.asarray(a), np.asarray(source)) < 1.0  # JPEG re-encoding adds a little
    with Image.open(out / "sub" / "b.png") as b:
        assert b.mode == "RGBA" and (np.asarray(b)[..., 3] == 200).all()
    import tifffile

    deep = tifffile.imread(out / "sub" / "deeper" / "c.tiff")
    assert deep.dtype == np.uint16 and deep.shape[-1] == 3
    assert_clean_stderr(result.stderr)

    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    again = run_colorit("colorize", str(photo_tree), "-o", str(out))
    assert again.returncode == 0 and again.stdout.splitlines() == [f"colorized 0, skipped 3, failed 0 -> {out}"]
    assert again.stderr == ""  # issue 21: one summary line, not a line per file
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before

    forced = run_colorit(
        "colorize", str(photo_tree / "a.jpg"), "-o", str(out), "--overwrite", "--format", "png", "--saturation", "0"
    )
    assert forced.returncode == 0 and "colorized 1, skipped 0, failed 0" in forced.stdout
    with Image.open(out / "a.png") as grey_again:
        rgb = np.asarray(grey_again).astype(int)
        assert np.abs(rgb - rgb[..., :1]).max() <= 1


def test_bad_inputs_fail_one_line_each_and_the_batch_goes_on(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    grey = grey_of(photo_rgb("astronaut", 80))
    Image.fromarray(grey).save(folder / "good.png")
    Image.new("L", (1, 1), 128).save(folder / "one-pixel.png")
    (folder / "letter.jpg").write_text("Dear Sir, this is not a photo.")
    jpeg = folder / "cut.jpg"
    Image.fromarray(grey).save(jpeg, quality=95)
    jpeg.write_bytes(jpeg.read_bytes()[:600])
    (folder / "empty.png").write_bytes(b"")
    huge = Image.new("1", (3000, 3000))
    huge.save(folder / "huge.png")
    out = tmp_path / "out"
    result = run_colorit("colorize", str(folder), "-o", str(out), "--max-pixels", "1000000")
    assert result.returncode == 1
    failures = [line for line in result.stderr.splitlines() if line.startswith("colorit: ")]
    assert len(failures) == 4
    for name, reason in [
        ("letter.jpg", "not an image"),
        ("cut.jpg", "truncated"),
        ("empty.png", "empty file"),
        ("huge.png", "over the limit"),
    ]:
        (line,) = [f for f in failures if f"{folder / name}:" in f]
        assert reason in line
    assert "colorized 2, skipped 0, failed 4" in result.stdout
    assert outputs(out) == ["good.png", "one-pixel.png"]
    assert_clean_stderr(result.stderr)


@pytest.mark.parametrize(
    "make_args, words",
    [
        (lambda t: ["colorize", "-o", str(t / "out")], "required: PATH"),
        (lambda t: ["colorize", str(t / "in"), "-o", str(t / "out"), "--saturation", "-1"], "--saturation"),
        (lambda t: ["colorize", str(t / "in"), "-o", str(t / "out"), "--workers", "0"], "--workers"),
        (lambda t: ["colorize", str(t / "in"), "-o", str(t / "out"), "--format", "bmp"], "--format"),
        (lambda t: ["colorize", str(t / "in"), "-o", str(t / "out"), "--colour"], "unrecognized"),
        (lambda t: ["colorize", str(t / "no-images"), "-o", str(t / "out")], "no images"),
        (lambda t: ["colorize", str(t / "in"), "-o", str(t / "a-file" / "out")], "cannot create or write"),
        (lambda t: ["colorize", str(t / "in"), "-o", str(t / "out"), "--model", "rainbow"], "no such model"),
        (
            lambda t: ["colorize", str(t / "in"), "-o", str(t / "out"), "--hints", str(t / "h.json")],
            "exactly one input",
        ),
        (
            lambda t: ["colorize", str(t / "in" / "x.png"), "-o", str(t / "out"), "--hints", str(t / "missing.json")],
            "cannot read hints",
        ),
    ],
    ids=[
        "no-inputs",
        "saturation",
        "workers",
        "format",
        "unknown-flag",
        "empty-folder",
        "unwritable-output",
        "model",
        "hints-many",
        "hints-missing",
    ],
)
def test_usage_errors_exit_2_with_one_line(tmp_path, make_args, words):
    (tmp_path / "in").mkdir()
    Image.new("L", (8, 8), 50).save(tmp_path / "in" / "x.png")
    (tmp_path / "no-images").mkdir()
    (tmp_path / "no-images" / "readme.txt").write_text("nothing here")
    (tmp_path / "a-file").write_text("a file, not a folder")
    (tmp_path / "h.json").write_text("[]")
    result = run_colorit(*make_args(tmp_path))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], result.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_hints_file_for_one_image(tmp_path):
    grey = grey_of(photo_rgb("chelsea", 120))
    source = tmp_path / "cat.png"
    Image.fromarray(grey).save(source)
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps([{"x": 30, "y": 30, "color": "#d02020", "radius": 3}]))
    bad.write_text(json.dumps([{"x": 3000, "y": 30, "color": "#d02020"}]))
    assert run_colorit("colorize", str(source), "-o", str(tmp_path / "o1"), "--hints", str(good)).returncode == 0
    assert (tmp_path / "o1" / "cat.png").is_file()
    failed = run_colorit("colorize", str(source), "-o", str(tmp_path / "o2"), "--hints", str(bad))
    assert failed.returncode == 1
    assert failed.stderr.strip() == f"colorit: {source}: {bad}: hint 1: (3000, 30) lies outside the 120x80 image"


def test_workers_process_a_folder_in_parallel(tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for i, name in enumerate(["astronaut", "coffee", "chelsea", "china", "grace_hopper"]):
        Image.fromarray(grey_of(photo_rgb(name, 64 + 8 * i))).save(folder / f"{i}-{name}.jpg")
    out = tmp_path / "out"
    result = run_colorit(
        "colorize", str(folder), "-o", str(out), "--workers", "2", "--format", "webp", "--model", "seed-ae"
    )
    assert result.returncode == 0, result.stderr
    assert "colorized 5, skipped 0, failed 0" in result.stdout
    assert outputs(out) == sorted(
        f"{i}-{name}.webp" for i, name in enumerate(["astronaut", "coffee", "chelsea", "china", "grace_hopper"])
    )
    assert_clean_stderr(result.stderr)


def test_outputs_that_would_collide_or_replace_inputs_fail(tmp_path):
    for folder in ("x", "y"):
        (tmp_path / folder).mkdir()
        Image.new("L", (16, 16), 90).save(tmp_path / folder / "same.png")
    original = (tmp_path / "x" / "same.png").read_bytes()
    clash = run_colorit(
        "colorize", str(tmp_path / "x" / "same.png"), str(tmp_path / "y" / "same.png"), "-o", str(tmp_path / "out")
    )
    assert clash.returncode == 1 and "is also the output of" in clash.stderr
    assert "colorized 1, skipped 0, failed 1" in clash.stdout
    onto_input = run_colorit("colorize", str(tmp_path / "x"), "-o", str(tmp_path / "x"), "--overwrite")
    assert onto_input.returncode == 1 and "would replace an input" in onto_input.stderr
    assert (tmp_path / "x" / "same.png").read_bytes() == original


def test_unwritable_output_file_is_a_failure_not_a_crash(tmp_path):
    Image.new("L", (16, 16), 90).save(tmp_path / "p.png")
    out = tmp_path / "out"
    (out / "p.png").mkdir(parents=True)  # a folder sits where the output file should go
    result = run_colorit("colorize", str(tmp_path / "p.png"), "-o", str(out), "--overwrite")
    assert result.returncode == 1 and "cannot write" in result.stderr
    assert_clean_stderr(result.stderr)
    assert not [name for name in os.listdir(out) if "colorit-tmp" in name]


def test_models_lists_the_bundled_models():
    table = run_colorit("models")
    assert table.returncode == 0
    lines = table.stdout.splitlines()
    # issue 21: it says first which model to use
    assert lines[0].startswith("Use default: colorize, serve and colorit.colorize() take it unless told otherwise")
    assert lines[1].split()[:3] == ["MODEL", "FILE", "PARAMETERS"]
    rows = {line.split()[0]: line for line in lines[2:] if line and not line.startswith(" ")}
    assert {"default", "seed-ae"} <= set(rows) and " MB" in rows["default"]
    assert "training:" in table.stdout
    # each card's validation table, as `colorit evaluate --update-cards` wrote it, with the grey baseline
    assert table.stdout.count("validation on ") == 2 and "sat AuC %" in table.stdout
    assert any(line.split()[:1] == ["grey"] for line in lines)
    cards = json.loads(run_colorit("models", "--json").stdout)
    assert {card["name"] for card in cards} >= {"default", "seed-ae"}


def test_output_folder_inside_the_input_folder_is_not_rescanned(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(grey_of(photo_rgb("coffee", 48))).save(photos / "cup.png")
    out = photos / "colorized"
    first = run_colorit("colorize", str(photos), "-o", str(out))
    second = run_colorit("colorize", str(photos), "-o", str(out))
    assert "colorized 1, skipped 0, failed 0" in first.stdout
    assert "colorized 0, skipped 1, failed 0" in second.stdout
    assert outputs(out) == ["cup.png"]
