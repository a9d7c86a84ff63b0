"""The MOT task: one appearance model (the converted backbone, on any backend) serving UniTrack's
MOT head, scored with motmetrics, for the dense ANN, the QANN and every SNN mode side by side.

All networks see the same frames in one process (:class:`evals.stream.Lockstep`); each feeds its
own tracker with the same detections, so differences in tracking come from the features alone.
Detections are the ground-truth boxes of visible objects by default (ViStream's configs do
this), optionally jittered by ``det_noise`` (a fraction of the box size), the sequence's
``det/det.txt`` with ``detections="det"``, or OpenCV's HOG people detector with
``detections="hog"``.  A plain video (a file, or a folder of frames without ``seqinfo.ini``) has no
annotations: it is tracked on HOG detections, and with no ground truth to score against, the report
gives per network the tracks found and whether they equal the QANN's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from evals.detector import HogPeopleDetector
from evals.mot_data import (
    MotDataError,
    MotSequence,
    read_mot_dataset,
    synthetic_mot_dataset,
    write_mot_results,
)
from evals.mot_metrics import Matching, accumulate, scored_ground_truth, summarise
from evals.mot_tracker import JDETracker, embed, embed_masks
from evals.mots_data import (
    IGNORE,
    IGNORE_KEY,
    PEDESTRIAN,
    MotsRow,
    bounding_box,
    mots_accumulate,
    mots_summarise,
    read_mots_dataset,
    write_mots_txt,
)
from evals.stream import StreamConfig
from evals.tasks import Column, Task, same_records
from vistream_neuro.video import IMAGE_SUFFIXES, frame_rate, read_video


def load_sequences(config: StreamConfig) -> list[MotSequence]:
    if config.source == "synthetic":
        sequences = synthetic_mot_dataset(seed=config.seed)
        return [s if config.frames is None else _prefix(s, config.frames) for s in sequences]
    if is_plain_video(config.source):
        if config.task == "mots":
            raise MotDataError(f"{config.source}: --task mots needs a MOTS20 folder with instance masks "
                               "(seqinfo.ini, img1/, gt/gt.txt)")
        frames = read_video(config.source, config.start, config.frames, config.crop)
        return [MotSequence(config.source.stem, frames, frame_rate(config.source), np.zeros((0, 9)))]
    read = read_mots_dataset if config.task == "mots" else read_mot_dataset
    return read(config.source, start=config.start, max_frames=config.frames)


def is_plain_video(source: Path) -> bool:
    """A video file, or a folder of frames that is no MOTChallenge sequence or dataset."""
    if source.is_file():
        return True
    return (source.is_dir() and not (source / "seqinfo.ini").is_file()
            and any(p.suffix.lower() in IMAGE_SUFFIXES for p in source.iterdir()))


def detection_source(config: StreamConfig) -> str:
    """``config.detections``, or its default: ground truth, or HOG for a plain video."""
    if config.detections is not None:
        return config.detections
    plain = config.source != "synthetic" and is_plain_video(config.source)
    return "hog" if plain else "gt"


def _prefix(seq: MotSequence, frames: int) -> MotSequence:
    def keep(rows):
        return None if rows is None else rows[rows[:, 0] <= frames]

    masks = None if seq.masks is None else {k: m for k, m in seq.masks.items() if k[0] <= frames}
    return MotSequence(seq.name, seq.frames[:frames], seq.frame_rate, keep(seq.gt), keep(seq.det),
                       masks, seq.path)


def detections(seq: MotSequence, source: str, noise: float, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per frame: boxes ``(N, 4)`` as ``x, y, w, h`` and scores ``(N,)``."""
    rng = np.random.default_rng(seed)
    if source == "hog":
        rows = HogPeopleDetector().detect_video(seq.frames, desc=f"{seq.name} HOG")
    elif source == "det":
        if seq.det is None:
            raise MotDataError(f"{seq.path or seq.name}: no det/det.txt for --detections det")
        rows = seq.det
    else:
        if len(seq.gt) == 0:
            raise MotDataError(f"{seq.path or seq.name}: no ground truth to take boxes from; use "
                               "--detections det (det/det.txt) or --detections hog")
        gt = scored_ground_truth(seq.gt)
        visible = gt[:, 8] != 0 if gt.shape[1] > 8 else np.ones(len(gt), dtype=bool)
        rows = np.column_stack([gt[visible, :6], np.ones(visible.sum())])
        if noise > 0:
            size = np.repeat(rows[:, 4:6], 2, axis=1)
            rows[:, 2:6] += noise * size * rng.standard_normal((len(rows), 4))
            rows[:, 4:6] = np.maximum(rows[:, 4:6], 1.0)
    return [(rows[rows[:, 0] == t, 2:6], rows[rows[:, 0] == t, 6]) for t in range(1, len(seq.frames) + 1)]


