"""The REST API through FastAPI's test client, on real photos made grey."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import select
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from skimage import color, data
from sklearn.datasets import load_sample_image

import colorit
from colorit.cli import main as cli_main
from colorit.errors import ModelNotFound
from colorit.server import UPLOAD_MIN_BYTES_PER_S, UPLOADS_PER_CLIENT
from colorit.server import app as server_app
from colorit.server.app import create_app
from colorit.server.uploads import MAX_FORM_PARTS, UploadTimeouts
from colorit.session import list_models

REPO = Path(__file__).resolve().parent.parent
# Mean Lab chroma of a grey photo is ~0; any colorization worth the name is well above this.
MIN_COLOUR_CHROMA = 2.0


def grey_photo(pixels: np.ndarray, fmt: str, size: tuple[int, int] | None = None) -> bytes:
    image = Image.fromarray(pixels).convert("L")
    if size:
        image = image.resize(size)
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def decode(content: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(content))
    image.load()
    return image


def mean_chroma(rgb: np.ndarray) -> float:
    lab = color.rgb2lab(rgb)
    return float(np.hypot(lab[..., 1], lab[..., 2]).mean())


def post_image(client: TestClient, content: bytes, name: str = "photo.png", **fields: str):
    return client.post("/api/colorize", files={"file": (name, content, "application/octet-stream")}, data=fields)


def assert_error(response, status: int, code: str, *words: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error", "detail"}
    assert body["error"] == code
    for word in words:
        assert word in body["detail"]


def one_bit_png(width: int, height: int) -> bytes:
    """A valid all-black 1-bit PNG; compresses a huge pixel count into ~100 kB (a pixel bomb)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    row = bytes(1 + (width + 7) // 8)  # filter byte + packed bits
    compressor = zlib.compressobj(9)
    pixels = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def multipart_body(boundary: str, filename: str, content: bytes) -> bytes:
    return (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(workers=2, queue_size=4), base_url="http://localhost") as test_client:
        yield test_client


@pytest.fixture(scope="module")
def grey_png() -> bytes:
    return grey_photo(data.astronaut(), "PNG")


@pytest.mark.parametrize(
    ("name", "pixels", "fmt", "mime", "extension"),
    [
        ("astronaut.png", data.astronaut(), "PNG", "image/png", "png"),
        ("coffee.jpg", data.coffee(), "JPEG", "image/jpeg", "jpg"),
        ("china.webp", load_sample_image("china.jpg"), "WEBP", "image/webp", "webp"),
        ("chelsea.tif", data.chelsea(), "TIFF", "image/tiff", "tiff"),
    ],
)
def test_colorize_returns_a_coloured_image_of_the_same_size_and_format(client, name, pixels, fmt, mime, extension):
    upload = grey_photo(pixels, fmt)
    response = post_image(client, upload, name)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == mime
    stem = name.rsplit(".", 1)[0]
    assert f'filename="{stem}-colorized.{extension}"' in response.headers["content-disposition"]
    result = decode(response.content)
    assert result.format == fmt
    assert result.size == decode(upload).size
    assert mean_chroma(np.asarray(result.convert("RGB"))) > MIN_COLOUR_CHROMA


@pytest.mark.parametrize(
    ("fmt", "mime", "pillow_format"), [("jpg", "image/jpeg", "JPEG"), ("webp", "image/webp", "WEBP")]
)
def test_format_field_chooses_the_output_format(client, grey_png, fmt, mime, pillow_format):
    response = post_image(client, grey_png, "astronaut.png", format=fmt, saturation="1.5", render_size="256")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == mime
    assert f"astronaut-colorized.{fmt}" in response.headers["content-disposition"]
    result = decode(response.content)
    assert (result.format, result.size) == (pillow_format, (512, 512))


@pytest.mark.parametrize(
    ("fmt", "pillow_format"),
    [("jpeg", "JPEG"), ("JPG", "JPEG"), ("tif", "TIFF"), ("TIFF", "TIFF"), ("Png", "PNG"), ("WebP", "WEBP")],
)
def test_format_takes_what_the_command_line_takes_in_any_case(client, fmt, pillow_format):
    """Issue 21: 'jpeg', 'tif' and upper case were refused, though --format takes them."""
    upload = grey_photo(data.camera(), "PNG", size=(96, 64))
    response = post_image(client, upload, "camera.png", format=fmt, render_size="64")
    assert response.status_code == 200, response.text
    assert decode(response.content).format == pillow_format


def test_the_answer_says_whether_the_upload_was_in_colour(client):
    """Issue 21: a colour photo is recoloured from its brightness; the page warns from this header."""
    colour = io.BytesIO()
    Image.fromarray(data.astronaut()).save(colour, "JPEG")
    sepia_pixels = (np.asarray(Image.fromarray(data.camera()).convert("RGB")) * [1.0, 0.85, 0.65]).astype(np.uint8)
    sepia = io.BytesIO()
    Image.fromarray(sepia_pixels).save(sepia, "PNG")
    grey_as_rgb = io.BytesIO()
    Image.fromarray(data.astronaut()).convert("L").convert("RGB").save(grey_as_rgb, "JPEG")
    answers = {
        name: post_image(client, content, name, render_size="64").headers["x-colorit-input"]
        for name, content in [
            ("colour.jpg", colour.getvalue()),
            ("sepia.png", sepia.getvalue()),
            ("grey-rgb.jpg", grey_as_rgb.getvalue()),
            ("grey.png", grey_photo(data.astronaut(), "PNG")),
        ]
    }
    assert answers == {"colour.jpg": "colour", "sepia.png": "colour", "grey-rgb.jpg": "grey", "grey.png": "grey"}


def test_saturation_zero_gives_back_grey(client, grey_png):
    response = post_image(client, grey_png, saturation="0")
    assert response.status_code == 200, response.text
    assert mean_chroma(np.asarray(decode(response.content).convert("RGB"))) < 0.5


def test_models_lists_the_bundled_cards(client):
    response = client.get("/api/models")
    assert response.status_code == 200
    body = response.json()
    names = [card["name"] for card in body["models"]]
    assert names == [card["name"] for card in list_models()]
    assert body["default"] == "default" and "default" in names
    assert all(isinstance(card["accepts_hints"], bool) for card in body["models"])


def test_a_named_model_is_used(client, grey_png):
    other = next((card["name"] for card in list_models() if card["name"] != "default"), None)
    if other is None:
        pytest.skip("only one bundled model")
    response = post_image(client, grey_png, model=other)
    assert response.status_code == 200, response.text
    assert decode(response.content).size == (512, 512)


def test_healthz_reports_the_pool(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "model": "default",
        "device": colorit.load_model("default").device,  # cpu, or cuda where onnxruntime-gpu has a GPU
        "workers": 2,
        "queue": 4,
        "busy": 0,
        "uploads": 0,
    }


def test_openapi_document_and_offline_pages(client):
    spec = client.get("/openapi.json").json()
    form = spec["paths"]["/api/colorize"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    form_name = form["$ref"].rsplit("/", 1)[1]
    fields = spec["components"]["schemas"][form_name]["properties"]
    assert {"file", "model", "render_size", "saturation", "format", "hints"} <= set(fields)
    assert "Hint" in spec["components"]["schemas"]
    assert set(spec["paths"]["/api/colorize"]["post"]["responses"]) >= {"200", "400", "413", "415", "503"}
    for page, script in [("/", "/static/app.js"), ("/docs", "/static/docs.js")]:
        html = client.get(page)
        assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
        assert script in html.text
        # Everything comes from the app itself: no CDN, no external fonts.
        assert "http://" not in html.text and "https://" not in html.text
        asset = client.get(script)
        assert asset.status_code == 200 and "https://" not in asset.text
    assert client.get("/static/style.css").status_code == 200


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


def test_hints_pull_the_region_towards_their_colour(client):
    upload = grey_photo(data.coffee(), "PNG")  # 600 x 400
    x, y = 280, 160  # a mid-grey patch: dark ones leave little room for chroma
    red_hint = json.dumps([{"x": x, "y": y, "color": "#d01010", "radius": 12}])
    plain, hinted = (post_image(client, upload, "coffee.png", **fields) for fields in ({}, {"hints": red_hint}))
    assert plain.status_code == hinted.status_code == 200, hinted.text

    def redness_around_hint(response) -> float:  # Lab a: positive is red
        rgb = np.asarray(decode(response.content).convert("RGB"))[y - 8 : y + 8, x - 8 : x + 8]
        return float(color.rgb2lab(rgb)[..., 1].mean())

    assert redness_around_hint(hinted) > redness_around_hint(plain) + 10


def test_a_full_pool_answers_503_at_once_while_health_stays_up(monkeypatch, grey_png):
    """workers=1, queue=0: while one colorization is held inside the worker, the next is refused."""
    inside, release = threading.Event(), threading.Event()
    real_colorize_upload = server_app.colorize_upload

    def held_colorize_upload(*args):
        inside.set()
        release.wait(timeout=120)  # only so that a broken test cannot hang the suite
        return real_colorize_upload(*args)

    monkeypatch.setattr(server_app, "colorize_upload", held_colorize_upload)
    with (
        TestClient(create_app(workers=1, queue_size=0), base_url="http://localhost") as busy_client,
        ThreadPoolExecutor(1) as other_thread,
    ):
        try:
            first = other_thread.submit(post_image, busy_client, grey_png)
            assert inside.wait(timeout=120)
            refused = post_image(busy_client, grey_png, "second.png")
            health = busy_client.get("/healthz")
        finally:
            release.set()
        accepted = first.result(timeout=120)
        after = busy_client.get("/healthz").json()
    assert_error(refused, 503, "server_busy")
    assert refused.headers["retry-after"] == "1"
    assert health.status_code == 200 and health.json()["busy"] == 1
    assert accepted.status_code == 200
    assert after["busy"] == 0


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


def test_serve_refuses_bad_settings_before_starting(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["serve", "--workers", "0"])
    assert exit_info.value.code == 2
    assert cli_main(["serve", "--model", "no-such-model"]) == 1
    assert "no-such-model" in capsys.readouterr().err
    with pytest.raises(ModelNotFound):
        create_app(model="no-such-model")


# ------------------------------------------------------------------ hardening (issue 12), real server


def wait_for(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # polling: what it waits on offers no event
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running_server(app):
    """The app under uvicorn on a free local port, in a thread; yields its base URL. log_config=None
    leaves logging as pytest set it up, so that caplog sees uvicorn's records."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=True))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started or not thread.is_alive(), "the server to start")  # uvicorn has no event for it
    assert server.started, "the server did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def raw_request_head(port: int, length: int, boundary: str = "slowbody") -> bytes:
    return (
        f"POST /api/colorize HTTP/1.1\r\nHost: localhost:{port}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


class SlowUploads:
    """Connections, each from its own source address (all of 127/8 reaches this machine), that send a
    colorize request's head and then its body a byte a second to every connection at once."""

    def __init__(self, port: int, sources: list[str], body: bytes) -> None:
        self.connections = [
            socket.create_connection(("127.0.0.1", port), source_address=(source, 0)) for source in sources
        ]
        for connection in self.connections:
            connection.sendall(raw_request_head(port, len(body)))
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._trickle, args=(body,), daemon=True)
        self.thread.start()

    def _trickle(self, body: bytes) -> None:
        for position in range(len(body)):
            for connection in self.connections:
                with contextlib.suppress(OSError):  # the server may have answered and closed it
                    connection.sendall(body[position : position + 1])
            if self.stopped.wait(1.0):
                return

    def status_lines(self, timeout: float) -> list[bytes]:
        lines = []
        for connection in self.connections:
            connection.settimeout(timeout)
            lines.append(connection.recv(200).split(b"\r\n", 1)[0])
        return lines

    def close(self) -> None:
        self.stopped.set()
        self.thread.join()
        for connection in self.connections:
            connection.close()


def healthz(url: str) -> dict:
    return httpx.get(url + "/healthz", timeout=30).json()


def post_fast(url: str, grey_png: bytes, source: str = "127.0.0.1") -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, timeout=120) as fast:
        return fast.post(url + "/api/colorize", files={"file": ("photo.png", grey_png)}, data={"render_size": "64"})


def test_fifty_slow_uploads_leave_a_normal_colorize_answered_within_3_s(grey_png):
    """Issue 21: 20 clients sending at 1 byte/s made every other colorize request get 503 for ~118 s.
    Now 50 of them, half from one address and half each from its own, leave a normal client from
    another address answered within 3 s while they are all still sending."""
    app = create_app(
        workers=1,
        queue_size=2,
        # a long grace, so that the slow clients are certain still to be sending when the normal one is answered
        upload_timeouts=UploadTimeouts(grace_s=60),
    )
    with running_server(app) as url:
        body = multipart_body("slowbody", "slow.png", grey_png)
        sources = ["127.0.0.2"] * 25 + [f"127.0.1.{i}" for i in range(1, 26)]
        slow = SlowUploads(int(url.rsplit(":", 1)[1]), sources, body)
        try:
            being_read = UPLOADS_PER_CLIENT + 25  # the rest of the one address's are refused (429) once drained
            wait_for(lambda: healthz(url)["uploads"] == being_read, "the slow uploads to be read")
            started = time.monotonic()
            served = post_fast(url, grey_png)
            seconds = time.monotonic() - started
            still_sending = healthz(url)
        finally:
            slow.close()
    assert served.status_code == 200, served.text
    assert seconds < 3.0
    assert decode(served.content).size == (512, 512)
    assert still_sending["uploads"] == being_read and still_sending["busy"] == 0


def test_reading_an_upload_takes_no_colorize_slot(grey_png):
    """One worker, no queue: three uploads being read, and yet a fourth client is colorized (today's
    main read at most 2 uploads per colorize slot, the rest got 503)."""
    app = create_app(workers=1, queue_size=0)
    with running_server(app) as url:
        slow = SlowUploads(
            int(url.rsplit(":", 1)[1]),
            ["127.0.0.2", "127.0.0.3", "127.0.0.4"],
            multipart_body("slowbody", "slow.png", grey_png),
        )
        try:
            wait_for(lambda: healthz(url)["uploads"] == 3, "the slow uploads to be read")
            served = post_fast(url, grey_png)
        finally:
            slow.close()
    assert served.status_code == 200, served.text


def test_a_client_below_the_minimum_rate_is_cut_off_early(grey_png):
    """A byte a second never pauses long enough for the idle limit, so it held its upload for the whole
    total limit; now it is answered 408 once the grace period is over."""
    timeouts = UploadTimeouts(idle_s=120, total_s=120, grace_s=1)
    with running_server(create_app(upload_timeouts=timeouts)) as url:
        slow = SlowUploads(int(url.rsplit(":", 1)[1]), ["127.0.0.2"], multipart_body("slowbody", "slow.png", grey_png))
        try:
            answer = slow.connections[0]
            answer.settimeout(30)  # far below the idle and total limits
            head_and_body = b""
            while b"}" not in head_and_body:
                head_and_body += answer.recv(4096)
            after = healthz(url)
        finally:
            slow.close()
    assert head_and_body.startswith(b"HTTP/1.1 408 Request Timeout")
    body = json.loads(head_and_body.split(b"\r\n\r\n", 1)[1])
    assert body["error"] == "request_timeout"
    assert "too slow" in body["detail"] and f"{UPLOAD_MIN_BYTES_PER_S / 1024:g} KiB/s" in body["detail"]
    assert after["uploads"] == 0


def test_uploads_at_once_are_bounded_UPLOADS_PER_CLIENT_address(grey_png):
    with running_server(create_app()) as url:
        slow = SlowUploads(
            int(url.rsplit(":", 1)[1]),
            ["127.0.0.2"] * UPLOADS_PER_CLIENT,
            multipart_body("slowbody", "slow.png", grey_png),
        )
        try:
            wait_for(lambda: healthz(url)["uploads"] == UPLOADS_PER_CLIENT, "the slow uploads to be read")
            same_address = post_fast(url, grey_png, source="127.0.0.2")
            other_address = post_fast(url, grey_png, source="127.0.0.3")
        finally:
            slow.close()
    assert_error(same_address, 429, "too_many_uploads", "127.0.0.2", str(UPLOADS_PER_CLIENT))
    assert same_address.headers["retry-after"] == "1"
    assert other_address.status_code == 200, other_address.text


def test_uploads_being_read_hold_at_most_their_share_of_memory():
    """The bytes received count, not the uploads: three uploads a megabyte in overfill what one
    colorize slot allows (2 x (256 kB + 1 MB of form room)), so one of them is refused with 503."""
    max_upload = 256 * 1024
    app = create_app(workers=1, queue_size=0, max_upload_bytes=max_upload)
    body = multipart_body("slowbody", "big.bin", bytes(1_200_000))
    held = body[: 1024 * 1024]  # a megabyte of it, then the client waits
    with running_server(app) as url:
        port = int(url.rsplit(":", 1)[1])
        connections = []
        try:
            for source in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):
                connection = socket.create_connection(("127.0.0.1", port), source_address=(source, 0))
                connection.sendall(raw_request_head(port, len(body)) + held)
                connections.append(connection)
            # whichever tipped it over (the server reads them side by side) is answered; the others wait
            readable, _, _ = select.select(connections, [], [], 30)
            assert len(readable) == 1
            answer = b""
            while b"}" not in answer:
                answer += readable[0].recv(4096)
        finally:
            for connection in connections:
                connection.close()
    assert answer.startswith(b"HTTP/1.1 503 Service Unavailable")
    detail = json.loads(answer.split(b"\r\n\r\n", 1)[1])["detail"]
    assert "uploads being read fill" in detail and "2.5 MB" in detail


