"""Typed request and response bodies of the REST API (they also make up the OpenAPI document)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, Json

OutputFormat = Literal["png", "jpg", "webp", "tiff"]


class Hint(BaseModel):
    """A point whose colour the user fixes; the same shape as a `--hints` file entry."""

    model_config = ConfigDict(extra="forbid")

    x: float = Field(description="column in original-image pixels, or 0..1 when relative")
    y: float = Field(description="row in original-image pixels, or 0..1 when relative")
    color: str | None = Field(default=None, description="#rrggbb (or give ab)", examples=["#c03020"])
    ab: tuple[float, float] | None = Field(default=None, description="Lab chroma [a, b] instead of a colour")
    radius: float | None = Field(default=None, description="patch radius in original-image pixels")
    relative: bool = Field(default=False, description="x and y are fractions of the width and height")


class ColorizeOptions(BaseModel):
    """The optional text fields of POST /api/colorize."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str | None = Field(default=None, description="bundled model name; default: the server's model")
    render_size: int | None = Field(
        default=None, ge=32, le=2048, description="working size of the network, pixels on the long side"
    )
    saturation: float = Field(default=1.0, ge=0.0, le=4.0, description="scales the predicted a and b")
    format: OutputFormat | None = Field(default=None, description="output format; default: the upload's")
    hints: Json[list[Hint]] | None = Field(default=None, description="JSON list of hints")


class ColorizeForm(ColorizeOptions):
    """The whole multipart/form-data body of POST /api/colorize, as the OpenAPI document shows it."""

    file: bytes = Field(description="the image (any format Pillow reads)", json_schema_extra={"format": "binary"})


class ModelCard(BaseModel):
    """A bundled model's card (NAME.json next to NAME.onnx); unknown extra keys are passed through."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    name: str
    architecture: str | None = None
    parameters: int | None = None
    gflops_256: float | None = None
    input_channels: int | None = None
    accepts_hints: bool = False
    render_size: int | None = None
    training: dict | None = None
    validation: dict | list | None = None


class ModelsResponse(BaseModel):
    default: str = Field(description="the model used when a request names none")
    models: list[ModelCard]


class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"
    model: str
    workers: int = Field(description="colorizations that run at once")
    queue: int = Field(description="colorizations that may wait for a worker")
    busy: int = Field(description="requests now running or waiting")


class ErrorResponse(BaseModel):
    error: str = Field(description="short machine-readable reason", examples=["payload_too_large"])
    detail: str = Field(description="one-line message for a person")
