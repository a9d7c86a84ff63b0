"""Synthetic walking people: articulated figures with PoseTrack-18 keypoints, masks and boxes.

Each person is a head, a torso and eight limb segments drawn between joints that swing with a
walking phase, in their own clothing colour, over a textured background.  The figures are
human-shaped enough for OpenCV's HOG people detector, so the same scenes test the detector path of
the MOT task, and their joints are the ground truth of the PoseTrack task.  The nearer person (feet
lower in the image) is drawn in front; a keypoint is visible when it lies inside the image and on
its own person's visible pixels or within a limb width of them.
"""

from __future__ import annotations

import colorsys

import cv2
import numpy as np

from evals.data.synthetic import texture
from evals.tasks.mot.data import MotSequence

# PoseTrack 2018 keypoints (COCO order, with head_bottom / head_top in place of the eyes).
KEYPOINTS = ("nose", "head_bottom", "head_top", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
             "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
             "right_knee", "left_ankle", "right_ankle")
UNANNOTATED = ("left_ear", "right_ear")  # PoseTrack 2018 never labels the ears
LIMBS = (("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"), ("right_shoulder", "right_elbow"),
         ("right_elbow", "right_wrist"), ("left_hip", "left_knee"), ("left_knee", "left_ankle"),
         ("right_hip", "right_knee"), ("right_knee", "right_ankle"))
STRIDE = 1.2  # one walking cycle (two steps) covers this many body heights
_K = {name: i for i, name in enumerate(KEYPOINTS)}


def walking_pose(cx: float, top: float, height: float, phase: float, facing: int = 1) -> np.ndarray:
    """``(17, 2)`` joint positions ``x, y`` of a walker ``height`` px tall, feet at ``top + height``.

    Legs and arms swing in opposite phase with ``sin(phase)``; ``facing`` (+1 right, -1 left) moves
    the nose to the front.  The person's left side is the image's right when facing the camera.
    """
    s, swing = height / 8.0, 0.9 * np.sin(phase) * height / 8.0
    p = np.zeros((len(KEYPOINTS), 2))
    p[_K["head_top"]] = cx, top
    p[_K["nose"]] = cx + 0.25 * s * facing, top + 0.6 * s
    p[_K["head_bottom"]] = cx, top + 1.1 * s
    p[_K["left_ear"]], p[_K["right_ear"]] = (cx + 0.4 * s, top + 0.55 * s), (cx - 0.4 * s, top + 0.55 * s)
    for side, sign in (("left", 1), ("right", -1)):
        p[_K[f"{side}_shoulder"]] = cx + sign * 0.7 * s, top + 1.5 * s
        p[_K[f"{side}_elbow"]] = cx + sign * 0.85 * s - sign * 0.5 * swing, top + 2.9 * s
        p[_K[f"{side}_wrist"]] = cx + sign * 0.9 * s - sign * 0.8 * swing, top + 4.1 * s
        p[_K[f"{side}_hip"]] = cx + sign * 0.4 * s, top + 4.0 * s
        p[_K[f"{side}_knee"]] = cx + sign * 0.4 * s + sign * 0.6 * swing, top + 5.9 * s
        p[_K[f"{side}_ankle"]] = cx + sign * 0.4 * s + sign * swing, top + 7.8 * s
    return p


def figure_mask(pose: np.ndarray, height: float, shape: tuple[int, int]) -> np.ndarray:
    """The pixels a walker of ``pose`` covers in an image of ``shape`` (H, W)."""
    s = height / 8.0
    canvas = np.zeros(shape, dtype=np.uint8)
    head = (pose[_K["head_top"]] + pose[_K["head_bottom"]]) / 2
    cv2.ellipse(canvas, _pt(head), (max(1, round(0.45 * s)), max(1, round(0.55 * s))), 0, 0, 360, 1, -1)
    torso = pose[[_K["left_shoulder"], _K["right_shoulder"], _K["right_hip"], _K["left_hip"]]]
    cv2.fillPoly(canvas, [np.round(torso).astype(np.int32)], 1)
    cv2.line(canvas, _pt(pose[_K["head_bottom"]]), _pt((torso[0] + torso[1]) / 2), 1, max(1, round(0.4 * s)))
    for a, b in LIMBS:
        width = 0.45 if "hip" in a or "knee" in a else 0.35
        cv2.line(canvas, _pt(pose[_K[a]]), _pt(pose[_K[b]]), 1, max(1, round(width * s)))
    return canvas.astype(bool)


