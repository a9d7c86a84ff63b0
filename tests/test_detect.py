"""The detect task: YOLO decoding and NMS on a hand-made head, COCO results read by pycocotools,
mAP against a reference, and SNN detections equal to the QANN's on real frames."""

import json
import math

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO

from evals.run import main
from evals.tasks.detect.decode import Detections, YoloDecoder
from evals.tasks.detect.metrics import COCO_IDS, agreement, coco_ground_truth, coco_results, mean_ap
from tests.conftest import requires_lava

ANCHORS = torch.tensor([[[0.28, 0.22], [0.38, 0.48], [0.90, 0.78]]])
H, W = 4, 5  # grid cells of the hand-made head
FRAME = (128, 160)  # pixels of its frame


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def hand_made_head(cells: list[tuple[int, int, int, tuple[float, float, float, float], float, int]]):
    """A raw head (1, 3 * 85, H, W) with nothing anywhere but the given anchors:
    (anchor, row, col, (tx, ty, tw, th), objectness, class)."""
    head = torch.full((1, 3, 85, H, W), -30.0, dtype=torch.float64)
    head[:, :, 5:] = 0.0  # uniform classes
    for a, i, j, (tx, ty, tw, th), obj, cls in cells:
        head[0, a, 0:4, i, j] = torch.tensor([tx, ty, tw, th], dtype=torch.float64)
        head[0, a, 4, i, j] = logit(obj)
        head[0, a, 5 + cls, i, j] = 20.0  # class probability ~1
    return head.reshape(1, 3 * 85, H, W)


def expected_box(a, i, j, tx, ty, tw, th):
    sig = 1 / (1 + math.exp(-tx)), 1 / (1 + math.exp(-ty))
    cx, cy = (sig[0] + j) / W * FRAME[1], (sig[1] + i) / H * FRAME[0]
    w = math.exp(tw) * float(ANCHORS[0, a, 0]) / W * FRAME[1]
    h = math.exp(th) * float(ANCHORS[0, a, 1]) / H * FRAME[0]
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def test_decoding_and_nms_on_a_hand_made_head():
    t = (0.0, 0.0, math.log(4.0), math.log(4.0))
    head = hand_made_head([
        (0, 1, 2, t, 0.9, 0),                     # a person
        (1, 1, 2, (0.0, 0.0, math.log(3.0), math.log(1.8)), 0.6, 0),  # the same person, another anchor
        (2, 1, 2, (0.0, 0.0, math.log(1.3), math.log(1.1)), 0.7, 2),  # same place, another class: kept
        (0, 3, 4, (1.0, -1.0, 0.0, 0.0), 0.8, 5),  # elsewhere
        (0, 0, 0, t, 0.2, 0),                     # below the score threshold
    ])
    dets = YoloDecoder(ANCHORS, score_threshold=0.3, iou_threshold=0.45)(head, FRAME)
    # the second person box overlaps the first (IoU ~0.8) and scores less: suppressed
    assert dets.labels.tolist() == [0, 5, 2]
    np.testing.assert_allclose(dets.scores, [0.9, 0.8, 0.7], rtol=1e-6)
    box0 = np.clip(expected_box(0, 1, 2, *t), 0, [FRAME[1], FRAME[0], FRAME[1], FRAME[0]])
    np.testing.assert_allclose(dets.boxes[0], box0, rtol=1e-9)
    np.testing.assert_allclose(dets.boxes[1], expected_box(0, 3, 4, 1.0, -1.0, 0.0, 0.0), rtol=1e-9)
    # without NMS pressure (IoU threshold 1) the suppressed box is there
    assert len(YoloDecoder(ANCHORS, 0.3, 1.0)(head, FRAME)) == 4


def test_decoder_refuses_bad_thresholds():
    with pytest.raises(ValueError, match="score threshold"):
        YoloDecoder(ANCHORS, score_threshold=1.5)
    with pytest.raises(ValueError, match="IoU"):
        YoloDecoder(ANCHORS, iou_threshold=0.0)


def some_detections(rng, n):
    xy = rng.uniform(0, 100, (n, 2))
    wh = rng.uniform(10, 40, (n, 2))
    return Detections(np.column_stack([xy, xy + wh]), rng.uniform(0.3, 1, n), rng.integers(0, 3, n))


