"""SOT, VOS and PoseTrack: heads checked on features whose answer is known, each task end to end
(the ANN reaches the issue's bar on the synthetic sequences, every SNN mode writes exactly the QANN's
output), ``--task all`` and one-line errors for bad dataset files."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from evals.run import main
from evals.tasks.posetrack.figures import KEYPOINTS
from evals.tasks.posetrack.task import PoseHead, oks
from evals.tasks.sot.data import SotSequence, synthetic_sot, write_otb
from evals.tasks.sot.task import XCorrHead
from evals.tasks.vos.data import synthetic_vos, write_davis
from evals.tasks.vos.task import PropagationHead

TASKS = ("sot", "vos", "posetrack")


def _moving_pattern(frames: int, step: tuple[int, int], size=(40, 48), channels=8, seed=0) -> torch.Tensor:
    """``(T, 1, C, h, w)`` random feature maps translated by ``step`` cells per frame."""
    rng = np.random.default_rng(seed)
    big = torch.from_numpy(rng.standard_normal((channels, 3 * size[0], 3 * size[1])))
    big = F.avg_pool2d(big[None], 3, 1, 1)[0]  # smooth, as real features are
    y0, x0 = size
    return torch.stack([big[None, :, y0 - t * step[0]:y0 - t * step[0] + size[0],
                            x0 - t * step[1]:x0 - t * step[1] + size[1]] for t in range(frames)])


def test_xcorr_head_follows_a_translation():
    """Features at stride 4 translated by (1, 2) cells a frame: the box moves by (8, 4) px a frame."""
    features = _moving_pattern(8, (1, 2))
    frames = np.zeros((8, 3, 160, 192), dtype=np.float32)
    box = np.array([60.0, 50.0, 40.0, 32.0])
    head = XCorrHead(SotSequence("s", frames, np.tile(box, (8, 1))))
    for t, f in enumerate(features):
        head.step(t, f)
    moved = head.output()[:, :2] - box[:2]
    np.testing.assert_allclose(moved, np.arange(8)[:, None] * [8.0, 4.0], atol=1.5)
    np.testing.assert_allclose(head.output()[:, 2:], np.tile(box[2:], (8, 1)), rtol=0.05)


def test_propagation_head_with_colour_features_segments_well():
    """The head itself, given the frames' own colours as features, keeps the objects (J > 0.8)."""
    seq = synthetic_vos(frames=12, height=120, width=160)
    head = PropagationHead(seq)
    for t, frame in enumerate(torch.from_numpy(seq.frames).double()):
        head.step(t, F.avg_pool2d(frame[None], 4))
    out = head.output()
    for k in seq.objects:
        pred, true = out[1:] == k, seq.labels[1:] == k
        assert (pred & true).sum() / (pred | true).sum() > 0.8


def test_oks_by_hand():
    a = np.zeros((17, 3))
    a[:, 2] = 1
    b = a.copy()
    assert oks(a, b, 100.0) == pytest.approx(1.0)
    b[KEYPOINTS.index("left_hip"), :2] = (3.0, 4.0)  # 5 px off; s^2 = 100, k = 2 * 0.107
    expected = (16 + np.exp(-25 / (2 * 100 * (2 * 0.107) ** 2))) / 17
    assert oks(a, b, 100.0) == pytest.approx(expected)
    b[:, 2] = 0
    assert oks(a, b, 100.0) == 0.0


def test_pose_head_propagates_a_missed_joint_with_the_features():
    """A joint the detector misses in frame 2 is carried along by the features' motion."""
    features = _moving_pattern(2, (0, 1), size=(30, 40))  # one cell = 4 px to the right
    frames = np.zeros((2, 3, 120, 160), dtype=np.float32)
    pose = np.zeros((17, 3))
    pose[:, 0], pose[:, 1], pose[:, 2] = np.linspace(50, 90, 17), np.linspace(30, 90, 17), 1.0
    missed = pose.copy()
    missed[5] = 0.0
    box = np.array([[45.0, 25.0, 50.0, 70.0]])
    shifted = pose + [4.0, 0.0, 0.0]
    detections = [(box, pose[None]), (box + [4.0, 0, 0, 0], np.where(missed[:, 2:] > 0, shifted, 0)[None])]
    head = PoseHead(SimpleNamespace(frames=frames), detections)  # the head reads only the frame size
    for t, f in enumerate(features):
        head.step(t, f)
    (_, track0, first), (_, track1, second) = head.output()
    assert track0 == track1 and np.array_equal(first, pose)
    np.testing.assert_allclose(second[5, :2], shifted[5, :2], atol=1.0)
    assert 0 < second[5, 2] <= 1


