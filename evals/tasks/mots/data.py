"""Multi-object tracking and segmentation (MOTS): MOTS20 / KITTI-MOTS txt IO and sMOTSA by motmetrics.

A MOTS txt file has one line per object per frame, ``frame id class_id img_height img_width rle``, the
last field a COCO compressed RLE counts string; ``id = class_id * 1000 + instance``, class 2 is a
pedestrian and class 10 (id 10000) an ignore region.  Masks of one frame never overlap.  RLE coding,
areas, unions and IoUs are pycocotools'.  Sequence folders are MOTS20's: ``seqinfo.ini``, ``img1/``
and ``gt/gt.txt`` in the MOTS format, read with the MOT reader's code (:mod:`evals.tasks.mot.layout`).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import motmetrics as mm
import numpy as np
import pycocotools.mask as rletools

from evals.tasks.mot import layout
from evals.tasks.mot.layout import MotDataError, MotSequence
from evals.tasks.mot.metrics import FrameMatch, Matching, summarise
from vistream_neuro.atomic import write_atomic

PEDESTRIAN = 2
IGNORE = 10
IGNORE_KEY = -1  # masks[(frame, IGNORE_KEY)]: the union of a frame's ignore regions
IOU_THRESHOLD = 0.5  # a match needs mask IoU > 0.5 (then it is unique, masks never overlap)
IGNORE_OVERLAP = 0.5  # hypotheses more than this fraction inside an ignore region are dropped


class MotsRow(NamedTuple):
    """One object in one frame: ``mask`` is a bool ``(H, W)`` array."""

    frame: int
    id: int
    class_id: int
    mask: np.ndarray


def _rle(mask: np.ndarray) -> dict:
    return rletools.encode(np.asfortranarray(np.asarray(mask, dtype=np.uint8)))


def encode_mask(mask: np.ndarray) -> str:
    """The COCO compressed RLE counts string of a 2-D mask."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"a mask must be 2-D, got shape {mask.shape}")
    return _rle(mask != 0)["counts"].decode("ascii")


def decode_mask(rle: str, height: int, width: int) -> np.ndarray:
    """A bool ``(height, width)`` mask; ValueError unless ``rle`` is a valid string for that size.

    pycocotools leaves pixels past a too-short RLE undefined, so the decoded mask must encode back to
    the same string (pycocotools' own output, as in MOTS files, always does).
    """
    counts = rle.encode("ascii") if isinstance(rle, str) else bytes(rle)
    try:
        mask = rletools.decode({"size": [int(height), int(width)], "counts": counts})
    except (ValueError, TypeError) as exc:
        raise ValueError(f"RLE {rle!r} does not decode to {height}x{width} ({exc})") from None
    if _rle(mask)["counts"] != counts:
        raise ValueError(f"RLE {rle!r} does not decode to {height}x{width} (wrong length)")
    return mask.astype(bool)


def write_mots_txt(path: Path, rows: list[MotsRow]) -> None:
    """Write ``rows`` (sorted by frame, then id) atomically: a temporary file renamed over ``path``."""
    text = "".join(f"{r.frame} {r.id} {r.class_id} {r.mask.shape[0]} {r.mask.shape[1]} "
                   f"{encode_mask(r.mask)}\n" for r in sorted(rows, key=lambda r: (r.frame, r.id)))
    write_atomic(path, lambda f: f.write(text))


