"""Single-object tracking data: a synthetic SOT generator and OTB folder IO.

The synthetic sequences give the SOT task ground truth with the hard parts of real data (a target that
moves, grows or shrinks, and distractors that pass near it or partly in front of it) without
downloading OTB.  The reader takes real OTB folders (``img/0001.jpg ...``, ``groundtruth_rect.txt``),
so synthetic and public data share one code path.  Boxes are ``x, y, w, h`` with 0-based pixel
coordinates in memory; OTB files are 1-based (MATLAB), so ``x`` and ``y`` gain 1 on writing and lose
it on reading.  An all-NaN box marks a frame without a visible target; the first frame needs a box.
"""

from __future__ import annotations

import colorsys
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from evals.data.errors import DataError
from evals.data.files import check_folder_name, plain_number, write_jpegs
from evals.data.synthetic import texture
from vistream_neuro.atomic import replace_folder, write_atomic
from vistream_neuro.video import IMAGE_SUFFIXES, VideoError, read_video

GT_FILE = "groundtruth_rect.txt"
SEPARATORS = re.compile(r"[,\s]+")


class SotDataError(DataError):
    """Malformed or incomplete OTB data; the message names the file (and line)."""


@dataclass
class SotSequence:
    """One sequence: frames ``(T, 3, H, W)`` float32 RGB in [0, 1], target boxes ``(T, 4)`` xywh.

    ``visible`` is the target's visible fraction per frame (synthetic data only).
    """

    name: str
    frames: np.ndarray
    boxes: np.ndarray
    frame_rate: float = 25.0
    path: Path | None = None
    visible: np.ndarray | None = None


def _target_path(rng: np.random.Generator, frames: int, height: int, width: int) -> np.ndarray:
    """Integer target boxes: a random-walk velocity that bounces at the borders, size changing
    smoothly by a factor of about 1.3 (up or down) from the first frame to the last."""
    small = rng.uniform(0.16, 0.21) * height
    sizes = (small, small * rng.uniform(1.27, 1.33))[:: 1 if rng.random() < 0.5 else -1]
    ramp = (1 - np.cos(np.pi * np.arange(frames) / (frames - 1))) / 2
    heights = sizes[0] + (sizes[1] - sizes[0]) * ramp
    sides = np.column_stack([np.minimum(heights * rng.uniform(0.7, 1.4), 0.6 * width), heights])
    unit = width / 160
    centre = rng.uniform(0.3, 0.7, 2) * (width, height)
    velocity = rng.normal(0.0, 1.0, 2)
    velocity *= rng.uniform(0.8, 1.6) * unit / np.linalg.norm(velocity)
    boxes = np.empty((frames, 4))
    for t in range(frames):
        limit = np.array([width, height]) - sides[t] / 2
        centre = centre + velocity
        for k in range(2):  # bounce: stop at the border, reverse the velocity
            if centre[k] < sides[t, k] / 2 or centre[k] > limit[k]:
                centre[k] = np.clip(centre[k], sides[t, k] / 2, limit[k])
                velocity[k] = -velocity[k]
        boxes[t, :2], boxes[t, 2:] = np.round(centre - sides[t] / 2), np.round(sides[t])
        velocity = velocity + rng.normal(0.0, 0.15 * unit, 2)
        speed = np.linalg.norm(velocity)
        velocity *= np.clip(speed, 0.5 * unit, 2.5 * unit) / speed
    return boxes


def _distractor(rng: np.random.Generator, boxes: np.ndarray, when: float, in_front: bool):
    """A superellipse of its own colour passing the target at frame ``when``, overlapping a band of
    30-40 % of the target's height (or width) as it goes by; returns the sprite and its boxes."""
    frames = len(boxes)
    side = rng.uniform(0.8, 1.2) * boxes[:, 2:].max(axis=0)
    dw, dh = np.round(side).astype(int)
    yy, xx = np.mgrid[:dh, :dw] + 0.5
    mask = np.abs(2 * yy / dh - 1) ** 4 + np.abs(2 * xx / dw - 1) ** 4 <= 1.0
    axis, sign, side_of = int(rng.integers(2)), rng.choice([-1, 1]), rng.choice([-1, 1])
    band = rng.uniform(0.3, 0.4) if in_front else -rng.uniform(0.05, 0.15)
    speed = rng.uniform(0.08, 0.12) * (boxes[:, 2 + axis].mean() + side[axis])
    out = np.empty((frames, 4))
    along = boxes[:, axis] + boxes[:, 2 + axis] / 2 + (np.arange(frames) - when) * speed * sign
    out[:, axis] = along - side[axis] / 2
    across, extent = boxes[:, 1 - axis], boxes[:, 3 - axis]
    out[:, 1 - axis] = (across + extent * (1 - band) if side_of > 0
                        else across + extent * band - side[1 - axis])
    out[:, 2:] = side
    return mask, np.round(out).astype(int)


