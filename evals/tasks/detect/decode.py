"""YOLO head output -> boxes: lava-dl's own decoding (``object_detection.yolo_base._yolo``: sigmoid
centres on the grid, exponential sizes times the anchors, sigmoid objectness, softmax classes) and
torchvision's class-wise non-maximum suppression (``batched_nms``).

A box's score is its objectness times its best class probability, as lava-dl's own
``non_maximum_suppression`` merges them.  Boxes come out in pixels of the frame (``x0, y0, x1, y1``),
clipped to it.
"""

from __future__ import annotations

import contextlib
import functools
import io
from dataclasses import dataclass

import numpy as np
import torch
from torchvision.ops import batched_nms, box_convert, clip_boxes_to_image

from neurons.lava_compat import import_lava

CLAMP_MAX = 5.0  # lava-dl's default bound on the size logits (its networks' ``clamp_max``)


@functools.cache
def _lava_yolo():
    with contextlib.redirect_stdout(io.StringIO()):  # lava-dl prints a Prophesee toolbox warning
        return import_lava("lava.lib.dl.slayer.object_detection.yolo_base")._yolo


@dataclass(frozen=True, eq=False)
class Detections:
    """One frame's boxes ``(N, 4)`` as ``x0, y0, x1, y1`` pixels, scores ``(N,)``, class indices ``(N,)``."""

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)

    def of_class(self, label: int) -> Detections:
        keep = self.labels == label
        return Detections(self.boxes[keep], self.scores[keep], self.labels[keep])

    def same_as(self, other: Detections) -> bool:
        return all(np.array_equal(a, b) for a, b in ((self.boxes, other.boxes), (self.scores, other.scores),
                                                     (self.labels, other.labels)))


@dataclass(frozen=True)
class YoloDecoder:
    """Decodes a detector's raw heads.  ``anchors``: ``(heads, anchors, 2)`` as the network holds them;
    boxes scoring above ``score_threshold`` go through NMS at ``iou_threshold``; at most
    ``max_detections`` per frame, best first."""

    anchors: torch.Tensor
    score_threshold: float = 0.25
    iou_threshold: float = 0.45
    max_detections: int = 100

    def __post_init__(self) -> None:
        if not 0 <= self.score_threshold < 1:
            raise ValueError(f"score threshold must be in [0, 1), got {self.score_threshold}")
        if not 0 < self.iou_threshold <= 1:
            raise ValueError(f"NMS IoU threshold must be in (0, 1], got {self.iou_threshold}")

    def predictions(self, heads: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Every anchor's ``(cx, cy, w, h, objectness, 80 class probabilities)``, normalised to the frame."""
        heads = heads if isinstance(heads, tuple | list) else (heads,)
        if len(heads) != len(self.anchors):
            raise ValueError(f"{len(heads)} heads for {len(self.anchors)} anchor sets")
        out = []
        for head, anchors in zip(heads, self.anchors, strict=True):
            head = head.double().contiguous()  # one memory layout for every network: bitwise-equal decoding
            n, c, h, w = head.shape
            a = len(anchors)
            raw = head.reshape(n, a, c // a, h, w, 1).permute(0, 1, 3, 4, 2, 5)  # lava-dl's yolo_raw order
            out.append(_lava_yolo()(raw, anchors.double(), CLAMP_MAX).reshape(n, -1, c // a))
        return torch.cat(out, dim=1)

    def __call__(self, heads, frame_size: tuple[int, int]) -> Detections:
        """The detections of one frame (batch of one) in pixels of a ``(H, W)`` frame."""
        pred = self.predictions(heads)[0]
        best, labels = pred[:, 5:].max(dim=1)
        scores = pred[:, 4] * best
        keep = scores > self.score_threshold
        height, width = frame_size
        scale = torch.tensor([width, height, width, height], dtype=pred.dtype)
        boxes = clip_boxes_to_image(box_convert(pred[keep, :4], "cxcywh", "xyxy") * scale, (height, width))
        scores, labels = scores[keep], labels[keep]
        order = batched_nms(boxes, scores, labels, self.iou_threshold)[: self.max_detections]
        return Detections(boxes[order].numpy(), scores[order].numpy(), labels[order].numpy().astype(np.int64))
