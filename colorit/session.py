"""One small class per ONNX Runtime model session, and the registry of bundled models and their cards."""

from __future__ import annotations

import functools
import json
import os
import warnings
from pathlib import Path

import numpy as np

from colorit.errors import ColoritWarning, HintError, ModelNotFound
from colorit.hints import AB_SCALE
from colorit.io import cpu_count

MODELS_DIR = Path(__file__).resolve().parent / "models"
FEATURES_MODEL = MODELS_DIR / "features" / "lite0-features.onnx"
# The working size colorit export writes into a card, and the one of an .onnx given by path without a card:
# the size the bundled networks were trained at (photos of at most 320 px, 192 px crops). The default's
# weights and decoding scored better at 288 px than at 384 on every photo-val metric (README, "Working size").
DEFAULT_RENDER_SIZE = 288
SIZE_MULTIPLE = 32  # the networks downsample by 32: H and W must be multiples of it
# Where a model runs (--device, device=): auto takes CUDA when ONNX Runtime can, else the CPU.
DEVICES = ("auto", "cpu", "cuda")
CPU_PROVIDER = "CPUExecutionProvider"
CUDA_PROVIDER = "CUDAExecutionProvider"
NO_CUDA_PROVIDER = (
    "device cuda: this ONNX Runtime has no CUDA provider (pip install 'colorit[gpu]' installs "
    "onnxruntime-gpu); running on the CPU"
)
# The optional second output of a model: [N, 1, H, W], 0..1, 1 where its ab distribution is all on one
# colour, 0 where it is as spread as the uniform distribution (docs/ARCHITECTURE.md).
CONFIDENCE_OUTPUT = "confidence"


def _padded_L(L_work: np.ndarray) -> np.ndarray:
    """L (HxW, 0..100) as every bundled network takes it: L / 50 - 1, padded by reflection up to
    multiples of 32 (the caller crops the output back)."""
    height, width = L_work.shape
    pad = ((0, -height % SIZE_MULTIPLE), (0, -width % SIZE_MULTIPLE))
    return np.pad(np.asarray(L_work, dtype=np.float32) / 50.0 - 1.0, pad, mode="reflect")


