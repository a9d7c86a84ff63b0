"""``quiescence="vistream"``: ViStream's Judger ends a frame only after a step in which no neuron
spiked and none received input; checked against that rule applied step by step to the node values,
on both SpikingJelly paths, with the SNN still equal to the QANN."""

import json

import pytest
import torch

import vistream_neuro as vn
from evals.data.synthetic import synthetic_video
from evals.run import main
from vistream_neuro import ir, pipeline
from vistream_neuro.backend import lower
from vistream_neuro.options import ExecutionOptions, OptionsError
from vistream_neuro.streaming import run_stream


@pytest.fixture(scope="module")
def tiny():
    video = torch.from_numpy(synthetic_video(4, 16, 16, seed=2)).double()
    frames = torch.cat([video, video[-1:], video[-1:] + 0]).clone()
    frames[-1, 0, 8, 8] += 1e-7  # a change too small to make anything fire
    return pipeline.convert_model("tiny", video[:2], 4), frames


def _judger_steps(graph: ir.SpikingGraph, sim, frames: torch.Tensor, t_max: int = 512) -> list[int]:
    """ViStream's rule, written out: step until a step in which no neuron spiked and no neuron or
    synaptic layer received anything (LoCC: frame differences in)."""
    watched = [n for n in graph.nodes if isinstance(n, ir.Neuron | ir.Conv | ir.Linear)]
    sim.reset()
    counts, previous = [], None
    for frame in frames:
        current = frame[None] if previous is None else (frame - previous)[None]
        previous = frame
        steps, working = 0, True
        while working and steps < t_max:
            sim.step(current if steps == 0 else None)
            steps += 1
            values = sim.step_values()
            working = any(bool(values[n.input].any()) for n in watched) or any(
                bool(values[n.name].any()) for n in graph.neurons)
        counts.append(steps)
    return counts


def test_vistream_rule_equals_the_judger_step_by_step(tiny):
    net, frames = tiny
    inputs = net.inputs(frames)
    stepping = ExecutionOptions(precision="float64", multistep=False)
    expected = _judger_steps(net.graph, lower(net.graph, "spikingjelly", stepping, torch.float64), inputs)
    for multistep in (False, True):
        for rule in ("spikes", "vistream"):
            options = ExecutionOptions(precision="float64", multistep=multistep, quiescence=rule)
            sim = lower(net.graph, "spikingjelly", options, torch.float64)
            results = list(run_stream(sim, [f[None] for f in inputs], options))
            steps = [r.timesteps for r in results]
            if rule == "vistream":
                assert steps == expected
            else:
                assert [s + r.judger_step for s, r in zip(steps, results, strict=True)] == expected
    # the still frame costs one step either way; the imperceptible change one more under the Judger
    assert expected[-2] == 1 and expected[-1] == 2


def test_vistream_rule_keeps_the_snn_equal_to_the_qann(tiny):
    net, frames = tiny
    assert vn.run(net, frames, backend="spikingjelly", quiescence="vistream").level_mismatch == 0.0  # fixed
    ours = vn.run(net, frames, backend="spikingjelly", precision="float64")
    judged = vn.run(net, frames, backend="spikingjelly", precision="float64", quiescence="vistream")
    assert judged.level_mismatch == 0.0 and ours.level_mismatch == 0.0
    extra = [j["timesteps"] - o["timesteps"] for o, j in zip(ours.frames, judged.frames, strict=True)]
    assert set(extra) <= {0, 1} and extra[-1] == 1 and extra[-2] == 0
    with pytest.raises(OptionsError, match="quiescence"):
        ExecutionOptions(quiescence="judger")


def test_report_gives_the_steps_under_both_rules(tmp_path):
    out = tmp_path / "run"
    assert main(["--backend", "spikingjelly", "--task", "stream", "--frames", "3", "--input-size", "16x16",
                 "--quiescence", "vistream", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    summary = report["summary"]
    assert report["quiescence"] == summary["quiescence"] == "vistream"
    by_rule = summary["timesteps_mean_by_rule"]
    assert by_rule["vistream"] == summary["timesteps_mean"] >= by_rule["spikes"]
