"""MOT data: the synthetic generator's promises, MOTChallenge round trips, public-format files, errors."""

import re

import cv2
import numpy as np
import pytest

from evals.data import files
from evals.tasks.mot.data import (
    MotDataError,
    boxes_at,
    read_mot,
    read_mot_dataset,
    synthetic_mot,
    synthetic_mot_dataset,
    write_mot,
)


@pytest.fixture(scope="module")
def seq():
    return synthetic_mot()


@pytest.fixture(scope="module")
def written(seq, tmp_path_factory):
    root = tmp_path_factory.mktemp("mot")
    return write_mot(seq, root), seq


def test_generator_is_deterministic_per_seed(seq):
    again, other = synthetic_mot(), synthetic_mot(seed=1)
    assert np.array_equal(seq.frames, again.frames) and np.array_equal(seq.gt, again.gt)
    assert np.array_equal(seq.det, again.det) and seq.masks.keys() == again.masks.keys()
    assert not np.array_equal(seq.frames, other.frames)
    assert seq.frames.shape == (40, 3, 120, 160) and seq.frames.dtype == np.float32
    assert 0.0 <= seq.frames.min() and seq.frames.max() <= 1.0
    names = [s.name for s in synthetic_mot_dataset(2, frames=5)]
    assert names == ["synth-01", "synth-02"]


def test_objects_are_pedestrian_like_and_enter_and_leave(seq):
    gt = seq.gt
    assert gt.shape[1] == 9 and set(np.unique(gt[:, 1])) == set(range(1, 7))
    assert (gt[:, 5] > gt[:, 4]).all()  # taller than wide, 20-45 % of the frame height
    assert (gt[:, 5] >= 0.2 * 120 - 1).all() and (gt[:, 5] <= 0.45 * 120 + 1).all()
    assert (gt[:, 6] == 1).all() and (gt[:, 7] == 1).all()
    first = {i: gt[gt[:, 1] == i, 0].min() for i in range(1, 7)}
    last = {i: gt[gt[:, 1] == i, 0].max() for i in range(1, 7)}
    assert any(f == 1 for f in first.values()) and any(f > 1 for f in first.values())
    assert any(f < 40 for f in last.values())
    for i in range(1, 7):  # one row per frame while present, no gaps
        frames = gt[gt[:, 1] == i, 0]
        assert np.array_equal(frames, np.arange(first[i], last[i] + 1))
    assert len(boxes_at(gt, 1)) == sum(f == 1 for f in first.values())


@pytest.mark.parametrize("seed", range(4))
def test_objects_occlude_each_other(seed):
    gt = synthetic_mot(seed=seed).gt
    inside = (gt[:, 2] >= 0) & (gt[:, 3] >= 0) & (gt[:, 2] + gt[:, 4] <= 160) & (gt[:, 3] + gt[:, 5] <= 120)
    occluded = inside & (gt[:, 8] > 0) & (gt[:, 8] < 0.7)  # inside the image, so hidden by another object
    assert occluded.any()


def test_masks_lie_in_boxes_and_match_visibility(seq):
    area = {}
    for frame in range(1, 41):
        rows = boxes_at(seq.gt, frame)
        assert all(seq.masks[(frame, int(i))].shape == (120, 160) for i in rows[:, 1])
        stacked = np.stack([seq.masks[(frame, int(i))] for i in rows[:, 1]])
        assert stacked.sum(axis=0).max() <= 1  # an object pixel belongs to one object
        for _, i, x, y, w, h, _, _, vis in rows:
            ys, xs = np.nonzero(seq.masks[(frame, int(i))])
            assert (xs >= x).all() and (xs < x + w).all() and (ys >= y).all() and (ys < y + h).all()
            if vis == 0:
                assert len(xs) == 0
                continue
            pixels = len(xs) / vis  # the object's whole pixel count, the same in every frame
            assert 0.7 * w * h <= pixels + 1e-6 and pixels <= w * h + 1e-6
            assert pixels == pytest.approx(area.setdefault(int(i), pixels), rel=1e-9)
    assert len(seq.masks) == len(seq.gt)


