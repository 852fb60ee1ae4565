"""Where the network is unsure: greying its colour there, and its confidence map as an image.

A model that predicts a distribution over ab bins may give, as a second ONNX output `confidence`,
1 - the spread of that distribution around its mean relative to the uniform distribution's: 1 where
all the mass is on one colour, 0 where it is spread as widely as if the network knew nothing. Where
the network is torn between colours (foliage: green or blue?), the mean is a dull in-between and a
mode a coin toss; a muted colour there costs less, by eye and by per-pixel error, than a confident
wrong one.
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image

from colorit.errors import ColoritError

# The model card key of the default strength; absent means 0 (colour left as the network predicts it).
CARD_KEY = "unsure_grey_strength"
# Beyond this, confidence ** strength is ~0 nearly everywhere: the photo would come out grey.
MAX_STRENGTH = 10.0


def no_confidence_error(model_name: str) -> ColoritError:
    return ColoritError(f"model {model_name}: gives no confidence (it has no 'confidence' output; use e.g. 'default')")


def unsure_grey_strength(card: dict, override: float | None, model_name: str, has_confidence: bool) -> float:
    """The strength to grey unsure pixels with: override when given, else the card's, else 0.

    An explicit non-zero override for a model without a confidence output is refused rather than
    ignored; the card's value only counts for models that have one.
    """
    if override is None:
        strength, name = (card.get(CARD_KEY) or 0.0) if has_confidence else 0.0, f"model {model_name}: {CARD_KEY}"
    else:
        strength, name = override, "unsure_grey"
    if not (isinstance(strength, (int, float)) and math.isfinite(strength) and 0 <= strength <= MAX_STRENGTH):
        raise ValueError(f"{name} must lie in 0..{MAX_STRENGTH:g}, got {strength}")
    if strength and not has_confidence:
        raise no_confidence_error(model_name)
    return float(strength)


def grey_where_unsure(ab: np.ndarray, confidence: np.ndarray | None, strength: float) -> None:
    """Scale ab [2, H, W] in place by confidence [H, W] ** strength: chroma only ever shrinks, smoothly,
    and the hue stays. At strength 1 a pixel of confidence 0.5 keeps half its chroma; at 0.5 it keeps 71 %."""
    if strength and confidence is not None:
        ab *= np.power(confidence, np.float32(strength))


def confidence_image(confidence: np.ndarray) -> Image.Image:
    """A 0..1 confidence map as an 8-bit grey image: white = sure, black = unsure."""
    return Image.fromarray(np.round(np.clip(confidence, 0.0, 1.0) * 255.0).astype(np.uint8), "L")


def confidence_png(confidence: np.ndarray) -> bytes:
    """confidence_image encoded as PNG (lossless: the map is data, not a picture)."""
    buffer = io.BytesIO()
    confidence_image(confidence).save(buffer, "PNG")
    return buffer.getvalue()
