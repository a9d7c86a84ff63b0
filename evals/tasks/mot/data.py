"""Multi-object tracking data: a synthetic MOT generator and MOTChallenge folder IO.

The synthetic sequences give the MOT (and later MOTS) tasks ground truth with the hard parts of real
data (objects entering and leaving, occlusion, noise) without downloading MOT17.  The reader takes
real MOTChallenge folders (``seqinfo.ini``, ``img1/``, ``gt/gt.txt``, ``det/det.txt``), so results on
synthetic and public data come from one code path.  Boxes are ``x, y, w, h`` in pixels, kept as the
files have them; the generator uses the pixel grid, a box ``x..x+w`` covering columns ``x..x+w-1``.
"""

from __future__ import annotations

import colorsys
from pathlib import Path

import numpy as np

from evals.data.files import plain_number
from evals.data.synthetic import texture
from evals.tasks.mot.layout import (
    MotDataError,
    MotSequence,
    frame_count,
    read_frames,
    read_seqinfo,
    sequence_folders,
    write_sequence,
)
from vistream_neuro.atomic import write_atomic

GT_COLUMNS = ("frame", "id", "x", "y", "w", "h", "conf", "class", "visibility")
DET_COLUMNS = ("frame", "id", "x", "y", "w", "h", "conf")


def boxes_at(rows: np.ndarray, frame: int) -> np.ndarray:
    """The rows (gt or det) of one 1-based frame."""
    return rows[rows[:, 0] == frame]


def _sprite(rng: np.random.Generator, oh: int, ow: int, colour: tuple[float, float, float]):
    """A pedestrian-like blob: an ellipse or a rounded rectangle with its own texture and colour."""
    power = 2.0 if rng.random() < 0.5 else 4.0
    yy, xx = np.mgrid[:oh, :ow] + 0.5
    mask = np.abs(2 * yy / oh - 1) ** power + np.abs(2 * xx / ow - 1) ** power <= 1.0
    skin = 0.45 * texture(rng, oh, ow, octaves=2) + 0.55 * np.asarray(colour)[:, None, None]
    return skin, mask


def _trajectory(rng: np.random.Generator, role: int, frames: int, width: int, ow: int) -> np.ndarray:
    """x positions for frames 0..T-1: a border-to-border walk with near-constant speed.

    Role 0 leaves at 30-85 % of the sequence, role 1 enters at 10-60 %, role 2 is anywhere, so a
    sequence of a few dozen frames with >= 2 objects has both events.  The random acceleration is
    pinned at the planned entry or exit time so the events survive it.
    """
    speed = rng.uniform(0.012, 0.025) * width
    span = (width + ow) / speed  # frames from fully outside one border to fully outside the other
    if role == 0:
        anchor = rng.uniform(0.3, 0.85) * frames
        t_in = anchor - span
    elif role == 1:
        t_in = anchor = rng.uniform(0.1, 0.6) * frames
    else:
        t_in = rng.uniform(0.3, 0.7) * frames - span / 2
        anchor = t_in
    start = int(np.floor(min(anchor, 0.0)))
    t = np.arange(start, frames)
    wobble = np.cumsum(np.cumsum(rng.normal(0.0, 0.0002 * width, size=t.size)))
    wobble -= np.interp(anchor, t, wobble)
    x = -ow + speed * (t - t_in) + wobble
    if rng.random() < 0.5:  # walk right to left instead
        x = width - ow - x
    return x[-frames:]


