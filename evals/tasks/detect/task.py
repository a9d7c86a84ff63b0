"""The detect task: a trained detector (``--model yolo-kp``) converted to ST-BIF neurons finds objects
in real video; the float network, the QANN and every SNN run detect side by side.

Each network's head output is decoded and suppressed the same way (:mod:`evals.tasks.detect.decode`),
so differences in boxes come from the networks alone.  Per network: its detections in the COCO
results format, ``map50_vs_ann`` / ``map_vs_ann`` against the float network's detections (pycocotools)
and ``detections_per_frame``; against the ground truth too where a MOTChallenge folder has
``gt.txt`` (persons).  A picture shows the float network's boxes beside the SNN's on one frame.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from evals.harness.config import EvalConfig
from evals.harness.tasks import Column, Task
from evals.tasks.detect.decode import Detections, YoloDecoder
from evals.tasks.detect.metrics import PERSON, agreement, coco_ground_truth, coco_results, mean_ap
from evals.tasks.mot.data import MotSequence
from evals.tasks.mot.metrics import scored_ground_truth
from evals.tasks.mot.task import load_sequences
from vistream_neuro import models
from vistream_neuro.atomic import write_atomic
from vistream_neuro.tracing import ConversionError

REFERENCE = "ann"


@dataclass(frozen=True)
class DetectOptions:
    """Boxes scoring above ``score_threshold`` (objectness x class probability) go through NMS at
    ``iou_threshold``."""

    score_threshold: float = 0.25
    iou_threshold: float = 0.45


def detect_options(config: EvalConfig) -> DetectOptions:
    return config.options_for("detect", DetectOptions())


def decoder(config: EvalConfig) -> YoloDecoder:
    """The decoder of ``config``'s detector (its anchors), with the task's thresholds."""
    if not models.is_detector(config.model):
        raise ConversionError(f"--model {config.model}: detection needs a YOLO detector "
                              f"({', '.join(models.DETECTORS)})")
    options = detect_options(config)
    return YoloDecoder(models.build(config.model).anchors, options.score_threshold, options.iou_threshold)


class DetectHead:
    """Decodes one network's head output on every frame of a sequence."""

    def __init__(self, seq: MotSequence, decode: YoloDecoder) -> None:
        self.seq, self.decode = seq, decode
        self.frame_size = tuple(seq.frames.shape[-2:])
        self.frames: list[Detections] = []

    def step(self, t: int, features: torch.Tensor) -> None:
        self.frames.append(self.decode(features, self.frame_size))

    def output(self) -> list[Detections]:
        return self.frames

    def same_as(self, other: DetectHead) -> bool:
        return len(self.frames) == len(other.frames) and all(
            a.same_as(b) for a, b in zip(self.frames, other.frames, strict=True))


def ground_truth(seq: MotSequence) -> list[Detections] | None:
    """The persons of a MOTChallenge ``gt.txt`` per frame (None without annotations)."""
    if seq.gt is None or len(seq.gt) == 0:
        return None
    gt = scored_ground_truth(seq.gt)
    frames = []
    for t in range(1, len(seq.frames) + 1):
        rows = gt[gt[:, 0] == t]
        boxes = np.column_stack([rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]]).reshape(-1, 4)
        frames.append(Detections(boxes, np.ones(len(rows)), np.full(len(rows), PERSON)))
    return frames


def _scores(heads: dict[str, DetectHead], reference: dict[str, DetectHead], names: list[str]) -> dict:
    """Agreement with the reference (and, where there is ground truth, person mAP) over ``names``."""
    mine = [d for n in names for d in heads[n].frames]
    size = heads[names[0]].frame_size
    metrics = agreement([d for n in names for d in reference[n].frames], mine, size)
    truth = [ground_truth(heads[n].seq) for n in names]
    if all(t is not None for t in truth):
        ids = list(range(1, len(mine) + 1))
        scores = mean_ap(coco_ground_truth([d for t in truth for d in t], ids, size),
                         [d.of_class(PERSON) for d in mine], ids)
        if scores is not None:
            metrics |= {"map50": scores[0], "map": scores[1]}
    return metrics


def score(heads: dict[str, dict[str, DetectHead]], sequences) -> dict[str, dict[str, dict]]:
    """Per network, per sequence and OVERALL: its detections against the float network's."""
    reference = heads[REFERENCE]
    names = [s.name for s in sequences]
    return {v: {**{n: _scores(per_seq, reference, [n]) for n in names},
                "OVERALL": _scores(per_seq, reference, names)} for v, per_seq in heads.items()}


# colours (BGR) of boxes: persons, other classes
PERSON_COLOUR, OTHER_COLOUR = (60, 220, 60), (40, 160, 255)


def draw(frame: np.ndarray, dets: Detections, title: str) -> np.ndarray:
    """``frame`` ``(3, H, W)`` RGB in [0, 1] with ``dets`` drawn, as a BGR uint8 image."""
    image = cv2.cvtColor(np.ascontiguousarray(np.round(np.clip(frame, 0, 1) * 255).astype(np.uint8)
                                              .transpose(1, 2, 0)), cv2.COLOR_RGB2BGR)
    for box, s, label in zip(dets.boxes, dets.scores, dets.labels, strict=True):
        x0, y0, x1, y1 = (int(round(float(v))) for v in box)
        colour = PERSON_COLOUR if label == PERSON else OTHER_COLOUR
        cv2.rectangle(image, (x0, y0), (x1, y1), colour, 2)
        cv2.putText(image, f"{'person' if label == PERSON else f'c{label}'} {s:.2f}", (x0 + 2, y0 + 12),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, 1, cv2.LINE_AA)
    cv2.putText(image, title, (6, image.shape[0] - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1,
                cv2.LINE_AA)
    return image


def side_by_side(seq: MotSequence, heads: dict[str, DetectHead], snn: str) -> np.ndarray:
    """The frame with the most float-network boxes: the float network's boxes left, ``snn``'s right."""
    counts = [len(d) for d in heads[REFERENCE].frames]
    t = int(np.argmax(counts)) if counts else 0
    return np.hstack([draw(seq.frames[t], heads[REFERENCE].frames[t], f"ANN, frame {t}"),
                      draw(seq.frames[t], heads[snn].frames[t], f"SNN ({snn}), frame {t}")])


def write_detections(folder: Path, name: str, frames: list[Detections]) -> None:
    """One network's detections of a sequence as a COCO results JSON (image_id = frame number, from 1)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = coco_results(frames, range(1, len(frames) + 1))
    write_atomic(folder / f"{name}.json", lambda f: json.dump(rows, f))


DETECT_COLUMNS = (Column("mAP50/ANN", "map50_vs_ann"), Column("mAP/ANN", "map_vs_ann"),
                  Column("det/frame", "detections_per_frame", ".2f"))


def detect_task(config: EvalConfig) -> Task:
    decode = decoder(config)

    def describe(seq, heads):
        return {"score_threshold": decode.score_threshold, "iou_threshold": decode.iou_threshold,
                "detections": {v: sum(len(d) for d in h.frames) for v, h in heads.items()}}

    return Task("detect", load_sequences, DetectHead, summarise=None, write=write_detections,
                columns=DETECT_COLUMNS, prepare=lambda seq, c: decode, describe=describe, score=score,
                picture=lambda seq, heads: side_by_side(seq, heads, config.mode))