class BoxHead:
    """MOT: boxes in, boxes out, scored by box IoU."""

    def __init__(self, seq: MotSequence, dets: list[tuple[np.ndarray, np.ndarray]]) -> None:
        self.seq, self.frame_size, self.detections = seq, tuple(seq.frames.shape[-2:]), dets
        self.tracker = JDETracker()
        self._rows: list[np.ndarray] = []

    def embed(self, features: torch.Tensor, t: int) -> np.ndarray:
        return embed(features, self.detections[t][0], self.frame_size)

    def step(self, t: int, features: torch.Tensor) -> None:
        boxes, scores = self.detections[t]
        self.record(t, self.tracker.step(boxes, scores, self.embed(features, t)))

    def record(self, t: int, tracked: np.ndarray) -> None:
        self._rows.append(np.column_stack([np.full(len(tracked), t + 1.0), tracked[:, :5]]))

    def output(self) -> np.ndarray:
        return np.concatenate(self._rows) if self._rows else np.zeros((0, 6))

    def same_as(self, other: BoxHead) -> bool:
        return np.array_equal(self.output(), other.output())

    def track_count(self) -> int:
        return len(np.unique(self.output()[:, 1]))

    def accumulate(self) -> Matching:
        return accumulate(self.seq.gt, self.output())


class MaskHead(BoxHead):
    """MOTS: ground-truth instance masks in (their boxes drive the motion model), mask-pooled
    embeddings, the matched detection's mask out, scored by mask IoU (sMOTSA)."""

    def __init__(self, seq: MotSequence, dets: None = None) -> None:
        self.gt = gt_rows(seq)
        self.masks = [[r.mask for r in self.gt if r.frame == t] for t in range(1, len(seq.frames) + 1)]
        super().__init__(seq, [(np.array([bounding_box(m) for m in masks], dtype=float).reshape(-1, 4),
                                np.ones(len(masks))) for masks in self.masks])

    def embed(self, features: torch.Tensor, t: int) -> np.ndarray:
        return embed_masks(features, self.masks[t])

    def record(self, t: int, tracked: np.ndarray) -> None:
        self._rows += [MotsRow(t + 1, PEDESTRIAN * 1000 + int(r[0]), PEDESTRIAN, self.masks[t][int(r[5])])
                       for r in tracked]

    def output(self) -> list:
        return self._rows

    def same_as(self, other: MaskHead) -> bool:
        return same_records(self.output(), other.output())

    def track_count(self) -> int:
        return len({r.id for r in self._rows})

    def accumulate(self) -> Matching:
        return mots_accumulate(self.gt + ignore_rows(self.seq), self._rows)


def gt_rows(seq: MotSequence) -> list:
    """Pedestrian instance masks with visible pixels, in frame order, as MOTS rows."""
    if not seq.masks:
        raise MotDataError(f"{seq.path or seq.name}: --task mots needs instance masks (MOTS gt.txt)")
    return [MotsRow(f, PEDESTRIAN * 1000 + i, PEDESTRIAN, m) for (f, i), m in sorted(seq.masks.items())
            if i != IGNORE_KEY and m.any()]


def ignore_rows(seq: MotSequence) -> list:
    return [MotsRow(f, IGNORE * 1000, IGNORE, m) for (f, i), m in sorted(seq.masks.items())
            if i == IGNORE_KEY]


def _summarise_with(summarise):
    """Score the sequences that have ground truth; a plain video has none and is left unscored."""
    def run(heads: dict[str, BoxHead], sequences) -> dict:
        scored = {name: head.accumulate() for name, head in heads.items() if len(head.seq.gt)}
        return summarise(scored) if scored else {}
    return run


def _describe(config_detections):
    return lambda seq, heads: {"detections": config_detections,
                               "tracks": {v: h.track_count() for v, h in heads.items()}}


MOT_COLUMNS = (Column("MOTA", "mota"), Column("IDF1", "idf1"), Column("HOTA", "hota"),
               Column("switches", "num_switches", ".0f"), Column("MOTP", "motp"))


def mot_task(config: StreamConfig) -> Task:
    source = detection_source(config)
    return Task("mot", load_sequences, BoxHead, _summarise_with(summarise), _write_mot, MOT_COLUMNS,
                prepare=lambda seq, c: detections(seq, source, c.det_noise, c.seed),
                describe=_describe(source))


def mots_task(config: StreamConfig) -> Task:
    return Task("mots", load_sequences, MaskHead, _summarise_with(mots_summarise), _write_mots,
                (Column("sMOTSA", "smotsa"), *MOT_COLUMNS), describe=_describe("gt masks"))


def _write_mot(folder: Path, name: str, rows: np.ndarray) -> None:
    write_mot_results(folder / f"{name}.txt", rows)


def _write_mots(folder: Path, name: str, rows: list) -> None:
    write_mots_txt(folder / f"{name}.txt", rows)