def read_mots_txt(path: Path, height: int | None = None, width: int | None = None, *,
                  length: int | None = None) -> list[MotsRow]:
    """The rows of a MOTS txt file, checked line by line; errors name the file and line.

    Without ``height``/``width`` the first line's image size is expected on every line; ``length``
    (a sequence's frame count) makes frames outside ``1..length`` an error.
    """
    path = Path(path)
    text = path.read_text()
    if not text.strip():
        raise MotDataError(f"{path}: empty (a MOTS file must hold at least one row)")
    rows, unions = [], {}  # unions: frame -> (RLE of the masks so far, their lines)
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        fields = line.split()
        if len(fields) != 6:
            raise MotDataError(f"{where}: {len(fields)} fields, expected 6 (frame id class_id "
                               f"img_height img_width rle)")
        try:
            frame, ident, class_id, h, w = (int(v) for v in fields[:5])
        except ValueError:
            raise MotDataError(f"{where}: non-integer value in {' '.join(fields[:5])!r}") from None
        if frame < 0 or (length is not None and not 1 <= frame <= length):
            raise MotDataError(f"{where}: frame {frame} is outside 1..{length}" if length is not None
                               else f"{where}: negative frame {frame}")
        if h <= 0 or w <= 0:
            raise MotDataError(f"{where}: image size {h}x{w} (HxW) is not positive")
        height, width = h if height is None else height, w if width is None else width
        if (h, w) != (height, width):
            raise MotDataError(f"{where}: image size {h}x{w} (HxW), expected {height}x{width}")
        try:
            mask = decode_mask(fields[5], h, w)
        except ValueError as exc:
            raise MotDataError(f"{where}: {exc}") from None
        rle = _rle(mask)
        if frame in unions:
            union, lines = unions[frame]
            if rletools.area(rletools.merge([union, rle], intersect=True)) > 0:
                raise MotDataError(f"{where}: mask overlaps another mask of frame {frame} "
                                   f"(lines {', '.join(map(str, lines))})")
            unions[frame] = (rletools.merge([union, rle]), lines + [number])
        else:
            unions[frame] = (rle, [number])
        rows.append(MotsRow(frame, ident, class_id, mask))
    return rows


def bounding_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


def read_mots(path: Path, max_frames: int | None = None, start: int = 0) -> MotSequence:
    """One MOTS20 sequence folder; frames ``start .. start+max_frames-1`` (0-based), renumbered from 1.

    ``masks[(frame, track)]`` holds each pedestrian's mask (track = instance number, id % 1000) and
    ``masks[(frame, -1)]`` the union of the frame's ignore regions; ``gt`` has the pedestrians in the
    MOT layout ``frame, track, x, y, w, h, 1, 1, 1`` with the masks' bounding boxes; ``det`` is None.
    Rows of other classes (e.g. KITTI-MOTS cars) are left out.  A missing gt file gives empty gt.
    """
    path = Path(path)
    info = layout.read_seqinfo(path)
    count = layout.frame_count(path, info["seqLength"], start, max_frames)
    video = layout.read_frames(path, info, start, count)
    gt_file = path / "gt" / "gt.txt"
    rows = read_mots_txt(gt_file, info["imHeight"], info["imWidth"], length=info["seqLength"]) \
        if gt_file.is_file() else []
    gt, masks = [], {}
    for row in sorted(rows, key=lambda r: (r.frame, r.id)):
        frame = row.frame - start
        if not 1 <= frame <= count:
            continue
        if row.class_id == IGNORE:
            key = (frame, IGNORE_KEY)
            masks[key] = masks[key] | row.mask if key in masks else row.mask
        elif row.class_id == PEDESTRIAN and row.mask.any():
            track = row.id % 1000
            masks[(frame, track)] = row.mask
            gt.append((frame, track, *bounding_box(row.mask), 1, 1, 1))
    return MotSequence(info["name"], video, info["frameRate"], np.array(gt, dtype=np.float64).reshape(-1, 9),
                       None, masks, path)


def read_mots_dataset(root: Path, **kwargs) -> list[MotSequence]:
    """Every MOTS20 sequence folder under ``root``, or ``root`` itself if it is one."""
    return [read_mots(folder, **kwargs) for folder in layout.sequence_folders(root)]