def test_a_client_that_hangs_up_drops_its_job_without_a_traceback(monkeypatch, caplog, grey_png):
    # A server started earlier in the session with uvicorn's own logging config (a log level, no
    # propagation to the root logger where caplog listens) must not hide this server's records.
    for name in ("uvicorn", "uvicorn.access", "uvicorn.error"):
        caplog.set_level(logging.INFO, logger=name)
        monkeypatch.setattr(logging.getLogger(name), "propagate", True)
    caplog.set_level(logging.INFO)
    inside, release = threading.Event(), threading.Event()
    calls = []
    real_colorize_upload = server_app.colorize_upload

    def held_colorize_upload(*args):
        calls.append(args[0].filename)
        inside.set()
        release.wait(timeout=120)  # only so that a broken test cannot hang the suite
        return real_colorize_upload(*args)

    monkeypatch.setattr(server_app, "colorize_upload", held_colorize_upload)
    app = create_app(workers=1, queue_size=4, allowed_hosts=["127.0.0.1", "localhost"])
    with running_server(app) as url, ThreadPoolExecutor(1) as other_thread:
        port = int(url.rsplit(":", 1)[1])
        try:
            first = other_thread.submit(
                httpx.post,
                url + "/api/colorize",
                files={"file": ("first.png", grey_png)},
                data={"render_size": "64"},
                timeout=120,
            )
            assert inside.wait(timeout=120)
            leaving = []
            for name in ("second.png", "third.png"):
                body = multipart_body("gone", name, grey_png)
                connection = socket.create_connection(("127.0.0.1", port))
                connection.sendall(raw_request_head(port, len(body), "gone") + body)
                leaving.append(connection)
            wait_for(lambda: httpx.get(url + "/healthz").json()["busy"] == 3, "both to queue")
            # one hangs up in the middle of its upload
            half_sent = socket.create_connection(("127.0.0.1", port))
            half_sent.sendall(raw_request_head(port, 10_000, "gone") + b"--gone\r\n")
            for connection in [*leaving, half_sent]:
                connection.close()
            wait_for(lambda: httpx.get(url + "/healthz").json()["busy"] == 1, "the queued jobs to be dropped")
        finally:
            release.set()
        assert first.result(timeout=120).status_code == 200
    assert calls == ["first.png"]
    # the first was answered, and nothing failed: no 5xx, no traceback (whether uvicorn logs an access
    # line for a connection that closed before its answer depends on timing)
    answered = [
        record.args[4]
        for record in caplog.records
        if record.name == "uvicorn.access" and record.args[2] == "/api/colorize"
    ]
    assert 200 in answered and set(answered) == {200}
    assert not [record for record in caplog.records if record.exc_info or record.levelno >= logging.ERROR]


