"""The README's examples run as written (issue 21: the Python snippet lacked its imports, and there was
no curl example), and its quick start keeps using ColorIt apart from developing it."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess

import pytest
from conftest import REPO, grey_of, photo_rgb, provenance_in
from PIL import Image
from server_helpers import running_server

from colorit.server.app import create_app

README = (REPO / "README.md").read_text(encoding="utf-8")


def load_script(name: str):
    """scripts/NAME.py as a module (the scripts folder is no package)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_the_quick_start_separates_using_from_developing():
    use, develop = README.index("**To use it**"), README.index("**To develop it**")
    first, second = code_blocks("bash")[:2]
    assert use < README.index(first) < develop < README.index(second)
    assert "pip install" in first and "colorit colorize" in first and "test" not in first
    assert second.strip() == "bash scripts/test.sh"
    assert "Use the `default` model" in README[use:develop] and "`colorit models` says so" in README[use:develop]


def test_the_python_example_runs_as_written(tmp_path, monkeypatch):
    (snippet,) = [block for block in code_blocks("python") if "colorit.load_model" in block]
    grey = Image.fromarray(grey_of(photo_rgb("chelsea", 480)))
    grey.save(tmp_path / "grandma.jpg")
    grey.save(tmp_path / "scan.png")
    grey.save(tmp_path / "car.jpg")
    monkeypatch.chdir(tmp_path)
    exec(compile(snippet, "README.md", "exec"), {})  # its own imports, nothing given
    for name in ("colour-grandma.jpg", "colour-car.jpg"):
        with Image.open(tmp_path / name) as written:
            assert written.size == grey.size and written.mode == "RGB"


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_the_curl_examples_run_as_written(tmp_path):
    commands = [line for block in code_blocks("bash") for line in block.splitlines() if line.startswith("curl ")]
    assert len(commands) >= 2
    (tmp_path / "colorit").mkdir()
    (tmp_path / "colorit" / "samples").symlink_to(REPO / "colorit" / "samples")
    with running_server(create_app(workers=1, queue_size=2)) as url:
        for command in commands:
            result = subprocess.run(
                command.replace("http://127.0.0.1:8000", url),
                shell=True,
                cwd=tmp_path,
                capture_output=True,
                timeout=300,
            )
            assert result.returncode == 0, result.stderr
    for name, fmt in (("chelsea.png", "PNG"), ("chelsea.jpg", "JPEG")):
        with Image.open(tmp_path / name) as answer, Image.open(REPO / "colorit" / "samples" / "chelsea.jpg") as sent:
            assert (answer.format, answer.size) == (fmt, sent.size)
            assert provenance_in(answer)["Colorized"] == "True"
    assert provenance_in(Image.open(tmp_path / "chelsea.jpg"))["Hints"] == "1"


def test_the_screenshots_are_the_ones_their_script_makes():
    """README's web screenshots come from scripts/make_web_screenshots.py (issue 21: a stale one was
    committed by hand): the README names the script, and each picture has the size of its view."""
    script = load_script("make_web_screenshots")
    assert "python\nscripts/make_web_screenshots.py" in README or "python scripts/make_web_screenshots.py" in README
    for filename, viewport, scale in script.VIEWS.values():
        assert f"docs/{filename}" in README
        with Image.open(REPO / "docs" / filename) as screenshot:
            assert screenshot.width == viewport["width"] * scale


def test_the_quality_tables_are_those_of_the_results_files():
    """The colour-quality, hint and training-data tables are what scripts/readme_tables.py writes from
    benchmarks/results and the default model's card: no number in them typed by hand."""
    script = load_script("readme_tables")
    assert set(re.findall(r"<!-- table: ([\w-]+) -->", README)) == set(script.TABLES)
    assert script.rewritten(README) == README
