"""PoseTrack-18 data and metrics: JSON round trips, windows, errors, and hand-computed AP / MOTA cases."""

from __future__ import annotations

import json
import re

import motmetrics as mm
import numpy as np
import pytest

from evals.tasks.mot.data import MotSequence
from evals.tasks.posetrack.data import (
    PoseDataError,
    PoseSequence,
    head_box,
    read_posetrack,
    read_posetrack_dataset,
    write_posetrack,
    write_posetrack_results,
)
from evals.tasks.posetrack.figures import KEYPOINTS, synthetic_people
from evals.tasks.posetrack.metrics import JOINTS, PCKH, average_precision, posetrack_evaluate


@pytest.fixture(scope="module")
def seq():
    return synthetic_people("people-01", frames=12, height=120, width=160, people=3, seed=0)


@pytest.fixture(scope="module")
def written(seq, tmp_path_factory):
    return write_posetrack(seq, tmp_path_factory.mktemp("posetrack"))


def test_round_trip_keeps_keypoints_boxes_and_head_boxes(seq, written):
    root = written.parents[2]
    assert written == root / "annotations" / "val" / "people-01.json"
    document = json.loads(written.read_text())
    assert [c["keypoints"] for c in document["categories"]] == [list(KEYPOINTS)]
    assert document["images"][0]["file_name"] == "images/val/people-01/000000.jpg"
    assert (root / "images" / "val" / "people-01" / "000011.jpg").is_file()
    assert {a["track_id"] for a in document["annotations"]} == {0, 1, 2}
    assert all(len(a["keypoints"]) == 51 and len(a["bbox_head"]) == 4 for a in document["annotations"])

    back = read_posetrack(written)
    assert isinstance(back, PoseSequence) and isinstance(back, MotSequence) and back.name == "people-01"
    assert np.array_equal(back.gt[:, :8], seq.gt[:, :8]) and (back.gt[:, 8] == 1).all()
    assert back.keypoints.keys() == seq.keypoints.keys() == back.head_boxes.keys()
    for key, points in seq.keypoints.items():
        visible = points[:, 2] > 0
        assert np.array_equal(back.keypoints[key][:, 2], points[:, 2])
        assert np.array_equal(back.keypoints[key][visible], points[visible])
        assert (back.keypoints[key][~visible] == 0).all()  # unlabelled joints are 0, 0, 0 as in PoseTrack
        assert np.array_equal(back.head_boxes[key], head_box(points))
    top, bottom = seq.keypoints[(1, 1)][2, :2], seq.keypoints[(1, 1)][1, :2]
    side = np.hypot(*(top - bottom))
    assert np.allclose(back.head_boxes[(1, 1)], [*((top + bottom) / 2 - side / 2), side, side])
    assert back.frames.shape == seq.frames.shape and back.frames.dtype == np.float32
    assert np.abs(back.frames - seq.frames).mean() < 0.02

    again = write_posetrack(back, root / "copy")  # head boxes come from the sequence now
    assert json.loads(again.read_text())["annotations"] == document["annotations"]


def test_windows_and_dataset(seq, written):
    part = read_posetrack(written, start=3, max_frames=4)
    expected = seq.gt[(seq.gt[:, 0] >= 4) & (seq.gt[:, 0] <= 7)]
    assert part.frames.shape == (4, 3, 120, 160)
    assert np.array_equal(part.gt[:, 0], expected[:, 0] - 3)
    assert np.array_equal(part.gt[:, 1:6], expected[:, 1:6])
    assert set(part.keypoints) == {(int(f) - 3, int(i)) for f, i in expected[:, :2]} == set(part.head_boxes)
    assert np.array_equal(part.keypoints[(1, 1)][:, 2], seq.keypoints[(4, 1)][:, 2])
    assert len(read_posetrack(written, start=10).frames) == 2

    root = written.parents[2]
    write_posetrack(synthetic_people("people-00", frames=3, height=64, width=64, people=1, seed=3), root)
    write_posetrack(synthetic_people("people-00", frames=2, height=64, width=64, people=1, seed=3), root)
    assert sorted(p.name for p in (root / "images" / "val").iterdir()) == ["people-00", "people-01"]
    dataset = read_posetrack_dataset(root, max_frames=5)
    assert [(s.name, len(s.frames)) for s in dataset] == [("people-00", 2), ("people-01", 5)]
    with pytest.raises(PoseDataError, match="start=12, max_frames=None selects no frame of a 12-frame"):
        read_posetrack(written, start=12)
    with pytest.raises(PoseDataError, match="no such annotation folder"):
        read_posetrack_dataset(root, split="test")


