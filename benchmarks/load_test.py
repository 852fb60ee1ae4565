"""Load test of `colorit serve` on 127.0.0.1, in three parts.

Overload: 50 requests from 20 concurrent clients (each from its own address, 127.0.2.N, as separate
users are) to a server with its default settings (unless given), each a 1-megapixel grey JPEG made
from skimage's astronaut photo; records every status (only 200 and 503 are acceptable), the median
and 95th-percentile latency, how long /healthz takes to answer while the load runs (polled from
another client), and the server's peak resident memory (sampled with psutil). Then, with the server idle, times 10 single requests carrying 5 hints (what
the page waits for after each hint change) and 5 plain single requests, first alone, then while 50
clients send their uploads at one byte a second (issue 21: 20 such clients made everyone else wait
~118 s; half of these come from one address, half each from its own, all of 127/8 being local).

Mixed (issue 21): 20 clients x 20 requests each (each client from its own address again), a mix of
colorizations (JPEG as sent, PNG asked as WEBP, 5 hints, the confidence map) and of the other
answers (model list, health, the page, a bad format, a file under the wrong field), to a server
whose queue holds one request per client (`--queue 20`: sized for the load, so that nothing needs
refusing). No answer may be 5xx, and each
kind must get its own status; p50/p95 per kind and overall.

Writes benchmarks/results/load.json, prints a summary, and exits 1 on any failure: in the overload
part a status but 200 or 503, a single request but 200, or one beside the slow clients taking over
3 s; in the mixed part any 5xx or unexpected status. Bounded: a fixed number of requests, each with
a timeout.

Usage: python benchmarks/load_test.py [--requests 50] [--clients 20] [--workers N] [--queue N]
                                      [--mixed-clients 20] [--mixed-requests 20]
"""

from __future__ import annotations

import argparse
import functools
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

from colorit.server import UPLOADS_PER_CLIENT

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results" / "load.json"
REQUEST_TIMEOUT_S = 300
START_TIMEOUT_S = 120
SAMPLE_EVERY_S = 0.05
HEALTHZ_EVERY_S = 0.25
UPLOAD_SIZE = (1155, 866)  # a 4:3 photo of about one megapixel
HINT_UPDATES = 10
SINGLE_REQUESTS = 5
# 25 slow clients from one address and 25 each from its own (all of 127/8 reaches this machine)
SLOW_SOURCES = ["127.0.0.2"] * 25 + [f"127.0.1.{i}" for i in range(1, 26)]
SLOW_CLIENT_TARGET_S = 3.0  # issue 21: a normal colorize beside 50 slow uploads answers within this
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


def timed(send) -> dict:
    """{"status", "seconds"} of one request; a transport error's name stands for the status."""
    started = time.perf_counter()
    try:
        response = send()
    except httpx.HTTPError as error:
        return {"status": type(error).__name__, "seconds": time.perf_counter() - started}
    return {"status": response.status_code, "seconds": time.perf_counter() - started, "response": response}


def send_colorize(client: httpx.Client, upload: bytes, hints: list[dict] | None = None) -> dict:
    form = {"hints": json.dumps(hints)} if hints else None
    outcome = timed(
        lambda: client.post("/api/colorize", files={"file": ("astronaut.jpg", upload, "image/jpeg")}, data=form)
    )
    response = outcome.pop("response", None)
    if response is not None and response.status_code == 200:
        if Image.open(io.BytesIO(response.content)).size != UPLOAD_SIZE:
            outcome["status"] = "wrong size"
    return outcome


class SlowClients:
    """Connections from the given source addresses that send a colorize request's headers and the
    start of a multipart body, then one byte a second."""

    def __init__(self, port: int, sources: list[str], body_length: int) -> None:
        head = (
            f"POST /api/colorize HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: multipart/form-data; boundary=slow\r\nContent-Length: {body_length}\r\n\r\n"
            '--slow\r\nContent-Disposition: form-data; name="file"; filename="slow.jpg"\r\n\r\n'
        )
        self.connections = [
            socket.create_connection(("127.0.0.1", port), source_address=(source, 0)) for source in sources
        ]
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


