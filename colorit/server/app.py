"""The web app: the REST API (POST /api/colorize, GET /api/models, GET /healthz) and the static page.

Uploads are read into memory under a byte limit (Starlette's own form parser would spool files over
1 MB to a temporary file) and a time limit, a bounded number at once; then they are parsed and
colorized on a bounded thread pool so the event loop keeps answering, and refused with 503 at once
when every worker and queue slot is taken. A job whose client hangs up is dropped. Every answer
carries security headers, and only the allowed Host names are answered (against DNS rebinding).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from colorit import __version__
from colorit.api import colorize_picture, colorize_picture_with_confidence, output_format_of
from colorit.confidence import confidence_png
from colorit.errors import ColoritError, HintError, ImageError, ImageTooLarge, ModelNotFound
from colorit.io import EXTENSIONS, encode_image, output_format, read_image
from colorit.limits import MAX_HINTS_JSON_BYTES
from colorit.server import DEFAULT_MAX_PIXELS, DEFAULT_MAX_UPLOAD_MB, DEFAULT_QUEUE, DEFAULT_WORKERS
from colorit.server.schemas import (
    ColorizeForm,
    ColorizeOptions,
    ErrorResponse,
    HealthResponse,
    ModelCard,
    ModelsResponse,
)
from colorit.session import ModelSession, cpu_count, list_models, load_model

STATIC_DIR = Path(__file__).with_name("static")
# Room for the text fields (hints can be a few tens of kB) and the multipart framing next to the file.
FORM_FIELDS_BYTES = 2**20
# Size of each text field, checked as it streams in (before anything parses it), and parts in a form.
FIELD_BYTES = {"hints": MAX_HINTS_JSON_BYTES}
OTHER_FIELD_BYTES = 1024
# File parts: the photo and its reference photos (which share the photo's upload limit).
FILE_FIELDS = ("file", "reference")
MAX_REFERENCES = 4
MAX_FORM_PARTS = 32
# A client must keep sending (no pause longer than the first) and finish within the second; past
# that its upload is refused with 408. Uploads are read before a colorize slot is taken, and at most
# UPLOADS_PER_SLOT per slot are read at once (memory is bounded by those).
UPLOAD_IDLE_TIMEOUT_S = 10.0
UPLOAD_TIMEOUT_S = 120.0
UPLOADS_PER_SLOT = 2
LOCAL_HOSTS = ("localhost", "127.0.0.1")
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

# (status, error code) for each user-caused error of the library; subclasses before their base class.
LIBRARY_ERRORS: list[tuple[type[ColoritError], int, str]] = [
    (ImageTooLarge, 413, "payload_too_large"),
    (ImageError, 415, "unsupported_media_type"),
    (HintError, 400, "invalid_hints"),
    (ModelNotFound, 400, "unknown_model"),
    (ColoritError, 400, "bad_request"),
]
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in [
        (400, "bad parameters or hints"),
        (408, "the upload paused or took too long"),
        (413, "upload too large, in bytes or pixels"),
        (415, "not an image"),
        (503, "every worker and queue slot is taken; retry later"),
    ]
}


class ApiError(Exception):
    """A refusal with its HTTP status, rendered as {"error": code, "detail": message}."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


def payload_too_large(name: str, limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"{name}: upload larger than the limit of {limit / 2**20:g} MB")


class ClientGone(Exception):
    """The client hung up; nothing is left to answer."""


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


@dataclass
class FormPart:
    headers: dict[str, str] = field(default_factory=dict)
    data: bytearray = field(default_factory=bytearray)

    def disposition(self) -> dict[bytes, bytes]:
        return parse_options_header(self.headers.get("content-disposition"))[1]

    @property
    def name(self) -> str:
        return self.disposition().get(b"name", b"").decode("utf-8", "replace")

    @property
    def filename(self) -> str | None:
        filename = self.disposition().get(b"filename")
        return None if filename is None else filename.decode("utf-8", "replace")

    def add(self, data: bytes) -> None:
        """Append data; a text field (any part but FILE_FIELDS) may not grow past its limit."""
        self.data.extend(data)
        if self.name not in FILE_FIELDS:
            limit = FIELD_BYTES.get(self.name, OTHER_FIELD_BYTES)
            if len(self.data) > limit:
                raise ApiError(413, "payload_too_large", f"form field '{self.name}': larger than {limit} bytes")


