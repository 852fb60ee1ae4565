"""What the colorize API refuses, in its JSON error form: bad fields (400), files that are not images
(415), uploads over the byte, pixel and form limits (413), what once broke the server; no temp files."""

from __future__ import annotations

import io
import json
import os
import struct
import tempfile
import zlib
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from server_helpers import assert_error, decode, grey_photo, multipart_body, post_image
from skimage import data

from colorit.server import app as server_app
from colorit.server.app import create_app
from colorit.server.uploads import MAX_FORM_PARTS


def one_bit_png(width: int, height: int) -> bytes:
    """A valid all-black 1-bit PNG; compresses a huge pixel count into ~100 kB (a pixel bomb)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    row = bytes(1 + (width + 7) // 8)  # filter byte + packed bits
    compressor = zlib.compressobj(9)
    pixels = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def png_with_big_exif() -> bytes:
    exif = Image.Exif()
    exif[0x010E] = "x" * 70_000  # ImageDescription: more than a JPEG's EXIF segment holds
    buffer = io.BytesIO()
    Image.fromarray(data.camera()).resize((96, 96)).save(buffer, "PNG", exif=exif)
    return buffer.getvalue()


def open_files_under(folder: Path) -> list[str]:
    """Files this process holds open under folder, deleted ones included (Linux /proc)."""
    found = []
    for descriptor in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{descriptor}")
        except OSError:
            continue
        if target.startswith(str(folder)):
            found.append(target)
    return found


@pytest.mark.parametrize(
    ("fields", "code", "words"),
    [
        ({"saturation": "-1"}, "bad_request", ["saturation"]),
        ({"saturation": "lots"}, "bad_request", ["saturation"]),
        ({"render_size": "7"}, "bad_request", ["render_size"]),
        ({"render_size": "big"}, "bad_request", ["render_size"]),
        ({"format": "gif"}, "bad_request", ["format"]),
        ({"colour": "red"}, "bad_request", ["colour"]),
        ({"model": "no-such-model"}, "unknown_model", ["no-such-model"]),
        ({"model": "/etc/passwd"}, "unknown_model", ["/etc/passwd"]),
        ({"hints": "not json"}, "bad_request", ["hints"]),
        (
            {"hints": '[{"x": 10, "y": 10, "color": "#ff0000"}, {"x": 5000, "y": 10, "color": "#ff0000"}]'},
            "invalid_hints",
            ["hint 2", "outside"],
        ),
        ({"hints": '[{"x": 10, "y": 10, "color": "reddish"}]'}, "invalid_hints", ["colour"]),
        ({"hints": json.dumps([{"x": 1, "y": 1, "color": "#ffffff"}] * 300)}, "invalid_hints", ["300"]),
    ],
)
def test_bad_parameters_get_400(client, grey_png, fields, code, words):
    assert_error(post_image(client, grey_png, "astronaut.png", **fields), 400, code, "astronaut.png", *words)


def test_a_form_without_the_file_gets_400(client):
    assert_error(client.post("/api/colorize", data={"saturation": "1"}), 400, "bad_request", "'file'")
    assert_error(client.post("/api/colorize", content=b"raw bytes"), 400, "bad_request", "multipart")


def test_a_file_under_another_field_name_is_told_which_field_to_use(client, grey_png):
    """Issue 21: `curl -F image=@photo.png` got 413 "larger than 1024 bytes"."""
    as_file = client.post("/api/colorize", files={"image": ("photo.png", grey_png, "image/png")})
    assert_error(as_file, 400, "bad_request", "photo.png", "'image'", "'file' field")
    beside_the_file = client.post(
        "/api/colorize", files={"file": ("a.png", grey_png, "image/png"), "photo": ("b.png", grey_png, "image/png")}
    )
    assert_error(beside_the_file, 400, "bad_request", "b.png", "'photo'", "'file' field")
    # curl -F 'image=<photo.png' sends the bytes as a text field, without a file name
    as_text = client.post("/api/colorize", files={"image": (None, grey_png)})
    assert_error(as_text, 400, "bad_request", "'image'", "'file' field")


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("notes.txt", b"these are words, not pixels\n" * 20, ["notes.txt", "not an image"]),
        ("cut.jpg", grey_photo(data.coffee(), "JPEG")[:5000], ["cut.jpg", "truncated"]),
    ],
)
def test_a_file_that_is_not_an_image_gets_415(client, name, content, words):
    assert_error(post_image(client, content, name), 415, "unsupported_media_type", *words)


def test_an_upload_over_the_byte_limit_gets_413():
    upload = grey_photo(data.astronaut(), "BMP")  # 263 kB
    with TestClient(create_app(max_upload_bytes=200_000), base_url="http://localhost") as small:
        assert_error(post_image(small, upload, "astronaut.bmp"), 413, "payload_too_large", "astronaut.bmp")


def test_a_streamed_upload_is_cut_off_at_the_limit_without_a_length():
    """A chunked body declares no Content-Length, so the limit must hold while reading."""
    upload = grey_photo(data.astronaut(), "BMP", size=(1400, 1400))  # 2 MB: over limit + form allowance
    body = multipart_body("colorit-boundary", "big.bmp", upload)
    chunks = (body[start : start + 65536] for start in range(0, len(body), 65536))
    with TestClient(create_app(max_upload_bytes=100_000), base_url="http://localhost") as small:
        response = small.post(
            "/api/colorize", content=chunks, headers={"content-type": "multipart/form-data; boundary=colorit-boundary"}
        )
    assert "content-length" not in response.request.headers
    assert_error(response, 413, "payload_too_large", "big.bmp")


def test_a_pixel_bomb_gets_413_before_decoding(client):
    bomb = one_bit_png(30_000, 30_000)  # 900 megapixels in ~110 kB
    assert len(bomb) < 1_000_000
    assert_error(post_image(client, bomb, "bomb.png"), 413, "payload_too_large", "bomb.png", "pixels")


def test_the_pixel_limit_is_configurable(grey_png):
    with TestClient(create_app(max_pixels=100_000), base_url="http://localhost") as strict:
        assert_error(post_image(strict, grey_png, "astronaut.png"), 413, "payload_too_large", "262144")


def test_a_huge_form_field_is_refused_before_it_is_parsed(client, grey_png):
    hints = json.dumps([{"x": 1, "y": 1, "color": "#c03020"}] * 700_000)  # ~20 MB of JSON
    response = post_image(client, grey_png, hints=hints)
    assert_error(response, 413, "payload_too_large", "hints")
    assert_error(post_image(client, grey_png, model="m" * 5000), 413, "payload_too_large", "model")
    many_parts = {f"field{i}": "1" for i in range(MAX_FORM_PARTS)}
    assert_error(post_image(client, grey_png, **many_parts), 400, "bad_request", "parts")
    assert client.get("/healthz").json()["busy"] == 0


def test_what_broke_the_server_is_now_an_image_or_a_4xx(client, grey_png):
    """Issue 12: EXIF over 64 kB written as JPEG and a hint radius of 1e200 gave 500."""
    written = post_image(client, png_with_big_exif(), "big-exif.png", format="jpg", render_size="64")
    assert written.status_code == 200 and decode(written.content).format == "JPEG"
    huge_radius = json.dumps([{"x": 10, "y": 10, "color": "#2050c0", "radius": 1e200}])
    assert post_image(client, grey_png, hints=huge_radius, render_size="64").status_code == 200
    assert_error(post_image(client, grey_png, hints="[" * 300_000), 413, "payload_too_large", "hints")
    assert_error(post_image(client, grey_png, hints="[" * 10_000), 400, "bad_request", "hints")
    assert_error(post_image(client, grey_png, saturation="1e30"), 400, "bad_request", "saturation")
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\nshowpage\n"
    assert_error(post_image(client, eps, "drawing.eps"), 415, "unsupported_media_type", "drawing.eps")


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux /proc to see open files")
def test_uploads_never_touch_the_temp_dir(monkeypatch, tmp_path, client):
    """Over 1 MB, Starlette's own form parser would spool the upload into a temporary file."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    upload = grey_photo(data.astronaut(), "BMP", size=(1200, 1200))  # 1.4 MB
    seen_while_working: list[str] = []
    real_colorize_upload = server_app.colorize_upload

    def watched_colorize_upload(*args):
        seen_while_working.extend(open_files_under(tmp_path))
        return real_colorize_upload(*args)

    monkeypatch.setattr(server_app, "colorize_upload", watched_colorize_upload)
    response = post_image(client, upload, "big.bmp", render_size="128")
    assert response.status_code == 200, response.text
    assert seen_while_working == []
    assert list(tmp_path.iterdir()) == []
