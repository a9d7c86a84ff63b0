"""SNN output equals the QANN frame by frame, in `locc` and `reset` mode (DESIGN.md section 2)."""

import numpy as np
import pytest
import torch

from backends.registry import lower
from evals.synthetic import synthetic_video
from vistream_neuro import models
from vistream_neuro.convert import to_spiking_graph
from vistream_neuro.quant import calibrate, quantize_activations
from vistream_neuro.streaming import run_stream


@pytest.fixture(scope="module")
def tiny_setup():
    video = torch.from_numpy(synthetic_video(30, 48, 64, seed=3)).double()
    model = quantize_activations(models.build("tiny", seed=3), bits=4).double()
    calibrate(model, video[:8])
    return model, to_spiking_graph(model, (3, 48, 64)), [f[None] for f in video]


def test_dense_backend_equals_the_torch_qann(tiny_setup):
    model, graph, frames = tiny_setup
    qann = lower(graph, "torch")
    for result, frame in zip(run_stream(qann, frames, "locc"), frames, strict=False):
        with torch.no_grad():
            expected = model(frame)
        torch.testing.assert_close(result.output, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("mode", ["locc", "reset"])
def test_spikingjelly_snn_equals_qann_every_frame_float64(tiny_setup, mode):
    _, graph, frames = tiny_setup
    qann = run_stream(lower(graph, "torch"), frames, "reset")
    snn = run_stream(lower(graph, "spikingjelly"), frames, mode, t_max=500)
    spikes = []
    for ref, res in zip(qann, snn, strict=True):
        assert res.converged
        bound = 1e-9 * ref.output.abs().max().item()
        assert (res.output - ref.output).abs().max().item() <= bound, res.index
        for name, level in ref.levels.items():
            assert torch.equal(res.levels[name], level), (res.index, name)
        spikes.append(res.spikes)
    assert min(spikes) > 0


def test_locc_spends_fewer_spikes_than_reset_after_the_first_frame(tiny_setup):
    _, graph, frames = tiny_setup
    locc = [r.spikes for r in run_stream(lower(graph, "spikingjelly"), frames, "locc")]
    reset = [r.spikes for r in run_stream(lower(graph, "spikingjelly"), frames, "reset")]
    assert locc[0] == reset[0]
    assert np.median(locc[1:]) < 0.5 * np.median(reset[1:])


def test_quiescence_is_capped_by_t_max(tiny_setup):
    _, graph, frames = tiny_setup
    (first,) = list(run_stream(lower(graph, "spikingjelly"), frames[:1], "locc", t_max=2))
    assert first.timesteps == 2 and not first.converged
