"""MOTS data: RLE coding, MOTS txt files and folders, errors, and hand-computed sMOTSA / MOTSA / MOTSP."""

import re

import cv2
import numpy as np
import pytest

from evals.tasks.mot.data import MotDataError, MotSequence, synthetic_mot
from evals.tasks.mots.data import (
    MotsRow,
    decode_mask,
    encode_mask,
    mots_accumulate,
    mots_summarise,
    read_mots,
    read_mots_dataset,
    read_mots_txt,
    write_mots,
    write_mots_txt,
)


def box(top, bottom, left, right, size=(4, 4)):
    """A bool mask with rows top..bottom-1 and columns left..right-1 set."""
    mask = np.zeros(size, dtype=bool)
    mask[top:bottom, left:right] = True
    return mask


# Worked out by hand from the COCO format (column-major runs, zeros first, deltas from index 3):
# eye(4): runs 0,1,4,1,4,1,4,1 -> "0" "1" "4" then deltas 0; top-left 2x2: runs 0,2,2,2,10 -> "02208";
# bottom-right 2x2: runs 10,2,2,2 -> ":220".
KNOWN = [("01400000", np.eye(4, dtype=bool)), ("02208", box(0, 2, 0, 2)), (":220", box(2, 4, 2, 4))]


@pytest.mark.parametrize("rle, mask", KNOWN)
def test_known_rle_strings(rle, mask):
    assert encode_mask(mask) == rle
    decoded = decode_mask(rle, 4, 4)
    assert decoded.dtype == bool and np.array_equal(decoded, mask)


def test_rle_round_trip_of_random_masks():
    rng = np.random.default_rng(0)
    for shape in [(1, 1), (7, 13), (48, 64)]:
        mask = rng.random(shape) < 0.3
        assert np.array_equal(decode_mask(encode_mask(mask), *shape), mask)
    assert not decode_mask(encode_mask(np.zeros((5, 3))), 5, 3).any()
    for bad in ["zzzz", "5", "02208"]:  # garbage, too short, right string for another size
        with pytest.raises(ValueError, match="does not decode to 5x5"):
            decode_mask(bad, 5, 5)


def test_txt_round_trip_and_public_line(tmp_path):
    rows = [MotsRow(2, 2001, 2, box(1, 3, 0, 2)), MotsRow(1, 2003, 2, box(0, 1, 0, 4)),
            MotsRow(1, 10000, 10, box(3, 4, 1, 3))]
    path = tmp_path / "sub" / "gt.txt"
    write_mots_txt(path, rows)
    assert path.read_text().splitlines()[0] == f"1 2003 2 4 4 {encode_mask(rows[1].mask)}"
    assert [p.name for p in path.parent.iterdir()] == ["gt.txt"]  # no temporary file left behind
    back = read_mots_txt(path, 4, 4)
    assert [(r.frame, r.id, r.class_id) for r in back] == [(1, 2003, 2), (1, 10000, 10), (2, 2001, 2)]
    for got, want in zip(back, [rows[1], rows[2], rows[0]], strict=True):
        assert got.mask.dtype == bool and np.array_equal(got.mask, want.mask)

    path.write_text("1 2001 2 4 4 02208\n\n1 10000 10 4 4 :220\n")  # MOTS20 lines, a blank line between
    first, ignore = read_mots_txt(path)
    assert (first.frame, first.id, first.class_id) == (1, 2001, 2)
    assert np.array_equal(first.mask, box(0, 2, 0, 2))
    assert (ignore.id, ignore.class_id) == (10000, 10) and np.array_equal(ignore.mask, box(2, 4, 2, 4))


TXT_ERRORS = [  # (file text, read_mots_txt kwargs, line, pattern)
    ("1 2001 2 4 4 02208\n1 2002 2 4 4\n", {}, 2, "5 fields, expected 6"),
    ("1 2001 2 4 4 02208 7\n", {}, 1, "7 fields"),
    ("1 2001 2 4 4.0 02208\n", {}, 1, "non-integer value"),
    ("x 2001 2 4 4 02208\n", {}, 1, "non-integer value"),
    ("1 2001 2 4 4 02208\n", {"height": 4, "width": 5}, 1, "image size 4x4 (HxW), expected 4x5"),
    ("1 2001 2 4 4 02208\n2 2001 2 5 4 02208\n", {}, 2, "image size 5x4 (HxW), expected 4x4"),
    ("1 2001 2 0 4 02208\n", {}, 1, "image size 0x4 (HxW) is not positive"),
    ("1 2001 2 4 4 zzzz\n", {}, 1, "does not decode to 4x4"),
    ("1 2001 2 4 4 5\n", {}, 1, "does not decode to 4x4"),
    ("1 2001 2 4 4 02208\n2 2001 2 4 4 02208\n2 2002 2 4 4 01400000\n", {}, 3,
     "mask overlaps another mask of frame 2 (lines 2)"),
    ("-1 2001 2 4 4 02208\n", {}, 1, "negative frame -1"),
    ("1 2001 2 4 4 02208\n3 2001 2 4 4 02208\n", {"length": 2}, 2, "frame 3 is outside 1..2"),
]


