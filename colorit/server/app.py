"""The web app: the REST API (POST /api/colorize, GET /api/models, GET /healthz) and the static page.

Uploads are read into memory under limits of size, pace and memory (colorit.server.uploads), taking no
colorize slot; then they are parsed and colorized on a bounded thread pool so the event loop keeps
answering, and refused with 503 at once when every worker and queue slot is taken. A job whose client
hangs up is dropped. Every answer carries security headers, and only the server's own Host names are
answered (colorit.server.hosts, against DNS rebinding).
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from colorit import __version__
from colorit.api import colorize_picture, colorize_picture_with_confidence, output_format_of, provenance_of
from colorit.color import rgb_to_lab
from colorit.confidence import confidence_png
from colorit.encoding import EXTENSIONS, encode_image
from colorit.io import read_image
from colorit.server import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_UPLOAD_MB,
    DEFAULT_QUEUE,
    DEFAULT_WORKERS,
    UPLOADS_PER_CLIENT,
    UPLOADS_PER_SLOT,
)
from colorit.server.errors import (
    ERROR_RESPONSES,
    ApiError,
    ClientGone,
    describe_validation_error,
    install_error_handlers,
)
from colorit.server.hosts import LOCAL_HOSTS, AllowedHosts
from colorit.server.schemas import ColorizeForm, ColorizeOptions, HealthResponse, ModelCard, ModelsResponse
from colorit.server.uploads import (
    DEFAULT_UPLOAD_TIMEOUTS,
    FORM_FIELDS_BYTES,
    Upload,
    UploadGate,
    UploadTimeouts,
    receive_upload,
)
from colorit.server.video_jobs import DEFAULT_FILM_LIMITS, FilmJobs, FilmLimits, install_film_jobs
from colorit.session import ModelSession, cpu_count, list_models, load_model

STATIC_DIR = Path(__file__).with_name("static")
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' blob: data:; object-src 'none'; base-uri 'none'; "
        b"form-action 'self'; frame-ancestors 'none'",
    ),
    (b"referrer-policy", b"no-referrer"),
]
MIME_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "TIFF": "image/tiff"}
# Says whether the upload was already in colour (the page warns that its colours are replaced).
INPUT_HEADER = "X-ColorIt-Input"


class Slots:
    """At most `capacity` holders at once; reserve() answers at once rather than waiting."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._lock = threading.Lock()
        self._taken = 0

    @property
    def busy(self) -> int:
        return self._taken

    def reserve(self) -> bool:
        with self._lock:
            if self._taken >= self.capacity:
                return False
            self._taken += 1
            return True

    def release(self) -> None:
        with self._lock:
            self._taken -= 1


class WorkerPool(Slots):
    """Runs colorizations on `workers` threads with at most `queue_size` more waiting; a slot is
    reserved once the upload is in, so memory is bounded by the slots, not by the clients."""

    def __init__(self, workers: int, queue_size: int) -> None:
        if workers < 1 or queue_size < 0:
            raise ValueError(f"need at least one worker and a queue of zero or more, not {workers} and {queue_size}")
        super().__init__(workers + queue_size)
        self.workers, self.queue_size = workers, queue_size
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="colorize")

    def run_reserved(self, job: Callable[[], object]) -> asyncio.Future:
        """Runs `job` under a slot taken by reserve(). The slot is freed when the job itself ends, not
        when the request does: a client that hangs up must not free a slot its job still occupies."""
        future = self._executor.submit(job)
        future.add_done_callback(lambda _: self.release())
        return asyncio.wrap_future(future)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def parse_options(upload: Upload, model_names: list[str]) -> ColorizeOptions:
    try:
        options = ColorizeOptions.model_validate(upload.fields)
    except ValidationError as error:
        raise ApiError(400, "bad_request", f"{upload.filename}: {describe_validation_error(error)}") from None
    # Only bundled names: a request must not make the server open an arbitrary path.
    if options.model is not None and options.model not in model_names:
        choices = ", ".join(model_names)
        raise ApiError(400, "unknown_model", f"{upload.filename}: no model {options.model!r}; choose one of {choices}")
    return options


# A picture counts as in colour when at least COLOUR_SHARE of its pixels have a Lab chroma of
# COLOUR_CHROMA or more: a grey photo stored as RGB (JPEG's rounding included) stays near 0, a sepia
# tone is about 10 to 20. Judged on about COLOUR_SAMPLE_PIXELS pixels spread over the picture.
COLOUR_CHROMA = 6.0
COLOUR_SHARE = 0.01
COLOUR_SAMPLE_PIXELS = 1 << 16


