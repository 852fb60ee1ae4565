"""The limits that keep one input or one request from taking the whole machine, in one place so that
the command line, the Python API and the server agree (README, "Limits")."""

from __future__ import annotations

# Pixels an input may have, checked from its header before any decoding (--max-pixels / max_pixels).
DEFAULT_MAX_PIXELS = 200_000_000
# Longest side of the network's working image: past this the network's memory and time grow with
# no gain in quality (24 MP at 100000 px took 8.8 GB), and the model was trained at 224 px.
MAX_RENDER_SIZE = 2048
# Chroma scale: beyond this every colour is clipped to the gamut's edge, and huge values overflow.
MAX_SATURATION = 4.0
# Hints per image, and the size of a hints JSON document, checked before it is parsed.
MAX_HINTS = 256
MAX_HINTS_JSON_BYTES = 256 * 1024
# Parallel processes or server workers per CPU: each holds a model session and an image, and more
# than this only adds memory (32 workers on 2 CPUs: 5.2 GB, and slower than 2).
WORKERS_PER_CPU = 2