def test_detections_follow_visible_objects(seq):
    det = seq.det
    assert det.shape[1] == 7 and (det[:, 1] == -1).all() and ((det[:, 6] >= 0) & (det[:, 6] <= 1)).all()
    assert len(det) == (seq.gt[:, 8] >= 0.25).sum()


def test_write_read_round_trip(written, tmp_path):
    path, seq = written
    assert (path / "seqinfo.ini").read_text().splitlines() == [
        "[Sequence]", "name=synth-01", "imDir=img1", "frameRate=25", "seqLength=40", "imWidth=160",
        "imHeight=120", "imExt=.jpg"]
    assert (path / "gt" / "gt.txt").read_text().splitlines()[0].count(",") == 8
    det_line = (path / "det" / "det.txt").read_text().splitlines()[0].split(",")
    assert len(det_line) == 10 and det_line[1] == "-1" and det_line[7:] == ["-1", "-1", "-1"]
    back = read_mot(path)
    assert back.name == "synth-01" and back.frame_rate == 25.0 and back.path == path and back.masks is None
    assert np.array_equal(back.gt, np.round(seq.gt, 5)) and np.array_equal(back.det, seq.det)
    assert back.frames.shape == seq.frames.shape and np.abs(back.frames - seq.frames).mean() < 0.02

    part = read_mot(path, max_frames=5, start=2, size=(60, 80))
    assert part.frames.shape == (5, 3, 60, 80)
    expected = seq.gt[(seq.gt[:, 0] >= 3) & (seq.gt[:, 0] <= 7)]
    assert np.array_equal(part.gt[:, 0], expected[:, 0] - 2) and np.array_equal(part.gt[:, 1], expected[:, 1])
    assert np.allclose(part.gt[:, 2:6], np.round(expected[:, 2:6], 5) / 2)
    assert part.det[:, 0].min() == 1 and part.det[:, 0].max() == 5

    write_mot(synthetic_mot("synth-02", frames=3, seed=4), path.parent)
    write_mot(synthetic_mot("synth-02", frames=4, seed=4), path.parent)  # replaces the old folder
    assert sorted(p.name for p in path.parent.iterdir()) == ["synth-01", "synth-02"]
    assert [len(s.frames) for s in read_mot_dataset(path.parent, max_frames=10)] == [10, 4]
    assert [s.name for s in read_mot_dataset(path)] == ["synth-01"]

    no_gt = synthetic_mot("synth-03", frames=3)
    no_gt.gt, no_gt.det = no_gt.gt[:0], None
    back = read_mot(write_mot(no_gt, tmp_path))
    assert back.gt.shape == (0, 9) and back.det is None and len(back.frames) == 3


def test_failed_write_leaves_no_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(files.cv2, "imwrite", lambda *args: False)
    with pytest.raises(OSError, match="000001.jpg"):
        write_mot(synthetic_mot(frames=3), tmp_path)
    assert list(tmp_path.iterdir()) == []


SEQINFO = ("[Sequence]\nname=MOT17-02-DPM\nimDir=img1\nframeRate=30\nseqLength=3\nimWidth=64\n"
           "imHeight=48\nimExt=.jpg\n")
GT = ("1,1,912,484,97,109,0,7,1\n2,1,912,484,97,109,0,7,1\n"
      "1,2,1338,418,167,379,1,1,0.86173\n3,2,1342,417,168,380,1,1,0.80559\n")
DET = "1,-1,1359.1,413.27,120.26,362.77,2.3092,-1,-1,-1\n3,-1,571.03,402.13,104.56,315.68,1.2661,-1,-1,-1\n"


def public_folder(root, gt=GT, det=DET, seqinfo=SEQINFO):
    path = root / "MOT17-02-DPM"
    (path / "img1").mkdir(parents=True)
    for i in range(3):
        cv2.imwrite(str(path / "img1" / f"{i + 1:06d}.jpg"), np.full((48, 64, 3), 40 * i, np.uint8))
    (path / "gt").mkdir()
    (path / "det").mkdir()
    (path / "seqinfo.ini").write_text(seqinfo)
    (path / "gt" / "gt.txt").write_text(gt)
    (path / "det" / "det.txt").write_text(det)
    return path