def synthetic_mot(
    name: str = "synth-01", frames: int = 40, height: int = 120, width: int = 160, objects: int = 6,
    seed: int = 0, noise: float = 0.01,
) -> MotSequence:
    """A seeded pedestrian-like MOT sequence with gt, detections and instance masks.

    The object whose feet are lower in the image is nearer and drawn in front; gt rows exist while
    any object pixel is inside the image, with the full (possibly cut) box and the visible fraction.
    """
    if frames < 2 or height < 16 or width < 16 or objects < 1:
        raise ValueError(f"synthetic MOT needs frames >= 2, size >= 16x16 and objects >= 1, got "
                         f"{frames}, {height}x{width}, {objects}")
    rng = np.random.default_rng(seed)
    background = 0.2 + 0.6 * texture(rng, height, width)
    hues = rng.permutation(objects) / objects
    tracks = []
    for i in range(objects):
        oh = int(round(rng.uniform(0.2, 0.45) * height))
        ow = max(3, int(round(oh * rng.uniform(0.35, 0.55))))
        skin, mask = _sprite(rng, oh, ow, colorsys.hsv_to_rgb(hues[i], 0.8, 0.9))
        x = _trajectory(rng, i % 3, frames, width, ow)
        drift = rng.normal(0.0, 0.2) * np.arange(frames) + np.cumsum(rng.normal(0.0, 0.1, frames))
        y = np.clip(rng.uniform(0.25, 0.5) * height + drift, 0, height - oh)
        tracks.append((skin, mask, np.round(x).astype(int), np.round(y).astype(int)))

    video = np.empty((frames, 3, height, width), dtype=np.float32)
    gt, masks = [], {}
    for t in range(frames):
        frame = background.copy()
        labels = np.zeros((height, width), dtype=np.int32)
        order = sorted(range(objects), key=lambda k: (tracks[k][3][t] + tracks[k][1].shape[0], k))
        for k in order:  # far to near
            skin, mask, xs, ys = tracks[k]
            x, y, (oh, ow) = xs[t], ys[t], mask.shape
            x0, x1, y0, y1 = max(x, 0), min(x + ow, width), max(y, 0), min(y + oh, height)
            if x0 >= x1 or y0 >= y1:
                continue
            part = mask[y0 - y:y1 - y, x0 - x:x1 - x]
            frame[:, y0:y1, x0:x1][:, part] = skin[:, y0 - y:y1 - y, x0 - x:x1 - x][:, part]
            labels[y0:y1, x0:x1][part] = k + 1
        for k, (_, mask, xs, ys) in enumerate(tracks):
            x0, y0, (oh, ow) = xs[t], ys[t], mask.shape
            inside = mask[max(-y0, 0):max(height - y0, 0), max(-x0, 0):max(width - x0, 0)].any()
            if not inside:
                continue
            visible = labels == k + 1
            masks[(t + 1, k + 1)] = visible
            gt.append((t + 1, k + 1, x0, y0, ow, oh, 1, 1, visible.sum() / mask.sum()))
        frame += noise * rng.standard_normal(frame.shape)
        video[t] = np.clip(frame, 0.0, 1.0)
    gt = np.array(gt, dtype=np.float64).reshape(-1, 9)
    return MotSequence(name, video, 25.0, gt, _detections(rng, gt), masks)


def _detections(rng: np.random.Generator, gt: np.ndarray) -> np.ndarray:
    """Detector-like output from gt: objects at least a quarter visible, jittered, with a score."""
    seen = gt[gt[:, 8] >= 0.25]
    boxes = seen[:, 2:6] + rng.normal(0.0, 0.03, (len(seen), 4)) * seen[:, [4, 5, 4, 5]]
    conf = np.clip(0.4 + 0.5 * seen[:, 8] + rng.normal(0.0, 0.05, len(seen)), 0.0, 1.0)
    det = np.column_stack([seen[:, 0], -np.ones(len(seen)), boxes, conf])
    return np.round(det, 2)


def synthetic_mot_dataset(sequences: int = 2, **kwargs) -> list[MotSequence]:
    """``synth-01``, ``synth-02``, ...: one seed per sequence, offset by ``seed`` if given."""
    seed = kwargs.pop("seed", 0)
    return [synthetic_mot(name=f"synth-{i + 1:02d}", seed=seed + i, **kwargs) for i in range(sequences)]


def _write_rows(path: Path, rows: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(",".join(plain_number(v) for v in row) + "\n" for row in rows))


def write_mot_results(path: Path, rows: np.ndarray) -> None:
    """Tracker output rows ``frame, id, x, y, w, h`` in the MOTChallenge result format
    (``frame,id,x,y,w,h,conf,-1,-1,-1``), written atomically."""
    text = "".join(f"{int(r[0])},{int(r[1])},{r[2]:.2f},{r[3]:.2f},{r[4]:.2f},{r[5]:.2f},1,-1,-1,-1\n"
                   for r in rows)
    write_atomic(path, lambda f: f.write(text))


