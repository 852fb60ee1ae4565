"""Typed request and response bodies of the REST API (they also make up the OpenAPI document)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Json

from colorit.confidence import MAX_STRENGTH as MAX_UNSURE_GREY
from colorit.encoding import FORMATS, output_format
from colorit.limits import MAX_HINTS, MAX_RENDER_SIZE, MAX_SATURATION

# An output format as the command line's --format names it, in any case; validated into Pillow's name.
OutputFormat = Annotated[str, AfterValidator(output_format)]


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
        default=None, ge=32, le=MAX_RENDER_SIZE, description="working size of the network, pixels on the long side"
    )
    saturation: float = Field(default=1.0, ge=0.0, le=MAX_SATURATION, description="scales the predicted a and b")
    format: OutputFormat | None = Field(
        default=None,
        description=f"output format, in any case: {', '.join(FORMATS)}; default: the upload's",
        examples=["jpg"],
    )
    hints: Json[list[Hint]] | None = Field(default=None, description=f"JSON list of at most {MAX_HINTS} hints")
    unsure_grey: float | None = Field(
        default=None,
        ge=0.0,
        le=MAX_UNSURE_GREY,
        description="lean the colour towards grey where the model is unsure (chroma x confidence ** this); "
        "default: the model card's unsure_grey_strength, 0 = off",
    )
    confidence: bool = Field(
        default=False,
        description="answer with the model's per-pixel confidence instead of the colorized image: a greyscale "
        "PNG at full resolution, white where the model is sure, dark where it is unsure (a place for a hint); "
        "format is then ignored. Only for models with a confidence output (400 otherwise)",
    )


class ColorizeForm(ColorizeOptions):
    """The whole multipart/form-data body of POST /api/colorize, as the OpenAPI document shows it."""

    file: bytes = Field(
        description="the image: PNG, JPEG, WebP, TIFF, BMP, GIF or PPM", json_schema_extra={"format": "binary"}
    )
    reference: list[bytes] | None = Field(
        default=None,
        description="optional colour photo(s) to take colours from (repeat the field for up to 4): the colours of "
        "matching things carry over, the model's own colour stays where nothing matches, a hint wins where both "
        "speak; they count towards the upload limit with the image",
    )


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
    device: str = Field(description="where the model runs: cpu or cuda")
    workers: int = Field(description="colorizations that run at once")
    queue: int = Field(description="colorizations that may wait for a worker")
    busy: int = Field(description="requests now running or waiting")
    uploads: int = Field(description="uploads being read (they take no colorize slot)")


class ErrorResponse(BaseModel):
    error: str = Field(description="short machine-readable reason", examples=["payload_too_large"])
    detail: str = Field(description="one-line message for a person")
