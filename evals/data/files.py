"""Writing output files and folders so that nothing partial is ever left looking complete."""

from __future__ import annotations

import csv
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np


def write_atomic(path: Path, write) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", newline="") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_csv(path: Path, rows: list[dict]) -> None:
    """Rows of equal keys as a CSV file with a header, written atomically."""
    def write(f):
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    write_atomic(path, write)


def plain_number(v: float, decimals: int = 5) -> str:
    """Shortest plain text for a value in annotation files: integers without a point, else up to
    ``decimals`` decimals; NaN as ``NaN``."""
    if not np.isfinite(v):
        return "NaN"
    text = f"{v:.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def replace_folder(target: Path, build: Callable[[Path], None]) -> Path:
    """Build a folder by ``build(tmp)`` in a temporary folder beside ``target``, then swap it in for
    ``target`` (an existing one is replaced); a failed build leaves ``target`` untouched."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    old = target.parent / f".{target.name}.old"
    try:
        build(tmp)
        if target.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


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
