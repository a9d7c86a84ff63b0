"""DAVIS semi-supervised VOS scores: region similarity J, contour accuracy F and J&F.

The protocol is davis2017-evaluation's (Pont-Tuset et al. 2017): object ids are given by the first
frame, so there is no id matching; each object is scored on every frame but the first (given) and the
last; J is the mask IoU (1 when both masks are empty) and F the boundary F-measure with a tolerance of
0.008 of the image diagonal; void pixels (255 in the ground truth) are left out of both.  A sequence
scores the mean over its objects, OVERALL the mean over all objects of all sequences.  The per-frame
J and F are TrackEval's (``JAndF._compute_j`` / ``_compute_f``, ports of the DAVIS code), called on
one object's masks at a time with void pixels cleared in both masks.
"""

from __future__ import annotations

import numpy as np
import pycocotools.mask as rletools
from trackeval.metrics import JAndF

VOID = 255
BOUND_TH = 0.008  # F tolerance, a fraction of the image diagonal


def _encoded(masks: np.ndarray) -> list[list[dict]]:
    """One RLE-encoded mask per frame, in the per-frame lists TrackEval's J and F take."""
    return [[rletools.encode(np.asfortranarray(m.astype(np.uint8)))] for m in masks]


def _object_scores(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame J and F of one object's ``(T, H, W)`` bool masks."""
    pred_rle, gt_rle = _encoded(pred), _encoded(gt)
    j = JAndF._compute_j(gt_rle, pred_rle, 1, 1, len(gt))[0, 0]
    return j, JAndF._compute_f(gt_rle, pred_rle, 0, 0, BOUND_TH)


def vos_sequence_metrics(pred_labels: np.ndarray, gt_labels: np.ndarray, objects: list[int]) -> dict:
    """``j``, ``f`` and ``j_and_f`` of one sequence (means over ``objects``), ``j_per_object`` and
    ``f_per_object``, from ``(T, H, W)`` label maps of three frames or more."""
    pred, gt = np.asarray(pred_labels), np.asarray(gt_labels)
    if pred.shape != gt.shape or gt.ndim != 3 or len(gt) < 3:
        raise ValueError(f"VOS scores need prediction and ground truth of one (T, H, W) shape with T >= 3, "
                         f"got {pred.shape} and {gt.shape}")
    if not objects:
        raise ValueError("VOS scores need at least one object id")
    pred, gt = pred[1:-1], gt[1:-1]
    keep = gt != VOID
    j_objects, f_objects = [], []
    for k in objects:
        j, f = _object_scores((pred == k) & keep, (gt == k) & keep)
        j_objects.append(float(np.mean(j)))
        f_objects.append(float(np.mean(f)))
    j_mean, f_mean = float(np.mean(j_objects)), float(np.mean(f_objects))
    return {"j": j_mean, "f": f_mean, "j_and_f": (j_mean + f_mean) / 2, "objects": len(objects),
            "j_per_object": j_objects, "f_per_object": f_objects}


def vos_summarise(per_sequence: dict[str, tuple[np.ndarray, np.ndarray, list[int]]]) -> dict[str, dict]:
    """Scores per sequence name (``(pred, gt, objects)`` each) and ``OVERALL``: J and F averaged
    over all objects of all sequences, so a sequence weighs as many objects as it has."""
    results = {name: vos_sequence_metrics(*args) for name, args in per_sequence.items()}
    if not results:
        raise ValueError("VOS summary needs at least one sequence")
    j_mean = float(np.mean([j for r in results.values() for j in r["j_per_object"]]))
    f_mean = float(np.mean([f for r in results.values() for f in r["f_per_object"]]))
    results["OVERALL"] = {"j": j_mean, "f": f_mean, "j_and_f": (j_mean + f_mean) / 2,
                          "objects": sum(r["objects"] for r in results.values())}
    return results
