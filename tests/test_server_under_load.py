"""The server under load (hardening, issues 12 and 21): a full worker pool, slow uploads on a real
server (uvicorn on a local port), uploads bounded per client and in memory, clients that hang up."""

from __future__ import annotations

import contextlib
import json
import logging
import select
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
from fastapi.testclient import TestClient
from server_helpers import assert_error, decode, multipart_body, post_image, running_server, wait_for

from colorit.server import UPLOAD_MIN_BYTES_PER_S, UPLOADS_PER_CLIENT
from colorit.server import app as server_app
from colorit.server.app import create_app
from colorit.server.uploads import UploadTimeouts


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
