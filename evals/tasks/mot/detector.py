"""Person detections for a plain video without annotations: OpenCV's HOG + linear SVM detector.

OpenCV ships Dalal and Triggs' pedestrian detector (``HOGDescriptor_getDefaultPeopleDetector``).  Its
64x128 window holds about 16 px of margin around the person on every side (Dalal & Triggs, CVPR
2005), so each hit is shrunk by that margin to the person's own box, the box MOT ground truth
draws.  Overlapping hits are merged by non-maximum suppression (``cv2.dnn.NMSBoxes``).
"""

from __future__ import annotations

import cv2
import numpy as np
from tqdm import tqdm

WINDOW_MARGIN = (16 / 64, 16 / 128)  # margin / window width, margin / window height
NMS_IOU = 0.4


class HogPeopleDetector:
    """``detect(frame)`` gives boxes ``(N, 4)`` as ``x, y, w, h`` and SVM scores ``(N,)``.

    ``stride`` and ``scale`` are the sliding window's step (px) and pyramid factor; finer ones find
    more people and take longer.  ``min_score`` drops weak hits (the SVM margin, 0 is its boundary).
    """

    def __init__(self, stride: int = 4, scale: float = 1.03, min_score: float = 0.0) -> None:
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.stride, self.scale, self.min_score = stride, scale, min_score

    def detect(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``frame``: ``(3, H, W)`` RGB in [0, 1], as the readers give frames."""
        image = cv2.cvtColor(np.round(np.clip(frame, 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0),
                             cv2.COLOR_RGB2BGR)
        hits, scores = self.hog.detectMultiScale(image, hitThreshold=self.min_score,
                                                 winStride=(self.stride, self.stride), padding=(8, 8),
                                                 scale=self.scale)
        boxes, scores = np.asarray(hits, dtype=float).reshape(-1, 4), np.ravel(scores).astype(float)
        if len(boxes):
            keep = np.ravel(cv2.dnn.NMSBoxes(boxes.tolist(), scores.tolist(), self.min_score, NMS_IOU))
            boxes, scores = boxes[keep], scores[keep]
        mx, my = WINDOW_MARGIN
        boxes[:, 0] += mx * boxes[:, 2]
        boxes[:, 1] += my * boxes[:, 3]
        boxes[:, 2] *= 1 - 2 * mx
        boxes[:, 3] *= 1 - 2 * my
        return boxes, scores

    def detect_video(self, frames: np.ndarray, desc: str = "HOG detector") -> np.ndarray:
        """MOTChallenge ``det.txt`` rows ``frame, -1, x, y, w, h, score`` for ``(T, 3, H, W)`` frames."""
        rows = []
        for t, frame in enumerate(tqdm(frames, desc=desc, disable=None, leave=False)):
            boxes, scores = self.detect(frame)
            rows += [(t + 1, -1, *box, score) for box, score in zip(boxes, scores, strict=True)]
        return np.array(rows, dtype=float).reshape(-1, 7)
