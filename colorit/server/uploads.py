"""Reading a colorize request's multipart body, under limits of size, pace and memory.

Starlette's own form parser would spool files over 1 MB to a temporary file and knows no pace: here
the body is parsed as it streams in, text fields are refused as soon as they pass their size, a file
under another field than 'file' is named, and a client is cut off (408) when it pauses, sends too
slowly or takes too long. A photo is kept in memory (it is decoded from there); a film's file part is
written to the file its job will read as it arrives (spool_to), so that a film upload holds only its
text fields in memory. Reading takes no colorize slot; what bounds it is the UploadGate: a few
uploads at once per client address, and the bytes all of them hold together.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header
from starlette.requests import ClientDisconnect, Request
from starlette.types import Scope

from colorit.limits import MAX_HINTS_JSON_BYTES
from colorit.server import (
    UPLOAD_IDLE_TIMEOUT_S,
    UPLOAD_MIN_BYTES_PER_S,
    UPLOAD_RATE_GRACE_S,
    UPLOAD_TIMEOUT_S,
)
from colorit.server.errors import ApiError, ClientGone, payload_too_large
from colorit.server.schemas import ColorizeOptions

# Room for the text fields (hints can be a few tens of kB) and the multipart framing next to the file.
FORM_FIELDS_BYTES = 2**20
# Size of each text field, checked as it streams in (before anything parses it), and parts in a form.
FIELD_BYTES = {"hints": MAX_HINTS_JSON_BYTES}
OTHER_FIELD_BYTES = 1024
# File parts: the photo and its reference photos (which share the photo's upload limit).
FILE_FIELDS = ("file", "reference")
FORM_FIELDS = (*FILE_FIELDS, *ColorizeOptions.model_fields)
MAX_REFERENCES = 4
MAX_FORM_PARTS = 32


def wrong_field(name: str, filename: str | None) -> ApiError:
    what = f"{filename}: a file" if filename is not None else "a value"
    return ApiError(
        400,
        "bad_request",
        f"{what} sent as form field '{name}'; send the image as the 'file' field "
        f"(the form's fields: {', '.join(FORM_FIELDS)})",
    )


@dataclass
class FormPart:
    headers: dict[str, str] = field(default_factory=dict)
    data: bytearray = field(default_factory=bytearray)
    size: int = 0
    sink: BinaryIO | None = None  # where a spooled part's bytes go instead of data

    def close(self) -> None:
        if self.sink is not None:
            self.sink.close()

    def disposition(self) -> dict[bytes, bytes]:
        return parse_options_header(self.headers.get("content-disposition"))[1]

    @property
    def name(self) -> str:
        return self.disposition().get(b"name", b"").decode("utf-8", "replace")

    @property
    def filename(self) -> str | None:
        filename = self.disposition().get(b"filename")
        return None if filename is None else filename.decode("utf-8", "replace")

    def check_headers(self) -> None:
        """A file belongs under FILE_FIELDS: under any other name it is refused from its headers,
        before its bytes count against a text field's limit."""
        if self.filename is not None and self.name not in FILE_FIELDS:
            raise wrong_field(self.name, self.filename)

    def add(self, data: bytes) -> None:
        """Append data; a text field (any part but FILE_FIELDS) may not grow past its limit."""
        self.size += len(data)
        if self.sink is not None:
            # A plain write on the event loop: a chunk of a few tens of kB goes to the page cache.
            self.sink.write(data)
            return
        self.data.extend(data)
        if self.name not in FILE_FIELDS:
            limit = FIELD_BYTES.get(self.name, OTHER_FIELD_BYTES)
            if self.size > limit:
                if self.name not in FORM_FIELDS:  # most likely an image sent as text (curl -F 'image=<photo.jpg')
                    raise wrong_field(self.name, None)
                raise ApiError(413, "payload_too_large", f"form field '{self.name}': larger than {limit} bytes")