def test_a_huge_form_field_is_refused_before_it_is_parsed(client, grey_png):
    hints = json.dumps([{"x": 1, "y": 1, "color": "#c03020"}] * 700_000)  # ~20 MB of JSON
    response = post_image(client, grey_png, hints=hints)
    assert_error(response, 413, "payload_too_large", "hints")
    assert_error(post_image(client, grey_png, model="m" * 5000), 413, "payload_too_large", "model")
    many_parts = {f"field{i}": "1" for i in range(MAX_FORM_PARTS)}
    assert_error(post_image(client, grey_png, **many_parts), 400, "bad_request", "parts")
    assert client.get("/healthz").json()["busy"] == 0


def test_every_answer_carries_security_headers(client, grey_png):
    for response in (
        client.get("/"),
        client.get("/api/models"),
        post_image(client, b"not an image"),
        client.get("/healthz", headers={"Host": "evil.example"}),
    ):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_only_allowed_host_names_are_answered():
    """A web page that rebinds its own name to 127.0.0.1 sends its own name as Host: refused, in the
    API's JSON error form (issue 21: it was plain text) that says how to allow a name."""
    with TestClient(create_app(), base_url="http://localhost:8000") as local:
        assert local.get("/healthz").status_code == 200
        refused = local.get("/healthz", headers={"Host": "rebind.attacker.example"})
        assert_error(refused, 400, "invalid_host", "rebind.attacker.example", "--allowed-host")
        assert local.get("/healthz", headers={"Host": "127.0.0.1:8000"}).status_code == 200
        assert_error(local.get("/healthz", headers={"Host": "[::1"}), 400, "invalid_host", "[::1")
    with TestClient(create_app(allowed_hosts=["photos.lan", "*.home.arpa"]), base_url="http://photos.lan") as named:
        assert named.get("/healthz").status_code == 200
        assert named.get("/healthz", headers={"Host": "Box.Home.Arpa:8000"}).status_code == 200
        assert named.get("/healthz", headers={"Host": "home.arpa.evil.example"}).status_code == 400
        assert named.get("/healthz", headers={"Host": "localhost"}).status_code == 400


