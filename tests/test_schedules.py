"""Execution schedules and spike encodings: ``layerwise`` settling sends exactly the minimum
spikes and gives the ``timestep`` outputs; on the integer graph every schedule and encoding equals
the QANN level for level, over a 300-frame stream, and LoCC does not drift over 10,000 frames."""

import json

import numpy as np
import pytest
import torch

from evals.data.synthetic import synthetic_video
from evals.run import main
from neurons.stbif import initial_state, stbif_settle, stbif_step
from vistream_neuro import ir, pipeline
from vistream_neuro.accounting import OpCounter
from vistream_neuro.backend import lower
from vistream_neuro.fixed_point import to_fixed_point
from vistream_neuro.options import ExecutionOptions
from vistream_neuro.streaming import run_stream


def test_settle_is_stepping_until_quiet():
    gen = torch.Generator().manual_seed(0)
    for signed in (False, True):
        scale = torch.rand(400, generator=gen, dtype=torch.float64) + 0.2
        pos_max, neg_min = torch.tensor(7.0), torch.tensor(-4.0 if signed else 0.0)
        q, acc = initial_state(scale)
        for _ in range(5):
            x = 4 * torch.randn(400, generator=gen, dtype=torch.float64)
            change, q_settled, acc_settled = stbif_settle(x, q, acc, scale, pos_max, neg_min)
            spike, q, acc = stbif_step(x, q, acc, scale, pos_max, neg_min)
            spikes, signs = spike.abs(), [spike]
            while spike.any():
                spike, q, acc = stbif_step(torch.zeros_like(x), q, acc, scale, pos_max, neg_min)
                spikes, signs = spikes + spike.abs(), signs + [spike]
            assert torch.equal(acc_settled, acc) and torch.allclose(q_settled, q, atol=1e-12)
            assert torch.equal(change.abs(), spikes)  # |change| spikes...
            assert all(((s * change) >= 0).all() for s in signs)  # ...all of the change's sign


@pytest.fixture(scope="module")
def integer_tiny():
    video = torch.from_numpy(synthetic_video(300, 32, 32, seed=1)).double()
    net = pipeline.convert_model("tiny", video, 4)
    fx = to_fixed_point(net.graph, pipeline.pixel_unit("tiny"))
    return fx, [fx.encode(f[None]) for f in video]


def _run(graph, frames, schedule, spikes, mode="locc"):
    options = ExecutionOptions(precision="fixed", mode=mode, schedule=schedule, spikes=spikes)
    return list(run_stream(lower(graph, "spikingjelly", options, torch.float64), frames, options,
                           OpCounter(graph, options)))


def test_every_schedule_and_encoding_equals_the_integer_qann_on_300_frames(integer_tiny):
    fx, frames = integer_tiny
    graph = fx.graph
    reference = list(run_stream(lower(graph, "torch"), frames, ExecutionOptions(mode="reset")))
    combinations = (("timestep", "ternary"), ("layerwise", "ternary"), ("layerwise", "graded"))
    runs = {(schedule, spikes): _run(graph, frames, schedule, spikes) for schedule, spikes in combinations}
    for results in runs.values():
        for ref, res in zip(reference, results, strict=True):
            assert all(torch.equal(res.levels[k], v) for k, v in ref.levels.items()), res.index
            assert torch.equal(res.output, ref.output) and res.converged
    timestep, layerwise = runs["timestep", "ternary"], runs["layerwise", "ternary"]
    graded = runs["layerwise", "graded"]
    for t, lw, gr in zip(timestep, layerwise, graded, strict=True):
        assert lw.timesteps == 1 and torch.equal(lw.output, t.output)
        assert lw.ops.spikes_pos.keys() == lw.ops.min_spikes.keys()
        for name, minimum in lw.ops.min_spikes.items():
            assert lw.ops.spikes_pos[name] + lw.ops.spikes_neg[name] == minimum  # exactly the minimum
            assert t.ops.spikes_pos[name] + t.ops.spikes_neg[name] >= minimum
            assert gr.ops.spikes_pos[name] + gr.ops.spikes_neg[name] <= minimum
        assert gr.ops.total_sops <= lw.ops.total_sops <= t.ops.total_sops
    assert sum(r.ops.total_sops for r in layerwise) < sum(r.ops.total_sops for r in timestep)


