"""Films on the server, as jobs: POST /api/video-jobs (a clip), GET /api/video-jobs/{id} (progress),
GET .../result (the colorized film), GET .../source (the clip as sent, for the page's player),
DELETE .../{id} (cancel, or forget a finished job).

A film takes minutes where a photo takes a second, so it is a job and not a request. Its upload is
read under the same pace rules as a photo's (colorit.server.uploads), with its own size limit, and
written into a temporary folder as it arrives (not held in memory), then probed (a video stream, its
frame size and length) before it is queued. Films run one at a time on a thread of their own, so they
queue behind each other and not behind photos. At most `jobs` jobs are kept at once, queued, running
or finished (503 beyond); a finished job's files are removed `keep_s` after it ended, or by DELETE,
and all of them when the server stops. Job ids are random (128 bits): knowing one is the only way to a job.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, Response
from pydantic import AfterValidator, BaseModel, Field, ValidationError

from colorit.errors import ColoritError
from colorit.server.errors import ERROR_RESPONSES, ApiError, describe_validation_error
from colorit.server.schemas import ColorizeOptions
from colorit.server.uploads import FORM_FIELDS_BYTES, UploadGate, UploadTimeouts, receive_upload
from colorit.session import ModelSession
from colorit.video import colorize_video
from colorit.video.formats import VIDEO_FORMATS, video_format

# What one film job may be: the upload's size, the film's length and its frames' size; and how many
# jobs are kept at once (queued, running or finished, files on disk) and for how long once finished.
DEFAULT_MAX_FILM_MB = 200
DEFAULT_MAX_FILM_S = 600
DEFAULT_MAX_FILM_PIXELS = 3840 * 2160
DEFAULT_FILM_JOBS = 4
DEFAULT_FILM_KEEP_S = 3600
# Film uploads read at once from one client address (429 beyond).
FILM_UPLOADS_PER_CLIENT = 2
# The media type of each film format (the result) and input suffix (the source, for the page's player).
MEDIA_TYPES = {
    "mp4": "video/mp4",
    "m4v": "video/mp4",
    "mov": "video/quicktime",
    "mkv": "video/x-matroska",
    "ffv1": "video/x-matroska",
    "webm": "video/webm",
    "avi": "video/x-msvideo",
}


@dataclass(frozen=True)
class FilmLimits:
    """The bounds of film jobs (README, "Limits")."""

    max_bytes: int = DEFAULT_MAX_FILM_MB * 2**20
    max_seconds: float = DEFAULT_MAX_FILM_S
    max_pixels: int = DEFAULT_MAX_FILM_PIXELS
    jobs: int = DEFAULT_FILM_JOBS
    keep_s: float = DEFAULT_FILM_KEEP_S


DEFAULT_FILM_LIMITS = FilmLimits()


def _film_format(name: str) -> str:
    if name.lower() not in VIDEO_FORMATS:
        raise ValueError(f"choose one of {', '.join(VIDEO_FORMATS)}")
    return name.lower()


FilmFormat = Annotated[str, AfterValidator(_film_format)]
JobState = Literal["queued", "running", "done", "failed"]


class FilmOptions(ColorizeOptions):
    """The optional text fields of POST /api/video-jobs: those of POST /api/colorize (hints apply to
    every frame), with a film format, and whether colour is carried from frame to frame."""

    format: FilmFormat = Field(default="mp4", description=f"the result's format: {', '.join(VIDEO_FORMATS)}")
    confidence: Literal[False] = Field(default=False, description="confidence maps are for photos only")
    coherent: bool = Field(default=True, description="carry colour along the motion (false: every frame on its own)")


class FilmJobStatus(BaseModel):
    id: str
    name: str = Field(description="the uploaded file's name")
    status: JobState
    frames_done: int
    frames_total: int | None = Field(description="as the film's header declares it; null if it declares none")
    frames_per_second: float | None
    error: str | None = Field(description="why the job failed, one line")
    result: str | None = Field(description="URL of the colorized film once done")
    source: str = Field(description="URL of the film as uploaded")


@dataclass
class FilmJob:
    id: str
    name: str
    folder: Path
    source: Path
    result: Path
    options: FilmOptions
    status: JobState = "queued"
    frames_done: int = 0
    frames_total: int | None = None
    rate: float = 25.0  # frames a second, for the length limit while decoding
    started: float | None = None
    ended: float | None = None
    error: str | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)

    def describe(self) -> FilmJobStatus:
        running_s = (self.ended or time.monotonic()) - self.started if self.started else 0.0
        return FilmJobStatus(
            id=self.id,
            name=self.name,
            status=self.status,
            frames_done=self.frames_done,
            frames_total=self.frames_total,
            frames_per_second=self.frames_done / running_s if running_s > 0 else None,
            error=self.error,
            result=f"/api/video-jobs/{self.id}/result" if self.status == "done" else None,
            source=f"/api/video-jobs/{self.id}/source",
        )


class _Cancelled(Exception):
    """The job was deleted while it ran: colorize_video stops and removes its partial output."""


class _TooLong(ColoritError):
    """The film runs past the length limit (found while decoding: its header declared no length)."""


class FilmJobs:
    """The jobs of one app: a folder for their files, one worker thread, the limits."""

    def __init__(
        self, limits: FilmLimits, model_for: Callable[[str | None], ModelSession], model_names: list[str]
    ) -> None:
        self.limits = limits
        self.model_for = model_for
        self.model_names = model_names
        self.jobs: dict[str, FilmJob] = {}
        self._lock = threading.Lock()
        self._folder = tempfile.TemporaryDirectory(prefix="colorit-films-")
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="colorize-film")
        self.uploads = UploadGate(2 * (limits.max_bytes + FORM_FIELDS_BYTES), FILM_UPLOADS_PER_CLIENT)

    def reserve(self, name_hint: str) -> FilmJob:
        """A new job's record and folder, or 503 when `jobs` are kept already (finished ones past
        keep_s are forgotten first)."""
        self.forget_expired()
        with self._lock:
            if len(self.jobs) >= self.limits.jobs:
                raise ApiError(
                    503, "server_busy", f"{self.limits.jobs} film jobs are kept already; retry when one has finished"
                )
            job_id = secrets.token_hex(16)
            folder = Path(self._folder.name, job_id)
            folder.mkdir()
            job = FilmJob(job_id, name_hint, folder, folder / "source", folder / "result", FilmOptions())
            self.jobs[job_id] = job
            return job

    def get(self, job_id: str) -> FilmJob:
        self.forget_expired()
        job = self.jobs.get(job_id)
        if job is None:
            raise ApiError(
                404, "not_found", f"no film job {job_id!r} (finished jobs are kept {self.limits.keep_s:g} s)"
            )
        return job

    def forget(self, job: FilmJob) -> None:
        """Cancel the job if it runs, and remove it and its files."""
        job.cancelled.set()
        with self._lock:
            self.jobs.pop(job.id, None)
        if job.status != "running":  # a running job removes its folder itself when it stops
            shutil.rmtree(job.folder, ignore_errors=True)

    def forget_expired(self) -> None:
        now = time.monotonic()
        for job in list(self.jobs.values()):
            if job.ended is not None and now - job.ended > self.limits.keep_s:
                self.forget(job)

    def probe(self, job: FilmJob) -> None:
        """Refuse a clip that is no film (415), or too large or too long (413), before it is queued."""
        from colorit.video.media import VideoSource

        source = VideoSource(job.source, job.name, max_pixels=self.limits.max_pixels)
        try:
            seconds = source.info.duration_s
            job.frames_total = source.info.frames or None
            job.rate = float(source.info.rate)
        finally:
            source.close()
        if seconds is not None and seconds > self.limits.max_seconds:
            raise ApiError(
                413,
                "payload_too_large",
                f"{job.name}: {seconds:.0f} s long; the limit is {self.limits.max_seconds:g} s",
            )

    def run(self, job: FilmJob) -> None:
        """Colorize the job's film (on the film thread)."""
        if job.cancelled.is_set():
            return
        job.status, job.started = "running", time.monotonic()
        options = job.options

        def progress(done: int, expected: int | None) -> None:
            job.frames_done, job.frames_total = done, expected or job.frames_total
            if job.cancelled.is_set():
                raise _Cancelled
            if done > self.limits.max_seconds * job.rate:
                raise _TooLong(f"{job.name}: longer than the limit of {self.limits.max_seconds:g} s")

        try:
            colorize_video(
                job.source,
                job.result,
                name=job.name,
                model=self.model_for(options.model),
                render_size=options.render_size,
                saturation=options.saturation,
                hints=None if options.hints is None else [hint.model_dump(exclude_none=True) for hint in options.hints],
                unsure_grey=options.unsure_grey,
                coherent=options.coherent,
                format=options.format,
                max_pixels=self.limits.max_pixels,
                progress=progress,
            )
            job.status = "done"
        except _Cancelled:
            job.status = "failed"
        except Exception as exc:  # the job reports any failure in one line; the thread goes on
            job.status = "failed"
            job.error = (
                str(exc).splitlines()[0] if isinstance(exc, ColoritError) else f"unexpected {type(exc).__name__}"
            )
        finally:
            job.ended = time.monotonic()
            if job.cancelled.is_set():
                shutil.rmtree(job.folder, ignore_errors=True)

    def submit(self, job: FilmJob) -> None:
        self._executor.submit(self.run, job)

    def shutdown(self) -> None:
        for job in list(self.jobs.values()):
            job.cancelled.set()
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._folder.cleanup()

    def parse_options(self, fields: dict[str, str], name: str) -> FilmOptions:
        try:
            options = FilmOptions.model_validate(fields)
        except ValidationError as error:
            raise ApiError(400, "bad_request", f"{name}: {describe_validation_error(error)}") from None
        if options.model is not None and options.model not in self.model_names:
            choices = ", ".join(self.model_names)
            raise ApiError(400, "unknown_model", f"{name}: no model {options.model!r}; choose one of {choices}")
        return options


