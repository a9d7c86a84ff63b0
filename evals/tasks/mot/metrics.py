"""CLEAR-MOT and identity metrics (motmetrics) and HOTA (TrackEval) of MOTChallenge-format rows.

Rows are ``frame, id, x, y, w, h[, conf, class, visibility]`` as in ``gt.txt`` and tracker
result files.  Ground truth is scored as MOTChallenge does for pedestrians: rows flagged
``conf == 0`` are ignored, and where the class column is filled in (MOT16 and later) only
class 1 (pedestrian) counts.  Metric names are motmetrics' own (``mota``, ``idf1``, ...) plus
``hota``, ``deta``, ``assa``, ``loca``.

Both MOT (box IoU) and MOTS (mask IoU) first reduce a sequence to a :class:`Matching`: per frame the
ground-truth ids, the hypothesis ids and their full IoU matrix.  CLEAR/ID metrics threshold it at
IoU 0.5; HOTA integrates over IoU thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import motmetrics as mm
import numpy as np

from evals.tasks.mot.hota import hota_combine, hota_sequence, hota_summary

METRICS = ["mota", "motp", "idf1", "num_switches", "precision", "recall", "num_false_positives",
           "num_misses", "mostly_tracked", "mostly_lost", "num_fragmentations", "num_objects"]
IOU_THRESHOLD = 0.5


@dataclass(frozen=True)
class FrameMatch:
    """One frame: ``iou[i, j]`` between ground-truth object ``gt_ids[i]`` and hypothesis ``hyp_ids[j]``."""

    frame: int
    gt_ids: np.ndarray
    hyp_ids: np.ndarray
    iou: np.ndarray


@dataclass
class Matching:
    """One sequence's frames.  ``strict``: a CLEAR match needs IoU > 0.5 (MOTS) instead of >= 0.5 (MOT)."""

    frames: list[FrameMatch]
    strict: bool = False

    @cached_property
    def accumulator(self) -> mm.MOTAccumulator:
        """motmetrics' events; a match's distance is 1 - IoU."""
        acc = mm.MOTAccumulator(auto_id=False)
        for f in self.frames:
            close = f.iou > IOU_THRESHOLD if self.strict else f.iou >= IOU_THRESHOLD
            acc.update(f.gt_ids.tolist(), f.hyp_ids.tolist(), np.where(close, 1.0 - f.iou, np.nan),
                       frameid=f.frame)
        return acc

    @cached_property
    def hota(self) -> dict:
        return hota_sequence(self.frames)


def scored_ground_truth(gt: np.ndarray) -> np.ndarray:
    """The rows MOTChallenge scores: not flagged as ignore, pedestrians where classes are given."""
    keep = np.ones(len(gt), dtype=bool)
    if gt.shape[1] > 6:
        keep &= gt[:, 6] != 0
    if gt.shape[1] > 7 and np.any(gt[:, 7] != -1):
        keep &= gt[:, 7] == 1
    return gt[keep]


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of ``x, y, w, h`` boxes, ``(len(a), len(b))`` (motmetrics' own IoU)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    return 1.0 - mm.distances.iou_matrix(a, b, max_iou=1.0)


def accumulate(gt: np.ndarray, tracks: np.ndarray) -> Matching:
    """Frame-by-frame box IoUs between ``tracks`` and the scored ground truth."""
    gt = scored_ground_truth(gt)
    frames = []
    for frame in np.unique(np.concatenate([gt[:, 0], tracks[:, 0]])).astype(int):
        g, h = gt[gt[:, 0] == frame], tracks[tracks[:, 0] == frame]
        frames.append(FrameMatch(int(frame), g[:, 1].astype(int), h[:, 1].astype(int),
                                 box_iou(g[:, 2:6], h[:, 2:6])))
    return Matching(frames)


def summarise(matchings: dict[str, Matching], extra: tuple[str, ...] = ()) -> dict[str, dict[str, float]]:
    """Metrics per named sequence and ``OVERALL`` over all of them (motmetrics' and TrackEval's)."""
    names = list(matchings)
    table = mm.metrics.create().compute_many([matchings[n].accumulator for n in names],
                                             metrics=METRICS + list(extra), names=names,
                                             generate_overall=True)
    hota = {name: matchings[name].hota for name in names}
    hota["OVERALL"] = hota_combine(hota)
    return {str(name): {k: float(v) for k, v in row.items()} | hota_summary(hota[str(name)])
            for name, row in table.iterrows()}