@pytest.mark.slow
@pytest.mark.parametrize("task, key, bar", [("sot", "auc", 0.6), ("vos", "j_and_f", 0.7),
                                           ("posetrack", "mota", 0.6)])
def test_task_end_to_end_snn_equals_qann(tmp_path, task, key, bar):
    out = tmp_path / task
    assert main(["--backend", "spikingjelly", "--task", task, "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    compare = report["summary"]["compare"]
    assert compare["ann"]["metrics"][key] >= bar, compare["ann"]["metrics"]
    for mode in ("reset", "locc"):
        assert compare[mode]["metrics"] == compare["qann"]["metrics"]
        assert all(s["same_as_qann"][mode] for s in report["sequences"])
        reference = out / "tracks" / "qann"
        files = sorted(p.relative_to(reference) for p in reference.rglob("*.*"))
        assert files and all((out / "tracks" / mode / p).read_bytes() == (reference / p).read_bytes()
                             for p in files)
    assert compare["locc"]["sops_per_frame_steady"] < compare["reset"]["sops_per_frame_steady"]


def test_all_tasks_write_one_table(tmp_path, capsys):
    out = tmp_path / "all"
    assert main(["--backend", "torch", "--task", "all", "--frames", "4", "--out", str(out)]) == 0
    table = json.loads((out / "tasks.json").read_text())["tasks"]
    assert list(table) == ["mot", "mots", "sot", "vos", "posetrack"]
    for name, entry in table.items():
        assert set(entry["networks"]) == {"ann", "qann", "reset", "locc"}
        assert all(entry["networks"]["ann"][k] == entry["networks"]["ann"][k] for k in entry["columns"])
        assert (out / name / "report.json").exists()
    assert (out / "tasks.csv").read_text().count("\n") == 1 + 5 * 4
    assert (out / "sops_by_task.png").stat().st_size > 0
    assert "posetrack" in capsys.readouterr().out
    assert main(["--backend", "torch", "--task", "all", "--data", str(tmp_path), "--out", str(out)]) == 2


def _otb_without_first_box(tmp_path):
    path = write_otb(synthetic_sot("s", frames=3, height=32, width=32), tmp_path)
    (path / "groundtruth_rect.txt").write_text("NaN,NaN,NaN,NaN\n1,1,4,4\n1,1,4,4\n")
    return path, "groundtruth_rect.txt"


def _davis_rgb_annotation(tmp_path):
    write_davis([synthetic_vos(frames=3, height=48, width=64)], tmp_path)
    png = tmp_path / "Annotations" / "480p" / "vos-01" / "00000.png"
    from PIL import Image
    Image.open(png).convert("RGB").save(png)
    return tmp_path, "00000.png"


def _pose_json_without_keypoints(tmp_path):
    from evals.tasks.posetrack.data import write_posetrack
    from evals.tasks.posetrack.task import synthetic_pose_dataset
    path = write_posetrack(synthetic_pose_dataset(1, frames=2)[0], tmp_path)
    document = json.loads(path.read_text())
    del document["annotations"][0]["keypoints"]
    path.write_text(json.dumps(document))
    return tmp_path, path.name


@pytest.mark.parametrize("task, damage", [("sot", _otb_without_first_box), ("vos", _davis_rgb_annotation),
                                          ("posetrack", _pose_json_without_keypoints)])
def test_bad_dataset_files_are_one_line_errors(tmp_path, capsys, task, damage):
    data, name = damage(tmp_path / "data")
    out = tmp_path / "o"
    assert main(["--backend", "torch", "--task", task, "--data", str(data), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and name in err[0], err
    assert not (out / "report.json").exists()
