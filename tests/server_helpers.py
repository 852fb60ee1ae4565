"""Helpers for the server tests: grey photo uploads, requests through FastAPI's test client and the
API's JSON error answers, and the app under uvicorn on a free local port."""

from __future__ import annotations

import contextlib
import io
import socket
import threading
import time

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image


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


def multipart_body(boundary: str, filename: str, content: bytes) -> bytes:
    return (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )


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
