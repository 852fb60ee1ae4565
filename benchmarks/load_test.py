"""Load test of `colorit serve`: 50 requests from 20 concurrent clients to a server on 127.0.0.1.

Starts the server in a subprocess (`python -m colorit serve`, default settings unless given), sends
a 1-megapixel grey JPEG made from skimage's astronaut photo, and records every status (only 200
and 503 are acceptable), the median and 95th-percentile latency, how long /healthz takes to answer
while the load runs (polled from another client), and the server's peak resident memory (sampled
with psutil). Writes benchmarks/results/load.json, prints a summary, and exits 1 if any request
failed with anything but 503 (or a single request with anything but 200). Bounded: a fixed number of requests, each with a timeout.

Then, with the server idle, times 10 single requests carrying 5 hints: what the page waits for
after each hint change; and 5 plain single requests, first alone, then while 9 clients trickle
their uploads at one byte a second (issue 12: they used to take every slot).

Usage: python benchmarks/load_test.py [--requests 50] [--clients 20] [--workers N] [--queue N]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import psutil
from PIL import Image
from skimage import data

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results" / "load.json"
REQUEST_TIMEOUT_S = 300
START_TIMEOUT_S = 120
SAMPLE_EVERY_S = 0.05
HEALTHZ_EVERY_S = 0.25
UPLOAD_SIZE = (1155, 866)  # a 4:3 photo of about one megapixel
HINT_UPDATES = 10
SINGLE_REQUESTS = 5
SLOW_CLIENTS = 9
HINT_UPDATE_TARGET_S = 0.5  # issue 5: the page's result updates within this after a hint change
HINTS = [
    {"x": x, "y": y, "color": color, "radius": 6}
    for x, y, color in (
        (300, 200, "#c03020"),
        (850, 250, "#2050c0"),
        (580, 700, "#30a040"),
        (200, 650, "#e0c060"),
        (1000, 800, "#8040a0"),
    )
]


def one_megapixel_grey_jpeg() -> bytes:
    image = Image.fromarray(data.astronaut()).convert("L").resize(UPLOAD_SIZE, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(port: int, extra_args: list[str]) -> subprocess.Popen:
    command = [sys.executable, "-m", "colorit", "serve", "--host", "127.0.0.1", "--port", str(port), *extra_args]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen(command, cwd=REPO, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_until_up(server: subprocess.Popen, base_url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"load_test: the server exited at start-up:\n{server.stderr.read().decode()}")
        try:
            if httpx.get(base_url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)  # polling for start-up; nothing to wait on instead
    raise SystemExit(f"load_test: the server did not answer within {START_TIMEOUT_S} s")


def stop_server(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


class Sampler(threading.Thread):
    """Calls `sample` every `interval` seconds until stopped; keeps the values."""

    def __init__(self, sample, interval: float) -> None:
        super().__init__(daemon=True)
        self.sample, self.interval = sample, interval
        self.values: list[float] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            self.values.append(self.sample())

    def stop(self) -> list[float]:
        self.stopped.set()
        self.join()
        return self.values


def rss_mb(process: psutil.Process) -> float:
    return process.memory_info().rss / 2**20


def healthz_seconds(client: httpx.Client) -> float:
    started = time.perf_counter()
    client.get("/healthz").raise_for_status()
    return time.perf_counter() - started


def send_colorize(client: httpx.Client, upload: bytes, hints: list[dict] | None = None) -> dict:
    started = time.perf_counter()
    form = {"hints": json.dumps(hints)} if hints else None
    try:
        response = client.post("/api/colorize", files={"file": ("astronaut.jpg", upload, "image/jpeg")}, data=form)
    except httpx.HTTPError as error:
        return {"status": type(error).__name__, "seconds": time.perf_counter() - started}
    outcome = {"status": response.status_code, "seconds": time.perf_counter() - started}
    if response.status_code == 200 and Image.open(io.BytesIO(response.content)).size != UPLOAD_SIZE:
        outcome["status"] = "wrong size"
    return outcome


class SlowClients:
    """Connections that send a colorize request's headers, then one byte of body a second."""

    def __init__(self, port: int, count: int, body_length: int) -> None:
        head = (
            f"POST /api/colorize HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: multipart/form-data; boundary=slow\r\nContent-Length: {body_length}\r\n\r\n"
        )
        self.connections = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
        for connection in self.connections:
            connection.sendall(head.encode())
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._trickle, daemon=True)
        self.thread.start()

    def _trickle(self) -> None:
        while not self.stopped.wait(1.0):
            for connection in self.connections:
                try:
                    connection.sendall(b"-")
                except OSError:
                    pass  # the server cut it off (408): that is allowed

    def close(self) -> None:
        self.stopped.set()
        self.thread.join()
        for connection in self.connections:
            connection.close()


