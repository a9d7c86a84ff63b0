"""HOTA (Luiten et al., IJCV 2021) of matched frames, computed by TrackEval's own metric class.

TrackEval's dataset classes read files and preprocess; here the frames are already matched (per
frame: ground-truth ids, tracker ids and their IoU matrix), so only its ``HOTA`` metric is used,
fed with the per-sequence data dictionary it expects (ids renumbered ``0..n-1`` per sequence).
HOTA, DetA, AssA and LocA are reported as TrackEval's summary does: means over its 19 IoU
thresholds 0.05..0.95.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
from trackeval.metrics import HOTA

SUMMARY = {"hota": "HOTA", "deta": "DetA", "assa": "AssA", "loca": "LocA"}


class Matched(Protocol):
    gt_ids: np.ndarray
    hyp_ids: np.ndarray
    iou: np.ndarray


def _renumber(ids: list[np.ndarray]) -> tuple[list[np.ndarray], int]:
    unique = np.unique(np.concatenate(ids)) if ids else np.zeros(0)
    return [np.searchsorted(unique, i).astype(int) for i in ids], len(unique)


def hota_sequence(frames: Sequence[Matched]) -> dict:
    """TrackEval's raw HOTA result of one sequence (arrays over the IoU thresholds)."""
    gt_ids, num_gt_ids = _renumber([np.asarray(f.gt_ids) for f in frames])
    hyp_ids, num_hyp_ids = _renumber([np.asarray(f.hyp_ids) for f in frames])
    data = {"num_gt_dets": sum(len(i) for i in gt_ids), "num_tracker_dets": sum(len(i) for i in hyp_ids),
            "num_gt_ids": num_gt_ids, "num_tracker_ids": num_hyp_ids, "gt_ids": gt_ids,
            "tracker_ids": hyp_ids, "similarity_scores": [np.asarray(f.iou, dtype=float) for f in frames]}
    return HOTA().eval_sequence(data)


def hota_combine(results: dict[str, dict]) -> dict:
    """TrackEval's combination of per-sequence results (detection-weighted, as its benchmarks do)."""
    return HOTA().combine_sequences(results)


def hota_summary(result: dict) -> dict[str, float]:
    """``hota``, ``deta``, ``assa``, ``loca``: means over TrackEval's IoU thresholds."""
    return {key: float(np.mean(result[field])) for key, field in SUMMARY.items()}