def _edit(change):
    def breakage(path):
        document = json.loads(path.read_text())
        change(document)
        path.write_text(json.dumps(document))
    return breakage


def _pop(entry, key):
    entry.pop(key)


ERRORS = [  # (what to break, pattern after the file name; None names the first image)
    (lambda p: p.write_text("{images: oops"), "not a JSON file"),
    (lambda p: p.write_text("[1, 2]"), "keypoint JSON without the expected fields (no 'images' list)"),
    (_edit(lambda d: _pop(d, "annotations")), "keypoint JSON without the expected fields (no 'annotations'"),
    (_edit(lambda d: _pop(d["annotations"][1], "keypoints")),
     "keypoint JSON without the expected fields (annotations[1] has no 'keypoints')"),
    (_edit(lambda d: _pop(d["annotations"][0], "track_id")), "(annotations[0] has no 'track_id')"),
    (_edit(lambda d: _pop(d["annotations"][0], "image_id")), "(annotations[0] has no 'image_id')"),
    (_edit(lambda d: d["annotations"][0]["keypoints"].pop()),
     "annotation 0 has 50 'keypoints' values, expected 51 finite ones (17 x, y, v)"),
    (_edit(lambda d: d["annotations"][0].update(keypoints=["a"] * 51)), "annotation 0 has a non-numeric"),
    (_edit(lambda d: d["annotations"][0].update(bbox_head=[1, 2, 3])), "3 'bbox_head' values, expected 4"),
    (_edit(lambda d: d["annotations"][2].update(image_id=7)), "annotation 2 refers to unknown image_id 7"),
    (_edit(lambda d: d.update(images=[])), "no images listed"),
    (_edit(lambda d: d["annotations"].append(d["annotations"][0])), "repeats track_id"),
    (lambda p: (p.parents[2] / "images" / "val" / "people-00" / "000000.jpg").unlink(),
     None),
]


@pytest.mark.parametrize("breakage, message", ERRORS)
def test_errors_name_the_file(tmp_path, breakage, message):
    small = synthetic_people("people-00", frames=3, height=64, width=64, people=2, seed=1)
    path = write_posetrack(small, tmp_path)
    breakage(path)
    with pytest.raises(PoseDataError) as error:
        read_posetrack(path)
    text = str(error.value)
    file = tmp_path / "images" / "val" / "people-00" / "000000.jpg" if message is None else path
    assert "\n" not in text and text.startswith(f"{file}: "), text
    assert message is None or message in text, text
    with pytest.raises(PoseDataError, match=re.escape(f"{tmp_path / 'x.json'}: no such annotation file")):
        read_posetrack(tmp_path / "x.json")


def test_results_json(tmp_path, seq):
    path = tmp_path / "out" / "people-01.json"
    pose = np.column_stack([np.arange(17.0), np.arange(17.0) * 2, np.linspace(0, 1, 17)])
    write_posetrack_results(path, "people-01", 12, [(1, 5, pose), (12, 7, pose)])
    document = json.loads(path.read_text())
    gt = json.loads(write_posetrack(seq, tmp_path / "gt").read_text())
    assert document["images"] == gt["images"] and document["categories"] == gt["categories"]
    first, last = document["annotations"]
    assert first["image_id"] == gt["images"][0]["id"] and last["image_id"] == gt["images"][11]["id"]
    assert (first["track_id"], last["track_id"]) == (5, 7)
    assert first["keypoints"] == pose.ravel().tolist() and first["scores"] == pose[:, 2].tolist()
    assert sorted(p.name for p in path.parent.iterdir()) == ["people-01.json"]
    with pytest.raises(ValueError, match=re.escape(f"{path}: person 0 has frame 13 (expected 1..12)")):
        write_posetrack_results(path, "people-01", 12, [(13, 1, pose)])