def _paste(frame: np.ndarray, skin: np.ndarray, mask: np.ndarray, x: int, y: int) -> np.ndarray:
    """Draw ``skin`` where ``mask`` is set at top-left ``x, y`` (clipped); returns the drawn pixels."""
    (oh, ow), (height, width) = mask.shape, frame.shape[1:]
    drawn = np.zeros((height, width), dtype=bool)
    x0, x1, y0, y1 = max(x, 0), min(x + ow, width), max(y, 0), min(y + oh, height)
    if x0 < x1 and y0 < y1:
        drawn[y0:y1, x0:x1] = mask[y0 - y:y1 - y, x0 - x:x1 - x]
        frame[:, drawn] = skin[:, y0 - y:y1 - y, x0 - x:x1 - x][:, mask[y0 - y:y1 - y, x0 - x:x1 - x]]
    return drawn


def synthetic_sot(
    name: str = "sot-01", frames: int = 60, height: int = 120, width: int = 160, seed: int = 0,
    noise: float = 0.01,
) -> SotSequence:
    """A seeded SOT sequence: a textured, coloured rectangle target whose size changes by about 30 %,
    one distractor partly in front of it (up to ~40 % hidden), maybe a second passing close by."""
    if frames < 2 or height < 32 or width < 32:
        raise ValueError(f"synthetic SOT needs frames >= 2 and size >= 32x32, got {frames}, {height}x{width}")
    rng = np.random.default_rng(seed)
    background = 0.2 + 0.6 * texture(rng, height, width)
    hue = rng.random()
    boxes = _target_path(rng, frames, height, width)
    big = boxes[:, 2:].max(axis=0).astype(int)
    target = (0.5 + 0.5 * texture(rng, big[1], big[0], octaves=3)) * np.asarray(
        colorsys.hsv_to_rgb(hue, 1.0, 1.0))[:, None, None]
    target = np.ascontiguousarray(target.transpose(1, 2, 0), dtype=np.float32)
    others = []
    for k in range(int(rng.integers(1, 3))):
        mask, where = _distractor(rng, boxes, rng.uniform(0.3, 0.6) * frames if k == 0
                                  else rng.uniform(0.65, 0.9) * frames, in_front=k == 0)
        skin = 0.6 * texture(rng, *mask.shape, octaves=3) + 0.4 * np.asarray(
            colorsys.hsv_to_rgb((hue + 0.33 * (k + 1)) % 1, 0.6, 0.7))[:, None, None]
        others.append((skin, mask, where, k == 0))
    video = np.empty((frames, 3, height, width), dtype=np.float32)
    visible = np.empty(frames)
    for t in range(frames):
        frame = background.copy()
        for skin, mask, where, front in others:
            if not front:
                _paste(frame, skin, mask, *where[t, :2])
        x, y, w, h = boxes[t].astype(int)
        skin = cv2.resize(target, (w, h), interpolation=cv2.INTER_AREA).transpose(2, 0, 1)
        seen = _paste(frame, skin, np.ones((h, w), dtype=bool), x, y)
        for skin, mask, where, front in others:
            if front:
                seen &= ~_paste(frame, skin, mask, *where[t, :2])
        visible[t] = seen.sum() / (w * h)
        frame += noise * rng.standard_normal(frame.shape)
        video[t] = np.clip(frame, 0.0, 1.0)
    return SotSequence(name, video, boxes, visible=visible)


def synthetic_sot_dataset(sequences: int = 2, seed: int = 0, **kwargs) -> list[SotSequence]:
    """``sot-01``, ``sot-02``, ...: sequence ``i`` (from 0) uses seed ``seed + i``."""
    return [synthetic_sot(name=f"sot-{i + 1:02d}", seed=seed + i, **kwargs) for i in range(sequences)]


def _otb_lines(boxes: np.ndarray) -> str:
    """OTB text of ``(N, 4)`` 0-based xywh boxes: 1-based, one comma-separated line per frame."""
    return "".join(",".join(plain_number(v, 4) for v in box + (1, 1, 0, 0)) + "\n" for box in boxes)


def write_otb_results(path: Path, boxes: np.ndarray) -> None:
    """Tracker output ``(N, 4)`` xywh in the OTB result format (one 1-based line per frame), atomically."""
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise SotDataError(f"{path}: tracker boxes must be (N, 4) x, y, w, h, got shape {boxes.shape}")
    text = _otb_lines(boxes)
    write_atomic(path, lambda f: f.write(text))


