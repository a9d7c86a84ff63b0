"""SOT data and metrics: the synthetic generator's promises, OTB round trips and files, errors, OPE scores."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from evals.tasks.sot.data import (
    SotDataError,
    SotSequence,
    read_otb,
    read_otb_dataset,
    synthetic_sot,
    synthetic_sot_dataset,
    write_otb,
    write_otb_results,
)
from evals.tasks.sot.metrics import center_error, iou, sot_sequence_metrics, sot_summarise


@pytest.fixture(scope="module")
def seq():
    return synthetic_sot(frames=30)


@pytest.fixture(scope="module")
def written(seq, tmp_path_factory):
    return write_otb(seq, tmp_path_factory.mktemp("otb")), seq


def _folder(tmp_path: Path, lines: str, images: int = 3) -> Path:
    """A small OTB folder: ``images`` frames of a synthetic sequence and the given box file text."""
    path = write_otb(synthetic_sot("seq", frames=images, height=32, width=32), tmp_path)
    (path / "groundtruth_rect.txt").write_text(lines)
    return path


def test_generator_is_deterministic_per_seed(seq):
    again, other = synthetic_sot(frames=30), synthetic_sot(frames=30, seed=1)
    assert np.array_equal(seq.frames, again.frames) and np.array_equal(seq.boxes, again.boxes)
    assert not np.array_equal(seq.frames, other.frames)
    assert seq.frames.shape == (30, 3, 120, 160) and seq.frames.dtype == np.float32
    assert seq.boxes.shape == (30, 4) and 0.0 <= seq.frames.min() and seq.frames.max() <= 1.0
    dataset = synthetic_sot_dataset(2, seed=3, frames=5)
    assert [s.name for s in dataset] == ["sot-01", "sot-02"]
    assert np.array_equal(dataset[1].boxes, synthetic_sot(frames=5, seed=4).boxes)


@pytest.mark.parametrize("seed", range(4))
def test_target_changes_scale_moves_smoothly_and_is_partly_occluded(seed):
    s = synthetic_sot(seed=seed)
    x, y, w, h = s.boxes.T
    assert 1.2 <= h.max() / h.min() <= 1.45 and 1.2 <= w.max() / w.min() <= 1.45  # about 30 %
    assert (h >= 0.15 * 120).all() and (h <= 0.3 * 120).all()
    assert ((x + w > 0) & (x < 160) & (y + h > 0) & (y < 120)).all()
    centres = s.boxes[:, :2] + s.boxes[:, 2:] / 2
    assert np.abs(np.diff(centres, axis=0)).max() <= 4  # a few pixels a frame at most
    assert np.ptp(centres[:, 0]) > 10 or np.ptp(centres[:, 1]) > 10
    assert 0.55 <= s.visible.min() <= 0.8  # a distractor hides up to ~40 % of the target
    assert (s.visible == 1).mean() > 0.5


def test_target_colour_stands_out_inside_its_box(seq):
    x, y, w, h = seq.boxes[0].astype(int)
    inside = seq.frames[0][:, y:y + h, x:x + w].reshape(3, -1).mean(axis=1)
    background = seq.frames[0].reshape(3, -1).mean(axis=1)
    assert np.abs(inside - background).max() > 0.15


def test_round_trip_keeps_boxes_exactly_and_frames_within_jpeg_error(written):
    path, seq = written
    assert sorted(p.name for p in (path / "img").iterdir())[:2] == ["0001.jpg", "0002.jpg"]
    first = (path / "groundtruth_rect.txt").read_text().splitlines()[0]
    x, y, w, h = seq.boxes[0]
    assert first == f"{x + 1:.0f},{y + 1:.0f},{w:.0f},{h:.0f}"  # 1-based on disk
    back = read_otb(path)
    assert back.name == seq.name and back.path == path and back.frame_rate == 25.0
    assert np.array_equal(back.boxes, seq.boxes)
    assert back.frames.shape == seq.frames.shape and np.abs(back.frames - seq.frames).mean() < 0.02
    assert [s.name for s in read_otb_dataset(path.parent)] == [seq.name]
    assert [s.name for s in read_otb_dataset(path)] == [seq.name]


def test_window_cuts_frames_and_boxes(written):
    path, seq = written
    part = read_otb(path, start=5, max_frames=4)
    assert len(part.frames) == 4 and np.array_equal(part.boxes, seq.boxes[5:9])
    assert np.abs(part.frames - seq.frames[5:9]).mean() < 0.02
    assert len(read_otb(path, start=25, max_frames=100).boxes) == 5
    with pytest.raises(SotDataError, match="selects no frame"):
        read_otb(path, start=30)


def test_write_otb_replaces_an_existing_folder(tmp_path):
    write_otb(synthetic_sot("a", frames=4, height=32, width=32), tmp_path)
    path = write_otb(synthetic_sot("a", frames=3, height=32, width=32, seed=1), tmp_path)
    assert len(read_otb(path).boxes) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["a"]


@pytest.mark.parametrize("separator", [",", "\t", " ", ", "])
def test_reader_accepts_comma_tab_and_space_separated_files(tmp_path, separator):
    lines = "".join(separator.join(row) + "\n" for row in (["3", "4", "10", "12.5"],) * 3)
    boxes = read_otb(_folder(tmp_path, lines)).boxes
    assert np.array_equal(boxes, np.tile([2.0, 3.0, 10.0, 12.5], (3, 1)))


def test_nan_boxes_after_the_first_mark_absent_targets(tmp_path):
    boxes = read_otb(_folder(tmp_path, "1,1,5,5\nNaN,NaN,NaN,NaN\n2,2,5,5\n")).boxes
    assert np.isnan(boxes[1]).all() and np.array_equal(boxes[2], [1, 1, 5, 5])


def test_results_file_is_one_based(tmp_path):
    write_otb_results(tmp_path / "out" / "seq.txt", np.array([[0.0, 1.5, 10.0, 20.0], [2.25, 3, 4, 5]]))
    assert (tmp_path / "out" / "seq.txt").read_text() == "1,2.5,10,20\n3.25,4,4,5\n"
    with pytest.raises(SotDataError, match=re.escape("seq.txt: tracker boxes must be (N, 4)")):
        write_otb_results(tmp_path / "seq.txt", np.zeros(4))


@pytest.mark.parametrize("lines, message", [
    ("1,1,5,5\n1,1,5\n1,1,5,5\n", r"groundtruth_rect.txt:2: expected 4 numbers x,y,w,h"),
    ("1,1,5,5\n1,1,5,5\n1,a,5,5\n", r"groundtruth_rect.txt:3: expected 4 numbers"),
    ("1,1,5,5\n\n1,1,0,5\n1,1,5,5\n", r"groundtruth_rect.txt:3: box width and height must be positive"),
    ("1,1,5,5\n1,1,5,-2\n1,1,5,5\n", r"groundtruth_rect.txt:2: box width and height must be positive"),
    ("1,1,5,5\n1,1,5,5\n", r"groundtruth_rect.txt: 2 boxes, but .*img holds 3 images"),
    ("NaN,NaN,NaN,NaN\n1,1,5,5\n1,1,5,5\n", r"groundtruth_rect.txt:1: no box for frame 1"),
    ("", r"groundtruth_rect.txt: empty, but the first frame's box"),
])
def test_malformed_box_files_name_file_and_line(tmp_path, lines, message):
    with pytest.raises(SotDataError, match=message) as info:
        read_otb(_folder(tmp_path, lines))
    assert "\n" not in str(info.value)


def test_window_start_needs_a_box(tmp_path):
    path = _folder(tmp_path, "1,1,5,5\nNaN NaN NaN NaN\n1,1,5,5\n")
    with pytest.raises(SotDataError, match=r"groundtruth_rect.txt:2: no box for frame 2"):
        read_otb(path, start=1)


def test_missing_files_are_named(tmp_path):
    path = _folder(tmp_path, "1,1,5,5\n1,1,5,5\n1,1,5,5\n")
    for image in (path / "img").iterdir():
        image.unlink()
    with pytest.raises(SotDataError, match=r"img: no image frames"):
        read_otb(path)
    (path / "img").rmdir()
    with pytest.raises(SotDataError, match=r"img: image folder missing"):
        read_otb(path)
    (path / "groundtruth_rect.txt").unlink()
    with pytest.raises(SotDataError, match=r"seq[/\\]groundtruth_rect.txt: missing"):
        read_otb(path)
    with pytest.raises(SotDataError, match="no OTB sequence folders"):
        read_otb_dataset(tmp_path)
    with pytest.raises(SotDataError, match="no such dataset folder"):
        read_otb_dataset(tmp_path / "nothing")


def test_unreadable_image_is_named(tmp_path):
    path = _folder(tmp_path, "1,1,5,5\n1,1,5,5\n1,1,5,5\n")
    (path / "img" / "0002.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(SotDataError, match=r"0002.jpg: not a readable image"):
        read_otb(path)


def test_iou_and_center_error_by_hand():
    a = np.array([[0, 0, 20, 20], [0, 0, 20, 20], [0, 0, 10, 10], [0, 0, 4, 4]], dtype=float)
    b = np.array([[10, 0, 20, 20], [0, 0, 20, 20], [20, 20, 10, 10], [np.nan] * 4])
    assert np.allclose(iou(a, b), [1 / 3, 1, 0, 0])
    assert np.allclose(center_error(a, b)[:3], [10, 0, np.hypot(20, 20)]) and center_error(a, b)[3] == np.inf


def test_perfect_prediction_scores_twenty_of_twenty_one_thresholds():
    gt = np.tile([5.0, 5.0, 20.0, 20.0], (8, 1))
    m = sot_sequence_metrics(gt.copy(), gt)
    # IoU 1 passes "IoU > t" at t = 0, 0.05, ..., 0.95 but not at t = 1: 20 of the 21 thresholds
    assert m["auc"] == pytest.approx(20 / 21) and m["precision_20"] == 1.0 and m["success_50"] == 1.0
    assert m["frames"] == 8


def test_ten_pixel_shift_of_a_20px_box():
    gt = np.tile([5.0, 5.0, 20.0, 20.0], (6, 1))
    m = sot_sequence_metrics(gt + [10, 0, 0, 0], gt)
    # IoU = 200 / 600 = 1/3 exceeds t = 0, 0.05, ..., 0.30: 7 of 21; the 10 px centre error is <= 20
    assert m["auc"] == pytest.approx(7 / 21) and m["precision_20"] == 1.0 and m["success_50"] == 0.0
    shifted = sot_sequence_metrics(gt + [21, 0, 0, 0], gt)
    assert shifted["precision_20"] == 0.0 and shifted["auc"] == 0.0


def test_invalid_gt_frames_are_left_out():
    gt = np.array([[0, 0, 10, 10], [np.nan] * 4, [0, 0, 0, 10], [0, 0, 10, 10]], dtype=float)
    pred = np.array([[0, 0, 10, 10], [50, 50, 1, 1], [50, 50, 1, 1], [40, 40, 10, 10]], dtype=float)
    m = sot_sequence_metrics(pred, gt)
    assert m["frames"] == 2 and m["auc"] == pytest.approx(0.5 * 20 / 21) and m["precision_20"] == 0.5
    with pytest.raises(ValueError, match="one \\(N, 4\\) shape"):
        sot_sequence_metrics(pred[:3], gt)


def test_overall_averages_curves_per_sequence_not_frames():
    gt_a, gt_b = np.tile([0.0, 0.0, 20.0, 20.0], (2, 1)), np.tile([0.0, 0.0, 20.0, 20.0], (10, 1))
    out = sot_summarise({"a": (gt_a.copy(), gt_a), "b": (gt_b + [10, 0, 0, 0], gt_b)})
    assert out["a"]["auc"] == pytest.approx(20 / 21) and out["b"]["auc"] == pytest.approx(7 / 21)
    # each sequence weighs the same whatever its length: OVERALL is the mean of the sequences' scores
    assert out["OVERALL"]["auc"] == pytest.approx((20 / 21 + 7 / 21) / 2)
    assert out["OVERALL"]["success_50"] == pytest.approx(0.5) and out["OVERALL"]["frames"] == 12
    assert out["OVERALL"]["auc"] != pytest.approx((2 * 20 / 21 + 10 * 7 / 21) / 12)


def test_synthetic_sequence_fits_the_metrics(seq):
    m = sot_summarise({seq.name: (seq.boxes, seq.boxes)})
    assert m[seq.name]["auc"] == pytest.approx(20 / 21) and m["OVERALL"]["frames"] == len(seq.boxes)
    assert isinstance(SotSequence("x", seq.frames[:1], seq.boxes[:1]).frame_rate, float)
