"""The multi-step (fast) path of the spikingjelly backend against stepping one step at a time.

Both run the ``timestep`` schedule; the fast one a chunk of steps per layer call.  On the integer
graph (``--precision fixed``) every sum is exact, so outputs, levels, time steps and every counted
operation must be identical; in float64 batched convolutions may round differently (1e-15).
"""

import pytest
import torch

from backends.spikingjelly_backend import MultiStepSimulator, SpikingJellySimulator
from tests.test_stream_equivalence import converted
from vistream_neuro.accounting import OpCounter
from vistream_neuro.backend import lower
from vistream_neuro.fixed_point import to_fixed_point
from vistream_neuro.options import ExecutionOptions
from vistream_neuro.pipeline import pixel_unit
from vistream_neuro.streaming import run_stream


def fixed(model: str, frames: int, size=None, device="cpu"):
    net, video = converted(model, frames, size)
    fx = to_fixed_point(net.graph, pixel_unit(model))
    return fx.graph, [fx.encode(f).float().to(device) for f in video]


def runs(graph, frames, mode, multistep, dtype=torch.float32, device="cpu", t_max=1000, **options):
    """``options`` (``chunk``, ``skip_quiet``) go to the multi-step simulator."""
    execution = ExecutionOptions(precision="fixed", mode=mode, t_max=t_max, device=device, multistep=False)
    sim = (MultiStepSimulator(graph, torch.device(device), dtype, **options) if multistep
           else lower(graph, "spikingjelly", execution, dtype))
    return list(run_stream(sim, frames, execution, OpCounter(graph, execution)))


def assert_identical(fast, plain, exact=True):
    for a, b in zip(fast, plain, strict=True):
        assert (a.timesteps, a.converged) == (b.timesteps, b.converged), a.index
        if exact:
            assert torch.equal(a.output, b.output), a.index
        else:
            assert (a.output - b.output).abs().max() <= 1e-12 * b.output.abs().max(), a.index
        assert all(torch.equal(a.levels[k], v) for k, v in b.levels.items()), a.index
        assert a.ops == b.ops, a.index


@pytest.mark.parametrize("mode", ["locc", "reset"])
@pytest.mark.parametrize("chunk,skip_quiet", [(8, True), (64, False), (5, False)])  # CPU, GPU defaults
def test_fast_path_equals_stepping_on_a_cnn_with_residual_and_max_pooling(mode, chunk, skip_quiet):
    graph, frames = fixed("tiny", 12)
    fast = runs(graph, frames, mode, True, chunk=chunk, skip_quiet=skip_quiet)
    assert isinstance(lower(graph, "spikingjelly"), MultiStepSimulator)
    assert_identical(fast, runs(graph, frames, mode, False))
    assert max(r.timesteps for r in fast) > 8  # frames span several chunks of 5 or 8


def test_fast_path_equals_stepping_on_mobilenetv2_real_weights():
    graph, frames = fixed("mobilenetv2", 4, (64, 32))
    fast = runs(graph, frames, "locc", True)
    assert_identical(fast, runs(graph, frames, "locc", False))
    assert_identical(runs(graph, frames, "locc", True, chunk=64, skip_quiet=False), fast)
    assert all(r.ops.total_sops > 0 for r in fast)


def test_fast_path_in_float64_and_cut_at_t_max():
    net, frames = converted("tiny", 6)
    assert_identical(runs(net.graph, frames, "locc", True, torch.float64),
                     runs(net.graph, frames, "locc", False, torch.float64), exact=False)
    cut = runs(net.graph, frames, "locc", True, torch.float64, t_max=5, chunk=3)
    assert all(r.timesteps == 5 and not r.converged for r in cut[:1])
    assert_identical(cut, runs(net.graph, frames, "locc", False, torch.float64, t_max=5), exact=False)


def test_batched_streams_keep_their_own_state():
    """Three streams at once (a batch): each equals its own run; steps are the slowest stream's."""
    graph, frames = fixed("tiny", 5)
    streams = [frames, [f.flip(-1) for f in frames], [f.flip(-2) for f in frames]]
    batch = [torch.cat(step) for step in zip(*streams, strict=True)]
    together = runs(graph, batch, "locc", True)
    assert_identical(together, runs(graph, batch, "locc", False))
    alone = [runs(graph, s, "locc", True) for s in streams]
    for t, res in enumerate(together):
        for i, own in enumerate(alone):
            assert torch.equal(res.output[i:i + 1], own[t].output), (t, i)
        assert res.timesteps == max(own[t].timesteps for own in alone)


def test_layerwise_and_lava_keep_stepping():
    graph, _ = fixed("tiny", 1)
    for options in (ExecutionOptions(schedule="layerwise"), ExecutionOptions(multistep=False)):
        assert type(lower(graph, "spikingjelly", options)) is SpikingJellySimulator


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here: the CUDA check did not run")
def test_fast_path_equals_stepping_on_cuda():
    graph, frames = fixed("mobilenetv2", 4, (64, 32), device="cuda")
    fast = runs(graph, frames, "locc", True, device="cuda")
    assert_identical(fast, runs(graph, frames, "locc", False, device="cuda"))
    assert_identical(fast, runs(graph, frames, "locc", True, device="cuda", chunk=8, skip_quiet=True))