def _pt(p: np.ndarray) -> tuple[int, int]:
    return int(round(p[0])), int(round(p[1]))


def synthetic_people(
    name: str = "people-01", frames: int = 40, height: int = 240, width: int = 320, people: int = 4,
    seed: int = 0, noise: float = 0.01,
) -> MotSequence:
    """A seeded walking-people sequence: gt boxes (MOT rows), instance masks and keypoints.

    ``keypoints[(frame, id)]`` is ``(17, 3)``: ``x, y, visible`` (visible 0/1; the ears always 0).
    People walk across at their own speed and height, some entering or leaving during the sequence.
    """
    if frames < 2 or height < 64 or width < 64 or people < 1:
        raise ValueError(f"synthetic people need frames >= 2, size >= 64x64 and people >= 1, got "
                         f"{frames}, {height}x{width}, {people}")
    rng = np.random.default_rng(seed)
    background = 0.35 + 0.5 * texture(rng, height, width)
    hues = rng.permutation(people) / people
    walkers = []
    for i in range(people):
        tall = rng.uniform(0.45, 0.7) * height
        speed = rng.uniform(0.006, 0.014) * width * rng.choice([-1, 1])
        outside = -0.15 * width if speed > 0 else 1.15 * width  # odd people walk in during the sequence
        start = rng.uniform(0.1, 0.9) * width if i % 2 == 0 else outside
        feet = rng.uniform(tall + 0.02 * height, 0.98 * height)
        colour = np.asarray(colorsys.hsv_to_rgb(hues[i], 0.75, rng.uniform(0.25, 0.6)))
        walkers.append((tall, speed, start, feet, colour, rng.uniform(0, 2 * np.pi)))

    video = np.empty((frames, 3, height, width), dtype=np.float32)
    gt, masks, keypoints = [], {}, {}
    for t in range(frames):
        frame = background.copy()
        labels = np.zeros((height, width), dtype=np.int32)
        shapes = []
        for tall, speed, start, feet, _, phase in walkers:
            cx = start + speed * t
            cycle = 2 * np.pi * abs(speed) * t / (STRIDE * tall)  # feet do not slide
            pose = walking_pose(cx, feet - tall, tall, phase + cycle, 1 if speed > 0 else -1)
            shapes.append((pose, figure_mask(pose, tall, (height, width))))
        for k in sorted(range(people), key=lambda k: (walkers[k][3], k)):  # far to near
            frame[:, shapes[k][1]] = walkers[k][4][:, None]
            labels[shapes[k][1]] = k + 1
        for k, (pose, full) in enumerate(shapes):
            if not full.any():
                continue
            visible = labels == k + 1
            ys, xs = np.nonzero(full)
            x0, y0 = xs.min(), ys.min()
            masks[(t + 1, k + 1)] = visible
            gt.append((t + 1, k + 1, x0, y0, xs.max() - x0 + 1, ys.max() - y0 + 1, 1, 1,
                       visible.sum() / full.sum()))
            keypoints[(t + 1, k + 1)] = _keypoints(pose, visible, walkers[k][0])
        frame += noise * rng.standard_normal(frame.shape)
        video[t] = np.clip(frame, 0.0, 1.0)
    gt = np.array(gt, dtype=np.float64).reshape(-1, 9)
    return MotSequence(name, video, 25.0, gt, None, masks, keypoints=keypoints)


def _keypoints(pose: np.ndarray, visible: np.ndarray, height: float) -> np.ndarray:
    """``(17, 3)``: a joint is visible where its own pixels lie within a limb width of it."""
    h, w = visible.shape
    reach = max(1, int(round(0.2 * height / 8.0)))
    out = np.zeros((len(KEYPOINTS), 3))
    out[:, :2] = pose
    for i, (x, y) in enumerate(np.round(pose).astype(int)):
        if KEYPOINTS[i] in UNANNOTATED or not (0 <= x < w and 0 <= y < h):
            continue
        out[i, 2] = visible[max(y - reach, 0):y + reach + 1, max(x - reach, 0):x + reach + 1].any()
    return out
