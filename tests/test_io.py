import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import grey_of, photo_rgb
from PIL import Image, ImageCms

from colorit.encoding import encode_image, output_format, write_image
from colorit.errors import ImageError, ImageTooLarge, OutputError
from colorit.io import ORIENTATION_TAG, Picture, picture_from_pil, read_image, write_bytes_atomic

SRGB_PROFILE = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def rgb():
    return photo_rgb("chelsea", 120)


@pytest.fixture(scope="module")
def grey(rgb):
    return grey_of(rgb)


# ------------------------------------------------------------------------------------------ modes


@pytest.mark.parametrize(
    "make, fmt, shape_tail, dtype",
    [
        (lambda g, c: Image.fromarray(g).convert("1"), "PNG", (), np.uint8),
        (lambda g, c: Image.fromarray(g), "JPEG", (), np.uint8),
        (lambda g, c: Image.fromarray(np.dstack([g, g // 2]), "LA"), "PNG", (2,), np.uint8),
        (lambda g, c: Image.fromarray(g.astype(np.uint16) * 257), "PNG", (), np.uint16),
        (lambda g, c: Image.fromarray(g.astype(">u2") * 257), "TIFF", (), np.uint16),
        (lambda g, c: Image.fromarray(g.astype(np.int32) * 257, "I"), "TIFF", (), np.uint16),
        (lambda g, c: Image.fromarray(g).convert("P"), "PNG", (3,), np.uint8),
        (lambda g, c: Image.fromarray(c).convert("P", palette=Image.Palette.ADAPTIVE), "GIF", (3,), np.uint8),
        (lambda g, c: Image.fromarray(c), "PNG", (3,), np.uint8),
        (lambda g, c: Image.fromarray(np.dstack([c, g]), "RGBA"), "WEBP", (4,), np.uint8),
        (lambda g, c: Image.fromarray(c).convert("CMYK"), "JPEG", (3,), np.uint8),
    ],
    ids=["1", "L", "LA", "I;16", "I;16B", "I", "P", "P-colour", "RGB", "RGBA", "CMYK"],
)
def test_every_mode_reads_as_grey_or_rgb_with_alpha(grey, rgb, make, fmt, shape_tail, dtype):
    image = make(grey, rgb)
    picture = read_image(encoded(image, fmt))
    assert picture.pixels.shape == grey.shape + shape_tail and picture.pixels.dtype == dtype
    assert picture.format == fmt


def test_palette_with_transparency_keeps_it_as_alpha(grey):
    image = Image.fromarray(grey).convert("P")
    picture = read_image(encoded(image, "PNG", transparency=0))
    assert picture.pixels.shape == grey.shape + (4,)
    assert set(np.unique(picture.pixels[..., 3])) <= {0, 255} and (picture.pixels[..., 3] == 0).any()


def test_pil_image_is_taken_as_it_is(grey):
    picture = picture_from_pil(Image.fromarray(grey))
    np.testing.assert_array_equal(picture.pixels, grey)


# ------------------------------------------------------------------------------------- orientation


def test_exif_orientation_is_applied_and_reset(grey, tmp_path):
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = 6  # stored sideways: the viewer must rotate 90 degrees clockwise
    exif[0x013B] = "Ansel"  # Artist: must survive
    path = tmp_path / "sideways.jpg"
    Image.fromarray(grey).save(path, exif=exif, quality=95)
    picture = read_image(path)
    assert picture.pixels.shape == grey.shape[::-1]
    expected = np.rot90(grey, k=-1)
    assert np.abs(picture.pixels.astype(int) - expected).mean() < 3
    out = tmp_path / "out.jpg"
    write_image(out, Picture(np.dstack([picture.pixels] * 3), exif=picture.exif))
    with Image.open(out) as written:
        assert written.size == (grey.shape[0], grey.shape[1])
        assert written.getexif()[ORIENTATION_TAG] == 1 and written.getexif()[0x013B] == "Ansel"


# ---------------------------------------------------------------------------------------- metadata


@pytest.mark.parametrize("fmt", ["png", "jpg", "webp", "tiff"])
def test_icc_dpi_and_exif_are_carried(rgb, tmp_path, fmt):
    exif = Image.Exif()
    exif[0x010E] = "harbour, 1931"  # ImageDescription
    exif.get_ifd(0x8769)[0x9003] = "1931:05:02 10:00:00"  # DateTimeOriginal, in the EXIF sub-directory
    source = Image.fromarray(rgb)
    picture = read_image(encoded(source, "JPEG", icc_profile=SRGB_PROFILE, dpi=(300, 300), exif=exif.tobytes()))
    assert picture.icc_profile == SRGB_PROFILE and picture.dpi == (300, 300)
    path = write_image(tmp_path / f"out.{fmt}", picture)
    with Image.open(path) as written:
        assert written.info.get("icc_profile") == SRGB_PROFILE
        if fmt != "webp":
            assert tuple(round(v) for v in written.info["dpi"]) == (300, 300)
        assert written.getexif()[0x010E] == "harbour, 1931"
        assert written.getexif().get_ifd(0x8769)[0x9003] == "1931:05:02 10:00:00"


def test_grey_icc_profile_is_dropped_for_colour_output(grey):
    grey_profile = bytearray(SRGB_PROFILE)
    grey_profile[16:20] = b"GRAY"
    picture = read_image(encoded(Image.fromarray(grey), "PNG", icc_profile=bytes(grey_profile)))
    assert picture.icc_profile is None


# ---------------------------------------------------------------------------------------- 16 bits


def _png_header(data: bytes) -> tuple[int, int, int, int]:
    width, height, depth, color_type = struct.unpack(">IIBB", data[16:26])
    return width, height, depth, color_type


@pytest.mark.parametrize("channels", [3, 4])
def test_sixteen_bit_png_is_written_with_sixteen_bit_samples(channels):
    rng = np.random.default_rng(channels)
    pixels = rng.integers(0, 65536, (37, 53, channels), dtype=np.uint16)
    data = encode_image(Picture(pixels, dpi=(600, 600), icc_profile=SRGB_PROFILE), "png")
    assert _png_header(data) == (53, 37, 16, 6 if channels == 4 else 2)
    with Image.open(io.BytesIO(data)) as decoded:  # an independent decoder accepts the file
        decoded.load()
        assert decoded.size == (53, 37) and decoded.info["icc_profile"] == SRGB_PROFILE
        assert tuple(round(v) for v in decoded.info["dpi"]) == (600, 600)
        if channels == 3:
            np.testing.assert_array_equal(np.asarray(decoded), (pixels >> 8).astype(np.uint8))


@pytest.mark.parametrize("channels", [3, 4])
def test_sixteen_bit_tiff_round_trips_exactly(channels, tmp_path):
    import tifffile

    pixels = np.random.default_rng(5).integers(0, 65536, (41, 29, channels), dtype=np.uint16)
    path = write_image(tmp_path / "deep.tif", Picture(pixels, dpi=(1200, 1200), icc_profile=SRGB_PROFILE))
    with tifffile.TiffFile(path) as tiff:
        np.testing.assert_array_equal(tiff.asarray(), pixels)
        tags = tiff.pages[0].tags
        numerator, denominator = tags["XResolution"].value
        assert numerator / denominator == 1200 and tags["InterColorProfile"].value == SRGB_PROFILE


def test_eight_bit_png_matches_pillow_decoding(rgb):
    rgba = np.dstack([rgb, rgb[..., 1]])
    with Image.open(io.BytesIO(encode_image(Picture(rgba), "png"))) as decoded:
        np.testing.assert_array_equal(np.asarray(decoded), rgba)


def test_jpeg_of_transparent_pixels_is_flattened_on_white(rgb):
    rgba = np.dstack([rgb, np.zeros(rgb.shape[:2], np.uint8)])
    with Image.open(io.BytesIO(encode_image(Picture(rgba), "jpeg"))) as decoded:
        assert decoded.mode == "RGB" and np.asarray(decoded).min() >= 250


def test_output_format_names():
    assert [output_format(n) for n in ("png", ".JPG", "jpeg", "WEBP", "tif", "TIFF")] == [
        "PNG",
        "JPEG",
        "JPEG",
        "WEBP",
        "TIFF",
        "TIFF",
    ]
    with pytest.raises(ValueError, match="unsupported output format"):
        output_format("bmp")


# ------------------------------------------------------------------------------------- bad inputs


def _assert_one_line_naming(exc: Exception, path: Path) -> None:
    message = str(exc)
    assert message.startswith(f"{path}: ") and "\n" not in message and len(message) < 300


def test_text_file_renamed_jpg(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("shopping list: milk, eggs\n")
    with pytest.raises(ImageError, match="not an image") as caught:
        read_image(path)
    _assert_one_line_naming(caught.value, path)


def test_truncated_jpeg(grey, tmp_path):
    path = tmp_path / "cut.jpg"
    data = encoded(Image.fromarray(grey), "JPEG")
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="truncated") as caught:
        read_image(path)
    _assert_one_line_naming(caught.value, path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(ImageError, match="empty file") as caught:
        read_image(path)
    _assert_one_line_naming(caught.value, path)


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match="cannot open"):
        read_image(tmp_path / "nowhere.png")


def _bomb_png(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of zeros: a few hundred KB on disk, `width * height` pixels decoded."""
    row = b"\x00" * (1 + (width + 7) // 8)
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))  # noqa: E731
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(_bomb_png(30000, 30000))
    assert path.stat().st_size < 1_000_000
    with pytest.raises(ImageTooLarge, match="900000000 pixels, over the limit of 200000000") as caught:
        read_image(path)
    _assert_one_line_naming(caught.value, path)


def test_pixel_limit_is_configurable(grey, tmp_path):
    path = tmp_path / "small.png"
    Image.fromarray(grey).save(path)
    with pytest.raises(ImageTooLarge, match="over the limit of 1000"):
        read_image(path, max_pixels=1000)
    assert read_image(path, max_pixels=grey.size).pixels.shape == grey.shape


def test_limit_above_pillows_own_is_the_one_that_applies(tmp_path):
    path = tmp_path / "wide.png"
    path.write_bytes(_bomb_png(20000, 10000))  # 2e8 pixels: past Pillow's own default refusal
    with pytest.raises(ImageTooLarge, match="20000x10000 = 200000000 pixels, over the limit of 199999999"):
        read_image(path, max_pixels=199_999_999)


def test_one_pixel_image(tmp_path):
    path = tmp_path / "dot.png"
    Image.new("L", (1, 1), 90).save(path)
    assert read_image(path).pixels.shape == (1, 1)


# ------------------------------------------------------------------------------------------ writing


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if "colorit-tmp" in p.name]


def test_atomic_write_leaves_only_the_result(rgb, tmp_path):
    path = write_image(tmp_path / "deep" / "er" / "out.png", Picture(rgb))
    assert path.is_file() and _leftovers(path.parent) == []
    with Image.open(path) as written:
        np.testing.assert_array_equal(np.asarray(written), rgb)


def test_existing_output_is_never_replaced_without_overwrite(rgb, tmp_path):
    path = tmp_path / "out.png"
    path.write_bytes(b"precious")
    with pytest.raises(OutputError, match="already exists") as caught:
        write_image(path, Picture(rgb))
    _assert_one_line_naming(caught.value, path)
    assert path.read_bytes() == b"precious" and _leftovers(tmp_path) == []
    write_image(path, Picture(rgb), overwrite=True)
    assert path.read_bytes().startswith(b"\x89PNG")


def test_input_is_never_written_onto(rgb, tmp_path):
    source = tmp_path / "photo.png"
    source.write_bytes(b"original")
    with pytest.raises(OutputError, match="onto an input"):
        write_image(tmp_path / "." / "photo.png", Picture(rgb), overwrite=True, protected=[source])
    assert source.read_bytes() == b"original"


def test_failed_write_leaves_nothing_behind(tmp_path):
    target = tmp_path / "taken"
    target.mkdir()  # a folder where the file should go: the final rename fails
    with pytest.raises(OutputError, match="cannot write"):
        write_bytes_atomic(target, b"data", overwrite=True)
    assert _leftovers(tmp_path) == [] and target.is_dir()


def test_unknown_output_extension_is_an_output_error(rgb, tmp_path):
    with pytest.raises(OutputError, match="unsupported output format"):
        write_image(tmp_path / "out.xyz", Picture(rgb))
