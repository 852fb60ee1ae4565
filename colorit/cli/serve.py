"""`colorit serve`: the web page and REST API under uvicorn."""

from __future__ import annotations

import argparse
import sys

from colorit.cli import non_negative_int, positive_float, positive_int
from colorit.server import DEFAULT_MAX_PIXELS, DEFAULT_MAX_UPLOAD_MB, DEFAULT_QUEUE, DEFAULT_WORKERS


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        help="run the web app and REST API",
        description=__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=8000, help="port to listen on")
    p.add_argument("--model", default="default", help="bundled model name or .onnx path")
    p.add_argument("--workers", type=positive_int, default=DEFAULT_WORKERS, help="colorizations at once")
    p.add_argument("--queue", type=non_negative_int, default=DEFAULT_QUEUE, help="requests that may wait for a worker")
    p.add_argument("--max-upload-mb", type=positive_float, default=DEFAULT_MAX_UPLOAD_MB, help="upload size limit")
    p.add_argument("--max-pixels", type=positive_int, default=DEFAULT_MAX_PIXELS, help="image size limit in pixels")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from colorit.errors import ColoritError
    from colorit.server.app import create_app

    try:
        app = create_app(
            model=args.model,
            workers=args.workers,
            queue_size=args.queue,
            max_upload_bytes=int(args.max_upload_mb * 2**20),
            max_pixels=args.max_pixels,
        )
    except ColoritError as error:
        print(f"colorit serve: {error}", file=sys.stderr)
        return 1
    print(f"colorit serve: http://{args.host}:{args.port}/ (API docs at /docs)", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0