def expected_uploads_being_read(sources: list[str]) -> int:
    """The server reads UPLOADS_PER_CLIENT of one address's uploads at once (it refuses the rest)."""
    return sum(min(count, UPLOADS_PER_CLIENT) for count in Counter(sources).values())


def wait_for_uploads_being_read(client: httpx.Client, count: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while client.get("/healthz").json()["uploads"] < count:  # polling: the server offers no event
        if time.monotonic() > deadline:
            raise SystemExit(f"load_test: the server never read {count} slow uploads at once")
        time.sleep(0.05)


def latency_summary(seconds: list[float]) -> dict:
    if not seconds:
        return {"count": 0}
    return {
        "count": len(seconds),
        "median_s": round(float(np.median(seconds)), 3),
        "p95_s": round(float(np.percentile(seconds, 95)), 3),
        "max_s": round(max(seconds), 3),
    }


def client_from(base_url: str, index: int) -> httpx.Client:
    """Client `index` of a load, from its own address as separate users are (the server bounds uploads
    per address): 127.0.2.1, 127.0.2.2, ..., all of 127/8 being this machine."""
    transport = httpx.HTTPTransport(local_address=f"127.0.{2 + index // 250}.{1 + index % 250}")
    return httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT_S, transport=transport)


def run_load(base_url: str, upload: bytes, requests: int, clients: int) -> tuple[list[dict], float]:
    local = threading.local()
    started_clients = iter(range(clients))
    lock = threading.Lock()

    def one_request(_: int) -> dict:
        if not hasattr(local, "client"):
            with lock:
                local.client = client_from(base_url, next(started_clients))
        return send_colorize(local.client, upload)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        outcomes = list(pool.map(one_request, range(requests)))
    return outcomes, time.perf_counter() - started


def one_megapixel_grey_png() -> bytes:
    image = Image.open(io.BytesIO(one_megapixel_grey_jpeg()))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def mixed_kinds(jpeg: bytes, png: bytes) -> list[tuple[str, int, object]]:
    """(kind, the status it must get, how to send it): the mixed part's requests, colorizations
    half of them, in the order each client cycles through (each client starts at another place)."""
    jpeg_file = {"file": ("astronaut.jpg", jpeg, "image/jpeg")}
    png_file = {"file": ("astronaut.png", png, "image/png")}

    def colorize(files: dict, fields: dict | None = None, expect: tuple[int, int] | None = UPLOAD_SIZE):
        def send(client: httpx.Client) -> httpx.Response:
            response = client.post("/api/colorize", files=files, data=fields)
            if response.status_code == 200 and expect and Image.open(io.BytesIO(response.content)).size != expect:
                raise httpx.DecodingError(f"wrong size for {fields}")
            return response

        return send

    return [
        ("colorize JPEG", 200, colorize(jpeg_file)),
        ("colorize PNG, format WEBP, saturation 1.5", 200, colorize(png_file, {"format": "WEBP", "saturation": "1.5"})),
        ("colorize with 5 hints", 200, colorize(jpeg_file, {"hints": json.dumps(HINTS)})),
        ("GET /api/models", 200, lambda client: client.get("/api/models")),
        ("confidence map", 200, colorize(jpeg_file, {"confidence": "true"})),
        ("GET /healthz", 200, lambda client: client.get("/healthz")),
        ("colorize JPEG, render size 256", 200, colorize(jpeg_file, {"render_size": "256"})),
        ("GET / (the page)", 200, lambda client: client.get("/")),
        ("bad format (gif)", 400, colorize(jpeg_file, {"format": "gif"})),
        ("the file under another field", 400, colorize({"image": jpeg_file["file"]})),
    ]