def test_layerwise_locc_does_not_drift_over_10000_frames():
    rng = np.random.default_rng(0)
    graph = ir.SpikingGraph((2, 8, 8), [
        ir.Conv("c1", ir.INPUT, 2.0 * rng.integers(-30, 31, (4, 2, 3, 3)), 4.0 * rng.integers(-8, 9, 4),
                padding=(1, 1)),
        ir.Neuron("n1", "c1", np.array(64.0), 15, payload=np.array(3.0)),
        ir.Conv("c2", "n1", 2.0 * rng.integers(-30, 31, (3, 4, 3, 3)), stride=(2, 2), padding=(1, 1)),
        ir.Neuron("n2", "c2", np.array(32.0), 7, neg_min=-8, payload=np.array(5.0)),
    ], "n2")
    frames = torch.from_numpy(rng.integers(0, 256, (10_000, 1, 2, 8, 8)).astype(np.float64))
    frames[1::2] = frames[::2]  # half the frames repeat the last: no input at all
    dense = lower(graph, "torch")
    options = ExecutionOptions(precision="fixed", schedule="layerwise")
    sim = lower(graph, "spikingjelly", options, torch.float32)
    for frame, res in zip(frames, run_stream(sim, frames, options), strict=True):
        expected = torch.round(dense.forward(frame)["n2"] / 5.0)
        assert torch.equal(res.levels["n2"].double(), expected), res.index


def test_cli_compares_every_schedule_and_encoding(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["--backend", "spikingjelly", "--task", "stream", "--compare", "--schedule", "all",
                 "--precision", "fixed", "--frames", "4", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    compare = report["summary"]["compare"]
    assert report["schedule"] == "all" and {"reset", "locc", "layerwise", "layerwise_graded"} <= set(compare)
    layerwise, graded, locc = compare["layerwise"], compare["layerwise_graded"], compare["locc"]
    assert layerwise["spikes_per_frame"] == layerwise["min_spikes_per_frame"] == locc["min_spikes_per_frame"]
    assert layerwise["timesteps_mean"] == 1 and layerwise["level_mismatch_max"] == 0
    assert graded["sops_per_frame"] <= layerwise["sops_per_frame"] <= locc["sops_per_frame"]
    assert "layerwise_graded ops / ANN MACs" in capsys.readouterr().out
    assert main(["--backend", "spikingjelly", "--task", "stream", "--spikes", "graded",
                 "--out", str(tmp_path / "bad")]) == 2
    assert "spikes 'graded' needs schedule 'layerwise'" in capsys.readouterr().err
    lava = tmp_path / "lava"
    assert main(["--backend", "lava", "--task", "stream", "--schedule", "layerwise", "--frames", "3",
                 "--out", str(lava)]) == 0
    lava_locc = json.loads((lava / "report.json").read_text())["summary"]
    assert lava_locc["timesteps_mean"] == 1 and lava_locc["level_mismatch_max"] == 0
    assert lava_locc["spikes_per_frame"] == lava_locc["min_spikes_per_frame"] > 0


def test_float32_exactness_is_checked_against_2_to_the_24():
    from vistream_neuro.fixed_point import check_float32_exact, magnitude_bounds

    graph = ir.SpikingGraph((1, 4, 4), [
        ir.Conv("c", ir.INPUT, np.full((2, 1, 3, 3), 4.0), np.array([3.0, -5.0]), padding=(1, 1)),
        ir.Neuron("n", "c", np.array(8.0), 7, neg_min=-2, payload=np.array(6.0)),
        ir.Add("a", ("n", "n")),
    ], "a")
    bounds = magnitude_bounds(graph, 100.0)
    assert bounds["c"] == 9 * 4 * 100 + 5 and bounds["n"] == 6 * 9 and bounds["a"] == 2 * 54
    check_float32_exact(graph, 2**24 / 36 - 10)
    with pytest.raises(ir.GraphError, match="c: its integer sums may reach"):
        check_float32_exact(graph, 2**24 / 36)