def latency_summary(seconds: list[float]) -> dict:
    if not seconds:
        return {"count": 0}
    return {
        "count": len(seconds),
        "median_s": round(float(np.median(seconds)), 3),
        "p95_s": round(float(np.percentile(seconds, 95)), 3),
        "max_s": round(max(seconds), 3),
    }


def run_load(base_url: str, upload: bytes, requests: int, clients: int) -> tuple[list[dict], float]:
    local = threading.local()

    def one_request(_: int) -> dict:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT_S)
        return send_colorize(local.client, upload)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        outcomes = list(pool.map(one_request, range(requests)))
    return outcomes, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--workers", type=int, help="passed to colorit serve (default: its own)")
    parser.add_argument("--queue", type=int, help="passed to colorit serve (default: its own)")
    args = parser.parse_args()
    chosen = {"workers": args.workers, "queue": args.queue}
    server_args = [f"--{name}={value}" for name, value in chosen.items() if value is not None]

    upload = one_megapixel_grey_jpeg()
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    server = start_server(port, server_args)
    try:
        wait_until_up(server, base_url)
        process = psutil.Process(server.pid)
        settings = httpx.get(base_url + "/healthz").json()
        idle_mb = rss_mb(process)
        with httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT_S) as health_client:
            memory = Sampler(lambda: rss_mb(process), SAMPLE_EVERY_S)
            health = Sampler(lambda: healthz_seconds(health_client), HEALTHZ_EVERY_S)
            memory.start()
            health.start()
            outcomes, wall_s = run_load(base_url, upload, args.requests, args.clients)
            peak_mb = max(memory.stop(), default=idle_mb)
            health_seconds = health.stop()
            # What the page waits for after each hint change, one user at a time.
            hinted = [send_colorize(health_client, upload, HINTS) for _ in range(HINT_UPDATES)]
            alone = [send_colorize(health_client, upload) for _ in range(SINGLE_REQUESTS)]
            slow_clients = SlowClients(port, SLOW_CLIENTS, len(upload) + 1000)
            try:
                beside_slow = [send_colorize(health_client, upload) for _ in range(SINGLE_REQUESTS)]
            finally:
                slow_clients.close()
    finally:
        stop_server(server)

    statuses = Counter(str(outcome["status"]) for outcome in outcomes)
    failures = sum(count for status, count in statuses.items() if status not in ("200", "503"))
    failures += sum(outcome["status"] != 200 for outcome in alone + beside_slow)

    def single(outcomes: list[dict]) -> dict:
        return {
            "statuses": dict(Counter(str(o["status"]) for o in outcomes)),
            **latency_summary([o["seconds"] for o in outcomes if o["status"] == 200]),
        }

    report = {
        "machine": {"cpu_count": os.cpu_count(), "processor": platform.processor() or platform.machine()},
        "server": {"workers": settings["workers"], "queue": settings["queue"]},
        "upload": {"pixels": UPLOAD_SIZE[0] * UPLOAD_SIZE[1], "bytes": len(upload), "format": "JPEG, grey"},
        "requests": args.requests,
        "clients": args.clients,
        "statuses": dict(sorted(statuses.items())),
        "failures_other_than_503": failures,
        "wall_s": round(wall_s, 2),
        "colorized_per_s": round(statuses["200"] / wall_s, 2),
        "latency_200": latency_summary([o["seconds"] for o in outcomes if o["status"] == 200]),
        "latency_503": latency_summary([o["seconds"] for o in outcomes if o["status"] == 503]),
        "healthz_during_load": latency_summary(health_seconds),
        "server_rss_mb": {"idle": round(idle_mb, 1), "peak": round(peak_mb, 1)},
        "hint_update": {"hints": len(HINTS), **single(hinted)},
        "single_request_alone": single(alone),
        "single_request_beside_slow_clients": {"slow_clients": SLOW_CLIENTS, **single(beside_slow)},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"{args.requests} requests, {args.clients} clients, workers={settings['workers']} queue={settings['queue']}: "
        f"statuses {report['statuses']}, {failures} failures other than 503\n"
        f"200: median {report['latency_200'].get('median_s')} s, p95 {report['latency_200'].get('p95_s')} s; "
        f"503: median {report['latency_503'].get('median_s')} s\n"
        f"/healthz under load: median {report['healthz_during_load'].get('median_s')} s, "
        f"max {report['healthz_during_load'].get('max_s')} s\n"
        f"server memory: idle {report['server_rss_mb']['idle']} MB, peak {report['server_rss_mb']['peak']} MB\n"
        f"update with {len(HINTS)} hints, one user: median {report['hint_update'].get('median_s')} s "
        f"(target < {HINT_UPDATE_TARGET_S} s)\n"
        f"single request: alone median {report['single_request_alone'].get('median_s')} s, beside {SLOW_CLIENTS} "
        f"slow-body clients median {report['single_request_beside_slow_clients'].get('median_s')} s "
        f"(statuses {report['single_request_beside_slow_clients']['statuses']})\n"
        f"written to {RESULTS.relative_to(REPO)}"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
