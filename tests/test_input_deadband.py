"""The input dead band: a value is sent again only once it has moved by more than the band, the
network then equals the QANN on the held frames, and sensor noise stops costing operations."""

import json

import torch

from evals.run import main
from vistream_neuro.streaming import hold_small_changes


def test_values_are_held_until_they_move_by_more_than_the_band():
    frames = [torch.tensor([row], dtype=torch.float64) for row in ([0.0, 0.0], [0.2, 0.4], [0.5, 0.5],
                                                                    [0.1, -0.6])]
    band = torch.tensor([[0.3, 0.45]], dtype=torch.float64)  # per column
    held = list(hold_small_changes(frames, band))
    expected = [[0.0, 0.0], [0.0, 0.0], [0.5, 0.5], [0.1, -0.6]]
    assert [h.tolist() for h in held] == [[row] for row in expected]
    assert torch.equal(held[0], frames[0]) and held[0] is not frames[0]


def _stream(tmp_path, name: str, *extra: str) -> dict:
    out = tmp_path / name
    assert main(["--backend", "spikingjelly", "--task", "stream", "--compare", "--schedule", "all",
                 "--frames", "5", "--out", str(out),
                 *extra]) == 0
    return json.loads((out / "report.json").read_text())


def test_dead_band_keeps_snn_equal_to_qann_and_removes_noise_events(tmp_path):
    plain = _stream(tmp_path, "plain")
    banded = _stream(tmp_path, "banded", "--input-deadband", "6")
    assert banded["input_deadband"] == 6 and plain["input_deadband"] == 0
    for name, run in banded["summary"]["compare"].items():
        if name not in ("ann", "qann"):
            assert run["level_mismatch_max"] == 0, name
        if name not in ("ann", "qann", "reset"):  # the LoCC runs, which stream differences
            before = plain["summary"]["compare"][name]
            assert run["input_macs_per_frame"] < 0.5 * before["input_macs_per_frame"], name
            assert run["sops_per_frame_steady"] < before["sops_per_frame_steady"], name
    # the QANN sees held frames, the ANN real ones: some accuracy is given up, not much
    assert 0.8 * plain["summary"]["qann_cosine_to_ann"] < banded["summary"]["qann_cosine_to_ann"]
