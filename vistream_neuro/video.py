"""Video input with OpenCV: any file OpenCV can decode, or a folder of image frames.

Frames come out as float32 RGB in [0, 1], ``(N, 3, H, W)``, after an optional crop and a resize.
Errors name the file and what was expected.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"}


class VideoError(ValueError):
    """Missing, unreadable or too short video, or a crop outside the frame."""


def _past_end(path: Path, start: int, count: int | None, length: int) -> str:
    asked = f"--start {start}" if count is None else f"--start {start} --frames {count}"
    last = start if count is None else start + count - 1
    return f"{path}: {asked} asks for frames up to {last}, but it holds {length} frames"


def _decode_frames(path: Path, start: int, count: int | None):
    """BGR images ``start .. start+count-1``; ``count=None`` reads to the end."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise VideoError(f"{path}: folder holds no image frames ({', '.join(sorted(IMAGE_SUFFIXES))})")
        end = len(files) if count is None else start + count
        if end > len(files) or start >= len(files):
            raise VideoError(_past_end(path, start, count, len(files)))
        for file in files[start:end]:
            image = cv2.imread(str(file), cv2.IMREAD_COLOR)
            if image is None:
                raise VideoError(f"{file}: not a readable image")
            yield image
        return
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise VideoError(f"{path}: not a video OpenCV can read")
        index = 0
        while count is None or index < start + count:
            ok, image = capture.read()
            if not ok:
                if index == 0:
                    raise VideoError(f"{path}: no frame could be decoded (corrupt or not a video)")
                if count is None and index > start:
                    return
                raise VideoError(_past_end(path, start, count, index))
            if index >= start:
                yield image
            index += 1
    finally:
        capture.release()


def read_video(
    path: str | Path,
    start: int = 0,
    frames: int | None = 10,
    crop: tuple[int, int, int, int] | None = None,
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Frames ``start .. start+frames-1`` of ``path`` (to the end for ``frames=None``); ``crop`` is
    ``(x, y, w, h)``, ``size`` HxW.

    A video shorter than asked for is an error, not a silently shorter run.
    """
    path = Path(path)
    if not path.exists():
        raise VideoError(f"{path}: no such video file or frame folder")
    if start < 0 or (frames is not None and frames < 1):
        raise VideoError(f"{path}: need --start >= 0 and --frames >= 1, got {start}, {frames}")
    out = []
    for image in _decode_frames(path, start, frames):
        if crop is not None:
            x, y, w, h = crop
            if x < 0 or y < 0 or w < 1 or h < 1 or x + w > image.shape[1] or y + h > image.shape[0]:
                raise VideoError(f"{path}: --crop {x},{y},{w},{h} lies outside the "
                                 f"{image.shape[1]}x{image.shape[0]} (WxH) frame")
            image = image[y:y + h, x:x + w]
        if size is not None:
            image = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_AREA)
        out.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB).transpose(2, 0, 1))
    video = np.stack(out).astype(np.float32) / 255.0
    return video


def frame_rate(path: str | Path, default: float = 25.0) -> float:
    """Frames per second a video file declares; ``default`` for frame folders and files without one."""
    path = Path(path)
    if path.is_dir():
        return default
    capture = cv2.VideoCapture(str(path))
    try:
        fps = capture.get(cv2.CAP_PROP_FPS) if capture.isOpened() else 0.0
    finally:
        capture.release()
    return float(fps) if fps > 0 else default


def write_video(path: str | Path, frames: np.ndarray, fps: float = 25.0) -> None:
    """Write ``(N, 3, H, W)`` RGB frames in [0, 1] as an MJPG AVI (used for tests and demos)."""
    n, _, h, w = frames.shape
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    if not writer.isOpened():
        raise VideoError(f"{path}: OpenCV cannot write this video")
    try:
        for frame in frames:
            bgr = cv2.cvtColor((np.clip(frame, 0, 1) * 255).round().astype(np.uint8).transpose(1, 2, 0),
                               cv2.COLOR_RGB2BGR)
            writer.write(bgr)
    finally:
        writer.release()
