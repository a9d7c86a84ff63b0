"""Detections in the COCO results format and their mean average precision (pycocotools).

``map_vs_ann``: a network's detections scored against the float network's as if those were the
ground truth, the agreement a conversion keeps, on any video.  With annotations (a MOTChallenge
``gt.txt``) the person detections are also scored against the real ground truth.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from evals.tasks.detect.decode import Detections

# the COCO category id of each of the 80 classes the detectors' heads predict (COCO's ids skip 11)
COCO_IDS = (*range(1, 12), *range(13, 26), 27, 28, *range(31, 45), *range(46, 66), 67, 70,
            *range(72, 83), *range(84, 91))
PERSON = 0  # class index of "person" in the heads (COCO id 1)


def coco_results(frames: Sequence[Detections], image_ids: Sequence[int]) -> list[dict]:
    """COCO results records ``{image_id, category_id, bbox: [x, y, w, h], score}``."""
    rows = []
    for image_id, dets in zip(image_ids, frames, strict=True):
        for box, score, label in zip(dets.boxes, dets.scores, dets.labels, strict=True):
            x0, y0, x1, y1 = (float(v) for v in box)
            rows.append({"image_id": int(image_id), "category_id": COCO_IDS[int(label)],
                         "bbox": [x0, y0, x1 - x0, y1 - y0], "score": float(score)})
    return rows


def coco_ground_truth(frames: Sequence[Detections], image_ids: Sequence[int], size: tuple[int, int]) -> COCO:
    """A pycocotools ground truth holding ``frames``' boxes as annotations (scores dropped)."""
    height, width = size
    annotations = [{**r, "id": i + 1, "area": r["bbox"][2] * r["bbox"][3], "iscrowd": 0}
                   for i, r in enumerate(coco_results(frames, image_ids))]
    for a in annotations:
        del a["score"]
    gt = COCO()
    gt.dataset = {"images": [{"id": int(i), "width": width, "height": height} for i in image_ids],
                  "annotations": annotations, "categories": [{"id": c} for c in COCO_IDS]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    return gt


def mean_ap(truth: COCO, frames: Sequence[Detections],
            image_ids: Sequence[int]) -> tuple[float, float] | None:
    """``(mAP@0.5, mAP@0.5:0.95)`` of ``frames`` against ``truth``; None when ``truth`` holds no box."""
    if not truth.dataset["annotations"]:
        return None
    results = coco_results(frames, image_ids)
    if not results:
        return 0.0, 0.0
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress and table
        evaluation = COCOeval(truth, truth.loadRes(results), "bbox")
        evaluation.params.imgIds = [int(i) for i in image_ids]
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return float(max(evaluation.stats[1], 0.0)), float(max(evaluation.stats[0], 0.0))


def agreement(reference: Sequence[Detections], frames: Sequence[Detections], size: tuple[int, int]) -> dict:
    """``map50_vs_ann``, ``map_vs_ann`` (None where the reference found nothing) and
    ``detections_per_frame``."""
    ids = list(range(1, len(frames) + 1))
    scores = mean_ap(coco_ground_truth(reference, ids, size), frames, ids)
    return {"map50_vs_ann": None if scores is None else scores[0],
            "map_vs_ann": None if scores is None else scores[1],
            "detections_per_frame": float(np.mean([len(d) for d in frames])) if frames else 0.0}