class MultipartForm:
    """A multipart/form-data body collected as it streams in: in memory, but for the first 'file' part when
    spool_to is given, which is written to that file (created, never overwritten). close() closes it."""

    def __init__(self, boundary: bytes, spool_to: Path | None = None) -> None:
        self.parts: list[FormPart] = []
        self.complete = False
        self._spool_to = spool_to
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._parser = MultipartParser(
            boundary,
            callbacks={
                "on_part_begin": self._begin_part,
                "on_header_field": lambda data, start, end: self._header_field.extend(data[start:end]),
                "on_header_value": lambda data, start, end: self._header_value.extend(data[start:end]),
                "on_header_end": self._end_header,
                "on_headers_finished": self._headers_finished,
                "on_part_data": lambda data, start, end: self.parts[-1].add(data[start:end]),
                "on_part_end": self._end_part,
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

    def close(self) -> None:
        for part in self.parts:
            part.close()

    def _headers_finished(self) -> None:
        part = self.parts[-1]
        part.check_headers()
        if part.name == "file" and self._spool_to is not None:
            part.sink = self._spool_to.open("xb")
            self._spool_to = None  # a second file part stays in memory, to be refused with the form

    def _end_part(self) -> None:
        self.parts[-1].close()

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
    data: bytes  # the file's bytes; empty when they were spooled to a file (read_upload's spool_to)
    fields: dict[str, str]
    references: list[tuple[str, bytes]] = field(default_factory=list)  # (filename, bytes) of reference photos


@dataclass(frozen=True)
class UploadTimeouts:
    """The pace a client must keep (see colorit.server): the longest pause, the whole upload's time,
    and a minimum average rate that applies once the grace period has passed."""

    idle_s: float = UPLOAD_IDLE_TIMEOUT_S
    total_s: float = UPLOAD_TIMEOUT_S
    grace_s: float = UPLOAD_RATE_GRACE_S
    min_bytes_per_s: float = UPLOAD_MIN_BYTES_PER_S


DEFAULT_UPLOAD_TIMEOUTS = UploadTimeouts()


def client_address(scope: Scope) -> str:
    """Who an upload counts against: the client's IPv4 address, or its IPv6 /64 (one end network
    holds at least that many addresses); anything else (a Unix socket, a test client) as it is."""
    client = scope.get("client")
    host = client[0] if client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(address) >> 64 << 64, 64)))
    return str(address)


class UploadGate:
    """Uploads being read: at most `per_client` at once from one client address (429), holding at most
    `buffer_bytes` together (503). Used on the event loop only, so it needs no lock."""

    def __init__(self, buffer_bytes: int, per_client: int) -> None:
        self.buffer_bytes, self.per_client = buffer_bytes, per_client
        self.buffered = 0
        self._reading: Counter[str] = Counter()

    @property
    def reading(self) -> int:
        return sum(self._reading.values())

    def admit(self, client: str) -> HeldUpload:
        if self._reading[client] >= self.per_client:
            raise ApiError(
                429,
                "too_many_uploads",
                f"{self.per_client} uploads from {client} are being read already; send one after another",
            )
        self._reading[client] += 1
        return HeldUpload(self, client)

    def release(self, client: str, held: int) -> None:
        self.buffered -= held
        self._reading[client] -= 1
        if not self._reading[client]:
            del self._reading[client]


class HeldUpload:
    """One admitted upload: counts the bytes it holds until it leaves the `with` block."""

    def __init__(self, gate: UploadGate, client: str) -> None:
        self.gate, self.client = gate, client
        self.held = 0

    def hold(self, size: int) -> None:
        gate = self.gate
        if gate.buffered + size > gate.buffer_bytes:
            raise ApiError(
                503,
                "server_busy",
                f"uploads being read fill the {gate.buffer_bytes / 2**20:g} MB this server keeps for them",
            )
        gate.buffered += size
        self.held += size

    def __enter__(self) -> HeldUpload:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None):
        self.gate.release(self.client, self.held)


def pace_broken(rule: str, timeouts: UploadTimeouts, received: int, elapsed_s: float) -> str:
    if rule == "stalled":
        return f"upload stalled: nothing received for {timeouts.idle_s:g} s"
    if rule == "late":
        return f"upload not complete within {timeouts.total_s:g} s"
    return (
        f"upload too slow: {received} bytes in {elapsed_s:.0f} s, below the minimum of "
        f"{timeouts.min_bytes_per_s / 1024:g} KiB/s"
    )


