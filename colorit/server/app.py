"""The web app: the REST API (POST /api/colorize, GET /api/models, GET /healthz) and the static page.

Uploads are read into memory under a byte limit (Starlette's own form parser would spool files over
1 MB to a temporary file), colorized on a bounded thread pool so the event loop keeps answering, and
refused with 503 at once when every worker and queue slot is taken.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
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

from colorit import __version__
from colorit.api import colorize_picture, output_format_of
from colorit.errors import ColoritError, HintError, ImageError, ImageTooLarge, ModelNotFound
from colorit.io import EXTENSIONS, encode_image, output_format, read_image
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
MIME_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "TIFF": "image/tiff"}

# (status, error code) for each user-caused error of the library; subclasses before their base class.
LIBRARY_ERRORS: list[tuple[type[ColoritError], int, str]] = [
    (ImageTooLarge, 413, "payload_too_large"),
    (ImageError, 415, "unsupported_media_type"),
    (HintError, 400, "invalid_hints"),
    (ModelNotFound, 400, "unknown_model"),
    (ColoritError, 400, "bad_request"),
]
ERROR_RESPONSES = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in [
        (400, "bad parameters or hints"),
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


class WorkerPool:
    """Runs colorizations on `workers` threads with at most `queue_size` more waiting; a slot is
    reserved before the upload is read, so memory is bounded by the slots, not by the clients."""

    def __init__(self, workers: int, queue_size: int) -> None:
        if workers < 1 or queue_size < 0:
            raise ValueError(f"need at least one worker and a queue of zero or more, not {workers} and {queue_size}")
        self.workers, self.queue_size = workers, queue_size
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="colorize")
        self._lock = threading.Lock()
        self._taken = 0

    @property
    def busy(self) -> int:
        return self._taken

    def reserve(self) -> bool:
        with self._lock:
            if self._taken >= self.workers + self.queue_size:
                return False
            self._taken += 1
            return True

    def release(self) -> None:
        with self._lock:
            self._taken -= 1

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
                "on_part_begin": lambda: self.parts.append(FormPart()),
                "on_header_field": lambda data, start, end: self._header_field.extend(data[start:end]),
                "on_header_value": lambda data, start, end: self._header_value.extend(data[start:end]),
                "on_header_end": self._end_header,
                "on_part_data": lambda data, start, end: self.parts[-1].data.extend(data[start:end]),
                "on_end": self._end,
            },
        )

    def feed(self, chunk: bytes) -> None:
        self._parser.write(chunk)

    def upload_name(self) -> str:
        """The file part's filename once its headers have arrived, for messages."""
        return next((part.filename for part in self.parts if part.name == "file" and part.filename), "upload")

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


async def read_upload(request: Request, max_upload_bytes: int) -> Upload:
    """Reads the multipart body into memory, refusing it (413) as soon as it exceeds the limit."""
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
        async for chunk in request.stream():
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
        fields = {part.name: part.data.decode("utf-8") for part in parts if part.name != "file" and part.data}
    except UnicodeDecodeError:
        raise ApiError(400, "bad_request", f"{filename}: form fields must be UTF-8 text") from None
    return Upload(filename=filename, data=bytes(files[0].data), fields=fields)


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


def colorize_upload(upload: Upload, options: ColorizeOptions, session: ModelSession, max_pixels: int) -> Colorized:
    """The blocking part of a request (decode, colorize, encode); runs on a worker thread."""
    picture = read_image(upload.data, max_pixels=max_pixels, name=upload.filename)
    colorized = colorize_picture(
        picture,
        session,
        render_size=options.render_size,
        saturation=options.saturation,
        hints=None if options.hints is None else [hint.model_dump(exclude_none=True) for hint in options.hints],
        hints_source=f"{upload.filename}: hints",
    )
    fmt = output_format(options.format) if options.format else output_format_of(picture)
    return Colorized(encode_image(colorized, fmt), fmt)


def attachment_header(upload_name: str, extension: str) -> str:
    """Content-Disposition for NAME-colorized.EXT: an ASCII fallback plus the exact UTF-8 name."""
    filename = f"{Path(upload_name).stem or 'image'}-colorized{extension}"
    ascii_name = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in filename)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


def error_response(status: int, code: str, detail: str) -> JSONResponse:
    headers = {"Retry-After": "1"} if status == 503 else None
    return JSONResponse(ErrorResponse(error=code, detail=detail).model_dump(), status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, error: ApiError) -> JSONResponse:
        return error_response(error.status, error.code, error.detail)

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
) -> FastAPI:
    """Builds the app; the model is loaded here, once, so a bad name fails at start-up."""
    pool = WorkerPool(workers, queue_size)
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

    @app.post(
        "/api/colorize",
        response_class=Response,
        responses={
            200: {"content": {mime: {} for mime in MIME_TYPES.values()}, "description": "the colorized image"},
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
        """Colorize one image; the answer is the image at full resolution."""
        if not pool.reserve():
            await drain_body(request, max_upload_bytes + FORM_FIELDS_BYTES)
            raise ApiError(503, "server_busy", f"all {pool.workers + pool.queue_size} colorize slots are taken")
        try:
            upload = await read_upload(request, max_upload_bytes)
            options = parse_options(upload, model_names)
            running = pool.run_reserved(lambda: colorize_upload(upload, options, model_for(options), max_pixels))
        except BaseException:
            pool.release()
            raise
        colorized = await running
        return Response(
            colorized.data,
            media_type=MIME_TYPES[colorized.format],
            headers={"Content-Disposition": attachment_header(upload.filename, EXTENSIONS[colorized.format])},
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

    app.openapi = openapi


async def drain_body(request: Request, limit: int) -> None:
    """Reads and drops a refused upload so that the client, still sending, gets the answer rather than
    a reset connection; stops at the limit."""
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            return
