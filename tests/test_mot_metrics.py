"""MOT metrics against motmetrics' own worked example and hand-computed cases."""

from pathlib import Path

import motmetrics
import numpy as np
import pytest

from evals.tasks.mot.metrics import accumulate, scored_ground_truth, summarise

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


def _track(frames, ident, x=0.0):
    return np.array([[f, ident, x, 0, 10, 10, 1, 1, 1] for f in frames], dtype=float)


def test_hota_hand_computed():
    gt = _track([1, 2, 3, 4], 1)
    assert summarise({"s": accumulate(gt, gt[:, :6])})["s"]["hota"] == pytest.approx(1.0)

    # an identity switch halfway: every detection matches (DetA 1) but each track covers half of
    # the object, so each match has association IoU 2 / (4 + 2 - 2) = 0.5: HOTA = sqrt(0.5)
    switched = np.concatenate([_track([1, 2], 7), _track([3, 4], 8)])[:, :6]
    m = summarise({"s": accumulate(gt, switched)})["s"]
    assert (m["deta"], m["assa"]) == pytest.approx((1.0, 0.5))
    assert m["hota"] == pytest.approx(np.sqrt(0.5)) and m["num_switches"] == 1

    # the second box overlaps with IoU 0.6 (shifted 2.5 px): a match for the 12 thresholds
    # 0.05..0.60, a miss and a false positive (DetA = AssA = 1/3) for the 7 above
    gt2, hyp = _track([1, 2], 1), _track([1, 2], 5)[:, :6]
    hyp[1, 2] = 2.5
    m = summarise({"s": accumulate(gt2, hyp)})["s"]
    assert m["hota"] == pytest.approx((12 + 7 / 3) / 19)
    assert m["loca"] == pytest.approx((12 * 0.8 + 7 * 1.0) / 19)

    # OVERALL combines sequences by TrackEval's detection-weighted rule, not a plain mean
    both = summarise({"a": accumulate(gt, switched), "b": accumulate(gt2, hyp)})
    assert both["OVERALL"]["hota"] != pytest.approx((both["a"]["hota"] + both["b"]["hota"]) / 2)
    assert 0.7 < both["OVERALL"]["hota"] < 0.8