def run_mixed(base_url: str, kinds: list, clients: int, requests: int) -> tuple[list[dict], float]:
    def one_client(index: int) -> list[dict]:
        outcomes = []
        with client_from(base_url, index) as client:
            for step in range(requests):
                kind, expected, send = kinds[(index + step) % len(kinds)]
                outcome = timed(functools.partial(send, client))
                outcome.pop("response", None)
                outcomes.append({"kind": kind, "expected": expected, **outcome})
        return outcomes

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        outcomes = [outcome for client in pool.map(one_client, range(clients)) for outcome in client]
    return outcomes, time.perf_counter() - started


def mixed_report(outcomes: list[dict], wall_s: float, clients: int, requests: int, queue: int) -> dict:
    server_errors = [o for o in outcomes if isinstance(o["status"], int) and o["status"] >= 500]
    unexpected = [o for o in outcomes if o["status"] != o["expected"]]
    by_kind = {}
    for kind in dict.fromkeys(o["kind"] for o in outcomes):
        of_kind = [o for o in outcomes if o["kind"] == kind]
        by_kind[kind] = {
            "expected": of_kind[0]["expected"],
            "statuses": dict(Counter(str(o["status"]) for o in of_kind)),
            **latency_summary([o["seconds"] for o in of_kind]),
        }
    return {
        "clients": clients,
        "requests_per_client": requests,
        "server": {"queue": queue, "why": "one queue place per client, so that the load fits"},
        "statuses": dict(sorted(Counter(str(o["status"]) for o in outcomes).items())),
        "server_errors_5xx": len(server_errors),
        "unexpected_statuses": len(unexpected),
        "wall_s": round(wall_s, 2),
        "latency_all": latency_summary([o["seconds"] for o in outcomes]),
        "by_kind": by_kind,
    }