def write_otb(seq: SotSequence, root: Path) -> Path:
    """Write ``root/<name>`` in the OTB layout; built in a temporary folder, renamed at the end.

    An existing ``root/<name>`` is replaced.  JPEG frames (quality 95) make this a lossy round trip.
    """
    root = Path(root)
    check_folder_name(root, seq.name, SotDataError)
    if seq.frames.ndim != 4 or seq.frames.shape[1] != 3 or np.shape(seq.boxes) != (len(seq.frames), 4):
        raise SotDataError(f"{root / seq.name}: need frames (T, 3, H, W) and boxes (T, 4), got "
                           f"{seq.frames.shape} and {np.shape(seq.boxes)}")

    def build(tmp: Path) -> None:
        write_jpegs(tmp / "img", seq.frames, lambda t: f"{t + 1:04d}.jpg")
        (tmp / GT_FILE).write_text(_otb_lines(np.asarray(seq.boxes, dtype=np.float64)))

    return replace_folder(root / seq.name, build)


def _read_boxes(file: Path) -> tuple[np.ndarray, list[int]]:
    """0-based ``(N, 4)`` boxes of an OTB box file and the line number of each; blank lines skipped."""
    if not file.is_file():
        raise SotDataError(f"{file}: missing (not an OTB sequence folder)")
    boxes, numbers = [], []
    for number, line in enumerate(file.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = SEPARATORS.split(line.strip())
        try:
            values = [float(v) for v in fields]
        except ValueError:
            values = []
        if len(values) != 4 or not (np.isfinite(values).all() or np.isnan(values).all()):
            raise SotDataError(f"{file}:{number}: expected 4 numbers x,y,w,h (commas, tabs or spaces), "
                               f"got {line.strip()!r}")
        if not (values[2] > 0 and values[3] > 0) and not np.isnan(values).all():
            raise SotDataError(f"{file}:{number}: box width and height must be positive, "
                               f"got {line.strip()!r}")
        boxes.append(values)
        numbers.append(number)
    return np.array(boxes, dtype=np.float64).reshape(-1, 4) - (1, 1, 0, 0), numbers


def read_otb(path: Path, start: int = 0, max_frames: int | None = None) -> SotSequence:
    """One OTB sequence folder; frames ``start .. start+max_frames-1`` (0-based) and their boxes.

    The window's first box initialises a tracker, so it must be there (not NaN).
    """
    path = Path(path)
    file, image_dir = path / GT_FILE, path / "img"
    boxes, numbers = _read_boxes(file)
    if len(boxes) == 0:
        raise SotDataError(f"{file}: empty, but the first frame's box (the tracker's initialisation) "
                           f"must be there")
    if not image_dir.is_dir():
        raise SotDataError(f"{image_dir}: image folder missing (an OTB sequence keeps its frames in img/)")
    images = sum(1 for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if images == 0:
        raise SotDataError(f"{image_dir}: no image frames ({', '.join(sorted(IMAGE_SUFFIXES))})")
    if len(boxes) != images:
        raise SotDataError(f"{file}: {len(boxes)} boxes, but {image_dir} holds {images} images")
    if start < 0 or start >= images or (max_frames is not None and max_frames < 1):
        raise SotDataError(f"{path}: start={start}, max_frames={max_frames} selects no frame of "
                           f"a {images}-frame sequence")
    count = images - start if max_frames is None else min(max_frames, images - start)
    if np.isnan(boxes[start]).any():
        raise SotDataError(f"{file}:{numbers[start]}: no box for frame {start + 1}, which initialises "
                           f"the tracker")
    try:
        frames = read_video(image_dir, start, count)
    except VideoError as exc:
        raise SotDataError(str(exc)) from None
    return SotSequence(path.name, frames, boxes[start:start + count], path=path)


def read_otb_dataset(root: Path, **kwargs) -> list[SotSequence]:
    """``root`` itself if it holds ``groundtruth_rect.txt``, else its sorted subfolders that do."""
    root = Path(root)
    if not root.is_dir():
        raise SotDataError(f"{root}: no such dataset folder")
    if (root / GT_FILE).is_file():
        return [read_otb(root, **kwargs)]
    folders = sorted(p for p in root.iterdir()
                     if p.is_dir() and not p.name.startswith(".") and (p / GT_FILE).is_file())
    if not folders:
        raise SotDataError(f"{root}: no OTB sequence folders (subfolders with a {GT_FILE})")
    return [read_otb(folder, **kwargs) for folder in folders]
