"""ViStream's ``level`` (its ``MyQuan(level, sym)``) beside ``--act-bits``: bounds, conversion,
SNN == QANN with the signed range no bit width gives, and report.json's ``neuron_bounds``."""

import json

import pytest
import torch
from torch import nn

import vistream_neuro as vn
from evals.run import main
from vistream_neuro.quant import NeuronBounds, Quantizer, make_qann


def test_level_bounds_follow_myquan():
    assert NeuronBounds.from_level(16) == NeuronBounds((0, 7), (-8, 7))
    assert NeuronBounds.from_level(15) == NeuronBounds((0, 6), (-8, 6))  # Python's -15 // 2 == -8
    assert NeuronBounds.from_level(4) == NeuronBounds((0, 1), (-2, 1))
    assert NeuronBounds.from_bits(3) == NeuronBounds((0, 7), (-4, 3))  # --act-bits keeps its meaning
    for bad in (3, 0, -16, 65537, 16.0, True):
        with pytest.raises(ValueError, match="level"):
            NeuronBounds.from_level(bad)


def _net() -> nn.Module:
    """A linear layer output (signed quantizer) between two convs, then a ReLU (unsigned)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.Conv2d(6, 8, 3, padding=1),
                         nn.ReLU(), nn.Conv2d(8, 4, 1), nn.ReLU()).eval()


def test_make_qann_takes_level_bounds():
    qann = make_qann(_net(), NeuronBounds.from_level(16))
    ranges = sorted({(q.neg_min, q.pos_max) for q in qann.modules() if isinstance(q, Quantizer)})
    assert ranges == [(-8, 7), (0, 7)]


def test_level_run_equals_the_qann_and_uses_the_signed_range():
    frames = torch.rand(4, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    frames[2:, :, 3:8, 3:8] += 0.3
    net = vn.convert(_net(), frames[:2], level=16)
    levels = []
    hooks = [q.register_forward_hook(lambda m, _i, y: levels.append(torch.round(y / m.broadcast_scale(y))))
             for q in net.qann.modules() if isinstance(q, Quantizer) and q.neg_min < 0]
    with torch.no_grad():
        net.qann(net.inputs(frames))
    for h in hooks:
        h.remove()
    assert min(float(v.min()) for v in levels) == -8  # reached: the 3-bit signed range stops at -4
    for precision in ("float64", "fixed"):
        result = vn.run(net, frames, backend="spikingjelly", precision=precision)
        assert result.level_mismatch == 0.0
    with pytest.raises(ValueError, match="not both"):
        vn.convert(_net(), frames[:2], act_bits=3, level=16)


def test_cli_level_is_reported_and_checked(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["--backend", "torch", "--task", "stream", "--frames", "2", "--input-size", "16x16",
                 "--level", "16", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["neuron_bounds"] == {"unsigned": [0, 7], "signed": [-8, 7]} and report["level"] == 16
    assert report["summary"]["level_mismatch_max"] == 0.0
    assert main(["--backend", "torch", "--task", "stream", "--frames", "2", "--input-size", "16x16",
                 "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["neuron_bounds"] == {"unsigned": [0, 15], "signed": [-8, 7]} and report["act_bits"] == 4
    capsys.readouterr()
    for args in (["--level", "3"], ["--level", "16", "--act-bits", "3"], ["--level", "x"]):
        assert main(["--backend", "torch", "--task", "stream", *args, "--out", str(tmp_path / "bad")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--level" in err[0], err