@pytest.mark.parametrize("text, kwargs, line, message", TXT_ERRORS)
def test_txt_errors_name_the_file_and_line(tmp_path, text, kwargs, line, message):
    path = tmp_path / "gt.txt"
    path.write_text(text)
    with pytest.raises(MotDataError) as error:
        read_mots_txt(path, **kwargs)
    got = str(error.value)
    assert "\n" not in got and got.startswith(f"{path}:{line}: ") and re.search(re.escape(message), got), got


def test_empty_file_is_an_error(tmp_path):
    path = tmp_path / "gt.txt"
    path.write_text("\n \n")
    with pytest.raises(MotDataError, match=re.escape(f"{path}: empty")):
        read_mots_txt(path)


def rows_of(frame, *masks):
    return [MotsRow(frame, ident, ident // 1000, mask) for ident, mask in masks]


def test_hand_computed_smotsa_motsa_motsp():
    size = (10, 10)
    a, b = box(0, 2, 0, 10, size), box(5, 7, 0, 10, size)  # two pedestrians, 20 pixels each
    gt = rows_of(1, (2001, a), (2002, b)) + rows_of(2, (2001, a), (2002, b))
    hyp = (rows_of(1, (2001, box(0, 2, 0, 8, size)),  # IoU 0.8 with a
                   (2002, box(5, 7, 0, 6, size)))  # IoU 0.6 with b
           + rows_of(2, (2002, box(0, 2, 0, 9, size)),  # IoU 0.9 with a: an identity switch
                     (2003, box(8, 10, 0, 10, size))))  # a false positive; b is missed
    result = mots_summarise({"seq": mots_accumulate(gt, hyp)})
    for name in ("seq", "OVERALL"):
        m = result[name]
        assert (m["num_objects"], m["num_detections"], m["num_false_positives"], m["num_switches"],
                m["num_misses"]) == (4, 3, 1, 1, 1)
        assert m["smotsa"] == pytest.approx((0.8 + 0.6 + 0.9 - 1 - 1) / 4)
        assert m["motsa"] == pytest.approx((3 - 1 - 1) / 4) and m["mota"] == pytest.approx(m["motsa"])
        assert m["motsp"] == pytest.approx((0.8 + 0.6 + 0.9) / 3)

    # IoU exactly 0.5 is no match: one miss and one false positive
    touching = rows_of(1, (2007, box(0, 2, 0, 5, size)))
    half = mots_summarise({"s": mots_accumulate(rows_of(1, (2001, a)), touching)})["s"]
    assert (half["num_detections"], half["num_misses"], half["num_false_positives"]) == (0, 1, 1)
    assert half["smotsa"] == pytest.approx(-1.0) and np.isnan(half["motsp"])

    # two sequences: OVERALL sums IoUs and counts
    both = mots_summarise({"one": mots_accumulate(gt, hyp), "two": mots_accumulate(gt, gt)})
    assert both["two"]["smotsa"] == pytest.approx(1.0) and both["two"]["motsp"] == pytest.approx(1.0)
    assert both["OVERALL"]["smotsa"] == pytest.approx((2.3 - 2 + 4) / 8)
    assert both["OVERALL"]["motsp"] == pytest.approx((2.3 + 4) / 7)


def test_ignore_region_drops_hypotheses():
    size = (10, 10)
    person, region = box(0, 2, 0, 10, size), box(6, 10, 0, 10, size)
    gt = rows_of(1, (2001, person), (10000, region))
    inside = box(7, 10, 0, 10, size)  # wholly inside: dropped
    mostly = box(5, 8, 0, 10, size)  # 20 of 30 pixels inside (> 50 %): dropped
    half = box(4, 8, 0, 10, size)  # 20 of 40 pixels inside (= 50 %): kept, a false positive
    for hyp, fp in [(inside, 0), (mostly, 0), (half, 1)]:
        m = mots_summarise({"s": mots_accumulate(gt, rows_of(1, (2001, person), (2002, hyp)))})["s"]
        assert m["num_false_positives"] == fp and m["num_objects"] == 1 and m["num_detections"] == 1
    # without the ignore row the same hypothesis is a false positive
    m = mots_summarise({"s": mots_accumulate(gt[:1], rows_of(1, (2001, person), (2002, inside)))})["s"]
    assert m["num_false_positives"] == 1


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    seq = synthetic_mot(frames=8, height=48, width=64, objects=4, seed=3)
    ignore = box(0, 3, 0, 10, (48, 64)) & ~np.any([m for (f, _), m in seq.masks.items() if f == 1], axis=0)
    seq.masks[(1, -1)] = ignore
    seq.masks[(2, 99)] = np.zeros((48, 64), dtype=bool)  # a fully hidden object: not written
    return seq, write_mots(seq, tmp_path_factory.mktemp("mots"))


def test_folder_round_trip(synthetic):
    seq, path = synthetic
    lines = (path / "gt" / "gt.txt").read_text().splitlines()
    assert lines[0].split()[:5] == ["1", "2001", "2", "48", "64"] and any(
        line.split()[:3] == ["1", "10000", "10"] for line in lines)
    back = read_mots(path)
    expected = {key: mask for key, mask in seq.masks.items() if mask.any()}
    assert len(expected) > 8 and (1, -1) in expected and (2, 99) not in expected
    assert back.masks.keys() == expected.keys()
    assert all(np.array_equal(back.masks[key], expected[key]) for key in expected)
    assert back.det is None and back.frames.shape == seq.frames.shape and back.frame_rate == 25.0
    assert len(back.gt) == len(expected) - 1 and -1 not in back.gt[:, 1]
    for frame, track, x, y, w, h, *rest in back.gt.astype(int):
        ys, xs = np.nonzero(back.masks[(frame, track)])
        assert (x, y, x + w - 1, y + h - 1) == (xs.min(), ys.min(), xs.max(), ys.max()) and rest == [1, 1, 1]

    part = read_mots_dataset(path.parent, max_frames=3, start=2)[0]
    assert part.frames.shape[0] == 3 and set(part.gt[:, 0]) <= {1, 2, 3}
    assert part.masks.keys() == {(f - 2, t) for f, t in expected if 3 <= f <= 5}
    assert all(np.array_equal(part.masks[(f, t)], expected[(f + 2, t)]) for f, t in part.masks)

    gt_rows = read_mots_txt(path / "gt" / "gt.txt")
    m = mots_summarise({"s": mots_accumulate(gt_rows, gt_rows)})["s"]
    assert m["smotsa"] == pytest.approx(1.0) and m["num_objects"] == len(back.gt)


def test_folder_errors(synthetic, tmp_path):
    seq, path = synthetic
    with pytest.raises(MotDataError, match=re.escape(f"{tmp_path / 'x'}: the sequence has no masks")):
        write_mots(MotSequence("x", seq.frames, 25.0, seq.gt), tmp_path)
    folder = tmp_path / "MOTS20-02"
    (folder / "img1").mkdir(parents=True)
    (folder / "gt").mkdir()
    for i in range(2):
        cv2.imwrite(str(folder / "img1" / f"{i + 1:06d}.jpg"), np.zeros((4, 4, 3), np.uint8))
    (folder / "seqinfo.ini").write_text("[Sequence]\nname=MOTS20-02\nimDir=img1\nframeRate=30\nseqLength=2\n"
                                       "imWidth=4\nimHeight=4\nimExt=.jpg\n")
    gt = folder / "gt" / "gt.txt"
    gt.write_text("1 2001 2 4 4 02208\n3 2001 2 4 4 02208\n")
    with pytest.raises(MotDataError, match=re.escape(f"{gt}:2: frame 3 is outside 1..2")):
        read_mots(folder)
    gt.write_text("1 2001 2 4 5 02208\n")
    with pytest.raises(MotDataError, match=re.escape(f"{gt}:1: image size 4x5 (HxW), expected 4x4")):
        read_mots(folder)
    region = encode_mask(box(3, 4, 0, 2))
    gt.write_text(f"1 2001 2 4 4 02208\n2 2001 2 4 4 01400000\n2 10000 10 4 4 {region}\n")
    seq = read_mots(folder)
    assert seq.name == "MOTS20-02" and seq.gt.tolist() == [[1, 1, 0, 0, 2, 2, 1, 1, 1],
                                                           [2, 1, 0, 0, 4, 4, 1, 1, 1]]
    assert np.array_equal(seq.masks[(2, -1)], box(3, 4, 0, 2))
    assert seq.masks.keys() == {(1, 1), (2, 1), (2, -1)}