class Serving:
    """`colorit serve` in a subprocess on a free port, up when entered, stopped on leaving."""

    def __init__(self, server_args: list[str]) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.server_args = server_args

    def __enter__(self) -> Serving:
        self.process = start_server(self.port, self.server_args)
        try:
            wait_until_up(self.process, self.base_url)
        except BaseException:
            stop_server(self.process)
            raise
        return self

    def __exit__(self, *_: object) -> None:
        stop_server(self.process)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--workers", type=int, help="passed to colorit serve (default: its own)")
    parser.add_argument("--queue", type=int, help="passed to colorit serve (default: its own)")
    parser.add_argument("--mixed-clients", type=int, default=20)
    parser.add_argument("--mixed-requests", type=int, default=20, help="requests per client in the mixed part")
    args = parser.parse_args()
    chosen = {"workers": args.workers, "queue": args.queue}
    server_args = [f"--{name}={value}" for name, value in chosen.items() if value is not None]

    upload = one_megapixel_grey_jpeg()
    load_before = os.getloadavg()  # the machine is shared: its load goes with the timings
    with Serving(server_args) as serving:
        base_url = serving.base_url
        process = psutil.Process(serving.process.pid)
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
            slow_clients = SlowClients(serving.port, SLOW_SOURCES, len(upload) + 1000)
            try:
                wait_for_uploads_being_read(health_client, expected_uploads_being_read(SLOW_SOURCES))
                beside_slow = [send_colorize(health_client, upload) for _ in range(SINGLE_REQUESTS)]
            finally:
                slow_clients.close()

    mixed_queue = args.mixed_clients
    with Serving([*[a for a in server_args if not a.startswith("--queue")], f"--queue={mixed_queue}"]) as serving:
        kinds = mixed_kinds(upload, one_megapixel_grey_png())
        mixed_outcomes, mixed_wall_s = run_mixed(serving.base_url, kinds, args.mixed_clients, args.mixed_requests)
    mixed = mixed_report(mixed_outcomes, mixed_wall_s, args.mixed_clients, args.mixed_requests, mixed_queue)

    statuses = Counter(str(outcome["status"]) for outcome in outcomes)
    failures = sum(count for status, count in statuses.items() if status not in ("200", "503"))
    failures += sum(outcome["status"] != 200 for outcome in alone + beside_slow)
    failures += sum(outcome["seconds"] > SLOW_CLIENT_TARGET_S for outcome in beside_slow)
    failures += mixed["unexpected_statuses"]

    def single(outcomes: list[dict]) -> dict:
        return {
            "statuses": dict(Counter(str(o["status"]) for o in outcomes)),
            **latency_summary([o["seconds"] for o in outcomes if o["status"] == 200]),
        }

    report = {
        "machine": {
            "cpu_count": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            # 1, 5 and 15 minute load averages before and after: other processes' CPU use slows every timing
            "load_average_before": [round(value, 2) for value in load_before],
            "load_average_after": [round(value, 2) for value in os.getloadavg()],
            "device": settings["device"],
        },
        "server": {"workers": settings["workers"], "queue": settings["queue"]},
        "upload": {"pixels": UPLOAD_SIZE[0] * UPLOAD_SIZE[1], "bytes": len(upload), "format": "JPEG, grey"},
        "requests": args.requests,
        "clients": args.clients,
        "statuses": dict(sorted(statuses.items())),
        "failures": failures,
        "wall_s": round(wall_s, 2),
        "colorized_per_s": round(statuses["200"] / wall_s, 2),
        "latency_200": latency_summary([o["seconds"] for o in outcomes if o["status"] == 200]),
        "latency_503": latency_summary([o["seconds"] for o in outcomes if o["status"] == 503]),
        "healthz_during_load": latency_summary(health_seconds),
        "server_rss_mb": {"idle": round(idle_mb, 1), "peak": round(peak_mb, 1)},
        "hint_update": {"hints": len(HINTS), **single(hinted)},
        "single_request_alone": single(alone),
        "single_request_beside_slow_clients": {
            "slow_clients": len(SLOW_SOURCES),
            "slow_client_addresses": len(set(SLOW_SOURCES)),
            "target_s": SLOW_CLIENT_TARGET_S,
            **single(beside_slow),
        },
        "mixed": mixed,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    beside = report["single_request_beside_slow_clients"]
    print(
        f"{args.requests} requests, {args.clients} clients, workers={settings['workers']} queue={settings['queue']}: "
        f"statuses {report['statuses']}\n"
        f"200: median {report['latency_200'].get('median_s')} s, p95 {report['latency_200'].get('p95_s')} s; "
        f"503: median {report['latency_503'].get('median_s')} s\n"
        f"/healthz under load: median {report['healthz_during_load'].get('median_s')} s, "
        f"max {report['healthz_during_load'].get('max_s')} s\n"
        f"server memory: idle {report['server_rss_mb']['idle']} MB, peak {report['server_rss_mb']['peak']} MB\n"
        f"update with {len(HINTS)} hints, one user: median {report['hint_update'].get('median_s')} s "
        f"(target < {HINT_UPDATE_TARGET_S} s)\n"
        f"single request: alone median {report['single_request_alone'].get('median_s')} s; beside "
        f"{len(SLOW_SOURCES)} clients sending 1 byte/s: median {beside.get('median_s')} s, max {beside.get('max_s')} s "
        f"(target < {SLOW_CLIENT_TARGET_S} s; statuses {beside['statuses']})\n"
        f"mixed, {args.mixed_clients} clients x {args.mixed_requests} requests (queue {mixed_queue}): statuses "
        f"{mixed['statuses']}, {mixed['server_errors_5xx']} x 5xx, {mixed['unexpected_statuses']} unexpected; "
        f"p50 {mixed['latency_all'].get('median_s')} s, p95 {mixed['latency_all'].get('p95_s')} s\n"
        f"{failures} failures; written to {RESULTS.relative_to(REPO)}"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