def has_colour(pixels: np.ndarray) -> bool:
    """Whether decoded pixels (as Picture.pixels) hold colour, which colorizing replaces."""
    if pixels.ndim != 3 or pixels.shape[-1] < 3:
        return False
    step = max(1, math.isqrt(pixels.shape[0] * pixels.shape[1] // COLOUR_SAMPLE_PIXELS))
    lab = rgb_to_lab(pixels[::step, ::step, :3])
    chroma = np.hypot(lab[..., 1], lab[..., 2])
    return float(np.mean(chroma >= COLOUR_CHROMA)) >= COLOUR_SHARE


@dataclass(frozen=True)
class Colorized:
    data: bytes
    format: str  # Pillow's name: PNG, JPEG, WEBP, TIFF
    kind: str  # "colorized" or "confidence": the download is named NAME-KIND.EXT
    input_has_colour: bool  # the upload was a colour photo: its colours were replaced


def colorize_upload(
    upload: Upload,
    options: ColorizeOptions,
    session: ModelSession,
    max_pixels: int,
    cancelled: threading.Event,
    provenance: bool = True,
) -> Colorized:
    """The blocking part of a request (decode, colorize, encode); runs on a worker thread, and stops
    between its steps once `cancelled` is set (the client hung up). provenance: mark the image as
    colorized in its metadata."""
    picture = read_image(upload.data, max_pixels=max_pixels, name=upload.filename)
    references = [read_image(data, max_pixels=max_pixels, name=name).pixels for name, data in upload.references]
    if cancelled.is_set():
        raise ClientGone
    input_has_colour = has_colour(picture.pixels)
    settings = dict(
        reference=references or None,
        render_size=options.render_size,
        saturation=options.saturation,
        hints=None if options.hints is None else [hint.model_dump(exclude_none=True) for hint in options.hints],
        hints_source=f"{upload.filename}: hints",
        unsure_grey=options.unsure_grey,
    )
    if options.confidence:
        _, confidence = colorize_picture_with_confidence(picture, session, **settings)
        if cancelled.is_set():
            raise ClientGone
        return Colorized(confidence_png(confidence), "PNG", "confidence", input_has_colour)
    colorized = colorize_picture(picture, session, **settings)
    if cancelled.is_set():
        raise ClientGone
    fmt = options.format or output_format_of(picture)
    marked = provenance_of(session, settings["hints"], references or None) if provenance else None
    return Colorized(encode_image(colorized, fmt, provenance=marked), fmt, "colorized", input_has_colour)


async def until_client_leaves(request: Request) -> None:
    """Returns when the client disconnects (the body has been read: nothing else arrives)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def unless_client_leaves(request: Request, running: asyncio.Future, cancelled: threading.Event):
    """The job's result; if the client hangs up first, cancels the job (or has it stop at its next
    step) and raises ClientGone."""
    leaving = asyncio.ensure_future(until_client_leaves(request))
    try:
        await asyncio.wait({running, leaving}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        leaving.cancel()
    if running.done():
        return running.result()
    cancelled.set()
    running.cancel()
    raise ClientGone


class SecurityHeaders:
    """ASGI middleware: SECURITY_HEADERS on every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def attachment_header(upload_name: str, extension: str, kind: str) -> str:
    """Content-Disposition for NAME-KIND.EXT: an ASCII fallback plus the exact UTF-8 name."""
    filename = f"{Path(upload_name).stem or 'image'}-{kind}{extension}"
    ascii_name = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in filename)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


