"""Film jobs on the real server (uvicorn on a local port) through HTTP: upload a clip, poll its
progress, download the film; the bounds on size, length and jobs; bad clips; cancelling."""

from __future__ import annotations

import os
import re
import time
import tracemalloc
from pathlib import Path

import httpx
import pytest
from server_helpers import assert_error, running_server
from video_clips import audio_packets, greyed, pan_frames, video_stream_facts, write_film

from colorit.server.app import create_app
from colorit.server.video_jobs import FilmLimits

REPO = Path(__file__).resolve().parent.parent


def poll(client: httpx.Client, url: str, timeout: float = 120) -> dict:
    """The job's state once it has finished (done or failed)."""
    deadline = time.monotonic() + timeout
    while True:
        state = client.get(url).json()
        if state["status"] in ("done", "failed"):
            return state
        assert time.monotonic() < deadline, state
        time.sleep(0.1)


def send(client: httpx.Client, path: Path, **fields: str) -> httpx.Response:
    with path.open("rb") as stream:
        return client.post("/api/video-jobs", files={"file": (path.name, stream, "video/mp4")}, data=fields)


@pytest.fixture(scope="module")
def limits() -> FilmLimits:
    return FilmLimits(max_bytes=2 * 2**20, max_seconds=3, jobs=2, keep_s=600)


@pytest.fixture(scope="module")
def server(limits):
    with running_server(create_app(film_limits=limits)) as url:
        yield url


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server, timeout=60) as client:
        yield client


def test_upload_poll_and_download_a_film(client, tmp_path):
    clip = write_film(tmp_path / "street.mov", greyed(pan_frames("chelsea", 20)))
    created = send(client, clip, saturation="1.2")
    assert created.status_code == 202, created.text
    job = created.json()
    assert created.headers["location"] == f"/api/video-jobs/{job['id']}"
    assert re.fullmatch(r"[0-9a-f]{32}", job["id"]) and job["name"] == "street.mov"
    assert job["status"] in ("queued", "running") and job["frames_total"] == 20

    state = poll(client, created.headers["location"])
    assert state["status"] == "done", state
    assert state["frames_done"] == 20 and state["frames_per_second"] > 0
    result = client.get(state["result"])
    assert result.status_code == 200 and result.headers["content-type"] == "video/mp4"
    assert 'filename="street-colorized.mp4"' in result.headers["content-disposition"]
    film = tmp_path / "result.mp4"
    film.write_bytes(result.content)
    assert video_stream_facts(film)["frames"] == 20
    assert audio_packets(film) == audio_packets(clip)
    # A player seeks with ranges; the page plays the upload beside the result.
    part = client.get(state["result"], headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and len(part.content) == 100
    source = client.get(state["source"])
    assert source.status_code == 200 and source.content == clip.read_bytes()

    assert client.delete(created.headers["location"]).status_code == 204
    assert_error(client.get(created.headers["location"]), 404, "not_found")


def test_webm_for_the_browser(client, tmp_path):
    clip = write_film(tmp_path / "clip.mp4", greyed(pan_frames("coffee", 6)), audio="libopus")
    created = send(client, clip, format="WebM", coherent="false")
    assert created.status_code == 202, created.text
    state = poll(client, created.headers["location"])
    result = client.get(state["result"])
    assert result.headers["content-type"] == "video/webm"
    client.delete(created.headers["location"])


@pytest.mark.parametrize(
    ("make", "status", "code", "words"),
    [
        (lambda path: path.write_text("no film here"), 415, "unsupported_media_type", ["not a readable video"]),
        (lambda path: write_film(path, greyed(pan_frames("coffee", 100))), 413, "payload_too_large", ["4 s long"]),
        (
            lambda path: path.write_bytes(b"\0" * (3 * 2**20)),
            413,
            "payload_too_large",
            ["limit of 2 MB"],
        ),
    ],
    ids=["not-a-film", "too-long", "too-large"],
)
def test_bad_clips_are_refused_before_they_are_queued(client, tmp_path, make, status, code, words):
    path = tmp_path / "clip.mp4"
    make(path)
    assert_error(send(client, path), status, code, *words)


def test_a_film_upload_goes_to_disk_as_it_arrives_not_into_memory(tmp_path):
    """The film's bytes are written to its job's file as they stream in: reading a 48 MB upload grows the
    server's Python heap (the server runs in this process) by a small part of that, where holding it
    would take the film's size and more. Random bytes are no film: it is refused after it was read."""
    film_size = 48 * 2**20
    path = tmp_path / "archive-reel.mp4"
    path.write_bytes(os.urandom(film_size))
    with (
        running_server(create_app(film_limits=FilmLimits(max_bytes=64 * 2**20))) as url,
        httpx.Client(base_url=url, timeout=120) as client,
    ):
        tracemalloc.start()
        try:
            response = send(client, path)  # httpx streams the file from disk in small chunks
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert_error(response, 415, "unsupported_media_type", "archive-reel.mp4", "not a readable video")
    assert peak < film_size / 8, f"{peak / 2**20:.1f} MB traced while reading a {film_size / 2**20:.0f} MB film"


def test_bad_options_are_refused(client, tmp_path):
    clip = write_film(tmp_path / "clip.mp4", greyed(pan_frames("coffee", 4)))
    assert_error(send(client, clip, format="gif"), 400, "bad_request", "format")
    assert_error(send(client, clip, model="nope"), 400, "unknown_model", "nope")
    assert_error(client.get("/api/video-jobs/0123/result"), 404, "not_found")


def test_jobs_are_bounded_and_a_deleted_job_stops(client, tmp_path, limits):
    long_clip = write_film(tmp_path / "long.mp4", greyed(pan_frames("chelsea", 70, size=(320, 240), step=1)))
    urls = []
    for _ in range(limits.jobs):
        created = send(client, long_clip)
        assert created.status_code == 202, created.text
        urls.append(created.headers["location"])
    assert_error(send(client, long_clip), 503, "server_busy", "film jobs")
    # The first runs; deleting it cancels it, and the second runs on.
    deadline = time.monotonic() + 60
    while client.get(urls[0]).json()["frames_done"] == 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert client.delete(urls[0]).status_code == 204
    state = poll(client, urls[1])
    assert state["status"] == "done"
    assert_error(client.get(urls[0]), 404, "not_found")
    # A job's result is not there before it is done.
    created = send(client, long_clip)
    assert created.status_code == 202
    early = client.get(f"{created.headers['location']}/result")
    assert_error(early, 409, "not_ready")
    client.delete(created.headers["location"])
    client.delete(urls[1])


def test_readme_limits_table_names_the_film_job_bounds():
    from colorit.server import video_jobs

    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("## Limits") : readme.index("## Models")]
    row = next(line for line in table.splitlines() if line.startswith("| film jobs"))
    numbers = [float(number.replace(",", "")) for number in re.findall(r"\d[\d,]*", row)]
    for value in (
        video_jobs.DEFAULT_MAX_FILM_MB,
        video_jobs.DEFAULT_MAX_FILM_S,
        video_jobs.DEFAULT_MAX_FILM_PIXELS,
        video_jobs.DEFAULT_FILM_JOBS,
        video_jobs.DEFAULT_FILM_KEEP_S,
        video_jobs.FILM_UPLOADS_PER_CLIENT,
    ):
        assert value in numbers, (value, row)
    assert "colorit/server/video_jobs.py" in table
