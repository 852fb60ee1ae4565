"""`colorit serve`: the web page and REST API under uvicorn."""

from __future__ import annotations

import argparse
import sys

from colorit.cli import bounded_workers, non_negative_int, number_parser, port, positive_int
from colorit.server import DEFAULT_MAX_PIXELS, DEFAULT_MAX_UPLOAD_MB, DEFAULT_QUEUE, DEFAULT_WORKERS
from colorit.session import DEVICES

# Uploads are held in memory, up to workers + queue of them at once.
MAX_UPLOAD_MB = 1024


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        help="run the web app and REST API",
        description=__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 or :: for every address)")
    p.add_argument("--port", type=port, default=8000, help="port to listen on")
    p.add_argument("--model", default="default", help="bundled model name or .onnx path")
    p.add_argument("--workers", type=positive_int, default=DEFAULT_WORKERS, help="colorizations at once")
    p.add_argument("--queue", type=non_negative_int, default=DEFAULT_QUEUE, help="requests that may wait for a worker")
    p.add_argument(
        "--max-upload-mb",
        type=number_parser(float, 0, above=True, maximum=MAX_UPLOAD_MB),
        default=DEFAULT_MAX_UPLOAD_MB,
        help="upload size limit",
    )
    p.add_argument("--max-pixels", type=positive_int, default=DEFAULT_MAX_PIXELS, help="image size limit in pixels")
    p.add_argument(
        "--allowed-host",
        action="append",
        metavar="NAME",
        help="another name the server answers as Host, e.g. the name a reverse proxy or other devices use "
        "(repeatable; '*.lan' for any name under lan, '*' for any). Always answered: the address a request "
        "arrives on (with 0.0.0.0 or ::, each of the machine's addresses), localhost, and with 0.0.0.0 or :: "
        "the machine's name. Other names are refused, which stops web pages from reaching the server by DNS "
        "rebinding",
    )
    p.add_argument(
        "--device",
        choices=DEVICES,
        default="auto",
        help="where the model runs: cuda needs onnxruntime-gpu (pip install 'colorit[gpu]'), auto takes it when "
        "installed; without a GPU the CPU (said in one line for cuda)",
    )
    p.add_argument(
        "--no-provenance",
        dest="provenance",
        action="store_false",
        help="leave out of each colorized image's metadata that ColorIt colorized it (version, model, hints, "
        "reference count)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from colorit.errors import ColoritError
    from colorit.server.app import create_app
    from colorit.server.hosts import names_for, reachable_addresses, url_for

    hosts = names_for(args.host, args.allowed_host or ())
    try:
        app = create_app(
            model=args.model,
            workers=bounded_workers(args.workers, "serve"),
            queue_size=args.queue,
            max_upload_bytes=int(args.max_upload_mb * 2**20),
            max_pixels=args.max_pixels,
            allowed_hosts=hosts,
            device=args.device,
            provenance=args.provenance,
        )
    except ColoritError as error:
        print(f"colorit serve: {error}", file=sys.stderr)
        return 1
    urls = ", ".join(url_for(address, args.port) for address in reachable_addresses(args.host))
    print(
        f"colorit serve: open {urls} (API docs at /docs); answers Host names {', '.join(hosts)} and the "
        "address a request arrives on; add others with --allowed-host NAME",
        file=sys.stderr,
    )
    # uvicorn reports a port it cannot bind on one line and exits with status 1.
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0