def write_mot(seq: MotSequence, root: Path) -> Path:
    """Write ``root/<name>`` in the MOT17 layout; built in a temporary folder, renamed at the end.

    An existing ``root/<name>`` is replaced.  JPEG frames (quality 95) make this a lossy round trip.
    """
    def annotations(tmp: Path) -> None:
        if len(seq.gt):  # no gt file rather than an empty one, which reads as an error
            _write_rows(tmp / "gt" / "gt.txt", seq.gt.reshape(-1, 9))
        if seq.det is not None:
            det = seq.det.reshape(-1, 7)
            _write_rows(tmp / "det" / "det.txt", np.column_stack(
                [det[:, 0], -np.ones(len(det)), det[:, 2:7], -np.ones((len(det), 3))]))

    return write_sequence(seq, root, annotations)


def _read_rows(file: Path, kind: str, length: int) -> np.ndarray:
    """Rows of a gt (9 columns out) or det (7 columns out) file, checked line by line."""
    text = file.read_text()
    if kind == "gt" and not text.strip():
        raise MotDataError(f"{file}: empty (a gt file must hold at least one row)")
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split(",")
        if not 7 <= len(fields) <= 10:
            raise MotDataError(f"{file}:{number}: {len(fields)} columns, expected 7 to 10")
        try:
            values = [float(v) for v in fields]
        except ValueError:
            raise MotDataError(f"{file}:{number}: non-numeric value in {line.strip()!r}") from None
        if not np.isfinite(values).all():
            raise MotDataError(f"{file}:{number}: non-finite value in {line.strip()!r}")
        frame = values[0]
        if frame < 1 or not frame.is_integer():
            raise MotDataError(f"{file}:{number}: frame {fields[0].strip()} is not a positive integer")
        if frame > length:
            raise MotDataError(f"{file}:{number}: frame {int(frame)} is beyond seqLength {length}")
        if values[4] < 0 or values[5] < 0:
            raise MotDataError(f"{file}:{number}: negative box width or height in {line.strip()!r}")
        if kind == "det":
            rows.append(values[:7])
        elif len(values) == 10:  # MOT15: columns 8-10 are world coordinates, not class/visibility
            rows.append(values[:7] + [1.0, 1.0])
        else:
            rows.append(values[:9] + [1.0] * (9 - len(values)))
    return np.array(rows, dtype=np.float64).reshape(-1, 7 if kind == "det" else 9)


def _window(rows: np.ndarray, start: int, count: int, scale: np.ndarray) -> np.ndarray:
    """Rows of frames start+1..start+count, renumbered from 1, boxes scaled by (sx, sy)."""
    rows = rows[(rows[:, 0] > start) & (rows[:, 0] <= start + count)].copy()
    rows[:, 0] -= start
    rows[:, 2:6] *= np.tile(scale, 2)
    return rows


def read_mot(
    path: Path, max_frames: int | None = None, start: int = 0, size: tuple[int, int] | None = None,
) -> MotSequence:
    """One MOTChallenge sequence folder; frames ``start .. start+max_frames-1`` (0-based), resized.

    ``start`` and ``max_frames`` cut a window whose gt/det frames are renumbered from 1; ``size`` is
    ``(h, w)`` and scales the boxes with the images.  A missing gt or det file gives empty gt / None.
    """
    path = Path(path)
    info = read_seqinfo(path)
    length = info["seqLength"]
    count = frame_count(path, length, start, max_frames)
    video = read_frames(path, info, start, count, size)
    scale = np.ones(2) if size is None else np.array([size[1] / info["imWidth"], size[0] / info["imHeight"]])
    gt_file, det_file = path / "gt" / "gt.txt", path / "det" / "det.txt"
    gt = _read_rows(gt_file, "gt", length) if gt_file.is_file() else np.zeros((0, 9))
    det = _read_rows(det_file, "det", length) if det_file.is_file() else None
    return MotSequence(info["name"], video, info["frameRate"], _window(gt, start, count, scale),
                       None if det is None else _window(det, start, count, scale), None, path)


def read_mot_dataset(root: Path, **kwargs) -> list[MotSequence]:
    """Every sequence folder under ``root`` (MOT17/train style), or ``root`` itself if it is one."""
    return [read_mot(folder, **kwargs) for folder in sequence_folders(root)]
