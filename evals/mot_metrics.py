"""CLEAR-MOT and identity metrics of MOTChallenge-format rows, computed by motmetrics.

Rows are ``frame, id, x, y, w, h[, conf, class, visibility]`` as in ``gt.txt`` and tracker
result files.  Ground truth is scored as MOTChallenge does for pedestrians: rows flagged
``conf == 0`` are ignored, and where the class column is filled in (MOT16 and later) only
class 1 (pedestrian) counts.  Metric names are motmetrics' own (``mota``, ``idf1``, ...).
"""

from __future__ import annotations

import motmetrics as mm
import numpy as np
import pandas as pd

METRICS = ["mota", "motp", "idf1", "num_switches", "precision", "recall", "num_false_positives",
           "num_misses", "mostly_tracked", "mostly_lost", "num_fragmentations", "num_objects"]
IOU_THRESHOLD = 0.5  # a match needs IoU >= 0.5 (motmetrics: distance 1 - IoU < 0.5)


def scored_ground_truth(gt: np.ndarray) -> np.ndarray:
    """The rows MOTChallenge scores: not flagged as ignore, pedestrians where classes are given."""
    keep = np.ones(len(gt), dtype=bool)
    if gt.shape[1] > 6:
        keep &= gt[:, 6] != 0
    if gt.shape[1] > 7 and np.any(gt[:, 7] != -1):
        keep &= gt[:, 7] == 1
    return gt[keep]


def _frame(rows: np.ndarray) -> pd.DataFrame:
    index = pd.MultiIndex.from_arrays([rows[:, 0].astype(int), rows[:, 1].astype(int)],
                                      names=["FrameId", "Id"])
    return pd.DataFrame(rows[:, 2:6], index=index, columns=["X", "Y", "Width", "Height"])


def accumulate(gt: np.ndarray, tracks: np.ndarray) -> mm.MOTAccumulator:
    """Frame-by-frame matching of ``tracks`` to the scored ground truth by box IoU."""
    return mm.utils.compare_to_groundtruth(_frame(scored_ground_truth(gt)), _frame(tracks), "iou",
                                           distth=1 - IOU_THRESHOLD)


def summarise(accumulators: dict[str, mm.MOTAccumulator]) -> dict[str, dict[str, float]]:
    """Metrics per named accumulator (e.g. per sequence) and ``OVERALL`` over all of them."""
    names = list(accumulators)
    table = mm.metrics.create().compute_many([accumulators[n] for n in names], metrics=METRICS,
                                             names=names, generate_overall=True)
    return {str(name): {k: float(v) for k, v in row.items()} for name, row in table.iterrows()}