def png_with_big_exif() -> bytes:
    exif = Image.Exif()
    exif[0x010E] = "x" * 70_000  # ImageDescription: more than a JPEG's EXIF segment holds
    buffer = io.BytesIO()
    Image.fromarray(data.camera()).resize((96, 96)).save(buffer, "PNG", exif=exif)
    return buffer.getvalue()


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


@pytest.mark.parametrize(
    ("host", "extra", "names"),
    [
        ("127.0.0.1", [], ["localhost", "127.0.0.1"]),
        ("192.168.1.20", [], ["localhost", "127.0.0.1", "192.168.1.20"]),
        (
            "0.0.0.0",
            ["photos.lan"],
            ["localhost", "127.0.0.1", socket.gethostname(), f"{socket.gethostname()}.local", "photos.lan"],
        ),
        ("::", ["*"], ["localhost", "127.0.0.1", socket.gethostname(), f"{socket.gethostname()}.local", "*"]),
    ],
)
def test_serve_answers_local_names_its_own_names_and_those_it_is_given(host, extra, names):
    from colorit.server.hosts import names_for

    assert names_for(host, extra) == names


def machine_ipv4_addresses() -> list[str]:
    import psutil

    return [
        entry.address
        for entries in psutil.net_if_addrs().values()
        for entry in entries
        if entry.family == socket.AF_INET
    ]


