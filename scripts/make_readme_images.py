"""Before/after pictures for the README, made by a bundled model from the bundled samples.

python scripts/make_readme_images.py [--model default]   # writes docs/samples/NAME.jpg
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

import colorit

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "colorit" / "samples"
HEIGHT = 320  # each half of a pair, small enough for a README


def before_after(path: Path, model: str) -> Image.Image:
    with Image.open(path) as grey:
        grey = grey.convert("RGB")
    colour = colorit.colorize(grey, model=model)
    width = round(grey.width * HEIGHT / grey.height)
    pair = Image.new("RGB", (2 * width + 8, HEIGHT), "white")
    pair.paste(grey.resize((width, HEIGHT), Image.LANCZOS), (0, 0))
    pair.paste(colour.resize((width, HEIGHT), Image.LANCZOS), (width + 8, 0))
    return pair


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    args = parser.parse_args()
    out = ROOT / "docs" / "samples"
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted(SAMPLES.glob("*.jpg")):
        before_after(path, args.model).save(out / f"{path.stem}.jpg", quality=88)
        print(out / f"{path.stem}.jpg")


if __name__ == "__main__":
    main()
