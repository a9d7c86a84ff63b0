"""The MOT task: one appearance model (the converted backbone, on any backend) serving UniTrack's
MOT head, scored with motmetrics, for the dense ANN, the QANN and every SNN mode side by side.

All networks see the same frames in one process (:class:`evals.stream.Lockstep`); each feeds its
own tracker with the same detections, so differences in tracking come from the features alone.
Detections are the ground-truth boxes of visible objects by default (ViStream's configs do
this), optionally jittered by ``det_noise`` (a fraction of the box size), or the sequence's
``det/det.txt`` with ``detections="det"``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

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

CALIBRATION_FRAMES = 8


def load_sequences(config: StreamConfig) -> list[MotSequence]:
    if config.source == "synthetic":
        sequences = synthetic_mot_dataset(seed=config.seed)
        return [s if config.frames is None else _prefix(s, config.frames) for s in sequences]
    if config.source.is_file():
        raise MotDataError(f"{config.source}: --task mot reads MOTChallenge folders (seqinfo.ini, img1/, "
                           "gt/); for a plain video use --task stream (no built-in detector yet)")
    read = read_mots_dataset if config.task == "mots" else read_mot_dataset
    return read(config.source, start=config.start, max_frames=config.frames)


def _prefix(seq: MotSequence, frames: int) -> MotSequence:
    def keep(rows):
        return None if rows is None else rows[rows[:, 0] <= frames]

    masks = None if seq.masks is None else {k: m for k, m in seq.masks.items() if k[0] <= frames}
    return MotSequence(seq.name, seq.frames[:frames], seq.frame_rate, keep(seq.gt), keep(seq.det),
                       masks, seq.path)


def detections(seq: MotSequence, source: str, noise: float, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per frame: boxes ``(N, 4)`` as ``x, y, w, h`` and scores ``(N,)``."""
    rng = np.random.default_rng(seed)
    if source == "det":
        if seq.det is None:
            raise MotDataError(f"{seq.path or seq.name}: no det/det.txt for --detections det")
        rows = seq.det
    else:
        if len(seq.gt) == 0:
            raise MotDataError(f"{seq.path or seq.name}: no ground truth to take boxes from; give a "
                               "det/det.txt and --detections det (no built-in detector yet)")
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

    def __init__(self, seq: MotSequence, config: StreamConfig) -> None:
        self.seq, self.frame_size = seq, tuple(seq.frames.shape[-2:])
        self.detections = detections(seq, config.detections, config.det_noise, config.seed)
        self._rows: list[np.ndarray] = []

    def embed(self, features: torch.Tensor, t: int) -> np.ndarray:
        return embed(features, self.detections[t][0], self.frame_size)

    def record(self, t: int, tracked: np.ndarray) -> None:
        self._rows.append(np.column_stack([np.full(len(tracked), t + 1.0), tracked[:, :5]]))

    def tracks(self) -> np.ndarray:
        return np.concatenate(self._rows) if self._rows else np.zeros((0, 6))

    def accumulate(self):
        return accumulate(self.seq.gt, self.tracks())

    summarise = staticmethod(summarise)


class MaskHead(BoxHead):
    """MOTS: ground-truth instance masks in (their boxes drive the motion model), mask-pooled
    embeddings, the matched detection's mask out, scored by mask IoU (sMOTSA)."""

    def __init__(self, seq: MotSequence, config: StreamConfig) -> None:
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
    accumulators: dict[str, dict] = {v: {} for v in variants}
    head_cls = MaskHead if config.task == "mots" else BoxHead
    for seq, frames in tqdm(list(zip(sequences, inputs, strict=True)), desc="sequences", disable=None):
        trackers = {v: JDETracker() for v in variants}
        heads = {v: head_cls(seq, config) for v in variants}
        for t, step in enumerate(runner.run(frames, desc=seq.name, sequence=seq.name)):
            features = {"ann": step.ann, "qann": step.qann, **step.snn}
            for v in variants:
                boxes, scores = heads[v].detections[t]
                heads[v].record(t, trackers[v].step(boxes, scores, heads[v].embed(features[v], t)))
        for v in variants:
            result.tracks.setdefault(v, {})[seq.name] = heads[v].tracks()
            accumulators[v][seq.name] = heads[v].accumulate()
    per_variant = {v: head_cls.summarise(accumulators[v]) for v in variants}
    result.metrics = {v: m["OVERALL"] for v, m in per_variant.items()}
    result.sequences = [{"name": s.name, "frames": len(s.frames),
                         "metrics": {v: per_variant[v][s.name] for v in variants}} for s in sequences]
    return runner.finish()
