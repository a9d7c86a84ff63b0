"""VOS data and scores: the synthetic generator, DAVIS-2017 round trips and errors, DAVIS J and F."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from evals.tasks.vos.data import (
    VosDataError,
    VosSequence,
    davis_palette,
    read_davis,
    synthetic_vos,
    synthetic_vos_dataset,
    write_davis,
    write_davis_results,
)
from evals.tasks.vos.metrics import vos_sequence_metrics, vos_summarise


@pytest.fixture(scope="module")
def dataset():
    return synthetic_vos_dataset(2, frames=8, height=48, width=64)


@pytest.fixture()
def root(dataset, tmp_path):
    return write_davis(dataset, tmp_path / "davis")


def _annotation(root, seq="vos-01", frame=0):
    return root / "Annotations" / "480p" / seq / f"{frame:05d}.png"


def test_palette_is_the_pascal_voc_colour_map():
    palette = davis_palette()
    assert palette.shape == (256, 3) and palette.dtype == np.uint8
    assert palette[:5].tolist() == [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128]]
    assert palette[8].tolist() == [64, 0, 0] and palette[255].tolist() == [224, 224, 192]


def test_synthetic_vos_keeps_first_frame_objects():
    seq = synthetic_vos()
    assert seq.frames.shape == (40, 3, 240, 320) and seq.labels.shape == (40, 240, 320)
    assert seq.labels.dtype == np.uint8 and seq.scored
    assert len(seq.objects) >= 2 and seq.objects == list(range(1, len(seq.objects) + 1))
    assert set(np.unique(seq.labels)) <= {0, *seq.objects}  # no late entrants, no void
    assert all((seq.labels == k).any(axis=(1, 2)).mean() > 0.8 for k in seq.objects)  # they stay in view
    assert np.array_equal(seq.labels, synthetic_vos().labels)
    assert not np.array_equal(seq.labels, synthetic_vos(seed=1).labels)
    for seed in range(6):
        assert len(synthetic_vos(frames=3, seed=seed).objects) >= 2


def test_round_trip(dataset, root):
    assert (root / "ImageSets" / "2017" / "val.txt").read_text().split() == ["vos-01", "vos-02"]
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # no temporary folder left
    with Image.open(_annotation(root)) as image:
        assert image.mode == "P"
        assert np.array_equal(np.array(image.getpalette(), np.uint8).reshape(-1, 3), davis_palette())
    back = read_davis(root)
    assert [s.name for s in back] == ["vos-01", "vos-02"]
    for seq, again in zip(dataset, back, strict=True):
        assert np.array_equal(seq.labels, again.labels) and again.objects == seq.objects and again.scored
        assert np.array_equal(again.palette, davis_palette())
        assert again.frames.shape == seq.frames.shape and again.frames.dtype == np.float32
        assert np.abs(again.frames - seq.frames).mean() < 0.03  # JPEG quality 95 on noisy texture
    write_davis(dataset[:1], root)  # rewriting replaces a sequence and its split list
    assert [s.name for s in read_davis(root)] == ["vos-01"]


def test_windows_and_listing(dataset, root):
    window = read_davis(root, sequences=["vos-02"], start=2, max_frames=3)[0]
    assert np.array_equal(window.labels, dataset[1].labels[2:5]) and len(window.frames) == 3
    assert len(read_davis(root, start=5)[0].labels) == 3
    (root / "ImageSets" / "2017" / "val.txt").unlink()
    assert [s.name for s in read_davis(root)] == ["vos-01", "vos-02"]  # every JPEGImages folder
    with pytest.raises(VosDataError, match=r"vos-01: start=8, max_frames=None selects no frame"):
        read_davis(root, start=8)


def test_first_frame_only_is_void_and_not_scored(root):
    for t in range(1, 8):
        _annotation(root, frame=t).unlink()
    seq = read_davis(root, sequences=["vos-01"])[0]
    assert (seq.labels[1:] == 255).all() and seq.objects and not seq.scored
    with pytest.raises(VosDataError, match=r"vos-01: only the first frame is annotated"):
        read_davis(root, sequences=["vos-01"], start=1)


def _rgb_png(file):
    Image.new("RGB", (64, 48)).save(file)


def _small_png(file):
    image = Image.new("P", (32, 48))
    image.putpalette(davis_palette().ravel().tolist())
    image.save(file)


def _other_palette(file):
    with Image.open(file) as opened:
        image = opened.copy()
    image.putpalette([255 - v for v in image.getpalette()])
    image.save(file)


@pytest.mark.parametrize(("damage", "message"), [
    (lambda r: _annotation(r).unlink(), r"vos-01/00000\.png: missing \(the first frame's annotation"),
    (lambda r: _rgb_png(_annotation(r, frame=3)), r"vos-01/00003\.png: palette mismatch: mode 'RGB'"),
    (lambda r: _other_palette(_annotation(r, frame=2)), r"vos-01/00002\.png: palette mismatch: its palette "),
    (lambda r: _small_png(_annotation(r, frame=1)),
     r"vos-01/00001\.png: annotation is 32x48 \(WxH\), the images are 64x48"),
    (lambda r: _annotation(r, frame=7).unlink(), r"Annotations/480p/vos-01: 7 annotation PNGs, expected 1 "),
    (lambda r: (r / "ImageSets" / "2017" / "val.txt").write_text("vos-01\nbear\n"),
     r"val\.txt: sequence 'bear' is absent"),
    (lambda r: (r / "ImageSets" / "2017" / "val.txt").write_text("\n"), r"val\.txt: no sequences"),
])
def test_errors_name_the_file(root, damage, message):
    damage(root)
    with pytest.raises(VosDataError, match=message) as info:
        read_davis(root)
    assert "\n" not in str(info.value)


def test_no_sequences_and_bad_writes(tmp_path):
    (tmp_path / "JPEGImages" / "480p").mkdir(parents=True)
    with pytest.raises(VosDataError, match=r"JPEGImages/480p: no sequences"):
        read_davis(tmp_path)
    with pytest.raises(VosDataError, match=r"davis/JPEGImages/480p: missing \(expected a DAVIS-2017 root"):
        read_davis(tmp_path / "davis")
    seq = VosSequence("a/b", np.zeros((2, 3, 4, 4), np.float32), np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(VosDataError, match="not a unique plain folder name"):
        write_davis([seq], tmp_path / "out")


def test_results_are_palette_pngs(tmp_path):
    labels = np.zeros((3, 6, 8), np.uint8)
    labels[:, 2:4, 2:5] = 2
    write_davis_results(tmp_path / "res", labels)
    assert sorted(p.name for p in (tmp_path / "res").iterdir()) == ["00000.png", "00001.png", "00002.png"]
    with Image.open(tmp_path / "res" / "00001.png") as image:
        assert image.mode == "P" and np.array_equal(np.array(image), labels[1])
        assert image.getpalette()[:9] == [0, 0, 0, 128, 0, 0, 0, 128, 0]
    with pytest.raises(VosDataError, match=r"res: labels must be \(T, H, W\)"):
        write_davis_results(tmp_path / "res", labels[0])


def _video(*frames):
    """Three or more label frames: the middle ones are scored."""
    return np.stack(frames).astype(np.uint8)


def _square(y, x, side, size=100, label=1):
    labels = np.zeros((size, size), np.uint8)
    labels[y:y + side, x:x + side] = label
    return labels


def test_j_by_hand():
    gt, shifted = _square(20, 20, 10), _square(20, 25, 10)
    result = vos_sequence_metrics(_video(gt, shifted, gt), _video(gt, gt, gt), [1])
    assert result["j"] == pytest.approx(50 / 150)
    empty = np.zeros((100, 100), np.uint8)
    assert vos_sequence_metrics(_video(empty, empty, empty), _video(gt, empty, gt), [1])["j"] == 1.0
    void = gt.copy()
    void[20:30, 30:35] = 255  # half the prediction's 100 extra pixels lie on void: not counted
    wide = gt.copy()
    wide[20:30, 30:40] = 1
    result = vos_sequence_metrics(_video(gt, wide, gt), _video(gt, void, gt), [1])
    assert result["j"] == pytest.approx(100 / 150)


def test_f_by_hand():
    gt = _square(20, 20, 10)
    assert vos_sequence_metrics(_video(gt, gt, gt), _video(gt, gt, gt), [1])["f"] == 1.0
    # tolerance ceil(0.008 * 141.4) = 2 px: a 1 px shift still matches every boundary pixel
    assert vos_sequence_metrics(_video(gt, _square(21, 21, 10), gt), _video(gt, gt, gt), [1])["f"] == 1.0
    far = vos_sequence_metrics(_video(gt, _square(60, 60, 10), gt), _video(gt, gt, gt), [1])
    assert far["f"] == 0.0 and far["j"] == 0.0
    # a side-s square has 4s boundary pixels; an extra far 5x5 blob: precision 40/60, recall 1
    extra = gt.copy()
    extra[70:75, 70:75] = 1
    result = vos_sequence_metrics(_video(gt, extra, gt), _video(gt, gt, gt), [1])
    assert result["f"] == pytest.approx(2 * (2 / 3) / (2 / 3 + 1)) and result["j"] == pytest.approx(100 / 125)
    assert result["j_and_f"] == pytest.approx((result["j"] + result["f"]) / 2)


def test_first_and_last_frames_are_not_scored():
    gt = _video(*[_square(20 + t, 20, 10) for t in range(5)])
    wrong = gt.copy()
    wrong[0], wrong[-1] = _square(60, 60, 10), 0
    assert vos_sequence_metrics(wrong, gt, [1]) == vos_sequence_metrics(gt, gt, [1])
    wrong[2] = 0
    assert vos_sequence_metrics(wrong, gt, [1])["j"] == pytest.approx(2 / 3)


def test_overall_is_object_weighted():
    one = _video(*[_square(20, 20, 10)] * 3)
    three = sum(_video(*[_square(10 + 30 * k, 10, 10, label=k + 1)] * 3) for k in range(3)).astype(np.uint8)
    summary = vos_summarise({"good": (one, one, [1]), "bad": (np.zeros_like(three), three, [1, 2, 3])})
    assert summary["good"]["j"] == 1.0 and summary["bad"]["j"] == 0.0
    assert summary["bad"]["j_per_object"] == [0.0, 0.0, 0.0] and summary["bad"]["f_per_object"] == [0.0] * 3
    assert summary["OVERALL"]["j"] == pytest.approx(0.25) and summary["OVERALL"]["objects"] == 4
    assert summary["OVERALL"]["j_and_f"] == pytest.approx(0.25)  # the plain mean of sequences would be 0.5
