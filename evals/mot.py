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
import torch.nn.functional as F
from tqdm import tqdm

from evals.detector import HogPeopleDetector
from evals.mot_data import MotDataError, MotSequence, read_mot_dataset, synthetic_mot_dataset
from evals.mot_metrics import accumulate, scored_ground_truth, summarise
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
)
from evals.stream import Lockstep, StreamConfig, StreamResult
from vistream_neuro.pipeline import convert_model, normalise
from vistream_neuro.video import IMAGE_SUFFIXES, frame_rate, read_video

CALIBRATION_FRAMES = 8


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


def network_input(seq: MotSequence, config: StreamConfig, size: tuple[int, int]) -> torch.Tensor:
    frames = torch.from_numpy(seq.frames).double()
    if tuple(frames.shape[-2:]) != size:
        frames = F.interpolate(frames, size=size, mode="area")
    return normalise(frames, config.model)


class BoxHead:
    """MOT: boxes in, boxes out, scored by box IoU."""

    def __init__(self, seq: MotSequence, dets: list[tuple[np.ndarray, np.ndarray]]) -> None:
        self.seq, self.frame_size, self.detections = seq, tuple(seq.frames.shape[-2:]), dets
        self._rows: list[np.ndarray] = []

    def embed(self, features: torch.Tensor, t: int) -> np.ndarray:
        return embed(features, self.detections[t][0], self.frame_size)

    def record(self, t: int, tracked: np.ndarray) -> None:
        self._rows.append(np.column_stack([np.full(len(tracked), t + 1.0), tracked[:, :5]]))

    def tracks(self) -> np.ndarray:
        return np.concatenate(self._rows) if self._rows else np.zeros((0, 6))

    def same_tracks(self, other: BoxHead) -> bool:
        return np.array_equal(self.tracks(), other.tracks())

    def track_count(self) -> int:
        return len(np.unique(self.tracks()[:, 1]))

    def accumulate(self):
        return accumulate(self.seq.gt, self.tracks())

    summarise = staticmethod(summarise)


class MaskHead(BoxHead):
    """MOTS: ground-truth instance masks in (their boxes drive the motion model), mask-pooled
    embeddings, the matched detection's mask out, scored by mask IoU (sMOTSA)."""

    def __init__(self, seq: MotSequence, dets: None = None) -> None:
        self.seq, self.frame_size, self._rows = seq, tuple(seq.frames.shape[-2:]), []
        self.gt = gt_rows(seq)
        self.masks = [[r.mask for r in self.gt if r.frame == t] for t in range(1, len(seq.frames) + 1)]
        self.detections = [(np.array([bounding_box(m) for m in masks], dtype=float).reshape(-1, 4),
                            np.ones(len(masks)))
                           for masks in self.masks]

    def embed(self, features: torch.Tensor, t: int) -> np.ndarray:
        return embed_masks(features, self.masks[t])

    def record(self, t: int, tracked: np.ndarray) -> None:
        self._rows += [MotsRow(t + 1, PEDESTRIAN * 1000 + int(r[0]), PEDESTRIAN, self.masks[t][int(r[5])])
                       for r in tracked]

    def tracks(self) -> list:
        return self._rows

    def same_tracks(self, other: MaskHead) -> bool:
        mine, theirs = self.tracks(), other.tracks()
        return len(mine) == len(theirs) and all(
            a[:3] == b[:3] and np.array_equal(a.mask, b.mask) for a, b in zip(mine, theirs, strict=True))

    def track_count(self) -> int:
        return len({r.id for r in self._rows})

    def accumulate(self):
        return mots_accumulate(self.gt + ignore_rows(self.seq), self._rows)

    summarise = staticmethod(mots_summarise)


def gt_rows(seq: MotSequence) -> list:
    """Pedestrian instance masks with visible pixels, in frame order, as MOTS rows."""
    if not seq.masks:
        raise MotDataError(f"{seq.path or seq.name}: --task mots needs instance masks (MOTS gt.txt)")
    return [MotsRow(f, PEDESTRIAN * 1000 + i, PEDESTRIAN, m) for (f, i), m in sorted(seq.masks.items())
            if i != IGNORE_KEY and m.any()]


def ignore_rows(seq: MotSequence) -> list:
    return [MotsRow(f, IGNORE * 1000, IGNORE, m) for (f, i), m in sorted(seq.masks.items())
            if i == IGNORE_KEY]


def run_mot(config: StreamConfig) -> StreamResult:
    sequences = load_sequences(config)
    size = config.input_size or tuple(sequences[0].frames.shape[-2:])
    inputs = [network_input(s, config, size) for s in sequences]
    net = convert_model(config.model, inputs[0][:CALIBRATION_FRAMES], config.act_bits, config.seed,
                        config.weights, config.calibration, spatial=True)
    runner = Lockstep(net, config, sum(len(x) for x in inputs))
    result = runner.result
    variants = ["ann", "qann", *runner.modes]
    matchings: dict[str, dict] = {v: {} for v in variants}
    head_cls = MaskHead if config.task == "mots" else BoxHead
    source = detection_source(config)
    for seq, frames in tqdm(list(zip(sequences, inputs, strict=True)), desc="sequences", disable=None):
        dets = None if head_cls is MaskHead else detections(seq, source, config.det_noise, config.seed)
        trackers = {v: JDETracker() for v in variants}
        heads = {v: head_cls(seq, dets) for v in variants}
        for t, step in enumerate(runner.run(frames, desc=seq.name, sequence=seq.name)):
            features = {"ann": step.ann, "qann": step.qann, **step.snn}
            for v in variants:
                boxes, scores = heads[v].detections[t]
                heads[v].record(t, trackers[v].step(boxes, scores, heads[v].embed(features[v], t)))
        scored = len(seq.gt) > 0
        for v in variants:
            result.tracks.setdefault(v, {})[seq.name] = heads[v].tracks()
            if scored:
                matchings[v][seq.name] = heads[v].accumulate()
        result.sequences.append({
            "name": seq.name, "frames": len(seq.frames), "detections": source,
            "tracks": {v: {"ids": heads[v].track_count(), "same_as_qann": heads[v].same_tracks(heads["qann"])}
                       for v in variants}})
    per_variant = {v: head_cls.summarise(m) if m else {} for v, m in matchings.items()}
    result.metrics = {v: m["OVERALL"] for v, m in per_variant.items() if m}
    for entry in result.sequences:
        entry["metrics"] = {v: per_variant[v][entry["name"]] for v in variants
                            if entry["name"] in per_variant[v]}
    return runner.finish()