def _ort_session(path: Path, threads: int, device: str = "cpu"):
    """An ONNX Runtime session on `device` ("cpu", or "cuda" as resolve_device gives it)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle ONNX Runtime threads would otherwise spin after each run and compete with the
    # full-resolution recombination that follows it.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # Errors only: a CUDA provider that cannot start is said once, in colorit's words (ModelSession).
    options.log_severity_level = 3
    providers = [CUDA_PROVIDER, CPU_PROVIDER] if device == "cuda" else [CPU_PROVIDER]
    return ort.InferenceSession(str(path), sess_options=options, providers=providers)


def resolve_device(requested: str) -> tuple[str, str | None]:
    """("cuda" or "cpu", a one-line note or None) for --device / device= auto, cpu or cuda.

    auto takes CUDA when ONNX Runtime has its CUDA provider (onnxruntime-gpu, the gpu extra) and the
    CPU quietly otherwise; cuda without that provider falls back to the CPU and says so."""
    import onnxruntime as ort

    if requested != "cpu" and CUDA_PROVIDER in ort.get_available_providers():
        return "cuda", None
    if requested == "cuda":
        return "cpu", NO_CUDA_PROVIDER
    return "cpu", None


class ModelSession:
    """An ONNX Runtime session for one colorization model plus its card, on device "cpu" or "cuda".

    `threads` is both ONNX Runtime's intra-op thread count and what the pipeline may use for its
    own full-resolution work, so that processes x threads never exceed the CPUs.
    """

    def __init__(self, path: Path, card: dict, *, threads: int | None = None, device: str = "cpu"):
        self.path = path
        self.threads = threads or cpu_count()
        self._session = _ort_session(path, self.threads, device)
        # What ONNX Runtime actually took: a CUDA provider that cannot start (no GPU, no driver, a
        # CUDA library missing) leaves the session on the CPU.
        self.device = "cuda" if self._session.get_providers()[0] == CUDA_PROVIDER else "cpu"
        if device == "cuda" and self.device == "cpu":
            warnings.warn(
                "device cuda: ONNX Runtime could not start CUDA (no GPU or driver?); running on the CPU",
                ColoritWarning,
                2,
            )
        graph_input = self._session.get_inputs()[0]
        self._input_name = graph_input.name
        # The graph, not the card, decides how many channels go in.
        channels = graph_input.shape[1]
        self.input_channels = channels if isinstance(channels, int) else int(card.get("input_channels", 1))
        outputs = [output.name for output in self._session.get_outputs()]
        self.has_confidence: bool = CONFIDENCE_OUTPUT in outputs
        self._output_names = [outputs[0], CONFIDENCE_OUTPUT] if self.has_confidence else outputs[:1]
        self.name: str = card.get("name", path.stem)
        self.card = card
        self.accepts_hints: bool = self.input_channels == 4
        self.default_render_size: int = int(card.get("render_size") or DEFAULT_RENDER_SIZE)

    def __repr__(self) -> str:
        return f"ModelSession({self.name!r}, path={str(self.path)!r}, threads={self.threads}, device={self.device!r})"

    def predict(
        self, L_work: np.ndarray, hint_channels: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """L (HxW, 0..100) -> (predicted ab [2, H, W] float32 in Lab units, confidence [H, W] float32
        0..1 (1 = sure), or None for a model without a confidence output).

        hint_channels: [3, H, W] (a/110, b/110, mask) from hints.render_hints, for models that take hints.
        The input is padded up to multiples of 32 by reflection (hint channels by zeros, so that no
        hint is mirrored) and the output cropped back.
        """
        height, width = L_work.shape
        if hint_channels is not None and not self.accepts_hints:
            raise HintError(f"model {self.name}: takes no hints (use a model with accepts_hints, e.g. 'default')")
        L_input = _padded_L(L_work)
        net_input = np.zeros((1, self.input_channels) + L_input.shape, dtype=np.float32)
        net_input[0, 0] = L_input
        if hint_channels is not None:
            net_input[0, 1:4, :height, :width] = hint_channels
        ab, *confidence = self._session.run(self._output_names, {self._input_name: net_input})
        ab = np.ascontiguousarray(ab[0, :, :height, :width] * AB_SCALE, dtype=np.float32)
        if not confidence:
            return ab, None
        return ab, np.ascontiguousarray(np.clip(confidence[0][0, 0, :height, :width], 0.0, 1.0), dtype=np.float32)


class FeatureSession:
    """An ONNX Runtime session for the pretrained feature extractor that reference photos are matched
    with (models/features/, not a colorization model: bundled_models() does not list it)."""

    stride = 8

    def __init__(self, path: Path, *, threads: int | None = None):
        self.path = path
        self.threads = threads or cpu_count()
        self._session = _ort_session(path, self.threads)

    def features(self, L_work: np.ndarray) -> np.ndarray:
        """L (HxW, 0..100) -> [ceil(H / 8), ceil(W / 8), C] float32, each position of unit length."""
        height, width = L_work.shape
        maps = self._session.run(None, {"input": _padded_L(L_work)[None, None]})[0][0]
        grid = (-(-height // self.stride), -(-width // self.stride))
        return np.ascontiguousarray(maps[:, : grid[0], : grid[1]].transpose(1, 2, 0))


@functools.lru_cache(maxsize=4)
def load_features(threads: int | None = None) -> FeatureSession:
    """The bundled feature extractor (cached per process and thread count)."""
    return FeatureSession(FEATURES_MODEL, threads=threads)


def _read_card(path: Path) -> dict:
    card_path = path.with_suffix(".json")
    if not card_path.is_file():
        return {"name": path.stem}
    try:
        return json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelNotFound(f"{card_path}: unreadable model card ({exc})") from None


def resolve_model_path(name_or_path: str | os.PathLike) -> Path:
    """The .onnx file for a bundled model name or a path; raises ModelNotFound."""
    text = str(name_or_path)
    bundled = MODELS_DIR / f"{text}.onnx"
    if os.sep not in text and not text.endswith(".onnx") and bundled.is_file():
        return bundled
    path = Path(text).expanduser()
    if path.is_file():
        return path.resolve()
    names = ", ".join(sorted(p.stem for p in MODELS_DIR.glob("*.onnx"))) or "none installed"
    raise ModelNotFound(f"{text}: no such model (bundled models: {names}; or give a path to an .onnx file)")


@functools.lru_cache(maxsize=8)
def _cached_session(path: Path, threads: int | None, device: str) -> ModelSession:
    """device: "cpu" or "cuda", as resolve_device gives it, so that auto and what it resolves to share a session."""
    card = _read_card(path)
    try:
        return ModelSession(path, card, threads=threads, device=device)
    except Exception as exc:  # ONNX Runtime raises its own types for files that are not models
        raise ModelNotFound(f"{path}: not a loadable ONNX model ({str(exc).splitlines()[0]})") from None


def load_model(name_or_path: str | os.PathLike, *, threads: int | None = None, device: str = "auto") -> ModelSession:
    """A session for a bundled model name ("default", "seed-ae") or a path to an .onnx file.

    The card is NAME.json next to the file when present. Sessions are cached per process, so
    calling this for every image costs nothing after the first time. threads: ONNX Runtime intra-op
    threads (default: all CPUs of this process). device: "auto" (CUDA when onnxruntime-gpu can use a
    GPU, else the CPU), "cpu" or "cuda" (the CPU, with one ColoritWarning, when CUDA is not to be had);
    the session's .device says which it got.
    """
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    path = resolve_model_path(name_or_path)
    resolved, note = resolve_device(device)
    if note:
        warnings.warn(note, ColoritWarning, 2)
    return _cached_session(path, threads, resolved)


def bundled_models() -> list[tuple[Path, dict]]:
    """(path of the .onnx file, card) of each bundled model, sorted by file name."""
    return [(path, _read_card(path)) for path in sorted(MODELS_DIR.glob("*.onnx"))]


def list_models() -> list[dict]:
    """The cards of the bundled models, sorted by file name."""
    return [card for _, card in bundled_models()]
