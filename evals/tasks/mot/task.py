"""The MOT task: one appearance model (the converted backbone, on any backend) serving UniTrack's
MOT head, scored with motmetrics, for the dense ANN, the QANN and every SNN run side by side.

All networks see the same frames in one process (:class:`vistream_neuro.runner.Lockstep`); each feeds its
own tracker with the same detections, so differences in tracking come from the features alone.
Detections are the ground-truth boxes of visible objects by default (ViStream's configs do
this), optionally jittered by ``det_noise`` (a fraction of the box size), the sequence's
``det/det.txt`` with ``detections="det"``, or OpenCV's HOG people detector with
``detections="hog"``.  A plain video (a file, or a folder of frames without ``seqinfo.ini``) has no
annotations: it is tracked on HOG detections, and with no ground truth to score against, the report
gives per network the tracks found and whether they equal the QANN's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from evals.harness.config import EvalConfig
from evals.harness.tasks import Column, Task
from evals.tasks.mot.data import (
    MotDataError,
    MotSequence,
    read_mot_dataset,
    synthetic_mot_dataset,
    write_mot_results,
)
from evals.tasks.mot.detector import HogPeopleDetector
from evals.tasks.mot.metrics import Matching, accumulate, scored_ground_truth, summarise
from evals.tasks.mot.tracker import JDETracker, embed
from vistream_neuro.diagnostics import warn
from vistream_neuro.video import IMAGE_SUFFIXES, frame_rate, read_video


@dataclass(frozen=True)
class MotOptions:
    """``detections``: ``gt`` boxes (ViStream's protocol), ``det`` (det.txt) or ``hog`` (OpenCV's
    people detector); None: gt, or hog for a plain video.  ``det_noise``: jitter of ground-truth
    boxes, a fraction of the box size."""

    detections: str | None = None
    det_noise: float = 0.0


def mot_options(config: EvalConfig) -> MotOptions:
    return config.options_for("mot", MotOptions())


def load_sequences(config: EvalConfig, read=read_mot_dataset) -> list[MotSequence]:
    """The synthetic sequences, a plain video, or a MOTChallenge folder read with ``read``."""
    if config.source == "synthetic":
        sequences = synthetic_mot_dataset(seed=config.seed)
        return [s if config.frames is None else prefix(s, config.frames) for s in sequences]
    if is_plain_video(config.source):
        frames = read_video(config.source, config.start, config.frames, config.crop)
        return [MotSequence(config.source.stem, frames, frame_rate(config.source), np.zeros((0, 9)))]
    return read(config.source, start=config.start, max_frames=config.frames)


def is_plain_video(source: Path) -> bool:
    """A video file, or a folder of frames that is no MOTChallenge sequence or dataset."""
    if source.is_file():
        return True
    return (source.is_dir() and not (source / "seqinfo.ini").is_file()
            and any(p.suffix.lower() in IMAGE_SUFFIXES for p in source.iterdir()))


def detection_source(config: EvalConfig) -> str:
    """The task's ``detections``, or its default: ground truth, or HOG for a plain video."""
    if mot_options(config).detections is not None:
        return mot_options(config).detections
    plain = config.source != "synthetic" and is_plain_video(config.source)
    return "hog" if plain else "gt"


def prefix(seq: MotSequence, frames: int) -> MotSequence:
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
    if len(rows) == 0:
        warn(f"{seq.path or seq.name}: no {source} detections in any frame, so nothing is tracked (MOTA 0)")
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


class NetworkBoxHead(BoxHead):
    """MOT on each network's own detections: the persons its head finds on a frame (decoded and
    suppressed by :mod:`evals.tasks.detect.decode`) are the tracker's boxes, embedded from the same output."""

    def __init__(self, seq: MotSequence, decode) -> None:
        super().__init__(seq, [])
        self.decode = decode

    def step(self, t: int, features: torch.Tensor) -> None:
        from evals.tasks.detect.metrics import PERSON

        dets = self.decode(features, self.frame_size).of_class(PERSON)
        boxes = np.column_stack([dets.boxes[:, :2], dets.boxes[:, 2:] - dets.boxes[:, :2]]).reshape(-1, 4)
        self.record(t, self.tracker.step(boxes, dets.scores, embed(features, boxes, self.frame_size)))


def summarise_with(summarise):
    """Score the sequences that have ground truth; a plain video has none and is left unscored."""
    def run(heads: dict[str, BoxHead], sequences) -> dict:
        scored = {name: head.accumulate() for name, head in heads.items() if len(head.seq.gt)}
        return summarise(scored) if scored else {}
    return run


def describe(config_detections):
    return lambda seq, heads: {"detections": config_detections,
                               "tracks": {v: h.track_count() for v, h in heads.items()}}


MOT_COLUMNS = (Column("MOTA", "mota"), Column("IDF1", "idf1"), Column("HOTA", "hota"),
               Column("switches", "num_switches", ".0f"), Column("MOTP", "motp"))


def mot_task(config: EvalConfig) -> Task:
    source = detection_source(config)
    if source == "network":
        from evals.tasks.detect.task import decoder

        decode = decoder(config)
        return Task("mot", load_sequences, NetworkBoxHead, summarise_with(summarise), _write_mot, MOT_COLUMNS,
                    prepare=lambda seq, c: decode, describe=describe(source))
    return Task("mot", load_sequences, BoxHead, summarise_with(summarise), _write_mot, MOT_COLUMNS,
                prepare=lambda seq, c: detections(seq, source, mot_options(c).det_noise, c.seed),
                describe=describe(source))


def _write_mot(folder: Path, name: str, rows: np.ndarray) -> None:
    write_mot_results(folder / f"{name}.txt", rows)
