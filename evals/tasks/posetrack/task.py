"""The PoseTrack task: person association by appearance plus pose similarity, keypoints propagated
by feature affinity, on the shared appearance model.

Each frame brings person detections with poses.  On the built-in and PoseTrack data they are the
annotated people (ViStream's protocol uses ground-truth boxes) with a pose estimator's typical
misses: each visible joint is dropped with probability ``JOINT_MISS`` (seeded).  Per frame:

1. every live track's last pose is propagated into the new frame: each joint's feature vector in the
   previous frame is compared with the new frame's features within ``RADIUS`` cells, and the joint
   moves to the softmax-weighted mean of the ``TOP_K`` best positions (the label propagation of the
   VOS head, applied to points); the weight of the best match is the joint's confidence;
2. detections are assigned to tracks (deep-sort-realtime's tracker, as in MOT) on a cost fusing the
   appearance distance of the detections' embeddings with ``1 - OKS`` between the propagated pose
   and the detected one;
3. a track's pose in the new frame is its detection's joints, with the joints the detection missed
   filled in from the propagated pose.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from evals.harness.config import EvalConfig
from evals.harness.tasks import Column, Task, correspondence_features, same_records
from evals.tasks.mot.tracker import JDETracker, embed
from evals.tasks.posetrack.data import PoseSequence, head_box, read_posetrack_dataset, write_posetrack_results
from evals.tasks.posetrack.figures import KEYPOINTS, synthetic_people
from evals.tasks.posetrack.metrics import posetrack_evaluate

JOINT_MISS = 0.2
TOP_K = 5
TEMPERATURE = 0.05
RADIUS = 4  # feature cells a joint may move per frame
POSE_WEIGHT = 0.4  # share of 1 - OKS in the association cost (appearance takes the rest)
# COCO's per-keypoint OKS constants; PoseTrack's head_bottom takes the shoulders', head_top the ears'.
_SIGMA = {"nose": 0.026, "head_bottom": 0.079, "head_top": 0.035, "left_ear": 0.035, "right_ear": 0.035,
          "shoulder": 0.079, "elbow": 0.072, "wrist": 0.062, "hip": 0.107, "knee": 0.087, "ankle": 0.089}
SIGMAS = np.array([_SIGMA.get(k, _SIGMA.get(k.split("_")[-1], 0.0)) for k in KEYPOINTS])


def oks(a: np.ndarray, b: np.ndarray, area: float) -> float:
    """Object keypoint similarity of two ``(17, 3)`` poses (``x, y, score``) over the joints both have."""
    both = (a[:, 2] > 0) & (b[:, 2] > 0)
    if not both.any() or area <= 0:
        return 0.0
    d2 = ((a[both, :2] - b[both, :2]) ** 2).sum(1)
    return float(np.exp(-d2 / (2 * area * (2 * SIGMAS[both]) ** 2)).mean())


def detected_poses(seq: PoseSequence, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per frame: person boxes ``(N, 4)`` and poses ``(N, 17, 3)`` (``x, y, score``; missed joints 0)."""
    rng = np.random.default_rng(seed)
    out = []
    for t in range(1, len(seq.frames) + 1):
        rows = seq.gt[seq.gt[:, 0] == t]
        poses = np.array([seq.keypoints[(t, int(i))] for i in rows[:, 1]]).reshape(-1, len(KEYPOINTS), 3)
        poses[:, :, 2] *= rng.random(poses.shape[:2]) >= JOINT_MISS
        poses[poses[:, :, 2] == 0, :2] = 0.0
        out.append((rows[:, 2:6].astype(float), poses))
    return out


class PoseTracker(JDETracker):
    """JDE association whose appearance cost also weighs ``1 - OKS`` between each track's propagated
    pose and the detected poses; the motion model only gates (no motion term in the cost)."""

    def __init__(self) -> None:
        super().__init__(appearance_weight=1.0)
        self.predicted: dict[int, np.ndarray] = {}
        self.detected = np.zeros((0, 17, 3))

    def appearance_cost(self, tracks, dets, track_indices, detection_indices) -> np.ndarray:
        cost = super().appearance_cost(tracks, dets, track_indices, detection_indices)
        for row, t in enumerate(track_indices):
            pose = self.predicted.get(tracks[t].track_id)
            for col, d in enumerate(detection_indices):
                area = dets[d].ltwh[2] * dets[d].ltwh[3]
                similarity = 0.0 if pose is None else oks(pose, self.detected[dets[d].others], area)
                cost[row, col] = (1 - POSE_WEIGHT) * cost[row, col] + POSE_WEIGHT * (1 - similarity)
        return cost