def write_mots(seq: MotSequence, root: Path) -> Path:
    """Write ``root/<name>`` in the MOTS20 layout from ``seq.masks`` (pedestrians, id 2000 + track).

    Empty masks (objects fully hidden) are left out, as MOTS files have no empty masks; a key with
    track -1 is written as an ignore region (id 10000).  No det folder is written.
    """
    if seq.masks is None:
        raise MotDataError(f"{Path(root) / seq.name}: the sequence has no masks to write")
    shape = seq.frames.shape[2:]
    rows = []
    for (frame, track), mask in seq.masks.items():
        if mask.shape != shape:
            raise MotDataError(f"{Path(root) / seq.name}: mask ({frame}, {track}) is {mask.shape}, "
                               f"frames are {shape}")
        if mask.any():
            ident = IGNORE * 1000 if track == IGNORE_KEY else PEDESTRIAN * 1000 + int(track)
            rows.append(MotsRow(int(frame), ident, IGNORE if track == IGNORE_KEY else PEDESTRIAN, mask))
    def annotations(tmp: Path) -> None:
        if rows:  # no gt file rather than an empty one, which reads as an error
            write_mots_txt(tmp / "gt" / "gt.txt", rows)

    return layout.write_sequence(seq, root, annotations)


def _by_frame(rows: list[MotsRow], class_id: int) -> dict[int, list[MotsRow]]:
    frames: dict[int, list[MotsRow]] = {}
    for row in rows:
        if row.class_id == class_id:
            frames.setdefault(row.frame, []).append(row)
    return frames


def mots_accumulate(gt_rows: list[MotsRow], hyp_rows: list[MotsRow]) -> Matching:
    """Frame-by-frame mask IoUs between pedestrian hypotheses (class 2) and pedestrian gt.

    Hypotheses more than half inside the frame's ignore regions (gt class 10) are dropped first, as
    mots_tools does; a CLEAR match needs IoU > 0.5.
    """
    gt, hyp = _by_frame(gt_rows, PEDESTRIAN), _by_frame(hyp_rows, PEDESTRIAN)
    ignore = _by_frame(gt_rows, IGNORE)
    frames = []
    for frame in sorted(set(gt) | set(hyp)):
        objects, hypotheses = gt.get(frame, []), hyp.get(frame, [])
        hyp_rles = [_rle(r.mask) for r in hypotheses]
        if frame in ignore and hypotheses:
            region = rletools.merge([_rle(r.mask) for r in ignore[frame]])
            inside = [rletools.area(rletools.merge([region, rle], intersect=True)) for rle in hyp_rles]
            keep = [i for i, rle in enumerate(hyp_rles)
                    if not inside[i] > IGNORE_OVERLAP * rletools.area(rle)]
            hypotheses, hyp_rles = [hypotheses[i] for i in keep], [hyp_rles[i] for i in keep]
        iou = np.zeros((len(objects), len(hypotheses)))
        if objects and hypotheses:
            iou = np.asarray(rletools.iou([_rle(r.mask) for r in objects], hyp_rles, [0] * len(hyp_rles)))
        frames.append(FrameMatch(frame, np.array([r.id for r in objects], dtype=int),
                                 np.array([r.id for r in hypotheses], dtype=int), iou))
    return Matching(frames, strict=True)


def _iou_sum(acc: mm.MOTAccumulator) -> float:
    """Summed IoU of the true positives (MATCH and SWITCH events: both are matched masks)."""
    events = acc.mot_events
    return float((1.0 - events.loc[events.Type.isin(["MATCH", "SWITCH"]), "D"]).sum())


def mots_summarise(matchings: dict[str, Matching]) -> dict[str, dict[str, float]]:
    """:func:`evals.tasks.mot.metrics.summarise`'s metrics plus ``smotsa``, ``motsa`` and ``motsp``.

    TP is motmetrics' ``num_detections`` (matches and switches): sMOTSA = (sum of TP IoUs - FP - IDSW)
    / gt masks, MOTSA = (TP - FP - IDSW) / gt masks, MOTSP = sum of TP IoUs / TP; NaN where undefined.
    """
    iou = {name: _iou_sum(matching.accumulator) for name, matching in matchings.items()}
    iou["OVERALL"] = sum(iou.values())
    out = summarise(matchings, extra=("num_detections",))
    for name, metrics in out.items():
        tp, fp, idsw, n = (metrics[k] for k in ("num_detections", "num_false_positives", "num_switches",
                                                "num_objects"))
        total = iou[name]
        metrics["smotsa"] = (total - fp - idsw) / n if n else float("nan")
        metrics["motsa"] = (tp - fp - idsw) / n if n else float("nan")
        metrics["motsp"] = total / tp if tp else float("nan")
    return out
