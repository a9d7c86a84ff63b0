"""PoseTrack metrics: per-joint AP and per-joint MOTA, as the PoseTrack benchmark (poseval) defines them.

Andriluka et al., "PoseTrack: A Benchmark for Human Pose Estimation and Tracking", CVPR 2018.  A
predicted joint hits a ground-truth joint within half the head size (PCKh@0.5; head size = 0.6 x the
head box diagonal).  For AP, predicted people of a frame are assigned to gt people by a Hungarian
matching on PCKh (the share of the gt person's joints hit); a joint is a true positive when it hits
the same joint of its assigned person, all joints are ranked by score over the evaluated frames and
AP is the all-point interpolated area under the precision-recall curve.  For MOTA every joint type is
tracked on its own, CLEAR-MOT style on the PCKh-normalised distances: a gt joint keeps last frame's
predicted track if that one still hits it, the rest are matched by a Hungarian assignment of minimal
distance, and a match to another track than the gt person's last one is an identity switch.  Only
joints scoring at least ``score_threshold`` take part in MOTA.  As in poseval, only frames with gt
people (PoseTrack's labelled frames) are evaluated, gt joints with ``v = 0`` and the ears are never
counted, and a predicted joint exists where its score is above 0.  Values are fractions, not percent.
Where this departs from poseval: people are assigned for AP by a Hungarian rather than a greedy
matching, total MOTA pools all joints (poseval averages the per-joint MOTAs), and the score
threshold for MOTA is ours (poseval has none).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from scipy.optimize import linear_sum_assignment

from evals.tasks.posetrack.figures import KEYPOINTS, UNANNOTATED

JOINTS = tuple(j for j, name in enumerate(KEYPOINTS) if name not in UNANNOTATED)
PCKH = 0.5


def average_precision(scores: np.ndarray, hits: np.ndarray, positives: int) -> float:
    """All-point interpolated AP of detections ``scores`` (true where ``hits``) against ``positives``."""
    if positives == 0:
        return float("nan")
    order = np.argsort(-np.asarray(scores, dtype=float), kind="stable")
    found = np.cumsum(np.asarray(hits, dtype=float)[order])
    recall = np.concatenate([[0.0], found / positives, [1.0]])
    precision = np.concatenate([[0.0], found / np.arange(1, len(found) + 1), [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.flatnonzero(recall[1:] != recall[:-1]) + 1
    return float(np.sum((recall[steps] - recall[steps - 1]) * precision[steps]))


def _track_joint(dist: np.ndarray, gt_ids: list[int], tracks: list[int], last: dict[int, int]) -> tuple:
    """One frame of one joint type: (matches, misses, false positives, switches); updates ``last``."""
    cost = np.where(dist <= PCKH, dist, np.inf)
    pairs = []
    for g, gt_id in enumerate(gt_ids):
        kept = [p for p, track in enumerate(tracks) if track == last.get(gt_id) and np.isfinite(cost[g, p])]
        if kept:
            pairs.append((g, kept[0], False))
            cost[g, :], cost[:, kept[0]] = np.inf, np.inf
    rows, cols = linear_sum_assignment(np.where(np.isfinite(cost), cost, 1e9))
    pairs += [(g, p, gt_ids[g] in last and last[gt_ids[g]] != tracks[p])
              for g, p in zip(rows, cols, strict=True) if np.isfinite(cost[g, p])]
    for g, p, _ in pairs:
        last[gt_ids[g]] = tracks[p]
    switches = sum(switch for *_, switch in pairs)
    return len(pairs), len(gt_ids) - len(pairs), len(tracks) - len(pairs), switches


def _sequence(name: str, keypoints: dict, heads: dict, people: list, threshold: float) -> dict:
    """Raw counts of one sequence: per-joint scores and hits, gt joints and MOT counts."""
    gt_frames, pred_frames = defaultdict(list), defaultdict(list)
    for frame, track in sorted(keypoints):
        gt_frames[frame].append(track)
    for n, (frame, track, pose) in enumerate(people):
        pose = np.asarray(pose, dtype=float)
        if pose.shape != (len(KEYPOINTS), 3):
            raise ValueError(f"{name}: predicted person {n} has pose shape {pose.shape}, expected (17, 3)")
        pred_frames[frame].append((track, pose))
    raw = {"scores": defaultdict(list), "hits": defaultdict(list), "gt": np.zeros(len(KEYPOINTS), int),
           "mot": np.zeros((len(KEYPOINTS), 4), int)}
    last = defaultdict(dict)
    for frame, gt_ids in gt_frames.items():
        missing = [i for i in gt_ids if (frame, i) not in heads]
        if missing:
            raise ValueError(f"{name}: gt person {missing[0]} of frame {frame} has no head box")
        gt = np.array([keypoints[(frame, i)] for i in gt_ids], dtype=float).reshape(-1, len(KEYPOINTS), 3)
        size = np.array([0.6 * np.hypot(*np.asarray(heads[(frame, i)], dtype=float)[2:]) for i in gt_ids])
        tracks = [track for track, _ in pred_frames[frame]]
        pred = np.array([pose for _, pose in pred_frames[frame]]).reshape(-1, len(KEYPOINTS), 3)
        annotated = np.isin(np.arange(len(KEYPOINTS)), JOINTS)
        has_gt, has_pred = (gt[:, :, 2] > 0) & annotated, (pred[:, :, 2] > 0) & annotated
        with np.errstate(divide="ignore", invalid="ignore"):
            dist = np.linalg.norm(pred[:, None, :, :2] - gt[None, :, :, :2], axis=-1) / size[None, :, None]
        dist[~(has_pred[:, None] & has_gt[None])] = np.inf
        hit = dist <= PCKH
        pck = hit.sum(2) / np.maximum(has_gt.sum(1), 1)[None]
        assigned = np.zeros(has_pred.shape, bool)
        for p, g in zip(*linear_sum_assignment(pck, maximize=True), strict=True):
            assigned[p] = hit[p, g] if pck[p, g] > 0 else False
        raw["gt"] += has_gt.sum(0)
        for j in JOINTS:
            raw["scores"][j].append(pred[has_pred[:, j], j, 2])
            raw["hits"][j].append(assigned[has_pred[:, j], j])
            scored = np.flatnonzero(has_pred[:, j] & (pred[:, j, 2] >= threshold))
            rows = np.flatnonzero(has_gt[:, j])
            raw["mot"][j] += _track_joint(dist[np.ix_(scored, rows, [j])][:, :, 0].T,
                                          [gt_ids[g] for g in rows], [tracks[p] for p in scored], last[j])
    return raw


def _summary(raws: list[dict]) -> dict:
    """The reported metrics of pooled raw counts."""
    positives = sum(raw["gt"] for raw in raws)
    tp, misses, fps, switches = sum(raw["mot"] for raw in raws).T

    def share(num, den):
        return float(num / den) if den else float("nan")

    ap = {KEYPOINTS[j]: average_precision(np.concatenate([s for raw in raws for s in raw["scores"][j]]),
                                          np.concatenate([h for raw in raws for h in raw["hits"][j]]),
                                          int(positives[j])) for j in JOINTS}
    mota = {KEYPOINTS[j]: 1 - share(misses[j] + fps[j] + switches[j], positives[j]) for j in JOINTS}
    valid = [v for v in ap.values() if not np.isnan(v)]
    n, errors = positives[list(JOINTS)].sum(), (misses + fps + switches)[list(JOINTS)].sum()
    return {"mota": 1 - share(errors, n), "map": float(np.mean(valid)) if valid else float("nan"),
            "precision": share(tp.sum(), tp.sum() + fps.sum()), "recall": share(tp.sum(), n),
            "num_switches": int(switches.sum()), "num_misses": int(misses.sum()),
            "num_false_positives": int(fps.sum()), "num_gt_joints": int(n),
            "ap_per_joint": ap, "mota_per_joint": mota}


def posetrack_evaluate(gt: dict[str, tuple[dict, dict]], pred: dict[str, list],
                       score_threshold: float = 0.5) -> dict[str, dict]:
    """Per sequence and ``OVERALL`` (all pooled): mota, map, precision, recall, switches, per-joint AP/MOTA.

    ``gt[name] = (keypoints, head_boxes)``, both keyed ``(frame, id)``: ``(17, 3)`` ``x, y, v`` and
    ``(4,)`` ``x, y, w, h``; ``pred[name]`` lists ``(frame, track_id, (17, 3) x, y, score)``, frames 1-based.
    A sequence without predictions has only misses.
    """
    unknown = sorted(set(pred) - set(gt))
    if unknown:
        raise ValueError(f"predictions for sequences without ground truth: {', '.join(unknown)}")
    raws = {name: _sequence(name, *gt[name], pred.get(name, []), score_threshold) for name in sorted(gt)}
    out = {name: _summary([raw]) for name, raw in raws.items()}
    out["OVERALL"] = _summary(list(raws.values()))
    return out
