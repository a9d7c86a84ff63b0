"""The MOT task end to end: the default demo (synthetic sequences, ground-truth boxes) tracks well
with the ANN, and every SNN mode writes exactly the QANN's track files; MOTChallenge folders given
by --data are read; bad input is a one-line error."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from evals.run import main
from evals.tasks.mot.data import synthetic_mot, write_mot
from evals.tasks.mot.tracker import JDETracker, embed
from evals.tasks.posetrack.figures import synthetic_people
from vistream_neuro.video import write_video

ROOT = Path(__file__).resolve().parents[1]


def test_default_demo_tracks_and_snn_tracks_equal_the_qann(tmp_path):
    result = subprocess.run([sys.executable, "-m", "evals.run", "--backend", "spikingjelly", "--out",
                             str(tmp_path)], capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert result.returncode == 0, result.stderr
    assert "OVERALL" in result.stdout and "locc" in result.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["task"] == "mot" and len(report["sequences"]) == 2
    compare = report["summary"]["compare"]
    assert compare["ann"]["metrics"]["mota"] >= 0.9 and compare["ann"]["metrics"]["idf1"] >= 0.85
    for mode in ("reset", "locc"):
        assert compare[mode]["metrics"] == compare["qann"]["metrics"]
        for seq in ("synth-01", "synth-02"):
            qann = (tmp_path / "tracks" / "qann" / f"{seq}.txt").read_text()
            assert (tmp_path / "tracks" / mode / f"{seq}.txt").read_text() == qann and qann
    assert compare["locc"]["sops_per_frame_steady"] < compare["reset"]["sops_per_frame_steady"]
    assert all(s["compare"]["locc"]["frames"] == s["frames"] for s in report["sequences"])


def test_motchallenge_folder_from_data(tmp_path):
    write_mot(synthetic_mot("cam-7", frames=12, height=72, width=96, seed=5), tmp_path / "data")
    out = tmp_path / "out"
    assert main(["--backend", "torch", "--data", str(tmp_path / "data"), "--frames", "8",
                 "--no-compare", "--out", str(out)]) == 0
    rows = np.loadtxt(out / "tracks" / "locc" / "cam-7.txt", delimiter=",", ndmin=2)
    assert rows.shape[1] == 10 and rows[:, 0].max() == 8
    assert json.loads((out / "report.json").read_text())["sequences"][0]["name"] == "cam-7"


def test_missing_seqinfo_is_one_line_naming_the_file(tmp_path, capsys):
    folder = write_mot(synthetic_mot("cam-1", frames=3, height=48, width=64), tmp_path)
    (folder / "seqinfo.ini").unlink()
    assert main(["--backend", "torch", "--data", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "seqinfo.ini" in err[0], err
    assert not (tmp_path / "out" / "report.json").exists()


def test_embedding_pools_the_features_under_the_box():
    features = torch.zeros(1, 2, 10, 10, dtype=torch.float64)
    features[0, 0, :, :5] = 1.0  # left half: channel 0; right half: channel 1
    features[0, 1, :, 5:] = 1.0
    left, right = embed(features, np.array([[0, 0, 40, 80], [48, 8, 30, 60]], float), (80, 80))
    assert left.reshape(2, -1)[0].min() > 0.4 and np.allclose(left.reshape(2, -1)[1], 0)
    assert np.allclose(right.reshape(2, -1)[0], 0)
    assert np.allclose(np.linalg.norm([left, right], axis=1), 1)


def test_tracker_keeps_identities_through_a_missed_detection():
    tracker, ids = JDETracker(), []
    a, b = np.eye(8)[0], np.eye(8)[1]
    for t in range(8):
        boxes = np.array([[10 + 4 * t, 20, 20, 40], [120 - 4 * t, 22, 20, 40]], float)
        keep = [0] if t == 4 else [0, 1]  # object b is not detected in frame 4
        rows = tracker.step(boxes[keep], np.ones(len(keep)), np.stack([a, b])[keep])
        ids.append({int(r[0]): tuple(r[1:3]) for r in rows})
    assert all(len(i) == (1 if t == 4 else 2) for t, i in enumerate(ids))
    assert set(ids[0]) == set(ids[-1]) == {1, 2}
    assert ids[-1][1][0] == 10 + 4 * 7  # id 1 still the object moving right


def test_plain_video_is_tracked_on_hog_detections(tmp_path, capsys):
    """A video without annotations: HOG finds the walkers, every network tracks them, and with no
    ground truth the report says which networks' tracks equal the QANN's."""
    video = tmp_path / "walkers.avi"
    write_video(video, synthetic_people(frames=16, height=240, width=320, seed=1).frames)
    out = tmp_path / "out"
    assert main(["--backend", "spikingjelly", "--video", str(video), "--input-size", "60x80",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "(no ground truth)" in printed and "OVERALL" not in printed
    report = json.loads((out / "report.json").read_text())
    (seq,) = report["sequences"]
    assert seq["name"] == "walkers" and seq["detections"] == "hog" and seq["metrics"] == {}
    assert seq["tracks"]["ann"] >= 2
    assert all(seq["same_as_qann"][v] for v in ("reset", "locc"))
    rows = np.loadtxt(out / "tracks" / "locc" / "walkers.txt", delimiter=",", ndmin=2)
    assert rows.shape[1] == 10 and len(rows) >= 16

    for args, message in ((["--task", "mots"], "needs a MOTS20 folder"),
                          (["--detections", "gt"], "--detections hog")):
        assert main(["--backend", "torch", "--video", str(video), *args, "--out", str(tmp_path / "bad")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "walkers" in err[0] and message in err[0], err
    assert not (tmp_path / "bad" / "report.json").exists()


def test_mots_tracks_masks_and_snn_output_equals_the_qann(tmp_path):
    from evals.tasks.mots.data import read_mots_txt, write_mots

    out = tmp_path / "out"
    assert main(["--backend", "spikingjelly", "--task", "mots", "--frames", "20", "--out", str(out)]) == 0
    compare = json.loads((out / "report.json").read_text())["summary"]["compare"]
    assert compare["ann"]["metrics"]["smotsa"] >= 0.8
    for mode in ("reset", "locc"):
        assert compare[mode]["metrics"] == compare["qann"]["metrics"]
        qann = (out / "tracks" / "qann" / "synth-01.txt").read_text()
        assert (out / "tracks" / mode / "synth-01.txt").read_text() == qann
    rows = read_mots_txt(out / "tracks" / "locc" / "synth-01.txt", 120, 160)
    assert {r.class_id for r in rows} == {2} and max(r.frame for r in rows) == 20

    write_mots(synthetic_mot("mots-3", frames=10, height=72, width=96, seed=2), tmp_path / "data")
    assert main(["--backend", "torch", "--task", "mots", "--data", str(tmp_path / "data"), "--frames", "6",
                 "--no-compare", "--out", str(tmp_path / "out2")]) == 0
    assert (tmp_path / "out2" / "tracks" / "locc" / "mots-3.txt").exists()