# Hand-made scenes: people 100 px apart, 10x10 head boxes, so PCKh@0.5 accepts 0.5 * 0.6 * 14.14 = 4.24 px.
REACH = PCKH * 0.6 * np.hypot(10, 10)


def scene(frames: int, people: int = 2, gap: float = 100.0):
    """``people`` walkers ``gap`` px apart with all 15 annotated joints visible, 10x10 head boxes."""
    keypoints, heads = {}, {}
    for t in range(1, frames + 1):
        for i in range(1, people + 1):
            pose = np.zeros((17, 3))
            pose[:, 0], pose[:, 1] = gap * i + 3 * np.arange(17) + 2 * t, 5 * np.arange(17)
            pose[list(JOINTS), 2] = 1
            keypoints[(t, i)], heads[(t, i)] = pose, np.array([pose[2, 0], 0, 10, 10])
    return keypoints, heads


def perfect(keypoints, tracks=None):
    """Predictions on the gt joints, score = visibility, track ids from ``tracks[(frame, id)]``."""
    return [(f, (tracks or {}).get((f, i), i), pose.copy()) for (f, i), pose in sorted(keypoints.items())]


def test_perfect_predictions(seq):
    heads = {key: head_box(points) for key, points in seq.keypoints.items()}
    result = posetrack_evaluate({"s": (seq.keypoints, heads)}, {"s": perfect(seq.keypoints)})
    for name in ("s", "OVERALL"):
        r = result[name]
        assert (r["mota"], r["map"], r["precision"], r["recall"], r["num_switches"]) == (1, 1, 1, 1, 0)
    assert set(result["s"]["ap_per_joint"]) == set(KEYPOINTS) - {"left_ear", "right_ear"}
    assert all(v == 1 for v in result["s"]["mota_per_joint"].values())


def test_shifted_person_gives_misses_and_false_positives():
    keypoints, heads = scene(4)
    pred = perfect(keypoints)
    for frame, track, pose in pred:
        if track == 2 and frame in (2, 3):
            pose[:, 0] += 2 * REACH
            pose[JOINTS, 2] = 0.9  # still counts for MOTA, ranks below every hit for AP
    r = posetrack_evaluate({"s": (keypoints, heads)}, {"s": pred})["OVERALL"]
    # per joint: 8 gt joints, 6 hits, 2 misses and 2 false positives; person 2 found again is no switch
    assert r["num_misses"] == r["num_false_positives"] == 2 * 15 and r["num_switches"] == 0
    assert r["mota"] == pytest.approx(1 - (30 + 30) / 120) and r["precision"] == r["recall"] == 0.75
    assert all(v == pytest.approx(0.5) for v in r["mota_per_joint"].values())
    # per joint the 6 hits (score 1) rank first: precision 1 up to recall 6/8, nothing after
    assert r["map"] == pytest.approx(0.75) and r["ap_per_joint"]["nose"] == pytest.approx(0.75)


def test_identity_swap_counts_a_switch_per_joint_and_person():
    keypoints, heads = scene(6)
    swapped = {(f, i): 3 - i for f, i in keypoints if f >= 4}
    r = posetrack_evaluate({"s": (keypoints, heads)}, {"s": perfect(keypoints, swapped)})["s"]
    # from frame 4 each gt person's joints are on the other track: 2 switches per joint type, then none
    assert r["num_switches"] == 2 * 15 and r["num_misses"] == r["num_false_positives"] == 0
    assert r["mota"] == pytest.approx(1 - 30 / 180) and r["map"] == 1
    assert all(v == pytest.approx(1 - 2 / 12) for v in r["mota_per_joint"].values())


def test_scores_below_threshold_do_not_count_for_mota():
    keypoints, heads = scene(3)
    pred = perfect(keypoints)
    pred[0][2][JOINTS, 2] = 0.3  # person 1 of frame 1
    pred.append((2, 9, keypoints[(2, 1)] * [1, 1, 0.95] + [50, 0, 0]))  # a spurious person, 50 px off
    pred.append((5, 9, keypoints[(2, 1)]))  # a frame without gt is not evaluated
    low = posetrack_evaluate({"s": (keypoints, heads)}, {"s": pred})["s"]
    assert low["num_misses"] == 15 and low["num_false_positives"] == 15
    assert low["mota"] == pytest.approx(1 - 30 / 90)
    kept = posetrack_evaluate({"s": (keypoints, heads)}, {"s": pred}, score_threshold=0.2)["s"]
    assert kept["num_misses"] == 0 and kept["mota"] == pytest.approx(1 - 15 / 90)
    # AP ranks every scored joint: per joint 5 hits at 1, the false positive at 0.95, the last hit at 0.3
    assert low["ap_per_joint"]["nose"] == pytest.approx(5 / 6 + 1 / 6 * 6 / 7) == kept["map"]


