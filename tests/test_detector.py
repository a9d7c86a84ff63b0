"""The HOG people detector on synthetic walkers, and the walkers' own ground truth."""

import numpy as np
import pytest

from evals.tasks.mot.detector import HogPeopleDetector
from evals.tasks.mot.metrics import box_iou
from evals.tasks.posetrack.figures import KEYPOINTS, UNANNOTATED, synthetic_people


@pytest.fixture(scope="module")
def walkers():
    return synthetic_people(frames=24, height=240, width=320, people=4, seed=0)


def test_walkers_ground_truth_is_consistent(walkers):
    gt = walkers.gt
    assert gt.shape[1] == 9 and set(gt[:, 1]) == {1, 2, 3, 4}
    first, last = (set(gt[gt[:, 0] == f, 1]) for f in (1, 24))
    assert first != last  # someone enters or leaves
    ears = [KEYPOINTS.index(k) for k in UNANNOTATED]
    for frame, ident, x, y, w, h, *_ in gt:
        key = (int(frame), int(ident))
        points, mask = walkers.keypoints[key], walkers.masks[key]
        assert points.shape == (17, 3) and not points[ears, 2].any()
        seen = points[points[:, 2] == 1]
        assert np.all((seen[:, 0] >= x - 2) & (seen[:, 0] <= x + w + 2) & (seen[:, 1] >= y - 2)
                      & (seen[:, 1] <= y + h + 2))
        ys, xs = np.nonzero(mask)
        if len(xs):  # visible pixels lie inside the full-figure box
            assert xs.min() >= x and xs.max() < x + w and ys.min() >= y and ys.max() < y + h
    # occlusion hides joints: some person is less than fully visible in some frame
    assert (gt[:, 8] < 0.9).any()


def test_hog_finds_most_walkers_and_little_else(walkers):
    rows = HogPeopleDetector().detect_video(walkers.frames)
    assert rows.shape[1] == 7 and set(rows[:, 1]) == {-1}
    found = missed = false = 0
    for t in range(1, 25):
        gt = walkers.gt[walkers.gt[:, 0] == t]
        whole = gt[(gt[:, 8] > 0.6) & (gt[:, 2] >= 0) & (gt[:, 2] + gt[:, 4] <= 320)]
        det = rows[rows[:, 0] == t, 2:6]
        hit = box_iou(whole[:, 2:6], det) >= 0.5
        found += hit.any(1).sum()
        missed += (~hit.any(1)).sum()
        false += (box_iou(gt[:, 2:6], det).max(0, initial=0) < 0.3).sum()
    assert found / (found + missed) >= 0.35 and false <= 0.2 * (found + false)


def test_blank_frame_has_no_people():
    boxes, scores = HogPeopleDetector().detect(np.full((3, 240, 320), 0.5, dtype=np.float32))
    assert boxes.shape == (0, 4) and scores.shape == (0,)