def test_serve_on_every_address_answers_each_address_of_the_machine():
    """Issue 21: `colorit serve --host 0.0.0.0` answered the machine's own address (as a phone opens
    it) with a plain-text "Invalid host header"."""
    port = free_port()
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    server = subprocess.Popen(
        [sys.executable, "-m", "colorit", "serve", "--host", "0.0.0.0", "--port", str(port)],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=environment,
    )
    try:
        start_line = server.stderr.readline()
        listed = re.findall(r"http://([\d.]+):(\d+)/", start_line)
        assert "--allowed-host" in start_line, start_line
        assert {address for address, _ in listed} == set(machine_ipv4_addresses()), start_line
        assert {int(listed_port) for _, listed_port in listed} == {port}
        wait_for(lambda: server_answers(f"http://127.0.0.1:{port}/healthz"), "the server to start")
        # 127.0.0.2 is one of the machine's addresses too (all of 127/8 is), though no interface lists it
        for address in [*machine_ipv4_addresses(), "127.0.0.2"]:
            response = httpx.get(f"http://{address}:{port}/healthz", timeout=30)
            assert response.status_code == 200, (address, response.text)
        refused = httpx.get(f"http://127.0.0.1:{port}/healthz", headers={"Host": "rebind.example"}, timeout=30)
        assert_error(refused, 400, "invalid_host", "rebind.example", "--allowed-host rebind.example")
    finally:
        server.terminate()
        server.wait(timeout=30)


def server_answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False