async def body_chunks(request: Request, timeouts: UploadTimeouts) -> AsyncIterator[bytes]:
    """The request body as it arrives; 408 when the client pauses, falls below the minimum rate or
    takes too long, ClientGone when it hangs up."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    received = 0
    chunks = request.stream().__aiter__()
    while True:
        now = loop.time()
        # The next chunk must come before the earliest of these.
        deadlines = {
            "stalled": now + timeouts.idle_s,
            "late": started + timeouts.total_s,
            "slow": started + timeouts.grace_s + received / timeouts.min_bytes_per_s,
        }
        rule = min(deadlines, key=deadlines.__getitem__)
        try:
            chunk = await asyncio.wait_for(chunks.__anext__(), max(0.0, deadlines[rule] - now))
        except StopAsyncIteration:
            return
        except asyncio.TimeoutError:
            raise ApiError(
                408, "request_timeout", pace_broken(rule, timeouts, received, loop.time() - started)
            ) from None
        except ClientDisconnect:
            raise ClientGone from None
        received += len(chunk)
        yield chunk


async def receive_upload(
    request: Request,
    gate: UploadGate,
    max_upload_bytes: int,
    timeouts: UploadTimeouts,
    spool_to: Path | None = None,
) -> Upload:
    """Admits the upload through the gate and reads it; a refused one is drained first, so that the
    client, still sending, gets the answer rather than a reset connection. spool_to: see read_upload."""
    try:
        admitted = gate.admit(client_address(request.scope))
    except ApiError:
        await drain_body(request, max_upload_bytes + FORM_FIELDS_BYTES, timeouts)
        raise
    with admitted:
        return await read_upload(request, max_upload_bytes, timeouts, admitted, spool_to)


async def read_upload(
    request: Request,
    max_upload_bytes: int,
    timeouts: UploadTimeouts,
    held: HeldUpload,
    spool_to: Path | None = None,
) -> Upload:
    """Reads the multipart body, refusing it (413) as soon as it, or a text field in it, exceeds its
    limit, and (408) when it arrives too slowly. The file part goes to spool_to when given (a new
    file, left partly written when the upload is refused: the caller removes it), else into memory.
    Spooled bytes still count against the gate: it bounds what uploads being read take on disk too."""
    content_type, params = parse_options_header(request.headers.get("content-type"))
    if content_type != b"multipart/form-data" or not params.get(b"boundary"):
        raise ApiError(400, "bad_request", "send the image as multipart/form-data with a 'file' field")
    body_limit = max_upload_bytes + FORM_FIELDS_BYTES
    declared_length = request.headers.get("content-length", "")
    if declared_length.isdigit() and int(declared_length) > body_limit:
        raise payload_too_large("upload", max_upload_bytes)
    form = MultipartForm(params[b"boundary"], spool_to)
    try:
        received = 0
        async for chunk in body_chunks(request, timeouts):
            # Parse no further than the limit, but that far, so that the message can name the file.
            piece = chunk[: body_limit - received]
            held.hold(len(piece))
            form.feed(piece)
            received += len(chunk)
            if received > body_limit:
                raise payload_too_large(form.upload_name(), max_upload_bytes)
    except FormParserError as error:
        raise ApiError(400, "bad_request", f"malformed multipart body: {error}") from None
    finally:
        form.close()
    if not form.complete:
        raise ApiError(400, "bad_request", "multipart body ends before its closing boundary")
    return upload_from_parts(form.parts, max_upload_bytes)


def upload_from_parts(parts: list[FormPart], max_upload_bytes: int) -> Upload:
    files = [part for part in parts if part.name == "file"]
    if len(files) != 1:
        raise ApiError(400, "bad_request", "the form needs exactly one 'file' field holding the image")
    filename = files[0].filename or "upload"
    if files[0].size > max_upload_bytes:
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


async def drain_body(request: Request, limit: int, timeouts: UploadTimeouts) -> None:
    """Reads and drops a refused upload, no further than the limit and no longer than its pace
    allows: the refusal is the answer either way."""
    received = 0
    try:
        async for chunk in body_chunks(request, timeouts):
            received += len(chunk)
            if received > limit:
                return
    except ApiError:
        return
