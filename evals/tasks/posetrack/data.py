"""PoseTrack 2018 data: the COCO-style keypoint JSON and image layout, read and written.

The PoseTrack task keeps its ground truth in the public PoseTrack-18 files, so the synthetic walking
people (:func:`evals.tasks.posetrack.figures.synthetic_people`) and the downloaded validation set are
read by one code path.  A dataset root holds ``images/<split>/<seq>/000000.jpg ...`` (0-based) and
``annotations/<split>/<seq>.json`` with ``images``, ``annotations`` (17 joints ``x, y, v`` in the
order of :data:`evals.tasks.posetrack.figures.KEYPOINTS`, ``bbox`` and ``bbox_head`` as
``x, y, w, h``) and ``categories``.
Unlabelled joints are stored as ``0, 0, 0``, as in the public files.  PoseTrack track ids start at 0;
in memory they are MOT ids, ``track_id + 1``.  Tracker output goes to the PoseTrack-18 prediction
JSON (joints ``x, y, score``) that the official evaluation reads.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from evals.data.errors import DataError
from evals.data.files import check_folder_name, write_jpegs
from evals.tasks.mot.data import MotSequence
from evals.tasks.posetrack.figures import KEYPOINTS, LIMBS
from vistream_neuro.atomic import replace_folder, write_atomic

_HEAD = (KEYPOINTS.index("head_top"), KEYPOINTS.index("head_bottom"))
SKELETON = [[KEYPOINTS.index(a) + 1, KEYPOINTS.index(b) + 1] for a, b in LIMBS + (
    ("left_hip", "right_hip"), ("left_shoulder", "left_hip"), ("right_shoulder", "right_hip"),
    ("left_shoulder", "right_shoulder"), ("head_bottom", "head_top"), ("nose", "head_bottom"))]
FRAME_RATE = 25.0  # the JSON does not say; PoseTrack's clips are roughly this


class PoseDataError(DataError):
    """Malformed or incomplete PoseTrack data; the message names the file."""


@dataclass
class PoseSequence(MotSequence):
    """A :class:`MotSequence` with keypoints plus ``head_boxes[(frame, id)]``: ``(4,)`` ``x, y, w, h``.

    The head boxes give PCKh its reference length (:mod:`evals.tasks.posetrack.metrics`).
    """

    head_boxes: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)


def head_box(keypoints: np.ndarray) -> np.ndarray:
    """A square around head_top..head_bottom, side their distance, centred between them."""
    top, bottom = keypoints[_HEAD[0], :2], keypoints[_HEAD[1], :2]
    side = float(np.hypot(*(top - bottom)))
    centre = (top + bottom) / 2
    return np.array([centre[0] - side / 2, centre[1] - side / 2, side, side])


def _images(name: str, split: str, count: int) -> list[dict]:
    """``images`` entries with PoseTrack ids: 1, the video number (leading digits of the name), frame."""
    video = int(re.match(r"\d*", name).group() or 0)
    return [{"id": 10_000_000_000 + video * 10_000 + i, "frame_id": 10_000_000_000 + video * 10_000 + i,
             "file_name": f"images/{split}/{name}/{i:06d}.jpg", "vid_id": name, "nframes": count,
             "is_labeled": True} for i in range(count)]


def _categories() -> list[dict]:
    return [{"id": 1, "name": "person", "supercategory": "person", "keypoints": list(KEYPOINTS),
             "skeleton": SKELETON}]


def _dump(document: dict):
    return lambda f: json.dump(document, f)


def write_posetrack(seq: MotSequence, root: Path, split: str = "val") -> Path:
    """Write ``seq`` as PoseTrack-18 under ``root``; returns the annotation JSON path.

    The image folder is built in a temporary folder and renamed (replacing an old one), then the JSON
    is written atomically.  Head boxes are ``seq.head_boxes`` where present, else :func:`head_box`.
    """
    root = Path(root)
    folder = root / "images" / split / seq.name
    check_folder_name(root, seq.name, PoseDataError)
    if seq.keypoints is None:
        raise PoseDataError(f"{folder}: the sequence has no keypoints to write")
    replace_folder(folder, lambda tmp: write_jpegs(tmp, seq.frames, lambda t: f"{t:06d}.jpg"))
    entries = _images(seq.name, split, len(seq.frames))
    heads = getattr(seq, "head_boxes", {})
    annotations, in_frame = [], {}
    for row in seq.gt:
        frame, track = int(row[0]), int(row[1])
        if (frame, track) not in seq.keypoints:
            raise PoseDataError(f"{folder}: gt row of frame {frame}, id {track} has no keypoints")
        points = np.array(seq.keypoints[(frame, track)], dtype=float)
        points[points[:, 2] <= 0] = 0.0
        image_id = entries[frame - 1]["id"]
        in_frame[frame] = in_frame.get(frame, -1) + 1
        box = heads[(frame, track)] if (frame, track) in heads else head_box(seq.keypoints[(frame, track)])
        annotations.append({"id": image_id * 100 + in_frame[frame], "image_id": image_id,
                            "track_id": track - 1, "category_id": 1, "keypoints": points.ravel().tolist(),
                            "bbox": [float(v) for v in row[2:6]], "bbox_head": [float(v) for v in box]})
    path = root / "annotations" / split / f"{seq.name}.json"
    write_atomic(path, _dump({"images": entries, "annotations": annotations, "categories": _categories()}))
    return path


def write_posetrack_results(path: Path, seq_name: str, frame_count: int,
                            people: list[tuple[int, int, np.ndarray]], split: str = "val") -> None:
    """Tracker output ``(frame 1-based, track_id, (17, 3) x, y, score)`` as PoseTrack-18 prediction JSON.

    Each joint is ``x, y, score`` in ``keypoints`` and again in ``scores``; written atomically.
    """
    entries = _images(seq_name, split, frame_count)
    annotations = []
    for n, (frame, track, pose) in enumerate(people):
        pose = np.asarray(pose, dtype=float)
        if pose.shape != (len(KEYPOINTS), 3) or not 1 <= frame <= frame_count:
            raise ValueError(f"{path}: person {n} has frame {frame} (expected 1..{frame_count}) and pose "
                             f"shape {pose.shape} (expected (17, 3))")
        annotations.append({"id": n, "image_id": entries[frame - 1]["id"], "track_id": int(track),
                            "category_id": 1, "keypoints": pose.ravel().tolist(),
                            "scores": pose[:, 2].tolist()})
    write_atomic(path, _dump({"images": entries, "annotations": annotations, "categories": _categories()}))


def _load(path: Path) -> dict:
    """The JSON document, checked for the fields the reader uses."""
    if not path.is_file():
        raise PoseDataError(f"{path}: no such annotation file")
    try:
        document = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PoseDataError(f"{path}: not a JSON file ({str(exc).splitlines()[0]})") from None
    for key in ("images", "annotations"):
        if not isinstance(document, dict) or not isinstance(document.get(key), list):
            raise PoseDataError(f"{path}: keypoint JSON without the expected fields (no '{key}' list)")
    for kind, keys in (("images", ("id", "file_name")),
                       ("annotations", ("keypoints", "track_id", "image_id"))):
        for n, entry in enumerate(document[kind]):
            missing = [key for key in keys if not isinstance(entry, dict) or key not in entry]
            if missing:
                raise PoseDataError(f"{path}: keypoint JSON without the expected fields ({kind}[{n}] has "
                                    f"no '{missing[0]}')")
    if not document["images"]:
        raise PoseDataError(f"{path}: no images listed")
    return document


def _values(path: Path, n: int, key: str, values, length: int) -> np.ndarray:
    """Field ``key`` of annotation ``n`` as ``length`` finite floats, or an error naming both."""
    try:
        out = np.array(values, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise PoseDataError(f"{path}: annotation {n} has a non-numeric '{key}'") from None
    if out.size != length or not np.isfinite(out).all():
        raise PoseDataError(f"{path}: annotation {n} has {out.size} '{key}' values, expected {length} finite "
                            f"ones ({'17 x, y, v' if length == 51 else 'x, y, w, h'})")
    return out


def read_posetrack(json_path: Path, start: int = 0, max_frames: int | None = None) -> PoseSequence:
    """One PoseTrack-18 sequence: frames ``start .. start+max_frames-1`` (0-based) of its ``images``.

    gt rows come from ``bbox`` (visibility column 1), or the labelled joints' extent where a person has
    no ``bbox``; frames are renumbered from 1 in the window.  The root is three levels above the JSON.
    """
    path = Path(json_path)
    document = _load(path)
    images = sorted(document["images"], key=lambda e: (e.get("frame_id", e["id"]), e["id"]))
    length = len(images)
    if start < 0 or start >= length or (max_frames is not None and max_frames < 1):
        raise PoseDataError(f"{path}: start={start}, max_frames={max_frames} selects no frame of a "
                            f"{length}-frame sequence")
    count = length - start if max_frames is None else min(max_frames, length - start)
    frame_of = {entry["id"]: i - start + 1 for i, entry in enumerate(images)}
    gt, keypoints, heads = [], {}, {}
    for n, person in enumerate(document["annotations"]):
        if person["image_id"] not in frame_of:
            raise PoseDataError(f"{path}: annotation {n} refers to unknown image_id {person['image_id']}")
        points = _values(path, n, "keypoints", person["keypoints"], 51).reshape(-1, 3)
        frame, track = frame_of[person["image_id"]], int(person["track_id"]) + 1
        labelled = points[points[:, 2] > 0, :2]
        if "bbox" in person:
            box = _values(path, n, "bbox", person["bbox"], 4)
        elif len(labelled):
            box = np.concatenate([labelled.min(0), labelled.max(0) - labelled.min(0)])
        else:
            continue
        if not 1 <= frame <= count:
            continue
        if (frame, track) in keypoints:
            raise PoseDataError(f"{path}: annotation {n} repeats track_id {track - 1} in image_id "
                                f"{person['image_id']}")
        if "bbox_head" in person:
            heads[(frame, track)] = _values(path, n, "bbox_head", person["bbox_head"], 4)
        keypoints[(frame, track)] = points
        gt.append((frame, track, *box, 1, 1, 1))
    frames = []
    for entry in images[start:start + count]:
        file = path.parents[2] / entry["file_name"]
        image = cv2.imread(str(file), cv2.IMREAD_COLOR) if file.is_file() else None
        if image is None:
            raise PoseDataError(f"{file}: image file missing or unreadable (listed in {path.name})")
        if frames and image.shape[:2] != frames[0].shape[1:]:
            raise PoseDataError(f"{file}: image is {image.shape[1]}x{image.shape[0]} (WxH), the sequence's "
                                f"first is {frames[0].shape[2]}x{frames[0].shape[1]}")
        frames.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB).transpose(2, 0, 1))
    gt = np.array(sorted(gt), dtype=np.float64).reshape(-1, 9)
    return PoseSequence(path.stem, np.stack(frames).astype(np.float32) / 255.0, FRAME_RATE, gt,
                        path=path, keypoints=keypoints, head_boxes=heads)


def read_posetrack_dataset(root: Path, split: str = "val", **kwargs) -> list[PoseSequence]:
    """Every ``root/annotations/<split>/*.json`` sequence, sorted by name."""
    folder = Path(root) / "annotations" / split
    if not folder.is_dir():
        raise PoseDataError(f"{folder}: no such annotation folder (expected a PoseTrack-18 root)")
    files = sorted(folder.glob("*.json"))
    if not files:
        raise PoseDataError(f"{folder}: no .json annotation files")
    return [read_posetrack(file, **kwargs) for file in files]