class MultipartForm:
    """A multipart/form-data body collected in memory as it streams in."""

    def __init__(self, boundary: bytes) -> None:
        self.parts: list[FormPart] = []
        self.complete = False
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._parser = MultipartParser(
            boundary,
            callbacks={
                "on_part_begin": self._begin_part,
                "on_header_field": lambda data, start, end: self._header_field.extend(data[start:end]),
                "on_header_value": lambda data, start, end: self._header_value.extend(data[start:end]),
                "on_header_end": self._end_header,
                "on_part_data": lambda data, start, end: self.parts[-1].add(data[start:end]),
                "on_end": self._end,
            },
        )

    def feed(self, chunk: bytes) -> None:
        self._parser.write(chunk)

    def upload_name(self) -> str:
        """The file part's filename once its headers have arrived, for messages."""
        return next((part.filename for part in self.parts if part.name == "file" and part.filename), "upload")

    def _begin_part(self) -> None:
        if len(self.parts) == MAX_FORM_PARTS:
            raise ApiError(400, "bad_request", f"more than {MAX_FORM_PARTS} parts in the form")
        self.parts.append(FormPart())

    def _end_header(self) -> None:
        name = self._header_field.decode("latin-1").lower()
        self.parts[-1].headers[name] = self._header_value.decode("latin-1")
        self._header_field.clear()
        self._header_value.clear()

    def _end(self) -> None:
        self.complete = True


@dataclass(frozen=True)
class Upload:
    filename: str
    data: bytes
    fields: dict[str, str]
    references: list[tuple[str, bytes]] = field(default_factory=list)  # (filename, bytes) of reference photos


@dataclass(frozen=True)
class UploadTimeouts:
    idle_s: float = UPLOAD_IDLE_TIMEOUT_S
    total_s: float = UPLOAD_TIMEOUT_S


