"""Export the pretrained EfficientNet-Lite0 feature extractor that reference photos are matched with.

Usage: python scripts/export_features.py [OUT_DIR]   (default: colorit/models/features)
Needs the [train] extra (PyTorch and the pretrained weights package); run once, the .onnx is committed.
"""

import sys
from pathlib import Path

from colorit.train.export_features import export_features

ROOT = Path(__file__).resolve().parent.parent

if __name__ == "__main__":
    out_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "colorit" / "models" / "features"
    card = export_features(out_dir, parity_image=ROOT / "colorit" / "samples" / "chelsea.jpg")
    print(
        f"wrote {out_dir / (card['name'] + '.onnx')} (max difference from PyTorch {card['onnx']['max_abs_diff_vs_pytorch']:.1e})"
    )
