"""MOT metrics against motmetrics' own worked example and hand-computed cases."""

from pathlib import Path

import motmetrics
import numpy as np
import pytest

from evals.mot_metrics import accumulate, scored_ground_truth, summarise

TUD = Path(motmetrics.__file__).parent / "data"


def _rows(path: Path) -> np.ndarray:
    return np.loadtxt(path, delimiter=",", ndmin=2)


def test_tud_campus_gives_the_values_motmetrics_documents():
    """motmetrics' test suite expects these for its shipped TUD-Campus files."""
    acc = accumulate(_rows(TUD / "TUD-Campus" / "gt.txt"), _rows(TUD / "TUD-Campus" / "test.txt"))
    metrics = summarise({"TUD-Campus": acc})["TUD-Campus"]
    assert metrics["mota"] == pytest.approx(0.526462, abs=1e-6)
    assert metrics["idf1"] == pytest.approx(0.557659, abs=1e-6)
    assert metrics["num_switches"] == 7


def test_hand_computed_switch_miss_and_false_positive():
    gt = np.array([[1, 1, 0, 0, 10, 10, 1, 1, 1], [1, 2, 50, 0, 10, 10, 1, 1, 1],
                   [2, 1, 0, 0, 10, 10, 1, 1, 1], [2, 2, 50, 0, 10, 10, 1, 1, 1]], dtype=float)
    tracks = np.array([[1, 7, 0, 0, 10, 10], [1, 8, 50, 0, 10, 10],  # both right
                       [2, 8, 0, 0, 10, 10],                        # id switch on object 1, miss of 2
                       [2, 9, 100, 100, 10, 10]], dtype=float)      # a false positive
    metrics = summarise({"s": accumulate(gt, tracks)})["s"]
    assert metrics["num_switches"] == 1 and metrics["num_misses"] == 1
    assert metrics["num_false_positives"] == 1
    assert metrics["mota"] == pytest.approx(1 - 3 / 4)


def test_ignored_rows_and_other_classes_are_not_scored():
    gt = np.array([[1, 1, 0, 0, 10, 10, 1, 1, 1], [1, 2, 0, 0, 10, 10, 0, 1, 1],
                   [1, 3, 0, 0, 10, 10, 1, 7, 1]], dtype=float)
    assert scored_ground_truth(gt)[:, 1].tolist() == [1]
    mot15 = np.array([[1, 1, 0, 0, 10, 10, 1, -1, -1, -1]], dtype=float)
    assert len(scored_ground_truth(mot15)) == 1