class PoseHead:
    """Tracks people and their keypoints through one sequence."""

    def __init__(self, seq: PoseSequence, detections: list[tuple[np.ndarray, np.ndarray]]) -> None:
        self.frame_size, self.detections = tuple(seq.frames.shape[-2:]), detections
        self.tracker = PoseTracker()
        self.poses: dict[int, np.ndarray] = {}  # track id -> last pose (x, y, score)
        self.previous: torch.Tensor | None = None
        self.people: list[tuple[int, int, np.ndarray]] = []  # (frame, track id, pose)

    def step(self, t: int, raw: torch.Tensor) -> None:
        features = correspondence_features(raw)[0]
        propagated = {} if self.previous is None else {
            track: self._propagate(pose, self.previous, features) for track, pose in self.poses.items()}
        boxes, poses = self.detections[t]
        self.tracker.predicted, self.tracker.detected = propagated, poses
        tracked = self.tracker.step(boxes, np.ones(len(boxes)), embed(raw, boxes, self.frame_size))
        for track, *_, index in tracked:
            track, pose = int(track), poses[int(index)].copy()
            guess = propagated.get(track)
            if guess is not None:
                missed = pose[:, 2] == 0
                pose[missed] = guess[missed]
            self.poses[track] = pose
            self.people.append((t + 1, track, pose))
        live = {int(r[0]) for r in tracked}
        self.poses = {k: v for k, v in self.poses.items() if k in live}
        self.previous = features

    def _propagate(self, pose: np.ndarray, before: torch.Tensor, now: torch.Tensor) -> np.ndarray:
        """Each scored joint moved to where the new frame's features best match its old ones."""
        c, h, w = now.shape
        height, width = self.frame_size
        out = np.zeros_like(pose)
        ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        cells = torch.stack([ys, xs], -1).reshape(-1, 2)
        for j in np.flatnonzero(pose[:, 2] > 0):
            # joint position in feature cells (cell centres at integer + 0.5 in frame scale)
            fy, fx = pose[j, 1] * h / height - 0.5, pose[j, 0] * w / width - 0.5
            grid = torch.tensor([[[[2 * (fx + 0.5) / w - 1, 2 * (fy + 0.5) / h - 1]]]], dtype=now.dtype)
            key = F.grid_sample(before[None], grid, align_corners=False)[0, :, 0, 0]
            near = ((cells[:, 0] - fy) ** 2 + (cells[:, 1] - fx) ** 2) <= RADIUS**2
            if not near.any():
                continue
            candidates = cells[near]
            similarity = key @ now.reshape(c, -1)[:, near]
            top, index = similarity.topk(min(TOP_K, len(similarity)))
            weights = torch.softmax(top / TEMPERATURE, 0)
            where = (weights[:, None] * candidates[index].double()).sum(0)
            out[j] = ((where[1] + 0.5) * width / w, (where[0] + 0.5) * height / h, float(top[0].clamp(0, 1)))
        return out

    def output(self) -> list[tuple[int, int, np.ndarray]]:
        return self.people

    def same_as(self, other: PoseHead) -> bool:
        return same_records(self.people, other.people)


def synthetic_pose_dataset(sequences: int = 2, seed: int = 0,
                           frames: int | None = None) -> list[PoseSequence]:
    """Walking people (:func:`evals.tasks.posetrack.figures.synthetic_people`) with PoseTrack head boxes."""
    out = []
    for i in range(sequences):
        seq = synthetic_people(name=f"pose-{i + 1:02d}", frames=frames or 40, seed=seed + i)
        out.append(PoseSequence(**vars(seq), head_boxes={k: head_box(p) for k, p in seq.keypoints.items()}))
    return out


def load_sequences(config: EvalConfig) -> list[PoseSequence]:
    if config.source == "synthetic":
        return synthetic_pose_dataset(seed=config.seed, frames=config.frames)
    return read_posetrack_dataset(Path(config.source), start=config.start, max_frames=config.frames)


def _summarise(heads: dict[str, PoseHead], sequences: list[PoseSequence]) -> dict:
    gt = {s.name: (s.keypoints, s.head_boxes) for s in sequences}
    return posetrack_evaluate(gt, {name: head.output() for name, head in heads.items()})


def _write(folder: Path, name: str, people: list) -> None:
    last = max((frame for frame, _, _ in people), default=1)
    write_posetrack_results(folder / f"{name}.json", name, last, people)


def posetrack_task(config: EvalConfig) -> Task:
    return Task("posetrack", load_sequences, PoseHead, _summarise, _write,
                (Column("MOTA", "mota"), Column("mAP", "map"), Column("switches", "num_switches", ".0f"),
                 Column("Prec", "precision"), Column("Rec", "recall")),
                prepare=lambda seq, c: detected_poses(seq, c.seed))
