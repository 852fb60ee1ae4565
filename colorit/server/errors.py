"""How the server refuses: every error is JSON {"error": code, "detail": one line for a person}."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from colorit.errors import ColoritError, HintError, ImageError, ImageTooLarge, ModelNotFound
from colorit.server.schemas import ErrorResponse

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
        (400, "bad parameters or hints, a file under another field than 'file', or a Host name not answered"),
        (408, "the upload paused, was too slow or took too long"),
        (413, "upload too large, in bytes or pixels"),
        (415, "not an image"),
        (429, "too many uploads at once from this client address; send them one after another"),
        (503, "every worker and queue slot is taken, or uploads fill the server's memory for them; retry later"),
    ]
}
# Answers that a client may retry as they are, after this many seconds.
RETRY_AFTER_S = {429: 1, 503: 1}


class ApiError(Exception):
    """A refusal with its HTTP status, rendered as {"error": code, "detail": message}."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


class ClientGone(Exception):
    """The client hung up; nothing is left to answer."""


def payload_too_large(name: str, limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"{name}: upload larger than the limit of {limit / 2**20:g} MB")


def describe_validation_error(error: ValidationError | RequestValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in issue['loc']) or 'body'}: {issue['msg']}" for issue in error.errors()
    )


def error_response(status: int, code: str, detail: str) -> JSONResponse:
    retry_after = RETRY_AFTER_S.get(status)
    headers = None if retry_after is None else {"Retry-After": str(retry_after)}
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
