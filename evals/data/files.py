"""Helpers for writing dataset files: numbers as annotation text, frames as JPEGs, folder names."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np


def plain_number(v: float, decimals: int = 5) -> str:
    """Shortest plain text for a value in annotation files: integers without a point, else up to
    ``decimals`` decimals; NaN as ``NaN``."""
    if not np.isfinite(v):
        return "NaN"
    text = f"{v:.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def write_jpegs(folder: Path, frames: np.ndarray, name: Callable[[int], str]) -> None:
    """``(T, 3, H, W)`` RGB frames in [0, 1] as JPEG files (quality 95) ``folder / name(t)``."""
    folder.mkdir(parents=True, exist_ok=True)
    images = (np.clip(frames, 0.0, 1.0) * 255).round().astype(np.uint8).transpose(0, 2, 3, 1)
    for t, image in enumerate(images):
        file = folder / name(t)
        if not cv2.imwrite(str(file), image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95]):
            raise OSError(f"{file}: OpenCV could not write this image")


def check_folder_name(root: Path, name: str, error: type[Exception]) -> None:
    """A sequence name must be a plain folder name (no separators, not hidden)."""
    if not name or Path(name).name != name or name.startswith("."):
        raise error(f"{root}: sequence name {name!r} is not a plain folder name")