async def body_chunks(request: Request, timeouts: UploadTimeouts):
    """The request body as it arrives; 408 when the client pauses or takes too long, ClientGone when
    it hangs up."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeouts.total_s
    chunks = request.stream().__aiter__()
    while True:
        wait_s = max(0.0, min(timeouts.idle_s, deadline - loop.time()))
        try:
            chunk = await asyncio.wait_for(chunks.__anext__(), wait_s)
        except StopAsyncIteration:
            return
        except asyncio.TimeoutError:
            detail = (
                f"upload not complete within {timeouts.total_s:g} s"
                if loop.time() >= deadline
                else f"upload stalled: nothing received for {timeouts.idle_s:g} s"
            )
            raise ApiError(408, "request_timeout", detail) from None
        except ClientDisconnect:
            raise ClientGone from None
        yield chunk


async def read_upload(request: Request, max_upload_bytes: int, timeouts: UploadTimeouts) -> Upload:
    """Reads the multipart body into memory, refusing it (413) as soon as it, or a text field in it,
    exceeds its limit, and (408) when it arrives too slowly."""
    content_type, params = parse_options_header(request.headers.get("content-type"))
    if content_type != b"multipart/form-data" or not params.get(b"boundary"):
        raise ApiError(400, "bad_request", "send the image as multipart/form-data with a 'file' field")
    body_limit = max_upload_bytes + FORM_FIELDS_BYTES
    declared_length = request.headers.get("content-length", "")
    if declared_length.isdigit() and int(declared_length) > body_limit:
        raise payload_too_large("upload", max_upload_bytes)
    try:
        form = MultipartForm(params[b"boundary"])
        received = 0
        async for chunk in body_chunks(request, timeouts):
            # Parse no further than the limit, but that far, so that the message can name the file.
            form.feed(chunk[: body_limit - received])
            received += len(chunk)
            if received > body_limit:
                raise payload_too_large(form.upload_name(), max_upload_bytes)
    except FormParserError as error:
        raise ApiError(400, "bad_request", f"malformed multipart body: {error}") from None
    if not form.complete:
        raise ApiError(400, "bad_request", "multipart body ends before its closing boundary")
    return upload_from_parts(form.parts, max_upload_bytes)


def upload_from_parts(parts: list[FormPart], max_upload_bytes: int) -> Upload:
    files = [part for part in parts if part.name == "file"]
    if len(files) != 1:
        raise ApiError(400, "bad_request", "the form needs exactly one 'file' field holding the image")
    filename = files[0].filename or "upload"
    if len(files[0].data) > max_upload_bytes:
        raise payload_too_large(filename, max_upload_bytes)
    try:
        # A browser sends an empty string for a control left at "automatic": treat it as absent.
        fields = {part.name: part.data.decode("utf-8") for part in parts if part.name not in FILE_FIELDS and part.data}
    except UnicodeDecodeError:
        raise ApiError(400, "bad_request", f"{filename}: form fields must be UTF-8 text") from None
    # A browser sends an empty file part for a file input left empty: no reference.
    references = [
        (part.filename or "reference", bytes(part.data)) for part in parts if part.name == "reference" and part.data
    ]
    if len(references) > MAX_REFERENCES:
        raise ApiError(
            400, "bad_request", f"{filename}: at most {MAX_REFERENCES} 'reference' photos, got {len(references)}"
        )
    return Upload(filename=filename, data=bytes(files[0].data), fields=fields, references=references)


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


def describe_validation_error(error: ValidationError | RequestValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in issue['loc']) or 'body'}: {issue['msg']}" for issue in error.errors()
    )


@dataclass(frozen=True)
class Colorized:
    data: bytes
    format: str  # Pillow's name: PNG, JPEG, WEBP, TIFF
    kind: str  # "colorized" or "confidence": the download is named NAME-KIND.EXT


def colorize_upload(
    upload: Upload,
    options: ColorizeOptions,
    session: ModelSession,
    max_pixels: int,
    cancelled: threading.Event,
) -> Colorized:
    """The blocking part of a request (decode, colorize, encode); runs on a worker thread, and stops
    between its steps once `cancelled` is set (the client hung up)."""
    picture = read_image(upload.data, max_pixels=max_pixels, name=upload.filename)
    references = [read_image(data, max_pixels=max_pixels, name=name).pixels for name, data in upload.references]
    if cancelled.is_set():
        raise ClientGone
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
        return Colorized(confidence_png(confidence), "PNG", "confidence")
    colorized = colorize_picture(picture, session, **settings)
    if cancelled.is_set():
        raise ClientGone
    fmt = output_format(options.format) if options.format else output_format_of(picture)
    return Colorized(encode_image(colorized, fmt), fmt, "colorized")


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


def error_response(status: int, code: str, detail: str) -> JSONResponse:
    headers = {"Retry-After": "1"} if status == 503 else None
    return JSONResponse(ErrorResponse(error=code, detail=detail).model_dump(), status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, error: ApiError) -> JSONResponse:
        return error_response(error.status, error.code, error.detail)

    @app.exception_handler(ClientGone)
    async def client_gone(_: Request, __: ClientGone) -> Response:
        # Nobody reads this answer; 499 (nginx's "client closed request") only marks the access log.
        return Response(status_code=499)

    @app.exception_handler(ColoritError)
    async def library_error(_: Request, error: ColoritError) -> JSONResponse:
        status, code = next((status, code) for kind, status, code in LIBRARY_ERRORS if isinstance(error, kind))
        return error_response(status, code, str(error))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, error: RequestValidationError) -> JSONResponse:
        return error_response(400, "bad_request", describe_validation_error(error))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        return error_response(error.status_code, "http_error", str(error.detail))

    @app.exception_handler(Exception)
    async def unexpected_error(_: Request, error: Exception) -> JSONResponse:
        # Starlette logs the traceback after this handler; the client gets no internals.
        return error_response(500, "internal_error", f"unexpected {type(error).__name__} while handling the request")


def create_app(
    model: str = "default",
    workers: int = DEFAULT_WORKERS,
    queue_size: int = DEFAULT_QUEUE,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB * 2**20,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    allowed_hosts: list[str] | tuple[str, ...] = LOCAL_HOSTS,
    upload_timeouts: UploadTimeouts = UploadTimeouts(),
) -> FastAPI:
    """Builds the app; the model is loaded here, once, so a bad name fails at start-up.

    allowed_hosts: Host header names answered (others get 400); "*" for any."""
    pool = WorkerPool(workers, queue_size)
    uploads = Slots(UPLOADS_PER_SLOT * pool.capacity)
    # Each colorization may use this many threads, so that workers x threads never exceed the CPUs.
    threads = max(1, cpu_count() // workers)
    session = load_model(model, threads=threads)
    cards = [ModelCard.model_validate(card) for card in list_models()]
    model_names = [card.name for card in cards]

    def model_for(options: ColorizeOptions) -> ModelSession:
        # Called on a worker: loading a model the first time takes a while and must not block the loop.
        return session if options.model is None else load_model(options.model, threads=threads)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        pool.shutdown()

    app = FastAPI(
        title="ColorIt",
        version=__version__,
        summary="Colorize black-and-white photographs at full resolution.",
        docs_url=None,  # FastAPI's page loads Swagger UI from a CDN; /docs is served offline below
        redoc_url=None,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))
    app.add_middleware(SecurityHeaders)  # added last, so outermost: on the Host check's answers too

    @app.post(
        "/api/colorize",
        response_class=Response,
        responses={
            200: {
                "content": {mime: {} for mime in MIME_TYPES.values()},
                "description": "the colorized image; with confidence=true, a greyscale PNG of the model's confidence",
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
        if not uploads.reserve():
            await drain_body(request, max_upload_bytes + FORM_FIELDS_BYTES, upload_timeouts)
            raise ApiError(503, "server_busy", f"all {uploads.capacity} upload slots are taken")
        try:
            upload = await read_upload(request, max_upload_bytes, upload_timeouts)
        finally:
            uploads.release()
        if not pool.reserve():
            raise ApiError(503, "server_busy", f"all {pool.capacity} colorize slots are taken")
        cancelled = threading.Event()

        def job() -> Colorized:
            # Parsing the fields is off the event loop too: hints JSON can take a while.
            options = parse_options(upload, model_names)
            return colorize_upload(upload, options, model_for(options), max_pixels, cancelled)

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
                "Content-Disposition": attachment_header(upload.filename, EXTENSIONS[colorized.format], colorized.kind)
            },
        )

    @app.get("/api/models", response_model=ModelsResponse)
    async def models() -> ModelsResponse:
        """The bundled models and their cards."""
        return ModelsResponse(default=session.name, models=cards)

    @app.get("/healthz", response_model=HealthResponse)
    async def healthz() -> HealthResponse:
        """Liveness, and how many colorize slots are in use; answered even when every worker is busy."""
        return HealthResponse(model=session.name, workers=pool.workers, queue=pool.queue_size, busy=pool.busy)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> FileResponse:
        return FileResponse(STATIC_DIR / "docs.html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    document_form_schema(app)
    return app


def document_form_schema(app: FastAPI) -> None:
    """The colorize body is parsed by hand (see read_upload), so FastAPI does not know its schema:
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


async def drain_body(request: Request, limit: int, timeouts: UploadTimeouts) -> None:
    """Reads and drops a refused upload so that the client, still sending, gets the answer rather than
    a reset connection; stops at the limit."""
    received = 0
    async for chunk in body_chunks(request, timeouts):
        received += len(chunk)
        if received > limit:
            return