def test_reads_the_public_format(tmp_path):
    path = public_folder(tmp_path)
    seq = read_mot_dataset(tmp_path)[0]
    assert seq.name == "MOT17-02-DPM" and seq.frame_rate == 30.0 and seq.frames.shape == (3, 3, 48, 64)
    assert np.allclose(seq.frames[1], 40 / 255, atol=2 / 255)
    assert seq.gt.tolist()[0] == [1, 1, 912, 484, 97, 109, 0, 7, 1]
    assert seq.gt.tolist()[3] == [3, 2, 1342, 417, 168, 380, 1, 1, 0.80559]
    assert seq.det.tolist() == [[1, -1, 1359.1, 413.27, 120.26, 362.77, 2.3092],
                                [3, -1, 571.03, 402.13, 104.56, 315.68, 1.2661]]
    # MOT15 (world coordinates in columns 8-10) and a 7-column line: class 1, visibility 1
    (path / "gt" / "gt.txt").write_text("1,1,1363,569,103,241,1,-1,-1,-1\n2,3,10,20,30,40,1\n")
    assert read_mot(path).gt.tolist() == [[1, 1, 1363, 569, 103, 241, 1, 1, 1],
                                          [2, 3, 10, 20, 30, 40, 1, 1, 1]]
    (path / "det" / "det.txt").unlink()
    (path / "gt" / "gt.txt").unlink()
    bare = read_mot(path)
    assert bare.det is None and bare.gt.shape == (0, 9)


def _drop(path):
    path.unlink()


ERRORS = [  # (what to break, file the message names, pattern after it)
    (lambda p: _drop(p / "seqinfo.ini"), "seqinfo.ini", "missing"),
    (lambda p: (p / "seqinfo.ini").write_text(SEQINFO.replace("seqLength=3\n", "")), "seqinfo.ini",
     "missing keys seqLength"),
    (lambda p: (p / "seqinfo.ini").write_text(SEQINFO.replace("=30", "=fast")), "seqinfo.ini", "frameRate"),
    (lambda p: (p / "img1").rename(p / "images"), "img1", "image folder missing"),
    (lambda p: [_drop(f) for f in (p / "img1").iterdir()], "img1", "no .jpg images"),
    (lambda p: _drop(p / "img1" / "000003.jpg"), "img1", "2 .jpg images, but seqinfo.ini says seqLength=3"),
    (lambda p: (p / "img1" / "000002.jpg").write_bytes(b"junk"), "img1/000002.jpg", "not a readable image"),
    (lambda p: (p / "gt" / "gt.txt").write_text("\n"), "gt/gt.txt", "empty"),
    (lambda p: (p / "gt" / "gt.txt").write_text(GT + "1,1,2,3\n"), "gt/gt.txt", ":5: 4 columns"),
    (lambda p: (p / "gt" / "gt.txt").write_text("1,1,a,4,5,6,1,1,1\n"), "gt/gt.txt", ":1: non-numeric"),
    (lambda p: (p / "gt" / "gt.txt").write_text(GT + "0,1,1,1,5,6,1,1,1\n"), "gt/gt.txt", ":5: frame 0"),
    (lambda p: (p / "gt" / "gt.txt").write_text("4,1,1,1,5,6,1,1,1\n"), "gt/gt.txt", ":1: frame 4 is beyond"),
    (lambda p: (p / "gt" / "gt.txt").write_text("1,1,1,1,-5,6,1,1,1\n"), "gt/gt.txt", ":1: negative"),
    (lambda p: (p / "det" / "det.txt").write_text(DET + "1,-1,1,1,5,6\n"), "det/det.txt", ":3: 6 columns"),
]


@pytest.mark.parametrize("breakage, file, message", ERRORS)
def test_errors_name_the_file_and_line(tmp_path, breakage, file, message):
    path = public_folder(tmp_path)
    breakage(path)
    with pytest.raises(MotDataError) as error:
        read_mot(path)
    text = str(error.value)
    assert "\n" not in text and text.startswith(str(path / file))
    assert re.search(re.escape(message), text), text


def test_dataset_root_without_sequences(tmp_path):
    (tmp_path / "notes").mkdir()
    with pytest.raises(MotDataError, match=re.escape(f"{tmp_path}: no sequence folders")):
        read_mot_dataset(tmp_path)
    with pytest.raises(MotDataError, match="no such dataset folder"):
        read_mot_dataset(tmp_path / "missing")