def test_coco_results_load_in_pycocotools_and_score_themselves_perfectly(tmp_path):
    rng = np.random.default_rng(0)
    frames = [some_detections(rng, n) for n in (3, 0, 5)]
    rows = coco_results(frames, [1, 2, 3])
    assert len(rows) == 8 and {r["category_id"] for r in rows} <= set(COCO_IDS[:3])
    path = tmp_path / "results.json"
    path.write_text(json.dumps(rows))
    truth = coco_ground_truth(frames, [1, 2, 3], (128, 160))
    loaded = truth.loadRes(str(path))  # pycocotools reads the file as a results file
    assert isinstance(loaded, COCO) and len(loaded.getAnnIds()) == 8
    assert mean_ap(truth, frames, [1, 2, 3]) == (1.0, 1.0)
    # shifted boxes: still found at IoU 0.5 for small shifts, not at the strict thresholds
    shifted = [Detections(d.boxes + 1.0, d.scores, d.labels) for d in frames]  # IoU 0.68 to 0.9
    m50, m = mean_ap(truth, shifted, [1, 2, 3])
    assert m50 == 1.0 and m < 0.9
    # a network that finds nothing, and a reference that found nothing
    empty = [Detections(np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=int))] * 3
    assert agreement(frames, empty, (128, 160))["map50_vs_ann"] == 0.0
    assert agreement(empty, frames, (128, 160))["map50_vs_ann"] is None
    assert agreement(frames, frames, (128, 160))["detections_per_frame"] == pytest.approx(8 / 3)


@requires_lava
def test_detect_task_snn_detections_equal_qann_on_real_frames(tmp_path):
    """YOLO-KP on bikes.mp4 (96x160, 3 frames): every SNN run's boxes equal the QANN's, frame by frame."""
    out = tmp_path / "run"
    code = main(["--backend", "spikingjelly", "--task", "detect", "--model", "yolo-kp",
                 "--input-size", "96x160", "--frames", "3", "--start", "40", "--schedule", "all",
                 "--act-bits", "6",
                 "--score-threshold", "0.05", "--out", str(out)])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    seq = report["sequences"][0]
    assert set(seq["same_as_qann"]) == {"ann", "qann", "reset", "locc", "layerwise", "layerwise_graded"}
    assert all(seq["same_as_qann"][run] for run in ("reset", "locc", "layerwise", "layerwise_graded"))
    assert seq["detections"]["qann"] > 0 and seq["detections"]["ann"] > 0
    for run in ("reset", "locc", "layerwise", "layerwise_graded"):
        assert report["summary"]["compare"][run]["level_mismatch_max"] == 0
        assert report["summary"]["compare"][run]["metrics"] == report["summary"]["compare"]["qann"]["metrics"]
    assert report["summary"]["compare"]["ann"]["metrics"]["map50_vs_ann"] == 1.0
    qann = json.loads((out / "tracks" / "qann" / "bikes.json").read_text())
    assert qann == json.loads((out / "tracks" / "locc" / "bikes.json").read_text())
    assert len(qann) == seq["detections"]["qann"]
    assert (out / "detect_bikes.png").stat().st_size > 1000


@requires_lava
def test_mot_on_each_networks_own_person_detections(tmp_path):
    """--detections network: YOLO-KP's persons are the tracker's boxes; the SNN tracks equal the QANN's."""
    from evals.data.sample_videos import sample_video

    out = tmp_path / "mot"
    assert main(["--backend", "spikingjelly", "--task", "mot", "--detections", "network",
                 "--model", "yolo-kp",
                 "--video", str(sample_video("bikes")), "--start", "40", "--frames", "3",
                 "--input-size", "96x160", "--score-threshold", "0.1", "--out", str(out)]) == 0
    seq = json.loads((out / "report.json").read_text())["sequences"][0]
    assert seq["detections"] == "network" and seq["tracks"]["qann"] > 0
    assert seq["same_as_qann"]["reset"] and seq["same_as_qann"]["locc"]
    rows = np.loadtxt(out / "tracks" / "locc" / "bikes.txt", delimiter=",", ndmin=2)
    assert rows.shape[1] == 10 and set(rows[:, 0]) <= {1, 2, 3}
    assert main(["--backend", "spikingjelly", "--task", "mot", "--detections", "network", "--model", "tiny",
                 "--out", str(tmp_path / "bad")]) == 2