def create_app(
    model: str = "default",
    workers: int = DEFAULT_WORKERS,
    queue_size: int = DEFAULT_QUEUE,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB * 2**20,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    allowed_hosts: list[str] | tuple[str, ...] = LOCAL_HOSTS,
    upload_timeouts: UploadTimeouts = DEFAULT_UPLOAD_TIMEOUTS,
    film_limits: FilmLimits = DEFAULT_FILM_LIMITS,
    device: str = "auto",
    provenance: bool = True,
) -> FastAPI:
    """Builds the app; the model is loaded here, once, so a bad name fails at start-up.

    device: where the models run (colorit.session.DEVICES). provenance: mark each colorized image
    as such in its metadata (colorit.provenance), which the page's downloads keep.

    allowed_hosts: Host names answered besides the address a request arrives on (others get 400);
    "*" for any, "*.lan" for any name under lan."""
    pool = WorkerPool(workers, queue_size)
    uploads = UploadGate(UPLOADS_PER_SLOT * pool.capacity * (max_upload_bytes + FORM_FIELDS_BYTES), UPLOADS_PER_CLIENT)
    # Each colorization may use this many threads, so that workers x threads never exceed the CPUs.
    threads = max(1, cpu_count() // workers)
    session = load_model(model, threads=threads, device=device)
    cards = [ModelCard.model_validate(card) for card in list_models()]
    model_names = [card.name for card in cards]

    def model_for(options: ColorizeOptions) -> ModelSession:
        # Called on a worker: loading a model the first time takes a while and must not block the loop.
        return session if options.model is None else load_model(options.model, threads=threads, device=device)

    films = FilmJobs(
        film_limits, lambda name: session if name is None else load_model(name, threads=threads), model_names
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        pool.shutdown()
        films.shutdown()

    app = FastAPI(
        title="ColorIt",
        version=__version__,
        summary="Colorize black-and-white photographs at full resolution.",
        docs_url=None,  # FastAPI's page loads Swagger UI from a CDN; /docs is served offline below
        redoc_url=None,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(AllowedHosts, names=list(allowed_hosts))
    app.add_middleware(SecurityHeaders)  # added last, so outermost: on the Host check's answers too

    @app.post(
        "/api/colorize",
        response_class=Response,
        responses={
            200: {
                "content": {mime: {} for mime in MIME_TYPES.values()},
                "description": "the colorized image; with confidence=true, a greyscale PNG of the model's confidence",
                "headers": {
                    INPUT_HEADER: {
                        "description": "'colour' when the upload was a colour photo (its colours were replaced, "
                        "from its brightness alone), else 'grey'",
                        "schema": {"type": "string", "enum": ["colour", "grey"]},
                    }
                },
            },
            **ERROR_RESPONSES,
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"multipart/form-data": {"schema": {"$ref": "#/components/schemas/ColorizeForm"}}},
            }
        },
    )
    async def colorize_endpoint(request: Request) -> Response:
        """Colorize one image; the answer is the image at full resolution (with confidence=true: a
        greyscale map of where the model is sure, white, and unsure, dark)."""
        upload = await receive_upload(request, uploads, max_upload_bytes, upload_timeouts)
        if not pool.reserve():
            raise ApiError(503, "server_busy", f"all {pool.capacity} colorize slots are taken")
        cancelled = threading.Event()

        def job() -> Colorized:
            # Parsing the fields is off the event loop too: hints JSON can take a while.
            options = parse_options(upload, model_names)
            return colorize_upload(upload, options, model_for(options), max_pixels, cancelled, provenance)

        try:
            running = pool.run_reserved(job)
        except BaseException:
            pool.release()
            raise
        colorized = await unless_client_leaves(request, running, cancelled)
        return Response(
            colorized.data,
            media_type=MIME_TYPES[colorized.format],
            headers={
                "Content-Disposition": attachment_header(upload.filename, EXTENSIONS[colorized.format], colorized.kind),
                INPUT_HEADER: "colour" if colorized.input_has_colour else "grey",
            },
        )

    @app.get("/api/models", response_model=ModelsResponse)
    async def models() -> ModelsResponse:
        """The bundled models and their cards."""
        return ModelsResponse(default=session.name, models=cards)

    @app.get("/healthz", response_model=HealthResponse)
    async def healthz() -> HealthResponse:
        """Liveness, how many colorize slots are in use and how many uploads are being read; answered
        even when every worker is busy."""
        return HealthResponse(
            model=session.name,
            device=session.device,
            workers=pool.workers,
            queue=pool.queue_size,
            busy=pool.busy,
            uploads=uploads.reading,
        )

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> FileResponse:
        return FileResponse(STATIC_DIR / "docs.html")

    install_film_jobs(app, films, upload_timeouts)  # /api/video-jobs (colorit.server.video_jobs)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    document_form_schema(app)
    return app


def document_form_schema(app: FastAPI) -> None:
    """The colorize body is parsed by hand (colorit.server.uploads), so FastAPI does not know its schema:
    add ColorizeForm and the models it uses to the OpenAPI components."""
    build_openapi = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = build_openapi()
            form = ColorizeForm.model_json_schema(ref_template="#/components/schemas/{model}")
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(form.pop("$defs", {}))
            components["ColorizeForm"] = form
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend the schema