def test_average_precision_by_hand():
    # hits at ranks 1, 3, 5 of 4 positives: precision 1, 2/3, 3/5 at recall 1/4, 1/2, 3/4
    ap = average_precision(np.array([0.9, 0.8, 0.7, 0.6, 0.5]), np.array([1, 0, 1, 0, 1]), 4)
    assert ap == pytest.approx((1 + 2 / 3 + 3 / 5) / 4)
    # interpolated: the miss first does not lower recall 1/2, precision there is max(1/2, 2/3)
    assert average_precision(np.array([0.9, 0.5, 0.4]), np.array([0, 1, 1]), 2) == pytest.approx(2 / 3)
    assert average_precision(np.array([0.2, 0.9]), np.array([1, 0]), 1) == pytest.approx(0.5)  # by score
    assert np.isnan(average_precision(np.zeros(0), np.zeros(0), 0))
    assert average_precision(np.zeros(0), np.zeros(0), 3) == 0


def test_mot_counts_agree_with_motmetrics():
    """poseval feeds motmetrics one accumulator per joint; random jitter, drops and swaps must agree."""
    rng = np.random.default_rng(0)
    keypoints, heads = scene(20, people=3, gap=4.0)  # joints of neighbours compete for matches
    pred = []
    for (f, i), pose in sorted(keypoints.items()):
        pose = pose.copy()
        pose[:, :2] += rng.normal(0, 2.5, (17, 2))
        pose[:, 2] = rng.uniform(0, 1, 17) * pose[:, 2]
        pred.append((f, (i % 3) + 1 if 8 <= f < 14 else i, pose))
    r = posetrack_evaluate({"s": (keypoints, heads)}, {"s": pred})["s"]
    totals = np.zeros(3)
    for j in JOINTS:
        acc = mm.MOTAccumulator(auto_id=True)
        for f in range(1, 21):
            gt = [(i, keypoints[(f, i)]) for i in range(1, 4)]
            hyp = [(t, p) for g, t, p in pred if g == f and p[j, 2] >= 0.5]
            dist = np.full((len(gt), len(hyp)), np.nan)
            for a, (_, g) in enumerate(gt):
                for b, (_, p) in enumerate(hyp):
                    d = np.hypot(*(p[j, :2] - g[j, :2])) / (0.6 * np.hypot(10, 10))
                    dist[a, b] = d if d <= PCKH else np.nan
            acc.update([i for i, _ in gt], [t for t, _ in hyp], dist)
        m = mm.metrics.create().compute(acc, metrics=["num_misses", "num_false_positives", "num_switches"])
        totals += m[["num_misses", "num_false_positives", "num_switches"]].iloc[0].to_numpy()
    assert r["num_switches"] > 0 and r["num_misses"] > 0
    assert (r["num_misses"], r["num_false_positives"], r["num_switches"]) == tuple(totals)


def test_evaluation_input_errors():
    keypoints, heads = scene(2)
    with pytest.raises(ValueError, match="gt person 2 of frame 1 has no head box"):
        posetrack_evaluate({"s": (keypoints, {(1, 1): heads[(1, 1)]})}, {})
    with pytest.raises(ValueError, match="predictions for sequences without ground truth: t"):
        posetrack_evaluate({"s": (keypoints, heads)}, {"t": []})
    with pytest.raises(ValueError, match="s: predicted person 0 has pose shape"):
        posetrack_evaluate({"s": (keypoints, heads)}, {"s": [(1, 1, np.zeros((15, 3)))]})
    empty = posetrack_evaluate({"s": (keypoints, heads)}, {})["OVERALL"]
    assert empty["mota"] == 0 and empty["recall"] == 0 and empty["map"] == 0 and np.isnan(empty["precision"])