def install_film_jobs(app: FastAPI, jobs: FilmJobs, upload_timeouts: UploadTimeouts) -> None:
    """Adds the /api/video-jobs routes to app."""

    @app.post("/api/video-jobs", status_code=202, response_model=FilmJobStatus, responses=ERROR_RESPONSES)
    async def create_film_job(request: Request, response: Response) -> FilmJobStatus:
        """Upload a film (multipart: `file`, and optional fields as FilmOptions) to colorize; the answer
        is the job, to poll at its URL (Location) until `status` is done or failed."""
        job = jobs.reserve("upload")
        try:
            upload = await receive_upload(
                request, jobs.uploads, jobs.limits.max_bytes, upload_timeouts, spool_to=job.source
            )
            job.name = upload.filename
            job.options = jobs.parse_options(upload.fields, upload.filename)
            await asyncio.to_thread(jobs.probe, job)
        except BaseException:
            jobs.forget(job)
            raise
        jobs.submit(job)
        response.headers["Location"] = f"/api/video-jobs/{job.id}"
        return job.describe()

    @app.get("/api/video-jobs/{job_id}", response_model=FilmJobStatus, responses=ERROR_RESPONSES)
    async def film_job(job_id: str) -> FilmJobStatus:
        """A job's state and progress."""
        return jobs.get(job_id).describe()

    @app.get("/api/video-jobs/{job_id}/result", response_class=FileResponse, responses=ERROR_RESPONSES)
    async def film_job_result(job_id: str) -> FileResponse:
        """The colorized film (409 until the job is done)."""
        job = jobs.get(job_id)
        if job.status != "done":
            raise ApiError(409, "not_ready", f"{job.name}: the job is {job.status}, not done")
        fmt = video_format(job.options.format)
        filename = f"{Path(job.name).stem or 'film'}-colorized{fmt.suffix}"
        return FileResponse(job.result, media_type=MEDIA_TYPES[job.options.format], filename=filename)

    @app.get("/api/video-jobs/{job_id}/source", response_class=FileResponse, responses=ERROR_RESPONSES)
    async def film_job_source(job_id: str) -> FileResponse:
        """The film as it was uploaded (for a player beside the result)."""
        job = jobs.get(job_id)
        suffix = Path(job.name).suffix.lower()
        media_type = MEDIA_TYPES.get(suffix.lstrip("."), "application/octet-stream")
        return FileResponse(job.source, media_type=media_type, content_disposition_type="inline", filename=job.name)

    @app.delete("/api/video-jobs/{job_id}", status_code=204, response_class=Response, responses=ERROR_RESPONSES)
    async def delete_film_job(job_id: str) -> Response:
        """Cancel the job if it is queued or running, and remove it and its files."""
        jobs.forget(jobs.get(job_id))
        return Response(status_code=204)
