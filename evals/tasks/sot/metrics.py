"""OTB one-pass evaluation (OPE) of single-object tracking: success and precision curves.

Wu, Lim and Yang (CVPR 2013, TPAMI 2015) score a tracker by two curves over a sequence's frames: the
success curve (fraction of frames whose box IoU with ground truth exceeds each overlap threshold, its
mean is the AUC) and the precision curve (fraction of frames whose centre error is within each pixel
threshold, read at 20 px).  Boxes are ``x, y, w, h`` on the continuous pixel plane.  Frames without a
valid ground-truth box (NaN, or width or height <= 0) are left out; a missing prediction scores 0.
"""

from __future__ import annotations

import numpy as np

OVERLAP_THRESHOLDS = np.linspace(0.0, 1.0, 21)
ERROR_THRESHOLDS = np.arange(0, 51)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of ``(N, 4)`` xywh boxes, row by row (0 where a box is empty or NaN)."""
    a, b = np.asarray(a, dtype=np.float64).reshape(-1, 4), np.asarray(b, dtype=np.float64).reshape(-1, 4)
    low, high = np.maximum(a[:, :2], b[:, :2]), np.minimum(a[:, :2] + a[:, 2:], b[:, :2] + b[:, 2:])
    inter = np.prod(np.clip(high - low, 0.0, None), axis=1)
    area_a, area_b = (np.prod(np.clip(box[:, 2:], 0.0, None), axis=1) for box in (a, b))
    union = area_a + area_b - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nan_to_num(inter / union, nan=0.0, posinf=0.0)


def center_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distance of box centres, row by row (inf where a box is NaN)."""
    a, b = np.asarray(a, dtype=np.float64).reshape(-1, 4), np.asarray(b, dtype=np.float64).reshape(-1, 4)
    error = np.linalg.norm(a[:, :2] + a[:, 2:] / 2 - b[:, :2] - b[:, 2:] / 2, axis=1)
    return np.where(np.isnan(error), np.inf, error)


def _curves(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Success and precision curves of one sequence over its frames with a valid gt box."""
    pred, gt = np.asarray(pred, dtype=np.float64), np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape or gt.ndim != 2 or gt.shape[1] != 4:
        raise ValueError(f"SOT metrics need prediction and gt boxes of one (N, 4) shape, got {pred.shape} "
                         f"and {gt.shape}")
    valid = ~np.isnan(gt).any(axis=1) & (gt[:, 2] > 0) & (gt[:, 3] > 0)
    if not valid.any():
        raise ValueError(f"SOT metrics need a frame with a valid gt box, none of {len(gt)} has one")
    overlap, error = iou(pred[valid], gt[valid]), center_error(pred[valid], gt[valid])
    success = (overlap[:, None] > OVERLAP_THRESHOLDS).mean(axis=0)
    precision = (error[:, None] <= ERROR_THRESHOLDS).mean(axis=0)
    return success, precision, int(valid.sum())


def _summary(success: np.ndarray, precision: np.ndarray, frames: int) -> dict:
    return {"auc": float(success.mean()), "precision_20": float(precision[20]),
            "success_50": float(success[10]), "frames": frames}


def sot_sequence_metrics(pred: np.ndarray, gt: np.ndarray) -> dict:
    """``auc`` (mean of the 21-threshold success curve), ``precision_20``, ``success_50`` (IoU > 0.5)
    and ``frames`` (those scored) of one sequence."""
    return _summary(*_curves(pred, gt))


def sot_summarise(per_sequence: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, dict]:
    """Metrics per named sequence and ``OVERALL``: those of the curves averaged over sequences (OTB's
    plots weigh each sequence equally, whatever its length)."""
    if not per_sequence:
        raise ValueError("SOT metrics need at least one sequence")
    curves = {name: _curves(pred, gt) for name, (pred, gt) in per_sequence.items()}
    out = {name: _summary(*c) for name, c in curves.items()}
    out["OVERALL"] = _summary(np.mean([c[0] for c in curves.values()], axis=0),
                              np.mean([c[1] for c in curves.values()], axis=0),
                              sum(c[2] for c in curves.values()))
    return out
