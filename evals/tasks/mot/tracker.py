"""The MOT head as UniTrack runs it on a shared appearance model: embeddings of each detection
pooled from the backbone's feature map, Kalman-filter motion, Hungarian matching on a fused
appearance + motion cost (JDE's association), then IoU matching for what is left.

The Kalman filter, track life cycle, gating and assignment are deep-sort-realtime's; only the
association order and the fused cost (JDE: ``0.98 * cosine + 0.02 * Mahalanobis``, gated at the
95 % chi-square bound) are set here.
"""

from __future__ import annotations

import numpy as np
import torch
from deep_sort_realtime.deep_sort import iou_matching, kalman_filter, linear_assignment, nn_matching
from deep_sort_realtime.deep_sort.detection import Detection
from deep_sort_realtime.deep_sort.tracker import Tracker
from torchvision.ops import roi_align

POOL = (2, 2)  # RoIAlign output per detection: keeps coarse layout (upper vs lower body)


def embed(features: torch.Tensor, boxes: np.ndarray, frame_size: tuple[int, int]) -> np.ndarray:
    """L2-normalised appearance vectors of ``boxes`` (``x, y, w, h`` in frame pixels) pooled from
    a ``(1, C, h, w)`` feature map of the whole frame."""
    if len(boxes) == 0:
        return np.zeros((0, features.shape[1] * POOL[0] * POOL[1]))
    (fh, fw), (height, width) = features.shape[-2:], frame_size
    sx, sy = fw / width, fh / height
    x, y, w, h = (torch.as_tensor(boxes[:, i], dtype=torch.float64) for i in range(4))
    rois = torch.stack([torch.zeros_like(x), x * sx, y * sy, (x + w) * sx, (y + h) * sy], dim=1)
    pooled = roi_align(features.double(), rois, POOL, spatial_scale=1.0, sampling_ratio=2, aligned=True)
    return _unit(pooled.flatten(1))


def _unit(vectors: torch.Tensor) -> np.ndarray:
    """Rows scaled to length 1; a row with no feature at all becomes a neutral, not an undefined,
    vector."""
    vectors[vectors.abs().sum(1) == 0] = 1.0
    return torch.nn.functional.normalize(vectors, dim=1).numpy()


def embed_masks(features: torch.Tensor, masks: list[np.ndarray]) -> np.ndarray:
    """L2-normalised appearance vectors: the feature map averaged over each instance mask (resized
    to the map by area), as UniTrack's mask-propagating heads pool object features."""
    if not masks:
        return np.zeros((0, features.shape[1]))
    stack = torch.as_tensor(np.stack(masks), dtype=torch.float64)[:, None]
    weights = torch.nn.functional.interpolate(stack, size=features.shape[-2:], mode="area")[:, 0]
    return _unit(torch.einsum("nhw,chw->nc", weights, features[0].double()))


class JDETracker(Tracker):
    """deep-sort-realtime's tracker with UniTrack's (JDE's) association."""

    def __init__(self, appearance_weight: float = 0.98, max_embedding_distance: float = 0.7,
                 max_iou_distance: float = 0.5, max_age: int = 30, n_init: int = 1) -> None:
        metric = nn_matching.NearestNeighborDistanceMetric("cosine", max_embedding_distance, budget=30)
        super().__init__(metric, max_iou_distance=max_iou_distance, max_age=max_age, n_init=n_init)
        self.appearance_weight = appearance_weight

    def appearance_cost(self, tracks, dets, track_indices, detection_indices) -> np.ndarray:
        """Cosine distance of each detection's embedding to each track's gallery."""
        features = np.array([dets[i].feature for i in detection_indices])
        targets = np.array([tracks[i].track_id for i in track_indices])
        return self.metric.distance(features, targets)

    def _fused_cost(self, tracks, dets, track_indices, detection_indices) -> np.ndarray:
        """JDE's cost: the appearance cost blended with the Kalman motion distance, gated at chi2 95%."""
        cost = self.appearance_cost(tracks, dets, track_indices, detection_indices)
        measurements = np.asarray([dets[i].to_xyah() for i in detection_indices])
        for row, t in enumerate(track_indices):
            motion = self.kf.gating_distance(tracks[t].mean, tracks[t].covariance, measurements)
            cost[row] = self.appearance_weight * cost[row] + (1 - self.appearance_weight) * motion
            cost[row, motion > kalman_filter.chi2inv95[4]] = linear_assignment.INFTY_COST
        return cost

    def _match(self, detections):
        confirmed = [i for i, t in enumerate(self.tracks) if t.is_confirmed()]
        unconfirmed = [i for i, t in enumerate(self.tracks) if not t.is_confirmed()]
        matches_a, unmatched_a, unmatched_dets = linear_assignment.min_cost_matching(
            self._fused_cost, self.metric.matching_threshold, self.tracks, detections, confirmed)
        recent = [k for k in unmatched_a if self.tracks[k].time_since_update == 1]
        matches_b, unmatched_b, unmatched_dets = linear_assignment.min_cost_matching(
            iou_matching.iou_cost, self.max_iou_distance, self.tracks, detections,
            unconfirmed + recent, unmatched_dets)
        stale = [k for k in unmatched_a if k not in recent]
        return matches_a + matches_b, stale + unmatched_b, unmatched_dets

    def step(self, boxes: np.ndarray, scores: np.ndarray, embeddings: np.ndarray) -> np.ndarray:
        """Track one frame's detections; rows ``id, x, y, w, h, detection index`` of the tracks
        it updated (the index says which detection, e.g. whose mask, a track took)."""
        self.predict()
        self.update([Detection(b, s, e, others=i)
                     for i, (b, s, e) in enumerate(zip(boxes, scores, embeddings, strict=True))])
        return np.array([[int(t.track_id), *t.to_ltwh(orig=True), t.get_det_supplementary()]
                         for t in self.tracks if t.time_since_update == 0], dtype=np.float64).reshape(-1, 6)
